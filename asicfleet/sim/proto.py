"""Simulated Proto Rig running Proto OS: a JSON REST API under `/api/v1/` on port 80.

The page at `/` is the web dashboard, titled "Proto OS". `GET /api/v1/system` needs no login (clients
read the model there before they log in); `POST /api/v1/auth/login {"password"}` returns
`{"access_token"}`, and every other route wants `Authorization: Bearer <token>` (401 otherwise). The
reply shapes are those of the Proto API as asic-rs's captured replies show them: `system-info`,
`network-info`, `hardware-info` (per-slot hashboards, fans, PSUs), `mining-status`, `pools`,
`cooling-status`, `errors`, and `telemetry?level=miner,hashboard,psu` with `{value, unit}` figures.

Controls: `POST mining/start|stop`, `PUT mining/target {"power_target_watts"}` (hash rate and power
follow it), `PUT cooling` (Auto with a target temperature, or Manual with a speed), `POST pools` (the
whole list, by priority), `POST system/reboot`, `POST system/locate` (the LED lights for a while and
turns itself off; a request while it is lit is ignored), `PUT auth/password`, `GET system/logs`.

A Rig is a hot-swappable chassis, so the catalogue has no fixed shape for it; the simulator serves
one configuration (`RIG_SHAPE`): four hashboards of 120 ASICs, four fans, two PSUs.
"""

from __future__ import annotations

import random
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar
from urllib.parse import parse_qs

import orjson

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import MinerModel as CatalogueModel
from asicfleet.hardware import SimulableModel
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

OS_VERSION = "1.8.0"
# the simulated chassis: boards, ASICs per board, fans, nominal TH/s and W at the default power target
RIG_SHAPE: dict[str, Any] = {"boards": 4, "chips_per_board": 120, "fans": 4, "nominal_ths": 145.0,
                             "nominal_watts": 3400.0}
LOCATE_SECONDS = 60.0
MIN_TARGET, MAX_TARGET = 1000, 4000  # watts the mining target accepts
_PUBLIC = {("GET", "/"), ("GET", "/api/v1/system"), ("POST", "/api/v1/auth/login")}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Proto OS</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="icon" href="/favicon.svg">
<script type="module" crossorigin src="/assets/index-5b8e2c1f.js"></script>
</head>
<body><div id="root"></div></body>
</html>
"""


class ProtoSim(SimMiner):
    family: ClassVar[str] = "proto"
    make: ClassVar[str] = "Proto"
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "Proto Stock"
    models: ClassVar[tuple[str, ...]] = ("RIG",)
    services: ClassVar[tuple[Service, ...]] = (Service(80, "http"),)
    http_server_header: ClassVar[str | None] = None
    default_username: ClassVar[str] = ""  # the login takes a password only
    default_password: ClassVar[str] = ""  # no password until one is set (what clients assume)

    @classmethod
    def simulable(cls, model: CatalogueModel) -> SimulableModel:
        if model.make != cls.make or model.boards is not None:
            return super().simulable(model)
        return SimulableModel.of(model.model_copy(update=RIG_SHAPE))

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return OS_VERSION

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        tag = "".join(rng.choice("0123456789abcdef") for _ in range(8))
        s.serial = f"PROTO-{tag.upper()}"
        s.hostname = f"proto-miner-{tag[-4:]}"
        s.power_limit = 3400
        s.fan = FanConfig.auto(target_temp=50)
        s.extra.update(
            tokens=set(), ideal_ths=model.nominal_ths, ths_per_watt=s.hashrate_ths / s.wattage,
            pools=[{"name": f"Pool {i + 1}", "url": p.url, "user": p.username, "password": p.password,
                    "priority": i} for i, p in enumerate(s.pools[0].pools)],
            board_serials=[f"HB-{tag.upper()}-{i}" for i in range(model.boards)],
            psu_serials=[f"PSU-{tag.upper()}-{i}" for i in range(2)], locate_until=0.0,
            errors=[], log=["proto-os: boot complete", "mcdd: mining started"],
        )
        return miner

    @property
    def model_name(self) -> str:
        return "Rig"  # `system-info.model`

    # ----- HTTP -------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        method, path = request.method, request.path.rstrip("/") or "/"
        if (method, path) == ("GET", "/"):
            return HttpResponse.html(_PAGE)
        if not path.startswith("/api/v1/"):
            return HttpResponse.html(_PAGE) if method == "GET" else _error(404, "not found")
        if (method, path) not in _PUBLIC and not self._authorized(request):
            return _error(401, "unauthorized")
        routes: dict[tuple[str, str], Callable[[], HttpResponse]] = {
            ("POST", "/api/v1/auth/login"): lambda: self._login(request),
            ("PUT", "/api/v1/auth/password"): lambda: self._set_password(request),
            ("GET", "/api/v1/system"): lambda: _json({"system-info": self.system_info()}),
            ("GET", "/api/v1/network"): lambda: _json({"network-info": self.network_info()}),
            ("GET", "/api/v1/hardware"): lambda: _json({"hardware-info": self.hardware_info()}),
            ("GET", "/api/v1/mining"): lambda: _json({"mining-status": self.mining_status()}),
            ("GET", "/api/v1/mining/target"): lambda: _json({"power_target_watts": self.state.power_limit}),
            ("PUT", "/api/v1/mining/target"): lambda: self._set_target(request),
            ("POST", "/api/v1/mining/start"): lambda: self._set_mining(True),
            ("POST", "/api/v1/mining/stop"): lambda: self._set_mining(False),
            ("GET", "/api/v1/pools"): lambda: _json({"pools": self.pools()}),
            ("POST", "/api/v1/pools"): lambda: self._set_pools(request),
            ("GET", "/api/v1/cooling"): lambda: _json({"cooling-status": self.cooling_status()}),
            ("PUT", "/api/v1/cooling"): lambda: self._set_cooling(request),
            ("GET", "/api/v1/errors"): lambda: _json(self.state.extra["errors"]),
            ("GET", "/api/v1/telemetry"): lambda: _json(self.telemetry(request.query)),
            ("POST", "/api/v1/system/reboot"): self._reboot,
            ("POST", "/api/v1/system/locate"): self._locate,
            ("GET", "/api/v1/system/logs"): lambda: _json({"logs": {"content": list(self.state.extra["log"])}}),
        }
        handler = routes.get((method, path))
        if handler is not None:
            return handler()
        if any(route == path for _, route in routes):
            return _error(405, "method not allowed")
        return _error(404, "not found")

    def _authorized(self, request: HttpRequest) -> bool:
        header = request.headers.get("authorization", "")
        token = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return bool(token) and token in self.state.extra["tokens"] and not self.auth_refused()

    def _body(self, request: HttpRequest) -> Any:
        try:
            return orjson.loads(request.body) if request.body.strip() else None
        except orjson.JSONDecodeError:
            return None

    def _login(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str):
            return _error(400, "password is required")
        if self.auth_refused() or not secrets.compare_digest(password, self.state.password):
            return _error(401, "invalid password")
        token = secrets.token_urlsafe(32)
        self.state.extra["tokens"].add(token)
        return _json({"access_token": token, "token_type": "bearer", "expires_in": 3600})

    def _set_password(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        password = body.get("password") if isinstance(body, dict) else None
        if not isinstance(password, str) or len(password) < 8:
            return _error(400, "password must be at least 8 characters")
        self.state.password = password
        self.state.extra["tokens"] = set()  # every session ends with the old password
        return _json({"message": "password updated"})

    def _set_target(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        watts = body.get("power_target_watts") if isinstance(body, dict) else None
        if not isinstance(watts, int) or isinstance(watts, bool) or not MIN_TARGET <= watts <= MAX_TARGET:
            return _error(400, f"power_target_watts must be an integer in {MIN_TARGET}..{MAX_TARGET}")
        s = self.state
        s.power_limit = watts
        s.wattage = round(watts * 1.01, 1)  # the rig settles slightly above its target
        s.hashrate_ths = round(s.wattage * s.extra["ths_per_watt"], 4)
        return _json({"power_target_watts": watts})

    def _set_mining(self, on: bool) -> HttpResponse:
        self.state.mining = on
        self.state.extra["log"].append(f"mcdd: mining {'started' if on else 'stopped'} by API request")
        return _json({"status": "Mining" if on else "Stopped"})

    def _set_pools(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if not isinstance(body, list) or not body or not all(
                isinstance(p, dict) and isinstance(p.get("url"), str) and isinstance(p.get("username"), str)
                for p in body):
            return _error(400, "expected a non-empty list of pools with url and username")
        try:
            parsed = [Pool(url=p["url"], username=p["username"], password=str(p.get("password") or ""))
                      for p in body]
        except ValueError as exc:
            return _error(400, f"invalid pool url: {exc}")
        ordered = sorted(zip(body, parsed, strict=True), key=lambda pair: int(pair[0].get("priority", 0)))
        self.state.extra["pools"] = [{"name": str(p.get("name") or f"Pool {i + 1}"), "url": pool.url,
                                      "user": pool.username, "password": pool.password, "priority": i}
                                     for i, (p, pool) in enumerate(ordered)]
        self.state.pools = [PoolGroup(name="default", quota=1, pools=[pool for _, pool in ordered])]
        return _json({"pools": self.pools()})

    def _set_cooling(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        mode = body.get("mode") if isinstance(body, dict) else None
        if mode == "Manual":
            speed = body.get("speed_percentage")
            if not isinstance(speed, int) or isinstance(speed, bool) or not 0 <= speed <= 100:
                return _error(400, "speed_percentage must be 0..100")
            self.state.fan = FanConfig.manual(speed)
        elif mode == "Auto":
            target = body.get("target_temperature_c")
            if not isinstance(target, int | float) or isinstance(target, bool) or not 30 <= target <= 80:
                return _error(400, "target_temperature_c must be 30..80")
            self.state.fan = FanConfig.auto(target_temp=float(target))
        else:
            return _error(400, "mode must be Auto or Manual")
        return _json({"cooling-status": self.cooling_status()})

    def _reboot(self) -> HttpResponse:
        self.state.extra["tokens"] = set()
        self.state.mining = True
        self.restart()
        return _json({"message": "rebooting"})

    def _locate(self) -> HttpResponse:
        now = time.time()
        if now >= self.state.extra["locate_until"]:  # a request while lit is ignored
            self.state.extra["locate_until"] = now + LOCATE_SECONDS
        self.state.fault_light = True
        return _json({"message": "locating", "duration_s": int(LOCATE_SECONDS)})

    # ----- replies ------------------------------------------------------------------------------
    def system_info(self) -> dict[str, Any]:
        s = self.state
        component = {"version": s.firmware_version}
        return {
            "board": "C3", "cb_sn": s.serial, "hashboard_firmware": {"name": "hashboard-fw", **component},
            "manufacturer": "Proto", "mining_driver_sw": {"name": "mcdd", **component}, "model": "Rig",
            "os": {"git_hash": "5c1e9a7d3b2f", "hostname": s.hostname, "name": "ProtoOS", "variant": "release",
                   "version": s.firmware_version},
            "pool_interface_sw": {"name": "stratum-client", **component}, "product_name": "Proto Rig",
            "soc": "STM32MP157F", "sw_update_status": {"current_version": s.firmware_version, "status": "current"},
            "uptime_seconds": s.uptime, "web_dashboard": {"name": "miner-web", **component},
            "web_server": {"name": "miner-api-server", **component},
        }

    def network_info(self) -> dict[str, Any]:
        s = self.state
        return {"dhcp": True, "gateway": s.ip.rsplit(".", 1)[0] + ".1", "hostname": s.hostname, "ip_address": s.ip,
                "mac": s.mac, "netmask": "255.255.255.0"}

    def hardware_info(self) -> dict[str, Any]:
        s, extra = self.state, self.state.extra
        return {
            "cb-info": {"board_id": "CB-001", "machine_name": "Rig", "serial_number": s.serial},
            "fans-info": [{"max_rpm": 6000, "min_rpm": 1000, "name": f"Fan {i + 1}", "slot": i + 1}
                          for i in range(len(s.fan_rpms))],
            "hashboards-info": [{"board": "B4", "chip_id": "BZM", "hb_sn": sn, "mining_asic": "BZM",
                                 "mining_asic_count": s.model.chips_per_board, "port": i, "slot": i + 1}
                                for i, sn in enumerate(extra["board_serials"])],
            "psus-info": [{"firmware": {"app_version": "1.2.0", "bootloader_version": "1.0.0"}, "hw_revision": "v1.0",
                           "manufacturer": "Proto", "model": "PSU-3600W", "psu_sn": sn, "slot": i + 1}
                          for i, sn in enumerate(extra["psu_serials"])],
        }

    def _watts(self) -> float:
        return self.state.wattage if self.state.mining else 65.0  # the control board and fans stay up

    def mining_status(self) -> dict[str, Any]:
        s = self.state
        ghs = s.live_hashrate_ths * 1000
        watts = self._watts()
        efficiency = watts / s.live_hashrate_ths if s.mining and s.live_hashrate_ths else 0.0
        temps = s.board_temps
        return {
            "average_asic_temp_c": max(temps) + 12.0, "average_hashrate_ghs": ghs,
            "average_hb_efficiency_jth": efficiency, "average_hb_temp_c": sum(temps) / len(temps),
            "hashboards_installed": s.model.boards, "hashboards_mining": s.model.boards if s.mining else 0,
            "hashrate_ghs": ghs, "hw_errors": 0, "ideal_hashrate_ghs": s.extra["ideal_ths"] * 1000,
            "mining_uptime_s": s.uptime if s.mining else 0, "power_efficiency_jth": efficiency,
            "power_target_watts": s.power_limit, "power_usage_watts": watts, "reboot_uptime_s": s.uptime,
            "status": "Mining" if s.mining else "Stopped",
        }

    def pools(self) -> list[dict[str, Any]]:
        s = self.state
        out = []
        for pool in self.state.extra["pools"]:
            active = pool["priority"] == 0 and s.mining
            out.append({"accepted": s.accepted if active else 0, "connection_status": "Active" if active else "Idle",
                        "difficulty": "1048576", "enabled": True, "id": pool["priority"], "name": pool["name"],
                        "priority": pool["priority"], "rejected": s.rejected if active else 0,
                        "status": "Active" if active else "Standby", "url": pool["url"], "user": pool["user"]})
        return out

    def cooling_status(self) -> dict[str, Any]:
        s = self.state
        if s.fan.mode == "manual":
            percent, mode, target = s.fan.fan_speed or 0, "Manual", None
        else:
            percent, mode, target = 60, "Auto", s.fan.target_temp
        rpms = [int(6000 * percent / 100) + 40 * i for i in range(len(s.fan_rpms))]
        s.fan_rpms = rpms
        status: dict[str, Any] = {"fan_mode": mode, "fans": [
            {"rpm": rpm, "slot": i + 1, "speed_percentage": percent} for i, rpm in enumerate(rpms)],
            "speed_percentage": percent}
        if target is not None:
            status["target_temperature_c"] = target
        return status

    def telemetry(self, query: str) -> dict[str, Any]:
        s, extra = self.state, self.state.extra
        asked = parse_qs(query).get("level", ["miner"])
        levels = {part.strip() for value in asked for part in value.split(",")}
        watts = self._watts()
        per_board_ths = s.board_hashrates()
        out: dict[str, Any] = {}
        if "hashboard" in levels:
            out["hashboards"] = [{
                "current": {"unit": "A", "value": watts / s.model.boards / 14.5},
                "efficiency": {"unit": "J/TH", "value": (watts / s.model.boards) / ths if ths else 0.0},
                "hashrate": {"unit": "TH/s", "value": ths}, "index": i,
                "power": {"unit": "W", "value": watts / s.model.boards}, "serial_number": extra["board_serials"][i],
                "temperature": {"average": s.board_temps[i], "inlet": s.board_temps[i] - 7.0,
                                "outlet": s.board_temps[i] + 7.5, "unit": "°C"},
                "voltage": {"unit": "V", "value": 14.5}} for i, ths in enumerate(per_board_ths)]
        if "miner" in levels:
            out["miner"] = {"efficiency": {"unit": "J/TH", "value": watts / s.live_hashrate_ths
                                           if s.live_hashrate_ths else 0.0},
                            "hashrate": {"unit": "TH/s", "value": s.live_hashrate_ths},
                            "power": {"unit": "W", "value": watts},
                            "temperature": {"unit": "°C", "value": max(s.board_temps)}}
        if "psu" in levels:
            out["psus"] = [{"current": {"input": watts / 2 / 240, "output": watts / 2 / 12.5, "unit": "A"},
                            "index": i, "power": {"input": watts / 2 * 1.06, "output": watts / 2, "unit": "W"},
                            "serial_number": sn, "temperature": {"ambient": 30.0, "average": 38.0, "unit": "°C"}}
                           for i, sn in enumerate(extra["psu_serials"])]
        return out


def _json(value: Any) -> HttpResponse:
    return HttpResponse.of_json(value)


def _error(status: int, message: str) -> HttpResponse:
    return HttpResponse.of_json({"error": message}, status=status)


__all__ = ["OS_VERSION", "RIG_SHAPE", "ProtoSim"]
