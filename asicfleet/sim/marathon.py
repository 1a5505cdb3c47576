"""Simulated Marathon MaraFW (KaonSu) on Antminer hardware (S19 / S19 Pro / S19j Pro / S19 XP / S21 / T21).

Port 80: every path is behind HTTP digest auth in the stock Antminer realm ("antMiner Configuration",
root/root), `/` included; the 401 also carries an `Algorithm: MD5` header, the signal asic-rs reads. The
JSON API lives under `/kaonsu/v1/`: GET `brief`, `overview`, `network_config`, `hashboards`, `details`,
`fans`, `pools`, `event_chart`, `locate_miner`, `miner_config`, `log?type=miner_config_history`; POST
`miner_config` (the whole configuration), `locate_miner` (`{"blinking": bool}`) and `maintenance`
(`{"type": "reboot" | "reload" | "reset"}`). A path outside the API answers the stock 404 page.

Port 4028: a CGMiner-style RPC whose STATUS names `KAONSU`: `version` (with `VERSION[0].Model`), `summary`,
`pools`, `devs`; any other command answers the `summary` reply, as pyasic describes MaraFW's RPC.

No MaraFW capture is published: paths, field names and units are restated from the two clients (pyasic
0.79 `web/marathon.py` and `miners/backends/marathon.py`, asic-rs `asic-rs-firmwares/marathon`), which agree
on them except one unit: `brief.hashrate_realtime` is TH/s here (pyasic, and a third-party KaonSu
contract), where asic-rs reads GH/s. The version strings and the RPC's exact shapes are our own.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, digest_ok
from asicfleet.sim.antminer import BUILDS, REALM

MARAFW_VERSION = "1.5.2"
API_VERSION = "3.7"
MAX_FAN_RPM = 6000
SLEEP_WATTS = 12  # control board only: hashboards off, fans idle
MODELS = tuple(BUILDS)  # the stock builds' models, each of which pyasic and asic-rs know under MaraFW
_404 = (b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>404 Not Found</title></head>"
        b"<body><h1>404 Not Found</h1></body></html>\n")
_401 = (b"<?xml version=\"1.0\" encoding=\"iso-8859-1\"?>\n<html><head><title>401 Unauthorized</title></head>"
        b"<body><h1>401 Unauthorized</h1></body></html>\n")


class MarathonSim(SimMiner):
    family = "marathon"
    make = "AntMiner"
    firmware = "MaraFW"
    models = MODELS
    services = (Service(4028, "rpc"), Service(80, "http"))

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in MODELS

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.firmware_version = MARAFW_VERSION
        s.extra.update(
            base_ths=s.hashrate_ths,
            base_watts=s.wattage,
            auto_fan_rpms=list(s.fan_rpms),
            board_serials=["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(17))
                           for _ in range(model.boards)],
            control_board="amlogic_a113d" if "S21" in model.name or "T21" in model.name else "xilinx_7007",
            frequency=500,
            voltage=13.4,
            config=cls._factory_config(s.pools, model.nominal_watts),
            history=[],  # miner_config_history entries, oldest first
            event_flags=[],  # extra {level, message, timestamp} flags, for tests
        )
        assert isinstance(miner, MarathonSim)
        miner._apply_config()
        return miner

    @staticmethod
    def _factory_config(groups: list[PoolGroup], nominal_watts: float) -> dict[str, Any]:
        pools = [{"url": p.url, "user": p.username, "pass": p.password, "gid": gid}
                 for gid, g in enumerate(groups) for p in g.pools]
        return {
            "pools": pools,
            "pool-group": [{"gid": gid, "alias": g.name, "percent": 100 // max(1, len(groups))}
                           for gid, g in enumerate(groups)],
            "mode": {"work-mode-selector": "Stock",
                     "concorde": {"mode-select": "PowerTarget", "power-target": int(nominal_watts),
                                  "hash-target": 0},
                     "fixed": {"frequency": "500", "voltage": 13.4}},
            "general-config": {"environment-profile": "AirCooling"},
            "advance-config": {"override-fan-control": False, "fan-fixed-percent": 0},
        }

    # ----- the configuration drives the state ----------------------------------------------------
    @property
    def config(self) -> dict[str, Any]:
        config: dict[str, Any] = self.state.extra["config"]
        return config

    @property
    def work_mode(self) -> str:
        return str(self.config["mode"]["work-mode-selector"])

    def _apply_config(self) -> None:
        """Pools, fans and the work mode as the configuration says: Sleep stops hashing, a power target
        below nominal scales the hash rate with the power, no pool means no work."""
        s, config = self.state, self.config
        by_gid: dict[int, list[Pool]] = {}
        for pool in config.get("pools") or []:
            if isinstance(pool, dict) and pool.get("url"):
                by_gid.setdefault(int(pool.get("gid") or 0), []).append(Pool(
                    url=str(pool["url"]), username=str(pool.get("user") or "x"), password=str(pool.get("pass", ""))))
        names = {int(g.get("gid", 0)): g for g in config.get("pool-group") or [] if isinstance(g, dict)}
        s.pools = [PoolGroup(name=str(names.get(gid, {}).get("alias") or "default"),
                             quota=int(names.get(gid, {}).get("percent") or 1), pools=pools[:3])
                   for gid, pools in sorted(by_gid.items())]
        advance = config.get("advance-config") or {}
        if advance.get("override-fan-control"):
            speed = max(0, min(100, int(advance.get("fan-fixed-percent") or 0)))
            s.fan = FanConfig.manual(speed)
            s.fan_rpms = [round(MAX_FAN_RPM * speed / 100 / 10) * 10 for _ in s.fan_rpms]
        else:
            s.fan = FanConfig.auto()
            s.fan_rpms = list(s.extra["auto_fan_rpms"])
        mode = config["mode"]
        concorde = mode.get("concorde") or {}
        scale = 1.0
        s.power_limit = float(s.model.nominal_watts)
        if mode["work-mode-selector"] == "Auto" and concorde.get("mode-select") == "PowerTarget":
            s.power_limit = float(concorde.get("power-target") or s.model.nominal_watts)
            scale = min(1.0, s.power_limit / s.extra["base_watts"])
        elif mode["work-mode-selector"] == "Auto" and concorde.get("mode-select") == "Hashrate":
            target = float(concorde.get("hash-target") or 0)
            scale = min(1.0, target / s.extra["base_ths"]) if target > 0 else 1.0
        s.hashrate_ths = round(s.extra["base_ths"] * scale, 3)
        s.wattage = round(s.extra["base_watts"] * scale, 1)
        s.mining = mode["work-mode-selector"] != "Sleep" and bool(s.pools)

    def _record_history(self, before: dict[str, Any], after: dict[str, Any]) -> None:
        """One history entry per write: its changes as `{type, path, from, to}` (the work mode is what clients read)."""
        old, new = before["mode"]["work-mode-selector"], after["mode"]["work-mode-selector"]
        changes = []
        if old != new:
            changes.append({"type": "update", "path": ["Mode", "WorkModeSelector"], "from": old, "to": new})
        if changes:
            self.state.extra["history"].append({time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()): changes})

    # ----- figures -----------------------------------------------------------------------------
    def _board_rates_ghs(self) -> list[float]:
        return [round(t * 1000, 2) for t in self.state.board_hashrates()]

    def _pcb(self, board: int) -> list[int]:
        mean = round(self.state.board_temps[board]) if self.state.mining else 30
        return [mean - 7, mean - 5, mean + 5, mean + 7]  # two on the intake side, two on the outlet side

    def _chip_temps(self, board: int) -> list[int]:
        return [t + 8 for t in self._pcb(board)]

    # ----- RPC ----------------------------------------------------------------------------------
    def _status(self, code: int, message: str) -> list[dict[str, Any]]:
        return [{"STATUS": "S", "When": int(time.time()), "Code": code, "Msg": message,
                 "Description": f"KAONSU {MARAFW_VERSION}"}]

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        s = self.state
        if command == "version":
            return {"STATUS": self._status(22, "KAONSU versions"), "VERSION": [{
                "KAONSU": MARAFW_VERSION, "API": API_VERSION, "Model": self.model_name,
                "CompileTime": "Wed Apr 23 09:12:41 UTC 2025"}], "id": 1}
        if command == "pools":
            rows = [{"POOL": i, "URL": p.url, "User": p.username, "Status": "Alive", "Priority": i,
                     "Accepted": s.accepted if i == 0 else 0, "Rejected": s.rejected if i == 0 else 0,
                     "Stratum Active": i == 0 and s.mining} for i, p in enumerate(self._pools())]
            return {"STATUS": self._status(7, f"{len(rows)} Pool(s)"), "POOLS": rows, "id": 1}
        if command == "devs":
            rows = [{"ASC": i, "Name": "BTM", "ID": i, "Enabled": "Y", "Status": "Alive",
                     "MHS 5s": rate * 1000, "MHS av": rate * 1000}
                    for i, rate in enumerate(self._board_rates_ghs())]
            return {"STATUS": self._status(9, f"{len(rows)} ASC(s)"), "DEVS": rows, "id": 1}
        # summary, and what pyasic says MaraFW answers for every command it does not know
        total = round(sum(self._board_rates_ghs()), 2)
        return {"STATUS": self._status(11, "Summary"), "SUMMARY": [{
            "Elapsed": s.uptime, "MHS 5s": total * 1000, "MHS av": total * 1000, "Accepted": s.accepted,
            "Rejected": s.rejected, "Hardware Errors": 0}], "id": 1}

    def _pools(self) -> list[Pool]:
        return [p for g in self.state.pools for p in g.pools]

    # ----- web ----------------------------------------------------------------------------------
    def _challenge(self) -> str:
        return (f'Digest realm="{REALM}", charset="UTF-8", algorithm=MD5, '
                f'nonce="{int(time.time()):08x}:{secrets.token_hex(16)}", qop="auth"')

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if self.auth_refused() or not digest_ok(request, REALM, self.state.username, self.state.password):
            return HttpResponse(status=401, body=_401, content_type="text/html",
                                headers={"WWW-Authenticate": self._challenge(), "Algorithm": "MD5"})
        self.count(f"auth:{request.method} {request.path}")
        if request.path in ("/", "/index.html"):
            return HttpResponse.html("<!DOCTYPE html><html><head><title>MaraFW</title></head>"
                                     '<body><div id="root"></div></body></html>')
        if not request.path.startswith("/kaonsu/v1/"):
            return HttpResponse(status=404, body=_404, content_type="text/html")
        endpoint = request.path.removeprefix("/kaonsu/v1/")
        if request.method == "POST":
            writer = {"miner_config": self._post_config, "locate_miner": self._post_locate,
                      "maintenance": self._post_maintenance}.get(endpoint)
            if writer is None:
                return HttpResponse.of_json({"error": True, "msg": "not found"}, status=404)
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict):
                return HttpResponse.of_json({"error": True, "msg": "invalid JSON body"}, status=400)
            return writer(body)
        if endpoint == "log" and "type=miner_config_history" in request.query:
            return HttpResponse.of_json(self.state.extra["history"])
        reader = {"brief": self._brief, "overview": self._overview, "network_config": self._network_config,
                  "hashboards": self._hashboards, "details": self._details, "fans": self._fans,
                  "pools": self._web_pools, "event_chart": self._event_chart, "locate_miner": self._locate,
                  "miner_config": self._miner_config}.get(endpoint)
        if reader is None:
            return HttpResponse.of_json({"error": True, "msg": "not found"}, status=404)
        return HttpResponse.of_json(reader())

    def _brief(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        status = "Mining" if s.mining else ("Sleeping" if self.work_mode == "Sleep" else "Stopped")
        return {
            "status": status, "elapsed": s.uptime,
            "hashrate_realtime": round(s.live_hashrate_ths, 3),  # TH/s
            "hashrate_average": round(s.live_hashrate_ths, 3),  # TH/s
            "hashrate_ideal": float(model.nominal_ths * 1000),  # GH/s
            "power_consumption_estimated": round(s.wattage, 1) if s.mining else SLEEP_WATTS,
            "power_efficiency": round(s.wattage / s.hashrate_ths, 2) if s.mining and s.hashrate_ths else 0,
            "temperature_max": max(max(self._chip_temps(i)) for i in range(model.boards)),
            "fan_speed": max(s.fan_rpms, default=0), "work_mode": self.work_mode,
        }

    def _overview(self) -> dict[str, Any]:
        s = self.state
        return {"model": self.model_name, "mac": s.mac.lower(), "version_firmware": s.firmware_version,
                "version_api": API_VERSION, "control_board": s.extra["control_board"]}

    def _network_config(self) -> dict[str, Any]:
        s = self.state
        return {"hostname": s.hostname, "dhcp": True, "ip": s.ip, "netmask": "255.255.255.0"}

    def _board_rows(self) -> list[dict[str, Any]]:
        s, model = self.state, self.state.model
        rates = self._board_rates_ghs()
        frequency = s.extra["frequency"] if s.mining else 0
        return [{
            "index": i, "serial_number": s.extra["board_serials"][i], "asic_num": model.chips_per_board,
            "hashrate_average": rates[i], "hashrate_ideal": round(model.nominal_ths * 1000 / model.boards, 2),
            "frequency_avg": frequency, "voltage": s.extra["voltage"], "temperature_pcb": self._pcb(i),
            "temperature_chip": self._chip_temps(i), "temperature_raw": self._chip_temps(i),
        } for i in range(model.boards)]

    def _hashboards(self) -> dict[str, Any]:
        return {"hashboards": self._board_rows()}

    def _details(self) -> dict[str, Any]:
        """Per board, with per-chip figures (what asic-rs reads the boards from)."""
        s = self.state
        rows = []
        for row in self._board_rows():
            chips = s.model.chips_per_board
            per_chip = round(row["hashrate_average"] / chips, 4)
            rows.append({**{k: row[k] for k in ("index", "serial_number", "asic_num", "hashrate_ideal",
                                                "frequency_avg", "voltage")},
                         "hashrate_avg": row["hashrate_average"],
                         "asic_infos": [{"index": c, "hashrate_avg": per_chip, "frequency": row["frequency_avg"],
                                         "voltage": round(row["voltage"] / chips * 10, 3)} for c in range(chips)]})
        return {"hashboard_infos": rows}

    def _fans(self) -> dict[str, Any]:
        s = self.state
        percent = s.fan.fan_speed if s.fan.mode == "manual" and s.fan.fan_speed is not None else None
        return {"fans": [{"name": f"fan{i + 1}", "current_speed": rpm, "max_speed": MAX_FAN_RPM,
                          "speed_percent": percent if percent is not None else round(rpm * 100 / MAX_FAN_RPM)}
                         for i, rpm in enumerate(s.fan_rpms)]}

    def _web_pools(self) -> list[dict[str, Any]]:
        s = self.state
        return [{"index": i, "url": p.url, "user": p.username, "status": "Alive", "priority": i,
                 "accepted": s.accepted if i == 0 else 0, "rejected": s.rejected if i == 0 else 0,
                 "stale": 0, "discarded": 0, "difficulty": "524K" if i == 0 else ""}
                for i, p in enumerate(self._pools())]

    def _event_chart(self) -> dict[str, Any]:
        s = self.state
        flags: list[dict[str, Any]] = list(s.extra["event_flags"])
        if self.work_mode == "Sleep":
            flags.append({"level": "info", "message": "Miner is sleeping", "timestamp": int(time.time())})
        flags += [{"level": "error", "message": text, "code": code, "timestamp": int(s.boot_time)}
                  for code, text in s.messages]
        return {"event_flags": flags}

    def _miner_config(self) -> dict[str, Any]:
        return self.config

    def _locate(self) -> dict[str, Any]:
        return {"blinking": self.state.fault_light}

    # ----- writes -------------------------------------------------------------------------------
    def _post_locate(self, body: dict[str, Any]) -> HttpResponse:
        if not isinstance(body.get("blinking"), bool):
            return HttpResponse.of_json({"error": True, "msg": "blinking must be true or false"}, status=400)
        self.state.fault_light = body["blinking"]
        return HttpResponse.of_json(self._locate())

    def _post_config(self, body: dict[str, Any]) -> HttpResponse:
        mode = body.get("mode", self.config["mode"])
        if not isinstance(mode, dict) or mode.get("work-mode-selector") not in ("Auto", "Fixed", "Stock", "Sleep"):
            return HttpResponse.of_json({"error": True, "msg": "invalid work-mode-selector"})
        pools = body.get("pools", self.config["pools"])
        if not isinstance(pools, list) or len([p for p in pools if isinstance(p, dict) and p.get("url")]) > 9:
            return HttpResponse.of_json({"error": True, "msg": "invalid pools"})
        try:
            for pool in pools:
                if isinstance(pool, dict) and pool.get("url"):
                    Pool(url=str(pool["url"]), username=str(pool.get("user") or "x"))
        except ValueError:
            return HttpResponse.of_json({"error": True, "msg": "invalid pool url"})
        before = self.config
        after = {**before, **body}  # a partial body changes what it names, the rest stays
        self.state.extra["config"] = after
        self._record_history(before, after)
        self._apply_config()
        return HttpResponse.of_json({"error": False, "msg": "ok"})

    def _post_maintenance(self, body: dict[str, Any]) -> HttpResponse:
        kind = body.get("type")
        if kind == "reboot":
            self.restart()
        elif kind == "reload":
            self.state.boot_time = time.time()  # the mining process restarts; the system stays up
        elif kind == "reset":
            self.state.extra["config"] = self._factory_config([], self.state.model.nominal_watts)
            self._apply_config()
        else:
            return HttpResponse.of_json({"error": True, "msg": f"unknown maintenance type {kind!r}"}, status=400)
        return HttpResponse.of_json({"error": False, "msg": "ok"})
