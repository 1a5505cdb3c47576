"""Simulated Antminer stock firmware (S19 / S19 Pro / S19j Pro / S19 XP / S21 / T21, 2022+ firmware).

Port 4028 answers the bmminer RPC (`version`, `summary`, `stats`, `pools`, `devs`, joined `a+b`
commands; `{"new_api": true}` requests get the JSON layout the CGI scripts serve); anything else
answers "Invalid command" (code 14), as the stock firmware does for `devdetails`. Port 80 is lighttpd
with HTTP digest auth (realm "antMiner Configuration") in front of everything, `/` included: an
unauthenticated `GET /` answers 401, which is how clients recognise the firmware.

Reply shapes follow the captured v2020 replies in shared/fixtures/asic-rs/responses/antminer; the
figures come from `self.state`, so configuration changes show up in later reads.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import time
import urllib.parse
from dataclasses import dataclass
from typing import Any

import orjson

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, digest_ok, rpc_error

REALM = "antMiner Configuration"
API_DESCRIPTION = "cgminer 1.0.0"  # what the stock firmware's STATUS.Description says
MINER_VERSION = "49.0.1.3"
MAX_FAN_RPM = 6000  # fan speed at 100 % PWM
# hash rate and power relative to normal mode, per work mode (0 normal, 1 sleep, 2 high, 3 low);
# sleep keeps the figures and stops hashing instead
WORK_MODE_SCALE = {0: 1.0, 1: 1.0, 2: 1.1, 3: 0.7}


@dataclass(frozen=True)
class FirmwareBuild:
    """What one model's stock build reports about itself."""

    compile_time: str  # VERSION.CompileTime, summary.cgi INFO.CompileTime
    filesystem_version: str  # get_system_info.cgi system_filesystem_version
    kernel: str
    subtype: str  # miner_type.cgi subtype: control board and hashboard type
    frequency: int  # MHz, stats freqN


_S19_2022 = FirmwareBuild("Tue Dec  6 16:12:30 CST 2022", "Tue Dec  6 16:12:30 CST 2022",
                          "Linux 4.9.38 #1 SMP PREEMPT Tue Dec 6 16:05:41 CST 2022", "CVCtrl_BHB42601", 525)
BUILDS: dict[str, FirmwareBuild] = {
    "Antminer S19": FirmwareBuild(_S19_2022.compile_time, _S19_2022.filesystem_version, _S19_2022.kernel,
                                  "CVCtrl_BHB42611", 650),
    "Antminer S19 Pro": _S19_2022,
    # the 2022 S19j Pro build reports the same string for both (seen on real units)
    "Antminer S19j Pro": FirmwareBuild("Mon Dec 26 17:10:01 CST 2022", "Mon Dec 26 17:10:01 CST 2022",
                                       "Linux 4.9.38 #1 SMP PREEMPT Mon Dec 26 17:02:11 CST 2022",
                                       "CVCtrl_BHB42801", 500),
    "Antminer S19 XP": FirmwareBuild("Thu Aug 24 11:20:53 CST 2023", "Thu Aug 24 11:20:53 CST 2023",
                                     "Linux 4.9.113 #1 SMP PREEMPT Thu Aug 24 11:12:30 CST 2023",
                                     "AMLCtrl_BHB56903", 500),
    "Antminer S21": FirmwareBuild("Thu Oct  9 18:55:45 CST 2025", "FR-1.12(251009-S21)",
                                  "Linux 4.9.113 #1 SMP PREEMPT Thu Oct 9 18:55:45 CST 2025",
                                  "AMLCtrl_BHB68606", 490),
    "Antminer T21": FirmwareBuild("Thu Oct  9 18:55:45 CST 2025", "FR-1.12(251009-T21)",
                                  "Linux 4.9.113 #1 SMP PREEMPT Thu Oct 9 18:55:45 CST 2025",
                                  "AMLCtrl_BHB68703", 480),
}



def build_of(name: str) -> FirmwareBuild:
    """The captured build of a model, or for a model without one the 2025 build's strings with its name."""
    known = BUILDS.get(name)
    if known is not None:
        return known
    short = name.removeprefix("Antminer ").replace(" ", "")
    template = BUILDS["Antminer S21"]
    return FirmwareBuild(template.compile_time, f"FR-1.12(251009-{short})", template.kernel, template.subtype,
                         template.frequency)


_ERROR_PAGE = (
    '<?xml version="1.0" encoding="iso-8859-1"?>\n<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"\n'
    '         "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">\n'
    '<html xmlns="http://www.w3.org/1999/xhtml" xml:lang="en" lang="en">\n <head>\n  <title>{title}</title>\n'
    " </head>\n <body>\n  <h1>{title}</h1>\n </body>\n</html>\n"
)


def _error_page(status: int, title: str) -> HttpResponse:
    return HttpResponse(status=status, body=_ERROR_PAGE.format(title=title).encode(),
                        content_type="text/html")


def _json(value: Any) -> HttpResponse:
    return HttpResponse(status=200, body=orjson.dumps(value), content_type="application/json")


def _status_list(code: int, message: str) -> list[dict[str, Any]]:
    return [{"STATUS": "S", "When": int(time.time()), "Code": code, "Msg": message, "Description": API_DESCRIPTION}]


def _acs(chips: int) -> str:
    """The chip map string: one `o` per answering chip, in groups per voltage domain."""
    size = 3 if chips % 3 == 0 else 2
    return "".join(" " + "o" * min(size, chips - i) for i in range(0, chips, size))


def _as_bool(value: Any) -> bool:
    return value.strip().lower() in ("true", "1", "on") if isinstance(value, str) else bool(value)


class AntminerStockSim(SimMiner):
    family = "antminer"
    make = "AntMiner"
    firmware = "Stock"
    models = tuple(BUILDS)  # the default mix; any catalogued Antminer can be served (see build_of)
    services = (Service(4028, "rpc"), Service(80, "http"))
    ip_report_port = 14235

    @classmethod
    def ip_report_payload(cls, ip: str, mac: str) -> bytes:
        """`ip,mac` in ASCII, as the stock firmware broadcasts it (what pyasic and asic-rs listen for)."""
        return f"{ip},{mac.upper()}".encode("ascii")

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        state, build = miner.state, build_of(model.name)
        state.firmware_version = build.filesystem_version
        state.extra.update(
            work_mode=0,
            base_ths=state.hashrate_ths,
            base_watts=state.wattage,
            auto_fan_rpms=list(state.fan_rpms),
            freq_level="100",
            miner_id=f"{rng.getrandbits(64):016x}",
            board_serials=["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(17))
                           for _ in range(model.boards)],
            hardware_errors=[rng.randrange(0, 400) for _ in range(model.boards)],
            upgrades=[],
        )
        return miner

    @property
    def build_info(self) -> FirmwareBuild:
        return build_of(self.state.model.name)

    @property
    def work_mode(self) -> int:
        return int(self.state.extra.get("work_mode", 0))

    def _apply_work_mode(self, mode: int) -> None:
        """Sleep stops hashing; low/high scale hash rate and power; no pools means no work either."""
        s = self.state
        s.extra["work_mode"] = mode
        scale = WORK_MODE_SCALE.get(mode, 1.0)
        s.hashrate_ths = round(s.extra["base_ths"] * scale, 3)
        s.wattage = round(s.extra["base_watts"] * scale, 1)
        s.mining = mode != 1 and bool(self._pools())

    def _pools(self) -> list[Pool]:
        return [p for g in self.state.pools for p in g.pools][:3]

    # ----- figures shared by every reply ------------------------------------------------------
    def _board_rates_ghs(self) -> list[float]:
        return [round(ths * 1000, 2) for ths in self.state.board_hashrates()]

    def _total_ghs(self) -> float:
        return round(sum(self._board_rates_ghs()), 2)

    def _board_temps(self, board: int) -> tuple[list[int], list[int], list[int]]:
        """PCB, chip and PIC sensor readings of a board (two on the intake side, two on the outlet side);
        the PCB readings average to the board temperature, as clients compute it."""
        mean = round(self.state.board_temps[board]) if self.state.mining else 30
        pcb = [mean - 9, mean - 6, mean + 7, mean + 8]
        return pcb, [t + 5 for t in pcb], [t - 10 for t in pcb]

    def _fan_rpms(self) -> list[int]:
        return list(self.state.fan_rpms)

    # ----- RPC --------------------------------------------------------------------------------
    def rpc_reply(self, request: bytes, port: int) -> bytes:
        try:
            body = orjson.loads(request.rstrip(b"\x00").strip() or b"null")
        except orjson.JSONDecodeError:
            body = None
        if isinstance(body, dict) and body.get("new_api") and isinstance(body.get("command"), str):
            # newer builds answer `{"command": ..., "new_api": true}` in the CGI layout
            self.count(f"{port}:{body['command']} new_api")
            handler = {"stats": self._new_stats, "summary": self._new_summary, "pools": self._new_pools}
            make = handler.get(body["command"])
            return orjson.dumps(make() if make else self._new_error("invalid command"))
        return super().rpc_reply(request, port)

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        handlers = {"version": self._rpc_version, "summary": self._rpc_summary, "stats": self._rpc_stats,
                    "pools": self._rpc_pools, "devs": self._rpc_devs}
        handler = handlers.get(command)
        if handler is None:
            reply = rpc_error(14, "Invalid command")
            reply["STATUS"][0]["Description"] = API_DESCRIPTION
            return reply
        return handler()

    def _program_row(self) -> dict[str, Any]:
        return {"BMMiner": "1.0.0", "Miner": MINER_VERSION, "CompileTime": self.build_info.compile_time,
                "Type": self.model_name}

    def _rpc_version(self) -> dict[str, Any]:
        return {"STATUS": _status_list(22, "CGMiner versions"),
                "VERSION": [{"BMMiner": "1.0.0", "API": "3.1", "Miner": MINER_VERSION,
                             "CompileTime": self.build_info.compile_time, "Type": self.model_name}], "id": 1}

    def _rpc_summary(self) -> dict[str, Any]:
        s, total = self.state, self._total_ghs()
        hw = sum(s.extra["hardware_errors"])
        return {"STATUS": _status_list(11, "Summary"), "SUMMARY": [{
            "Elapsed": s.uptime, "GHS 5s": total, "GHS av": total, "GHS 30m": total, "Found Blocks": 0,
            "Getwork": s.accepted // 2 + 3, "Accepted": s.accepted, "Rejected": s.rejected, "Hardware Errors": hw,
            "Utility": round(s.accepted / max(1, s.uptime) * 60, 2), "Discarded": s.accepted * 4, "Stale": 0,
            "Get Failures": 0, "Local Work": s.accepted * 5, "Remote Failures": 0, "Network Blocks": 82,
            "Total MH": round(total * 1000 * s.uptime, 1), "Work Utility": round(total * 14.06, 2),
            "Difficulty Accepted": float(s.accepted * 524288), "Difficulty Rejected": float(s.rejected * 524288),
            "Difficulty Stale": 0.0, "Best Share": 12904207043, "Device Hardware%": 0.0,
            "Device Rejected%": 0.0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0, "Last getwork": int(time.time()),
        }], "id": 1}

    def _rpc_stats(self) -> dict[str, Any]:
        s, model, build = self.state, self.state.model, self.build_info
        rates = self._board_rates_ghs()
        total = self._total_ghs()
        row: dict[str, Any] = {
            "STATS": 0, "ID": "BTM_SOC0", "Elapsed": s.uptime, "Calls": 0, "Wait": 0, "Max": 0, "Min": 99999999,
            "GHS 5s": total, "GHS av": total, "rate_30m": total, "Mode": 2, "miner_count": model.boards,
            "frequency": build.frequency, "fan_num": len(s.fan_rpms),
        }
        for i, rpm in enumerate(self._fan_rpms(), start=1):
            row[f"fan{i}"] = rpm
        row["temp_num"] = model.boards
        slots = max(4, model.boards)
        for n in range(1, model.boards + 1):
            row[f"temp{n}"] = self._board_temps(n - 1)[0][-1]
        for n in range(1, model.boards + 1):
            row[f"temp2_{n}"] = self._board_temps(n - 1)[1][-1]
        for n in range(1, slots + 1):
            pcb, chip, pic = self._board_temps(n - 1) if n <= model.boards else ([0] * 4, [0] * 4, [0] * 4)
            row[f"temp_pcb{n}"] = "-".join(str(t) for t in pcb)
            row[f"temp_chip{n}"] = "-".join(str(t) for t in chip)
            row[f"temp_pic{n}"] = "-".join(str(t) for t in pic)
        row["total_rateideal"] = float(model.nominal_ths * 1000)
        row["rate_unit"] = "GH"
        row["total_freqavg"] = build.frequency if s.mining else 0
        row["total_acn"] = model.boards * model.chips_per_board
        row["total rate"] = total
        row["temp_max"] = 0
        row["no_matching_work"] = sum(s.extra["hardware_errors"])
        for n in range(1, slots + 1):
            present = n <= model.boards
            row[f"chain_acn{n}"] = model.chips_per_board if present else 0
            row[f"chain_acs{n}"] = _acs(model.chips_per_board) if present else ""
            row[f"chain_hw{n}"] = s.extra["hardware_errors"][n - 1] if present else 0
            row[f"chain_rate{n}"] = f"{rates[n - 1]:.2f}" if present else ""
            row[f"freq{n}"] = (build.frequency if s.mining else 0) if present else 0
        row["miner_version"] = MINER_VERSION
        row["miner_id"] = s.extra["miner_id"]
        return {"STATUS": _status_list(70, "CGMiner stats"), "STATS": [self._program_row(), row], "id": 1}

    def _rpc_pools(self) -> dict[str, Any]:
        s = self.state
        pools = []
        for index, pool in enumerate(self._pools()):
            first = index == 0
            accepted, rejected = (s.accepted, s.rejected) if first else (0, 0)
            pools.append({
                "POOL": index, "URL": pool.url, "Status": "Alive", "Priority": index, "Quota": 1, "Long Poll": "N",
                "Getworks": accepted // 2 + 3, "Accepted": accepted, "Rejected": rejected,
                "Discarded": accepted * 4, "Stale": 0, "Get Failures": 0, "Remote Failures": 0,
                "User": pool.username, "Last Share Time": "0:00:03" if first and s.mining else "0",
                "Diff": "524K" if first else "", "Diff1 Shares": 0, "Proxy Type": "", "Proxy": "",
                "Difficulty Accepted": float(accepted * 524288), "Difficulty Rejected": float(rejected * 524288),
                "Difficulty Stale": 0.0, "Last Share Difficulty": 524288.0 if first else 0.0,
                "Has Stratum": True, "Stratum Active": first and s.mining, "Stratum URL": pool.host if first else "",
                "Has GBT": False, "Best Share": 12904207043.0 if first else 0.0, "Pool Rejected%": 0.0,
                "Pool Stale%%": 0.0,
            })
        return {"STATUS": _status_list(7, f"{len(pools)} Pool(s)"), "POOLS": pools, "id": 1}

    def _rpc_devs(self) -> dict[str, Any]:
        # the SoC device row counts shares but reports 0 MH/s, as the real firmware does
        s = self.state
        return {"STATUS": _status_list(9, "1 ASC(s)"), "DEVS": [{
            "ASC": 0, "Name": "BTM_SOC", "ID": 0, "Enabled": "Y", "Status": "Alive", "Tenperature": 0.0,
            "MHS av": 0.0, "MHS 5s": 0.0, "Accepted": s.accepted, "Rejected": s.rejected,
            "Hardware Errors": 0, "Utility": 0.0, "Last Share Pool": 0, "Last Share Time": int(time.time()),
            "Total MH": 0.0, "Diff1 Work": 0, "Difficulty Accepted": s.accepted * 524288,
            "Difficulty Rejected": s.rejected * 524288, "Last Share Difficulty": int(time.time()),
            "Last Valid Work": int(time.time()), "Device Hardware%": 0.0, "Device Rejected%": 0.0,
            "Device Elapsed": s.uptime,
        }], "id": 1}

    # ----- the CGI ("new API") layout ---------------------------------------------------------
    def _new_status(self, message: str) -> dict[str, Any]:
        return {"STATUS": "S", "when": int(time.time()), "Msg": message, "api_version": "1.0.0"}

    def _new_info(self) -> dict[str, Any]:
        return {"miner_version": MINER_VERSION, "CompileTime": self.build_info.compile_time, "type": self.model_name}

    def _new_error(self, message: str) -> dict[str, Any]:
        return {"STATUS": {"STATUS": "E", "when": int(time.time()), "Msg": message, "api_version": "1.0.0"}}

    def _new_stats(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        rates = self._board_rates_ghs()
        total = self._total_ghs()
        chains = []
        for i in range(model.boards):
            pcb, chip, pic = self._board_temps(i)
            chains.append({
                "index": i, "freq_avg": self.build_info.frequency if s.mining else 0,
                "rate_ideal": round(model.nominal_ths * 1000 / model.boards, 2), "rate_real": rates[i],
                "asic_num": model.chips_per_board, "asic": _acs(model.chips_per_board), "temp_pic": pic,
                "temp_pcb": pcb, "temp_chip": chip, "hw": s.extra["hardware_errors"][i], "eeprom_loaded": True,
                "sn": s.extra["board_serials"][i], "hwp": 0.0,
            })
        return {"STATUS": self._new_status("stats"), "INFO": self._new_info(), "STATS": [{
            "elapsed": s.uptime, "rate_5s": total, "rate_30m": total, "rate_avg": total,
            "rate_ideal": float(model.nominal_ths * 1000), "rate_unit": "GH/s", "chain_num": model.boards,
            "fan_num": len(s.fan_rpms), "fan": self._fan_rpms(), "hwp_total": 0.0, "miner-mode": self.work_mode,
            "freq-level": int(s.extra["freq_level"]), "chain": chains,
        }]}

    def _new_summary(self) -> dict[str, Any]:
        s, total = self.state, self._total_ghs()
        status = [{"type": kind, "status": "s", "code": 0, "msg": ""} for kind in ("rate", "network", "fans", "temp")]
        status += [{"type": "system", "status": "e", "code": code, "msg": text} for code, text in s.messages]
        return {"STATUS": self._new_status("summary"), "INFO": self._new_info(), "SUMMARY": [{
            "elapsed": s.uptime, "rate_5s": total, "rate_30m": total, "rate_avg": total,
            "rate_ideal": float(s.model.nominal_ths * 1000), "rate_unit": "GH/s",
            "hw_all": sum(s.extra["hardware_errors"]), "bestshare": 12904207043, "status": status,
        }]}

    def _new_pools(self) -> dict[str, Any]:
        s = self.state
        pools = [{"index": i, "url": p.url, "user": p.username, "status": "Alive", "priority": i,
                  "getworks": (s.accepted // 2 + 3) if i == 0 else 0, "accepted": s.accepted if i == 0 else 0,
                  "rejected": s.rejected if i == 0 else 0, "discarded": 0, "stale": 0,
                  "diff": "524K" if i == 0 else "", "diff1": 0, "diffa": 0, "diffr": 0, "diffs": 0, "lsdiff": 0,
                  "lstime": "0:00:03" if i == 0 else "0"} for i, p in enumerate(self._pools())]
        return {"STATUS": self._new_status("pools"), "INFO": self._new_info(), "POOLS": pools}

    # ----- web: lighttpd with digest auth in front of every path ------------------------------
    def _challenge(self) -> str:
        stamp = f"{int(time.time()):08x}"
        return (f'Digest realm="{REALM}", charset="UTF-8", algorithm=MD5, '
                f'nonce="{stamp}:{secrets.token_hex(16)}", qop="auth"')

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if self.auth_refused() or not digest_ok(request, REALM, self.state.username, self.state.password):
            page = _error_page(401, "401 Unauthorized")
            page.headers["WWW-Authenticate"] = self._challenge()
            return page
        self.count(f"auth:{request.method} {request.path}")  # requests that got past the login
        if request.path in ("/", "/index.html"):
            return HttpResponse.html("<!DOCTYPE html><html><head><title>Antminer</title></head>"
                                     '<body><div id="app"></div></body></html>')
        name = request.path.removeprefix("/cgi-bin/").removesuffix(".cgi") if request.path.startswith("/cgi-bin/") \
            and request.path.endswith(".cgi") else None
        handler = self._cgi.get(name or "")
        if handler is None:
            return _error_page(404, "404 Not Found")
        return handler(self, request)

    @staticmethod
    def _body(request: HttpRequest) -> dict[str, Any]:
        """A CGI request body: JSON as the web UI posts it, or a form."""
        if not request.body:
            return {}
        try:
            value = orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return {k: v[-1] for k, v in urllib.parse.parse_qs(request.body.decode("latin-1")).items()}
        return value if isinstance(value, dict) else {}

    def _system_info(self, request: HttpRequest) -> HttpResponse:
        s, build = self.state, self.build_info
        return _json({"minertype": self.model_name, "nettype": "DHCP", "netdevice": "eth0", "macaddr": s.mac,
                      "hostname": s.hostname, "ipaddress": s.ip, "netmask": "255.255.255.0", "gateway": "",
                      "dnsservers": "", "system_mode": "GNU/Linux", "system_kernel_version": build.kernel,
                      "system_filesystem_version": s.firmware_version, "firmware_type": "Release",
                      "serinum": s.serial})

    def _network_info(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        return _json({"nettype": "DHCP", "netdevice": "eth0", "macaddr": s.mac, "ipaddress": s.ip,
                      "netmask": "255.255.255.0", "conf_nettype": "DHCP", "conf_hostname": s.hostname,
                      "conf_ipaddress": "", "conf_netmask": "", "conf_gateway": "", "conf_dnsservers": ""})

    def _miner_type(self, request: HttpRequest) -> HttpResponse:
        build = self.build_info
        return _json({"miner_type": self.model_name, "subtype": build.subtype, "fw_version": build.compile_time})

    def _miner_conf(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        slots = [{"url": p.url, "user": p.username, "pass": p.password} for p in self._pools()]
        slots += [{"url": "", "user": "", "pass": ""}] * (3 - len(slots))
        manual = s.fan.mode == "manual"
        return _json({
            "pools": slots, "api-listen": True, "api-network": True,
            "api-groups": "A:stats:pools:devs:summary:version", "api-allow": "A:0/0,W:*",
            "bitmain-fan-ctrl": manual, "bitmain-fan-pwm": str(s.fan.fan_speed if manual else 100),
            "bitmain-use-vil": True, "bitmain-freq": str(self.build_info.frequency), "bitmain-voltage": "1360",
            "bitmain-ccdelay": "0", "bitmain-pwth": "0", "bitmain-work-mode": str(self.work_mode),
            "bitmain-freq-level": s.extra["freq_level"],
        })

    def _set_miner_conf(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if not body:
            return _json({"stats": "error", "code": "M001", "msg": "Empty config"})
        s = self.state
        if isinstance(body.get("pools"), list):
            try:
                pools = [Pool(url=str(p["url"]).strip(), username=str(p.get("user") or "x"),
                              password=str(p.get("pass", "")))
                         for p in body["pools"] if isinstance(p, dict) and str(p.get("url", "")).strip()]
            except ValueError:
                return _json({"stats": "error", "code": "M003", "msg": "Invalid pool"})
            s.pools = [PoolGroup(name="default", quota=1, pools=pools[:3])] if pools else []
        if "bitmain-fan-ctrl" in body:
            if _as_bool(body["bitmain-fan-ctrl"]):
                speed = max(0, min(100, int(float(body.get("bitmain-fan-pwm", 100)))))
                s.fan = FanConfig.manual(speed)
                s.fan_rpms = [round(MAX_FAN_RPM * speed / 100 / 10) * 10 for _ in s.fan_rpms]
            else:
                s.fan = FanConfig.auto()
                s.fan_rpms = list(s.extra["auto_fan_rpms"])
        if "freq-level" in body:
            s.extra["freq_level"] = str(body["freq-level"])
        mode = self.work_mode
        if "miner-mode" in body:  # `bitmain-work-mode` is read-only here: writing it changes nothing
            mode = int(float(body["miner-mode"]))
            if mode not in WORK_MODE_SCALE:
                return _json({"stats": "error", "code": "M002", "msg": "Invalid miner mode"})
        self._apply_work_mode(mode)
        return _json({"stats": "success", "code": "M000", "msg": "OK!"})

    def _blink_status(self, request: HttpRequest) -> HttpResponse:
        return _json({"blink": self.state.fault_light})

    def _blink(self, request: HttpRequest) -> HttpResponse:
        on = _as_bool(self._body(request).get("blink", False))
        self.state.fault_light = on
        return _json({"code": "B000" if on else "B100", "msg": "Blink started" if on else "Blink stopped"})

    def _reboot(self, request: HttpRequest) -> HttpResponse:
        self.restart()
        return _json({"stats": "success", "code": "R000", "msg": "Rebooting"})

    def _passwd(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if body.get("curPwd") != self.state.password:
            return _json({"stats": "error", "code": "P001", "msg": "Current password is wrong"})
        new = str(body.get("newPwd", ""))
        if not new or new != body.get("confirmPwd"):
            return _json({"stats": "error", "code": "P002", "msg": "Passwords do not match"})
        self.state.password = new
        return _json({"stats": "success", "code": "P000", "msg": "OK!"})

    def _log(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        boot = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(s.boot_time))
        lines = [f"{boot} bmminer: Miner type: {self.model_name}",
                 f"{boot} bmminer: Version: {self.build_info.compile_time}",
                 *(f"{boot} bmminer: chain[{i}] ASIC {s.model.chips_per_board} found" for i in range(s.model.boards)),
                 f"{boot} bmminer: work mode {self.work_mode}, fan {'manual' if s.fan.mode == 'manual' else 'auto'}",
                 *(f"{boot} bmminer: ERROR {code}: {text}" for code, text in s.messages)]
        return HttpResponse(status=200, body=("\n".join(lines) + "\n").encode(), content_type="text/plain")

    def _reset_conf(self, request: HttpRequest) -> HttpResponse:
        # factory configuration: no pools (so no work), automatic fans, normal mode
        s = self.state
        s.pools = []
        s.fan = FanConfig.auto()
        s.fan_rpms = list(s.extra["auto_fan_rpms"])
        s.extra["freq_level"] = "100"
        self._apply_work_mode(0)
        return _json({"stats": "success", "code": "C000", "msg": "Reset to factory settings"})

    def _upgrade(self, request: HttpRequest) -> HttpResponse:
        image = _multipart_file(request)
        if image is None or not image[1]:
            return _json({"stats": "error", "code": "U001", "msg": "No firmware file"})
        name, content = image
        refusal = self.install_image(content)
        if refusal is not None:
            return _json({"stats": "error", "code": "U002", "msg": refusal})
        self.state.extra["upgrades"].append({"filename": name, "bytes": len(content),
                                             "sha256": hashlib.sha256(content).hexdigest()})
        self.restart()  # the firmware flashes and reboots
        return _json({"stats": "success", "code": "U000", "msg": "Upgrade succeeded, rebooting"})

    def _web_summary(self, request: HttpRequest) -> HttpResponse:
        return _json(self._new_summary())

    def _web_stats(self, request: HttpRequest) -> HttpResponse:
        return _json(self._new_stats())

    def _web_pools(self, request: HttpRequest) -> HttpResponse:
        return _json(self._new_pools())

    _cgi = {
        "get_system_info": _system_info, "get_network_info": _network_info, "miner_type": _miner_type,
        "get_miner_conf": _miner_conf, "set_miner_conf": _set_miner_conf, "get_blink_status": _blink_status,
        "blink": _blink, "reboot": _reboot, "passwd": _passwd, "log": _log, "reset_conf": _reset_conf,
        "upgrade": _upgrade, "summary": _web_summary, "stats": _web_stats, "pools": _web_pools,
    }


def _multipart_file(request: HttpRequest) -> tuple[str, bytes] | None:
    """The first file part of a multipart/form-data body: (filename, content)."""
    content_type = request.headers.get("content-type", "")
    if "boundary=" not in content_type:
        return None
    boundary = content_type.split("boundary=", 1)[1].split(";", 1)[0].strip().strip('"').encode()
    for part in request.body.split(b"--" + boundary):
        head, sep, content = part.partition(b"\r\n\r\n")
        if not sep or b"filename=" not in head:
            continue
        filename = head.split(b"filename=", 1)[1].split(b"\r\n", 1)[0].strip().strip(b'"').decode("latin-1")
        return filename, content.removesuffix(b"\r\n")
    return None
