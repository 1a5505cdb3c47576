"""Simulated Elphapex stock firmware (DG1, DG1+, DG-Home1): lighttpd with digest auth, Antminer-like CGIs.

Port 80 only: every path, `/` included, wants HTTP digest auth under the realm "Daoge Miner
Configuration" (clients look for `realm="Daoge`), root/root. No RPC port is served: neither pyasic nor
asic-rs knows one. The CGI replies follow the shapes of real DG1+ (firmware 1.0.2) and DG-Home1 (1.0.5)
replies published with pyasic and asic-rs: `stats` with a `chain` list (rates in MH/s, `freq_avg` in
kHz, chip temperatures in milli-degrees as strings, fan speeds as strings), `summary`, `pools` with
lower-case keys, `get_miner_conf` with `fc-*` settings, `get_power`, `get_blink_status`.

Writes: `set_miner_conf` takes the web UI's whole body (`pools` slots, `fc-fan-ctrl`, `fc-fan-pwm`,
`fc-freq-level`, and the work mode as `miner-mode`, which `get_miner_conf` shows as `fc-work-mode`),
and also `poolNurl`/`poolNuser`/`poolNpw` keys (what asic-rs sends; they win over the slots when both
come); `blink` and `reboot` as on stock Antminer.
"""

from __future__ import annotations

import random
import time
from typing import Any, ClassVar

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._cgi import AntminerLikeSim
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner
from asicfleet.sim.antminer import MAX_FAN_RPM, WORK_MODE_SCALE, AntminerStockSim, _acs, _json

REALM = "Daoge Miner Configuration"
API_VERSION = "1.0.0"
FIRMWARE_VERSIONS = {"DG1+": "1.0.2", "DG1": "1.0.2", "DG-Home1": "1.0.5"}  # builds seen per model
KERNEL = "4.4.194 #1 SMP Sat Sep 7 16:59:20 CST 2024"
FREQ_KHZ = 62000  # `freq_avg` as the DG1+ reports it
MAX_POOLS = 3


def _status(message: str) -> dict[str, Any]:
    now = int(time.time())
    return {"STATUS": "S", "when": now % 10_000_000, "timestamp": now, "api_version": API_VERSION, "Msg": message}


class ElphapexSim(AntminerLikeSim):
    family = "elphapex"
    realm = REALM
    make = "Elphapex"
    firmware = "Stock"
    models = ("DG1+", "DG1", "DG-Home1")
    services: ClassVar[tuple[Service, ...]] = (Service(80, "http"),)

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.firmware_version = f"{model.name}_SW_V{FIRMWARE_VERSIONS.get(model.name, '1.0.2')}"
        s.hostname = model.name  # the factory hostname is the model name
        s.serial = "28HY" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(17))
        s.extra["board_serials"] = ["13HY" + "".join(rng.choice("0123456789ABCDEFGHJKLMNPQRSTUVWXYZ")
                                                     for _ in range(20)) for _ in range(model.boards)]
        s.extra["power_sn"] = "BC10FP" + "".join(rng.choice("0123456789") for _ in range(21))
        return miner

    @property
    def short_version(self) -> str:
        return self.state.firmware_version.upper().rsplit("V", 1)[-1]

    # ----- figures -----------------------------------------------------------------------------
    def _board_rates_mhs(self) -> list[float]:
        return [round(ths * 1_000_000, 2) for ths in self.state.board_hashrates()]

    def _total_mhs(self) -> float:
        return round(sum(self._board_rates_mhs()), 2)

    def _info(self) -> dict[str, Any]:
        name = self.model_name
        return {"miner_version": self.state.firmware_version, "CompileTime": "", "dev_sn": self.state.serial,
                "type": name, "hw_version": f"{name}_HW_V1.0"}

    # ----- web ---------------------------------------------------------------------------------
    def _system_info(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        return _json({"ipaddress": s.ip, "system_mode": "GNU/Linux", "netmask": "255.255.255.0", "gateway": "",
                      "Algorithm": "Scrypt", "system_kernel_version": KERNEL,
                      "system_filesystem_version": s.firmware_version, "nettype": "DHCP", "dnsservers": "",
                      "netdevice": "eth0", "minertype": self.model_name, "macaddr": s.mac.lower(),
                      "firmware_type": "Release", "hostname": s.hostname})

    def _network_info(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        return _json({"conf_dnsservers": "", "conf_gateway": "", "conf_hostname": s.hostname, "conf_ipaddress": "",
                      "conf_netmask": "", "conf_nettype": "DHCP", "ipaddress": s.ip, "macaddr": s.mac.lower(),
                      "netdevice": "eth0", "netmask": "255.255.255.0", "nettype": "DHCP"})

    def _stats(self, request: HttpRequest) -> HttpResponse:
        s, model = self.state, self.state.model
        rates = self._board_rates_mhs()
        total = self._total_mhs()
        ideal = round(model.nominal_ths * 1_000_000, 2)
        chains = []
        for i in range(model.boards):
            pcb, chip, _ = self._board_temps(i)
            chains.append({
                "freq_avg": FREQ_KHZ if s.mining else 0, "index": i, "sn": s.extra["board_serials"][i],
                "temp_chip": [str(chip[0] * 1000 + 125), str(chip[-1] * 1000 + 500), "", ""],
                "eeprom_loaded": True, "rate_15m": round(rates[i]), "hw": s.extra["hardware_errors"][i],
                "temp_pcb": pcb, "failrate": 0.03, "asic": _acs(model.chips_per_board).strip(),
                "rate_real": rates[i], "asic_num": model.chips_per_board, "temp_pic": pcb,
                "rate_ideal": round(ideal / model.boards, 2), "hashrate": rates[i],
            })
        return _json({"STATUS": _status("stats"), "INFO": self._info(), "STATS": [{
            "rate_unit": "MH/s", "elapsed": s.uptime, "rate_30m": total, "rate_5s": total, "hwp_total": 0.1155,
            "rate_ideal": ideal, "chain": chains, "rate_15m": round(total), "chain_num": model.boards,
            "fan": [str(rpm) for rpm in s.fan_rpms], "rate_avg": total, "fan_num": len(s.fan_rpms),
        }]})

    def _summary(self, request: HttpRequest) -> HttpResponse:
        s, total = self.state, self._total_mhs()
        status = [{"status": "s", "type": kind, "msg": "", "code": 0} for kind in ("rate", "network", "fans", "temp")]
        status += [{"status": "e", "type": "system", "msg": text, "code": code} for code, text in s.messages]
        return _json({"STATUS": _status("summary"), "SUMMARY": [{
            "rate_unit": "MH/s", "elapsed": s.uptime, "rate_30m": total, "rate_5s": total, "bestshare": 0,
            "rate_ideal": round(s.model.nominal_ths * 1_000_000, 2), "status": status,
            "hw_all": sum(s.extra["hardware_errors"]), "rate_avg": total, "rate_15m": round(total),
        }], "INFO": self._info()})

    def _web_pools(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        pools = []
        for i, pool in enumerate(self._pools()):
            first = i == 0 and s.mining
            pools.append({"diffs": 0, "diffr": 524288 if first else 0, "index": i, "user": pool.username,
                          "lsdiff": 524288 if first else 0, "lstime": "00:00:05" if first else "",
                          "diffa": 524288 if first else 0, "accepted": s.accepted if first else 0, "diff1": 0,
                          "stale": 0, "diff": "", "rejected": s.rejected if first else 0, "status": "Alive",
                          "getworks": (s.accepted + s.rejected) if first else 0, "priority": i, "url": pool.url})
        return _json({"STATUS": _status("pools"), "Device Total Rejected": s.rejected, "POOLS": pools,
                      "Device Rejected%": round(100 * s.rejected / max(1, s.accepted + s.rejected), 2),
                      "Device Total Work": s.accepted + s.rejected, "INFO": self._info()})

    def _miner_conf(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        slots = [{"url": p.url, "pass": p.password, "user": p.username} for p in self._pools()]
        slots += [{"url": "", "pass": "", "user": ""}] * (MAX_POOLS - len(slots))
        manual = s.fan.mode == "manual"
        return _json({"pools": slots, "fc-voltage": "1470", "fc-fan-ctrl": manual,
                      "fc-freq-level": s.extra["freq_level"], "fc-fan-pwm": str(s.fan.fan_speed if manual else 100),
                      "algo": "ltc", "fc-work-mode": self.work_mode, "fc-freq": "1850"})

    def _set_miner_conf(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if not body:
            return _json({"stats": "error", "code": "M001", "msg": "Empty config"})
        s = self.state
        pools: list[Pool] | None = None
        try:
            if any(f"pool{i}url" in body for i in range(MAX_POOLS)):
                pools = [Pool(url=str(body[f"pool{i}url"]).strip(), username=str(body.get(f"pool{i}user") or "x"),
                              password=str(body.get(f"pool{i}pw", "")))
                         for i in range(MAX_POOLS) if str(body.get(f"pool{i}url", "")).strip()]
            elif isinstance(body.get("pools"), list):
                pools = [Pool(url=str(p["url"]).strip(), username=str(p.get("user") or "x"),
                              password=str(p.get("pass", "")))
                         for p in body["pools"] if isinstance(p, dict) and str(p.get("url", "")).strip()]
        except ValueError:
            return _json({"stats": "error", "code": "M003", "msg": "Invalid pool"})
        mode = self.work_mode
        for key in ("miner-mode", "fc-work-mode"):
            if key in body:
                try:
                    mode = int(float(body[key]))
                except (TypeError, ValueError):
                    mode = -1
                break
        if mode not in WORK_MODE_SCALE:
            return _json({"stats": "error", "code": "M002", "msg": "Invalid miner mode"})
        if pools is not None:
            s.pools = [PoolGroup(name="default", quota=1, pools=pools[:MAX_POOLS])] if pools else []
        if "fc-fan-ctrl" in body:
            manual = body["fc-fan-ctrl"]
            if manual is True or str(manual).strip().lower() in ("true", "1"):
                speed = max(0, min(100, int(float(body.get("fc-fan-pwm", 100)))))
                s.fan = FanConfig.manual(speed)
                s.fan_rpms = [round(MAX_FAN_RPM * speed / 100 / 10) * 10 for _ in s.fan_rpms]
            else:
                s.fan = FanConfig.auto()
                s.fan_rpms = list(s.extra["auto_fan_rpms"])
        if "fc-freq-level" in body:
            s.extra["freq_level"] = str(body["fc-freq-level"])
        self._apply_work_mode(mode)
        return _json({"code": "M000", "msg": "OK!", "stats": "success"})

    def _power(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        watts = round(s.wattage) if s.mining else 25  # the control board alone, as an idle DG-Home1 reads
        return _json({"power_output": str(watts), "power_sn": s.extra["power_sn"], "power_temp": "270"})

    cgi_handlers = {
        "get_system_info": _system_info, "get_network_info": _network_info, "stats": _stats, "summary": _summary,
        "pools": _web_pools, "get_miner_conf": _miner_conf, "set_miner_conf": _set_miner_conf,
        "get_power": _power, "get_blink_status": AntminerStockSim._blink_status, "blink": AntminerStockSim._blink,
        "reboot": AntminerStockSim._reboot,
    }
