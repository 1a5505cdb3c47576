"""Simulated Whatsminers (MicroBT stock firmware, BTMiner), answering as the real firmware does.

Each simulated model runs the firmware generation it ships with: the M30S+ and M50S answer API 2.0.5
on 4028 only (firmware before 2024-11); the M60S runs 2025 firmware with API v3 on 4433 and still the
4028 API beside it. The web port 80 redirects (307) to https, whose page sends browsers to LuCI.

Reads on 4028 are plain JSON: CGMiner-style (`summary`, `devs`, `edevs`, `pools`, `devdetails`,
joinable with `+`) and btminer's flat replies (`get_version`, `get_miner_info`, `get_psu`,
`get_error_code`, `status`, `get_token`). Writes arrive as `{"enc": 1, "data": ...}` (AES-256-ECB,
key derived from the admin password and a token from `get_token`) and are answered encrypted the
same way. API v3 writes carry a token signed with the `super` account's password and the salt.
"""

from __future__ import annotations

import asyncio
import random
import re
import string
import struct
import time
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, ClassVar, Literal

import orjson
from pydantic import ValidationError

from asicfleet.backends.whatsminer import (
    V3_AUTH_CODE,
    V3_PORT,
    aes_decrypt,
    aes_encrypt,
    aes_key,
    crypt_hash,
    v2_token,
    v3_token,
)
from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, MinerState, Service, SimMiner

_TOKEN_LIFETIME = 1800.0  # seconds a get_token answer stays usable (clients cache it up to 30 min)
_MAX_TOKENS = 64
_BTMINER_START_DELAY = 20  # seconds from boot until btminer hashes: 'Elapsed' trails 'Uptime' by this
_CGMINER = "cgminer 4.9.2"  # btminer reports itself so in the CGMiner-style replies


@dataclass(frozen=True)
class _Profile:
    """What a model's firmware reports about itself."""

    reported_type: str  # devdetails Model / get.device.info miner.type
    api: Literal["v2", "v3"]
    firmware_version: str
    platform: str
    control_board: str
    hash_board: str
    psu_model: str
    psu_version: str
    chip_frequency: int


_PROFILES: dict[str, _Profile] = {
    "M30S+": _Profile("M30S+_VE40", "v2", "20230803.11.REL", "H6", "CB4V10", "VE40", "P221", "221027.221027", 560),
    "M50S": _Profile("M50S_VJ40", "v2", "20240624.18.REL", "H616", "CB6V10", "VJ40", "P222B", "230208.220429", 600),
    "M60S": _Profile("M60S_VK40", "v3", "20251209.16.Rel2", "H616", "CB6V10", "K40", "P221B", "230224.220429", 625),
}


def _profile(model: MinerModel) -> _Profile:
    known = _PROFILES.get(model.name)
    if known is not None:
        return known
    chip_bin = re.fullmatch(r"(M\d{2}[A-Z]?\+{0,2})(V[A-Z]{0,2}\d+)", model.name)  # a catalogued chip bin
    family, board = (chip_bin[1], chip_bin[2]) if chip_bin else (model.name, "V10")
    return _Profile(f"{family}_{board}", "v2", "20240624.18.REL", "H616", "CB6V10", board, "P222B",
                    "230208.220429", 600)


def _now() -> int:
    return int(time.time())


def _flat(code: int, msg: Any, status: str = "S", description: str = "") -> dict[str, Any]:
    """btminer's own reply form (not CGMiner's STATUS list)."""
    return {"STATUS": status, "When": _now(), "Code": code, "Msg": msg, "Description": description}


def _cg_status(code: int, message: str) -> list[dict[str, Any]]:
    return [{"STATUS": "S", "When": _now(), "Code": code, "Msg": message, "Description": _CGMINER}]


def _v3_reply(command: str, msg: Any, code: int = 0) -> dict[str, Any]:
    return {"code": code, "when": _now(), "msg": msg, "desc": command}


def _clock(stamp: float) -> str:
    return datetime.fromtimestamp(stamp, UTC).strftime("%Y-%m-%d %H:%M:%S")


class WhatsMinerSim(SimMiner):
    """A Whatsminer with API 2.0.5 on 4028 (the M60S is built as `WhatsMinerV3Sim`)."""

    family = "whatsminer"
    make = "WhatsMiner"
    firmware = "Stock"
    models = ("M30S+", "M50S", "M60S")
    services: ClassVar[tuple[Service, ...]] = (Service(80, "http"), Service(443, "https"), Service(4028, "rpc"))
    default_username = "admin"
    default_password = "admin"  # the API (write) password; v3 writes use the 'super' account
    api_version = "2.0.5"
    ip_report_port: ClassVar[int | None] = 8888

    @classmethod
    def ip_report_payload(cls, ip: str, mac: str) -> bytes:
        """`IP:<ip>MAC:<mac>` and one byte after it (pyasic drops the last character; we send a NUL)."""
        return f"IP:{ip}MAC:{mac.upper()}\x00".encode("ascii")

    def __init__(self, state: MinerState, rng: random.Random) -> None:
        super().__init__(state, rng)
        self.profile = _profile(state.model)
        self._v2_tokens: dict[str, float] = {}  # host_sign -> when issued
        self._answered: weakref.WeakSet[asyncio.StreamReader] = weakref.WeakSet()
        if "salt" not in state.extra:
            self._factory_settings()

    def _factory_settings(self) -> None:
        """The settings and fixed figures a miner leaves the factory with (seeded)."""
        state, rng = self.state, self.rng
        letters = string.ascii_letters + string.digits
        state.extra.update({
            "power_mode": "Normal",
            "salt": "".join(rng.choice(letters) for _ in range(8)),
            "v3_salt": "".join(rng.choice(letters) for _ in range(8)),
            "super_password": "super",
            "psu_fan_rpm": rng.randrange(5200, 7200, 40),
            "psu_serial": "".join(rng.choice("0123456789ABCDEF") for _ in range(15)),
            "env_temp": round(rng.uniform(22.0, 32.0), 1),
            "btminer_started": 0.0,
            "natural": (state.hashrate_ths, state.wattage),
            "pcb_serials": [f"BHM{rng.randrange(10**15, 10**16)}K{i}" for i in range(state.model.boards)],
            "factory_pools": list(state.pools),
            "settings": {},
        })

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        """A miner of `model` running the firmware generation that model ships with."""
        base = super().build(ip, model, rng)
        profile = _profile(model)
        target = WhatsMinerV3Sim if profile.api == "v3" else WhatsMinerSim
        miner = base if type(base) is target else target(base.state, base.rng)
        miner.state.firmware_version = profile.firmware_version
        return miner

    # ----- figures shared by every reply ------------------------------------------------------
    @property
    def elapsed(self) -> int:
        """Seconds btminer has been hashing: since boot (less its start-up) or its last restart."""
        started = max(self.state.boot_time + _BTMINER_START_DELAY, float(self.state.extra["btminer_started"]))
        return max(0, int(time.time() - started))

    @property
    def live_wattage(self) -> float:
        return self.state.wattage if self.state.mining else 12.0  # control board and fans only

    def _board_mhs(self) -> list[float]:
        return [round(ths * 1e6, 2) for ths in self.state.board_hashrates()]

    def _chip_temps(self, board: int) -> tuple[float, float, float]:
        base = self.state.board_temps[board] if board < len(self.state.board_temps) else 65.0
        return round(base + 3.0, 2), round(base + 16.0, 2), round(base + 10.5, 2)  # min, max, avg

    def _fan(self, index: int) -> int:
        return self.state.fan_rpms[index] if index < len(self.state.fan_rpms) else 0

    def _pools(self) -> list[Pool]:
        return list(self.state.pools[0].pools) if self.state.pools else []

    def _power_mode(self) -> str:
        return str(self.state.extra["power_mode"])

    def _apply_power(self) -> None:
        """Hash rate and draw follow the power mode and limit (linear around the natural figures)."""
        natural_ths, natural_watts = self.state.extra["natural"]
        factor = {"Low": 0.85, "High": 1.08}.get(self._power_mode(), 1.0)
        watts = min(natural_watts * factor, self.state.power_limit)
        self.state.wattage = round(watts, 1)
        self.state.hashrate_ths = round(natural_ths * watts / natural_watts, 3)

    # ----- 4028: reads ------------------------------------------------------------------------
    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        reads = {
            "summary": self._summary, "devs": self._devs, "edevs": self._devs, "pools": self._pools_reply,
            "devdetails": self._devdetails, "get_version": self._get_version, "get_miner_info": self._miner_info,
            "get_psu": self._psu, "get_error_code": self._error_codes, "status": self._status,
            "get_token": self._get_token, "open_write_api": self._open_write_api,
        }
        handler = reads.get(command)
        if handler is not None:
            return handler()
        if command in _V2_WRITES:
            return _flat(45, "permission denied", "E")  # a write sent in the clear
        return _flat(14, "invalid cmd", "E")

    def _summary(self) -> dict[str, Any]:
        s = self.state
        mhs = round(s.live_hashrate_ths * 1e6, 2)
        temps = [self._chip_temps(i) for i in range(s.model.boards)]
        return {"STATUS": _cg_status(11, "Summary"), "SUMMARY": [{
            "Elapsed": self.elapsed, "MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs,
            "HS RT": mhs, "Accepted": s.accepted, "Rejected": s.rejected,
            "Total MH": round(mhs * self.elapsed, 1), "Temperature": max(s.board_temps, default=0.0),
            "freq_avg": self.profile.chip_frequency, "Fan Speed In": self._fan(0), "Fan Speed Out": self._fan(1),
            "Power": round(self.live_wattage), "Power_RT": round(self.live_wattage),
            "Power Rate": round(self.live_wattage / s.live_hashrate_ths, 2) if s.live_hashrate_ths else 0.0,
            "Pool Rejected%": round(100.0 * s.rejected / max(1, s.accepted + s.rejected), 4),
            "Pool Stale%": 0.0, "Uptime": s.uptime, "Security Mode": 0, "Hash Stable": s.mining,
            "Hash Stable Cost Seconds": 1538, "Hash Deviation%": 0.1061,
            "Target Freq": self.profile.chip_frequency, "Target MHS": int(s.model.nominal_ths * 1e6 * 0.98),
            "Env Temp": s.extra["env_temp"], "Power Mode": self._power_mode(),
            "Factory GHS": int(s.model.nominal_ths * 1000), "Power Limit": int(s.power_limit),
            "Chip Temp Min": min(t[0] for t in temps), "Chip Temp Max": max(t[1] for t in temps),
            "Chip Temp Avg": round(sum(t[2] for t in temps) / len(temps), 2), "Debug": "",
            "Btminer Fast Boot": "disable", "MAC": s.mac, "Firmware Version": f"'{s.firmware_version}'",
            "CB Platform": f"ALLWINNER_{self.profile.platform}", "CB Version": "V10",
            "Power Fanspeed": s.extra["psu_fan_rpm"], "Voltage": 1200, "Liquid Cooling": False,
        }], "id": 1}

    def _devs(self) -> dict[str, Any]:
        s = self.state
        per_board_ghs = int(s.model.nominal_ths * 1000 / max(1, s.model.boards))
        devs = []
        for index, mhs in enumerate(self._board_mhs()):
            low, high, avg = self._chip_temps(index)
            devs.append({
                "ASC": index, "Name": "SM", "ID": index, "Slot": index, "Enabled": "Y",
                "Status": "Alive", "Temperature": s.board_temps[index], "Chip Frequency": self.profile.chip_frequency,
                "Frequency": float(self.profile.chip_frequency), "Fan Speed In": self._fan(0),
                "Fan Speed Out": self._fan(1), "MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs,
                "MHS 15m": mhs, "Accepted": s.accepted // max(1, s.model.boards), "Rejected": 0,
                "Factory GHS": per_board_ghs, "Upfreq Complete": 1, "Effective Chips": s.model.chips_per_board,
                "PCB SN": s.extra["pcb_serials"][index], "Chip Temp Min": low, "Chip Temp Max": high,
                "Chip Temp Avg": avg, "Device Elapsed": self.elapsed,
            })
        return {"STATUS": _cg_status(9, f"{len(devs)} ASC(s)"), "DEVS": devs, "id": 1}

    def _pools_reply(self) -> dict[str, Any]:
        s = self.state
        entries = []
        for index, pool in enumerate(self._pools()):
            active = index == 0 and s.mining
            entries.append({
                "POOL": index + 1, "URL": pool.url, "Status": "Alive", "Priority": index, "Quota": 1,
                "Long Poll": "N", "Accepted": s.accepted if index == 0 else 0,
                "Rejected": s.rejected if index == 0 else 0, "Works": 0, "Discarded": 0, "Stale": 0,
                "Get Failures": 0, "Remote Failures": 0, "User": pool.username,
                "Last Share Time": _now() if active else 0, "Stratum Active": active,
                "Stratum URL": pool.host, "Stratum Difficulty": 65536.0 if active else 0.0,
                "Has Stratum": True, "Has GBT": False, "Best Share": 0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0,
                "Bad Work": 0, "Current Block Height": 0, "Current Block Version": 0,
            })
        return {"STATUS": _cg_status(7, f"{len(entries)} Pool(s)"), "POOLS": entries, "id": 1}

    def _devdetails(self) -> dict[str, Any]:
        details = [{"DEVDETAILS": i, "Name": "SM", "ID": i, "Driver": "bitmicro", "Kernel": "",
                    "Model": self.profile.reported_type} for i in range(self.state.model.boards)]
        return {"STATUS": _cg_status(69, "Device Details"), "DEVDETAILS": details, "id": 1}

    def _get_version(self) -> dict[str, Any]:
        return _flat(131, {"api_ver": self.api_version, "fw_ver": self.state.firmware_version,
                           "platform": self.profile.platform})

    def _miner_info(self) -> dict[str, Any]:
        s = self.state
        return _flat(131, {"ip": s.ip, "proto": "dhcp", "netmask": "255.255.255.0", "gateway": _gateway(s.ip),
                           "dns": _gateway(s.ip), "hostname": s.hostname, "mac": s.mac,
                           "ledstat": "manual" if s.fault_light else "auto", "minersn": s.serial})

    def _psu(self) -> dict[str, Any]:
        s = self.state
        return _flat(131, {"name": self.profile.psu_model, "hw_version": "", "sw_version": self.profile.psu_version,
                           "model": self.profile.psu_model, "iin": str(round(self.live_wattage / 2.2)),
                           "vin": "22000", "pin": str(int(self.live_wattage)),
                           "fan_speed": str(s.extra["psu_fan_rpm"]), "serial_no": s.extra["psu_serial"]})

    def _error_codes(self) -> dict[str, Any]:
        stamp = _clock(self.state.boot_time + 60)
        return _flat(131, {"error_code": [{str(code): stamp} for code, _ in self.state.messages]})

    def _status(self) -> dict[str, Any]:
        s = self.state
        return _flat(131, {"mineroff": "false" if s.mining else "true", "mineroff_reason": "" if s.mining else "api",
                           "mineroff_time": "", "FirmwareVersion": s.firmware_version,
                           "power_mode": self._power_mode().lower(), "hash_percent": "",
                           "power_limit_set": str(int(s.power_limit))})

    def _get_token(self) -> dict[str, Any]:
        issued, newsalt = str(_now()), "".join(self.rng.choice(string.ascii_letters + string.digits)
                                               for _ in range(8))
        salt = str(self.state.extra["salt"])
        _, sign = v2_token(self.state.password, salt, issued, newsalt)
        self._v2_tokens[sign] = time.time()
        while len(self._v2_tokens) > _MAX_TOKENS:
            self._v2_tokens.pop(next(iter(self._v2_tokens)))
        return _flat(134, {"time": issued, "salt": salt, "newsalt": newsalt})

    def _open_write_api(self) -> dict[str, Any]:
        """The unlock handshake's first step; this firmware has its write API enabled already."""
        return _flat(131, {"time": str(_now()), "salt": self.state.extra["salt"], "newsalt": "00000000"})

    # ----- 4028: encrypted writes -------------------------------------------------------------
    def rpc_reply(self, request: bytes, port: int) -> bytes:
        body = self.decode_rpc_request(request)
        if body is not None and "enc" in body:
            return self._encrypted_reply(body, port)
        return super().rpc_reply(request, port)

    def _encrypted_reply(self, body: dict[str, Any], port: int) -> bytes:
        refused = orjson.dumps(_flat(135, "check token err", "E"))
        key = aes_key(crypt_hash(self.state.password, str(self.state.extra["salt"])))
        try:
            inner = orjson.loads(aes_decrypt(key, str(body.get("data", ""))))
        except (ValueError, orjson.JSONDecodeError):
            self.count(f"{port}:enc-refused")
            return refused  # a wrong password gives a wrong key: nothing sensible decrypts
        if not isinstance(inner, dict):
            return orjson.dumps(_flat(23, "invalid JSON", "E"))
        command = str(inner.get("cmd") or inner.get("command") or "")
        self.count(f"{port}:{command}")
        issued = self._v2_tokens.get(str(inner.get("token")))
        if self.auth_refused() or issued is None or time.time() - issued > _TOKEN_LIFETIME:
            return refused
        reply = self._v2_write(command, inner)
        return orjson.dumps({"enc": aes_encrypt(key, orjson.dumps(reply))})

    def _v2_write(self, command: str, params: dict[str, Any]) -> dict[str, Any]:
        handler = _V2_WRITES.get(command)
        if handler is None:
            return _flat(14, "invalid cmd", "E")
        try:
            handler(self, params)
        except (ValueError, KeyError, TypeError, ValidationError) as exc:
            return _flat(132, f"Command failed: {exc}", "E")
        return _flat(131, "API command OK")

    # the write commands, shared by both API generations where they mean the same
    def _set_pools(self, pools: list[tuple[str, str, str]]) -> None:
        chosen = [Pool(url=url, username=user, password=password or "x") for url, user, password in pools if url]
        if not chosen:
            raise ValueError("at least one pool is needed")
        self.state.pools = [PoolGroup(name="default", quota=1, pools=chosen[:3])]

    def _set_power_limit(self, value: Any) -> None:
        watts = float(value)
        if not 500 <= watts <= self.state.model.nominal_watts * 1.3:
            raise ValueError(f"power limit {watts:g} W is out of range")
        self.state.power_limit = watts
        self._apply_power()
        self.state.extra["btminer_started"] = time.time()  # btminer restarts to apply it

    def _set_power_mode(self, mode: str) -> None:
        named = {"low": "Low", "normal": "Normal", "high": "High"}[str(mode).lower()]
        self.state.extra["power_mode"] = named
        self._apply_power()

    def _set_led(self, spec: Any) -> None:
        self.state.fault_light = spec != "auto"

    def _factory_reset(self) -> None:
        s = self.state
        s.pools = list(s.extra["factory_pools"])
        s.extra["power_mode"] = "Normal"
        s.power_limit = round(s.model.nominal_watts, 0)
        s.fault_light = False
        s.mining = True
        self._apply_power()
        self.restart()

    def _w_update_pools(self, p: dict[str, Any]) -> None:
        self._set_pools([(str(p.get(f"pool{n}", "")), str(p.get(f"worker{n}", "")), str(p.get(f"passwd{n}", "")))
                         for n in (1, 2, 3)])

    def _w_set_led(self, p: dict[str, Any]) -> None:
        self._set_led("auto" if p.get("param") == "auto" else p)

    def _w_power_off(self, p: dict[str, Any]) -> None:
        self.state.mining = False

    def _w_power_on(self, p: dict[str, Any]) -> None:
        self.state.mining = True

    def _w_reboot(self, p: dict[str, Any]) -> None:
        self.restart()

    def _w_restart_btminer(self, p: dict[str, Any]) -> None:
        self.state.extra["btminer_started"] = time.time()

    def _w_adjust_power_limit(self, p: dict[str, Any]) -> None:
        self._set_power_limit(p["power_limit"])

    def _w_update_pwd(self, p: dict[str, Any]) -> None:
        new = str(p.get("new", ""))
        if str(p.get("old")) != self.state.password:
            raise ValueError("old password is wrong")
        if not (0 < len(new) <= 8 and all(c.isalnum() or c == "_" for c in new) and new.isascii()):
            raise ValueError("the new password is 1-8 letters, digits or underscores")
        self.state.password = new

    def _w_set_hostname(self, p: dict[str, Any]) -> None:
        self.state.hostname = str(p["hostname"])

    def _w_factory_reset(self, p: dict[str, Any]) -> None:
        self._factory_reset()

    def _w_setting(self, p: dict[str, Any]) -> None:
        """Settings the simulation keeps but that change no figure (fast boot, temp offset...)."""
        name = str(p.get("cmd") or p.get("command"))
        self.state.extra["settings"][name] = {k: v for k, v in p.items() if k not in ("cmd", "command", "token")}

    # ----- web: 80 redirects to https, whose root sends browsers to LuCI --------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.port == 80:
            host = request.headers.get("host", self.state.ip).split(":", 1)[0]
            return HttpResponse.redirect(f"https://{host}{request.path}", status=307)
        if request.path in ("/", "/index.html"):
            return HttpResponse.html(_LUCI_REDIRECT_PAGE)
        if request.path.rstrip("/") == "/cgi-bin/luci":
            return HttpResponse.html(_LUCI_LOGIN_PAGE.replace("{hostname}", self.state.hostname))
        return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")


def _gateway(ip: str) -> str:
    return ".".join([*ip.split(".")[:3], "1"])


_V2_WRITES: dict[str, Callable[[WhatsMinerSim, dict[str, Any]], None]] = {
    "update_pools": WhatsMinerSim._w_update_pools,
    "set_led": WhatsMinerSim._w_set_led,
    "power_off": WhatsMinerSim._w_power_off,
    "power_on": WhatsMinerSim._w_power_on,
    "reboot": WhatsMinerSim._w_reboot,
    "restart_btminer": WhatsMinerSim._w_restart_btminer,
    "adjust_power_limit": WhatsMinerSim._w_adjust_power_limit,
    "set_low_power": lambda sim, p: sim._set_power_mode("low"),
    "set_normal_power": lambda sim, p: sim._set_power_mode("normal"),
    "set_high_power": lambda sim, p: sim._set_power_mode("high"),
    "update_pwd": WhatsMinerSim._w_update_pwd,
    "set_hostname": WhatsMinerSim._w_set_hostname,
    "factory_reset": WhatsMinerSim._w_factory_reset,
    **{name: WhatsMinerSim._w_setting for name in (
        "net_config", "set_target_freq", "enable_btminer_fast_boot", "disable_btminer_fast_boot",
        "enable_web_pools", "disable_web_pools", "set_power_pct", "set_power_pct_v2", "set_temp_offset",
        "adjust_upfreq_speed", "set_poweroff_cool", "set_fan_zero_speed", "pre_power_on", "set_zone")},
}

_LUCI_REDIRECT_PAGE = """<!DOCTYPE html>
<html>
<head>
<meta http-equiv="Cache-Control" content="no-cache" />
<meta http-equiv="refresh" content="0; URL=/cgi-bin/luci" />
</head>
<body style="background-color: white">
<a style="color: black; font-family: arial, helvetica, sans-serif;"
 href="/cgi-bin/luci">LuCI - Lua Configuration Interface</a>
</body>
</html>
"""

_LUCI_LOGIN_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>{hostname} - LuCI</title></head>
<body class="lang_en">
<form method="post" action="/cgi-bin/luci">
<h2>Authorization Required</h2>
<p>Please enter your username and password.</p>
<input type="text" name="luci_username" value="admin" />
<input type="password" name="luci_password" />
<input type="submit" value="Login" />
</form>
<footer>Powered by LuCI (WhatsMiner)</footer>
</body>
</html>
"""


class WhatsMinerV3Sim(WhatsMinerSim):
    """A Whatsminer on 2024-11+ firmware: API v3 on 4433 next to the 4028 API."""

    services: ClassVar[tuple[Service, ...]] = (*WhatsMinerSim.services, Service(4433, "stream"))
    v3_api_version = "3.0.2"  # 4028's get_version keeps saying 2.0.5

    # ----- 4433 framing: a little-endian u32 length, then JSON; one exchange per connection ----------
    async def read_stream_request(self, reader: Any, port: int) -> bytes | None:
        if reader in self._answered:
            return None  # the firmware closes once it has answered
        try:
            (length,) = struct.unpack("<I", await reader.readexactly(4))
            if length > 1024 * 1024:
                return None
            body: bytes = await reader.readexactly(length)
        except asyncio.IncompleteReadError:
            return None
        self._answered.add(reader)
        return body

    async def handle_stream(self, request: bytes, port: int) -> bytes:
        try:
            body = orjson.loads(request)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or not isinstance(body.get("cmd"), str):
            self.count(f"{port}:invalid")
            reply = _v3_reply("", "invalid json", -3)
        else:
            command, param = body["cmd"], body.get("param")
            self.count(f"{port}:{command}" + (f"|{param}" if isinstance(param, str) and command.startswith("get.")
                                               else ""))
            reply = self._v3_write(command, body) if command.startswith("set.") else self._v3_read(command, param)
        data = orjson.dumps(reply)
        return struct.pack("<I", len(data)) + data

    # ----- API v3 reads ---------------------------------------------------------------------------
    def _v3_read(self, command: str, param: Any) -> dict[str, Any]:
        sections = [p.strip() for p in param.split(",")] if isinstance(param, str) and param else []
        if command == "get.device.info":
            info = self._device_info()
            return _v3_reply(command, {k: v for k, v in info.items() if k in sections} if sections else info)
        if command == "get.miner.status":
            parts = {"summary": self._v3_summary, "pools": self._v3_pools, "edevs": self._v3_edevs}
            chosen = sections or ["summary"]
            if any(p not in parts for p in chosen):
                return _v3_reply(command, "invalid param", -1)
            return _v3_reply(command, {p: parts[p]() for p in chosen})
        if command == "get.miner.setting":
            s = self.state
            return _v3_reply(command, {"power-mode": self._power_mode().lower(), "power-limit": int(s.power_limit),
                                       "pool-strategy": "FAILOVER", "fast-boot": "disable", "heat-mode": "normal",
                                       "target-freq": self.profile.chip_frequency})
        return _v3_reply(command, "invalid command", -2)

    def _device_info(self) -> dict[str, Any]:
        s, profile = self.state, self.profile
        miner: dict[str, Any] = {
            "board-num": str(s.model.boards), "detect-hash-rate": ":".join(
                str(int(ths * 1000)) for ths in s.board_hashrates()),
            "fast-boot": "disable", "hash-board": profile.hash_board,
            "hash-percent": "0", "miner-sn": s.serial, "pool-strategy": "FAILOVER",
            "type": profile.reported_type, "working": "true" if s.mining else "false",
        }
        for board in range(s.model.boards):
            miner[f"chipdata{board}"] = f"K8EC37{board}-2426 BINVE6-197806A"
            miner[f"pcbsn{board}"] = s.extra["pcb_serials"][board]
        info: dict[str, Any] = {
            "miner": miner,
            "network": {"dns": _gateway(s.ip), "gateway": _gateway(s.ip), "hostname": s.hostname, "ip": s.ip,
                        "mac": s.mac, "netmask": "255.255.255.0", "proto": "dhcp"},
            "power": {"fanspeed": s.extra["psu_fan_rpm"], "hwversion": "RT0159",
                      "mode": {"Low": "0", "Normal": "1", "High": "2"}[self._power_mode()],
                      "model": profile.psu_model, "sn": s.extra["psu_serial"], "swversion": profile.psu_version,
                      "type": profile.psu_model, "vendor": "1"},
            "salt": s.extra["v3_salt"],
            "system": {"api": self.v3_api_version, "apiswitch": "1", "control-board-version": profile.control_board,
                       "fwversion": s.firmware_version, "ledstatus": "manual" if s.fault_light else "auto",
                       "platform": profile.platform},
        }
        if s.messages:
            stamp = _clock(s.boot_time + 60)
            info["error-code"] = [{str(code): stamp, "reason": text} for code, text in s.messages]
        return info

    def _v3_summary(self) -> dict[str, Any]:
        s = self.state
        ths = round(s.live_hashrate_ths, 3)
        temps = [self._chip_temps(i) for i in range(s.model.boards)]
        return {
            "Debug": "", "board-temperature": [round(t - 24.0, 1) for t in s.board_temps],
            "bootup-time": _BTMINER_START_DELAY, "chip-temp-avg": round(sum(t[2] for t in temps) / len(temps), 2),
            "chip-temp-max": max(t[1] for t in temps), "chip-temp-min": min(t[0] for t in temps),
            "elapsed": self.elapsed, "environment-temperature": s.extra["env_temp"],
            "factory-hash": round(s.model.nominal_ths, 3), "fan-speed-in": self._fan(0),
            "fan-speed-out": self._fan(1), "freq-avg": self.profile.chip_frequency, "hash-15min": ths,
            "hash-1min": ths, "hash-average": ths, "hash-realtime": ths, "power-5min": round(self.live_wattage, 1),
            "power-limit": int(s.power_limit), "power-rate": round(self.live_wattage / ths, 2) if ths else 0.0,
            "power-realtime": round(self.live_wattage, 1), "up-freq-finish": 1,
        }

    def _v3_pools(self) -> list[dict[str, Any]]:
        return [{"id": index, "account": pool.username, "pool-priority": index, "status": "alive",
                 "stratum-active": index == 0 and self.state.mining, "url": pool.url}
                for index, pool in enumerate(self._pools())]

    def _v3_edevs(self) -> list[dict[str, Any]]:
        s = self.state
        per_board = round(s.model.nominal_ths / max(1, s.model.boards), 3)
        edevs = []
        for index, ths in enumerate(s.board_hashrates()):
            low, high, avg = self._chip_temps(index)
            edevs.append({"chip-temp-avg": avg, "chip-temp-max": high, "chip-temp-min": low,
                          "effective-chips": s.model.chips_per_board, "factory-hash": per_board,
                          "freq": float(self.profile.chip_frequency), "hash-average": round(ths, 3),
                          "hash-realtime": round(ths, 3), "id": index, "status": "alive"})
        return edevs

    # ----- API v3 writes --------------------------------------------------------------------------
    def _v3_accounts(self) -> dict[str, str]:
        return {"super": str(self.state.extra["super_password"])}

    def _v3_write(self, command: str, body: dict[str, Any]) -> dict[str, Any]:
        password = self._v3_accounts().get(str(body.get("account")))
        stamp = body.get("ts")
        refused = _v3_reply(command, "invalid account or token", V3_AUTH_CODE)
        if self.auth_refused() or password is None or not isinstance(stamp, int) or abs(stamp - _now()) > 600:
            self.count(f"{V3_PORT}:refused")
            return refused
        token, digest = v3_token(command, password, str(self.state.extra["v3_salt"]), stamp)
        if body.get("token") != token:
            self.count(f"{V3_PORT}:refused")
            return refused
        param = body.get("param")
        try:
            handled = self._v3_apply(command, param, digest)
        except (ValueError, KeyError, TypeError, ValidationError, orjson.JSONDecodeError) as exc:
            return _v3_reply(command, f"invalid param: {exc}", -1)
        return _v3_reply(command, "ok") if handled else _v3_reply(command, "invalid command", -2)

    def _v3_apply(self, command: str, param: Any, digest: bytes) -> bool:
        s = self.state
        if command == "set.miner.pools":
            # the parameter travels AES-encrypted with the token's digest; accept a plain list too
            entries = orjson.loads(aes_decrypt(digest, param)) if isinstance(param, str) else param
            self._set_pools([(str(e.get("pool", "")), str(e.get("worker", "")), str(e.get("passwd", "")))
                             for e in entries])
        elif command == "set.miner.power_limit":
            self._set_power_limit(param)
        elif command in ("set.miner.power_mode", "set.miner.mode"):
            self._set_power_mode(str(param))
        elif command == "set.miner.service":
            if param not in ("start", "stop", "restart", "enable", "disable"):
                raise ValueError(f"unknown service action {param!r}")
            if param in ("stop", "disable"):
                s.mining = False
            else:
                s.mining = True
                if param == "restart":
                    s.extra["btminer_started"] = time.time()
        elif command == "set.system.led":
            self._set_led(param if param == "auto" else list(param))
        elif command == "set.system.reboot":
            self.restart()
        elif command == "set.system.factory_reset":
            self._factory_reset()
        elif command == "set.system.hostname":
            s.hostname = str(param["hostname"] if isinstance(param, dict) else param)
        elif command in ("set.fan.temp_offset", "set.fan.poweroff_cool", "set.fan.zero_speed",
                         "set.miner.fastboot", "set.miner.report", "set.system.timezone", "set.system.ntp_server"):
            s.extra["settings"][command] = param
        else:
            return False
        return True
