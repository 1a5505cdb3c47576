"""Simulated Goldshell stock firmware (the "cloud-box" web UI over its `/mcb/` API, and a BFGMiner-derived RPC).

What it serves, as Goldshell controllers answer (facts gathered from pyasic's and Foreman's Goldshell clients, the
SC5 Pro / ARI31 captures published with an asic-rs extension, and notes taken on an SC-BOX, firmware 2.2.5;
see tests/fixtures/goldshell/README.md):

- Port 80: the web UI, whose page is titled `cloud-box` (the marker pyasic, pyasic-rs and we identify it by).
  `GET /user/login?username=admin&password=...&cipher=false|true` answers `{"JWT Token": ...}`; with
  `cipher=true` the password is AES-128-CBC (key sixteen `!`, zero IV, zero padding) as hex, as the stock UI
  sends it. The default login is admin / 123456789. `GET /user/logout` ends nothing (the token is fixed).
  Every `/mcb/` path needs `Authorization: Bearer <token>` (the bare token is taken too) except
  `GET /mcb/status` (model, firmware, hardware, mcbversion), which needs none; without it they answer 401.
  `GET|PUT /mcb/setting` (the settings object: `name` is the MAC, `powerplans` with `select`, `ledcontrol`,
  `tempcontrol`, `temp_target` ...; a PUT writes the object back), `GET /mcb/pools` (a list of `url`, `user`,
  `pass`, `active`, `dragid`, `pool-priority`, `legal`), `PUT /mcb/pools` (the list, replaced),
  `PUT /mcb/newpool` and `PUT /mcb/delpool` (one pool each, named by `url` and `user`),
  `PUT|GET /mcb/restart` (reboots the controller),
  `GET /mcb/cgminer?cgminercmd=devs` (`{"status": 2, "data": [...]}`, a row per board), and
  `PUT /user/updatepd` (`oldpassword`, `newpassword`, `cfmpassword`).
- Port 4028: the RPC (`intminer 5.4.2`, a BFGMiner derivative; no login): `version`, `summary` (`MHS 20s`,
  `MHS av`, `Elapsed`...), `devs` (a row per board with `MHS 20s`, `fan0..`, `tstemp-0/1/2`), `devdetails`
  (`chips-nr` and the `intchains_qomo` driver, under `DEVS` as pyasic reads it), `pools`, and `stats`, whose
  objects run together without a comma (`}{`), as the firmware writes it. Joined `a+b` commands are answered.

Power plans: level 0 is the stock plan, 1 the low-power plan, 3 sleep (0 MHz); `select` is the index of the
plan in use. Pausing selects the sleep plan (as pyasic does); the hash rate then reads 0.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import orjson
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, rpc_error, rpc_status

VERSIONS = ("2.2.1", "2.2.5")
RPC_PROGRAM = "intminer 5.4.2"
DEFAULT_PASSWORD = "123456789"
LOGIN_KEY = b"!" * 16
SLEEP_LEVEL, LOW_POWER_LEVEL, STOCK_LEVEL = 3, 1, 0
LOW_POWER_RATIO = 0.8
IDLE_WATTS = 40
# model string the controller reports, its hardware id and controller board, its stock clock (MHz)
HARDWARE: dict[str, tuple[str, str, str, int]] = {
    "Goldshell KD5": ("Goldshell-KD5", "10.20.HA", "MCB_V3_3", 1100),
    "Goldshell CK5": ("Goldshell-CK5", "10.40.HA", "MCB_V3_3", 800),
    "Goldshell HS5": ("Goldshell-HS5", "10.50.HA", "MCB_V3_3", 850),
}
WEB_PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><meta name="viewport" '
            'content="width=device-width,initial-scale=1"><title>cloud-box</title></head>'
            '<body><noscript>Please enable JavaScript.</noscript><div id="app"></div></body></html>')
_GLUE = "__glue__"  # marks where `stats` drops the comma between two objects


def login_cipher(password: str) -> str:
    """The password as the stock UI sends it with `cipher=true`: AES-128-CBC, key sixteen `!`, zero IV, zero
    padding, as hex (the default password 123456789 gives bbad7537f4c8b6ea31eea0b3d760e257)."""
    plain = password.encode()
    plain += b"\0" * (-len(plain) % 16)
    encryptor = Cipher(algorithms.AES(LOGIN_KEY), modes.CBC(bytes(16))).encryptor()
    return (encryptor.update(plain) + encryptor.finalize()).hex()


def plan_text(mhz: int, volts: float, fan: int = 70) -> str:
    """A power plan's `info` string, as the box firmwares write it (`725 MHz 0.41 V 70 RPM 70 RPM`)."""
    return f"{mhz} MHz {volts:g} V {fan} RPM {fan} RPM"


class GoldshellSim(SimMiner):
    family = "goldshell"
    make = "Goldshell"
    firmware = "Stock"
    models = tuple(HARDWARE)
    services = (Service(80, "http"), Service(4028, "rpc"))
    http_server_header = None
    default_username = "admin"
    default_password = DEFAULT_PASSWORD

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.name in HARDWARE

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        # the base rounds to 1e-3 TH/s, which wipes out the rates of non-SHA-256 models (an A11 Pro: 0.0015 TH/s)
        s.hashrate_ths = float(f"{model.nominal_ths * rng.uniform(0.95, 1.03):.5g}")
        s.extra.update(
            token=secrets.token_urlsafe(48),  # fixed per unit: every login answers the same token
            select=0, ledcontrol=False, tempcontrol=True, temp_target=65, manual=False,
            stock_ths=s.hashrate_ths, stock_watts=s.wattage,
            hardware_errors=[rng.randrange(0, 500) for _ in range(model.boards)],
            restarts=0,
        )
        return miner

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(VERSIONS)

    @property
    def hardware(self) -> tuple[str, str, str, int]:
        return HARDWARE[self.state.model.name]

    @property
    def model_name(self) -> str:
        return self.state.model.name

    # ----- power plans ------------------------------------------------------------------------
    def powerplans(self) -> list[dict[str, Any]]:
        mhz = self.hardware[3]
        return [{"level": STOCK_LEVEL, "info": plan_text(mhz, 0.42)},
                {"level": LOW_POWER_LEVEL, "info": plan_text(round(mhz * LOW_POWER_RATIO), 0.39)},
                {"level": SLEEP_LEVEL, "info": plan_text(0, 0)}]

    @property
    def level(self) -> int:
        plans = self.powerplans()
        select = self.state.extra["select"]
        return int(plans[select]["level"]) if 0 <= select < len(plans) else STOCK_LEVEL

    def _apply_level(self) -> None:
        s = self.state
        level = self.level
        s.mining = level != SLEEP_LEVEL and bool(self._pools())
        ratio = LOW_POWER_RATIO if level == LOW_POWER_LEVEL else 1.0
        s.hashrate_ths = round(s.extra["stock_ths"] * ratio, 3)
        s.wattage = round(s.extra["stock_watts"] * ratio, 1) if s.mining else IDLE_WATTS

    def _pools(self) -> list[Pool]:
        return [p for g in self.state.pools for p in g.pools]

    def board_mhs(self) -> list[float]:
        """Each board's rate in MH/s (the unit every Goldshell reply uses), adding up to the total."""
        return [round(ths * 1e6, 3) for ths in self.state.board_hashrates()]

    def board_temps(self, board: int) -> tuple[float, float, float]:
        """`tstemp-0`, `tstemp-1` (chip channels) and `tstemp-2` (the board sensor)."""
        pcb = self.state.board_temps[board] if self.state.mining else 35.0
        return round(pcb + 9, 1), round(pcb + 9, 1), round(pcb, 2)

    # ----- RPC --------------------------------------------------------------------------------
    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        handlers = {"version": self._rpc_version, "summary": self._rpc_summary, "devs": self._rpc_devs,
                    "devdetails": self._rpc_devdetails, "pools": self._rpc_pools, "stats": self._rpc_stats}
        handler = handlers.get(command)
        if handler is None:
            return rpc_error(14, "Invalid command")
        return handler()

    def rpc_reply(self, request: bytes, port: int) -> bytes:
        """As the firmware writes `stats`: its objects run together without a comma."""
        reply = super().rpc_reply(request, port)
        return reply.replace(b'},{"' + _GLUE.encode() + b'":0,', b"}{")

    def _rpc_version(self) -> dict[str, Any]:
        return {"STATUS": rpc_status(22, "BFGMiner versions", RPC_PROGRAM),
                "VERSION": [{"BFGMiner": "5.4.2", "API": "3.1"}], "id": 1}

    def _rpc_summary(self) -> dict[str, Any]:
        s = self.state
        total = round(sum(self.board_mhs()), 3)
        nonces = s.accepted + s.rejected + sum(s.extra["hardware_errors"])
        return {"STATUS": rpc_status(11, "Summary", RPC_PROGRAM), "SUMMARY": [{
            "Elapsed": s.uptime, "MHS av": total, "MHS 20s": total, "Found Blocks": 0, "Getworks": s.accepted // 4,
            "Accepted": s.accepted, "Rejected": s.rejected, "Hardware Errors": sum(s.extra["hardware_errors"]),
            "Utility": round(s.accepted / max(1, s.uptime) * 60, 2), "Stale": 0, "Get Failures": 0,
            "Local Work": s.accepted * 8, "Remote Failures": 0, "Network Blocks": 0, "Total MH": total * s.uptime,
            "Diff1 Work": nonces, "Difficulty Accepted": float(s.accepted), "Difficulty Rejected": float(s.rejected),
            "Difficulty Stale": 0.0, "Best Share": 0, "Device Hardware%": round(
                sum(s.extra["hardware_errors"]) / max(1, nonces) * 100, 4),
            "Device Rejected%": round(s.rejected / max(1, nonces) * 100, 4),
            "Pool Rejected%": round(s.rejected / max(1, s.accepted + s.rejected) * 100, 4), "Pool Stale%": 0.0,
            "Last getwork": int(time.time())}], "id": 1}

    def _device_rows(self) -> list[dict[str, Any]]:
        s = self.state
        rates = self.board_mhs()
        fans = {f"fan{i}": rpm if s.mining else 0 for i, rpm in enumerate(s.fan_rpms)}
        rows = []
        for board in range(s.model.boards):
            chip0, chip1, pcb = self.board_temps(board)
            accepted = s.accepted // s.model.boards
            rows.append({"PGA": board, "Name": "INCS", "ID": board, "Enabled": "Y",
                         "Status": "Alive" if s.mining else "Sick", "Device Elapsed": s.uptime,
                         "MHS av": rates[board], "MHS 20s": rates[board], "Accepted": accepted,
                         "Rejected": s.rejected // s.model.boards,
                         "Hardware Errors": s.extra["hardware_errors"][board],
                         "Device Hardware%": round(s.extra["hardware_errors"][board] / max(1, accepted) * 100, 4),
                         "clock": float(self.hardware[3] if s.mining else 0), **fans,
                         "tstemp-0": chip0, "tstemp-1": chip1, "tstemp-2": pcb, "voltage": 12090.0,
                         "overheat": 0, "rebootcnt": 0})
        return rows

    def _rpc_devs(self) -> dict[str, Any]:
        rows = self._device_rows()
        return {"STATUS": rpc_status(9, f"{len(rows)} PGA(s)", RPC_PROGRAM), "DEVS": rows, "id": 1}

    def _rpc_devdetails(self) -> dict[str, Any]:
        model = self.state.model
        rows = [{"DEVDETAILS": board, "Name": "INCS", "ID": board, "Driver": "intchains_qomo", "Kernel": "",
                 "Model": "", "chips-nr": model.chips_per_board} for board in range(model.boards)]
        return {"STATUS": rpc_status(69, "Device Details", RPC_PROGRAM), "DEVS": rows, "id": 1}

    def _rpc_pools(self) -> dict[str, Any]:
        s = self.state
        rows = []
        for i, pool in enumerate(self._pools()):
            current = i == 0 and s.mining
            rows.append({"POOL": i, "URL": pool.url, "Status": "Alive", "Priority": i, "Quota": 1,
                         "Long Poll": "N", "Getworks": s.accepted // 4 if i == 0 else 0,
                         "Accepted": s.accepted if i == 0 else 0, "Rejected": s.rejected if i == 0 else 0,
                         "Works": 0, "Discarded": 0, "Stale": 0, "Get Failures": 0, "Remote Failures": 0,
                         "User": pool.username, "Last Share Time": int(time.time()) if current else 0,
                         "Diff1 Shares": 0, "Proxy Type": "", "Proxy": "", "Difficulty Accepted": float(s.accepted),
                         "Difficulty Rejected": float(s.rejected), "Difficulty Stale": 0.0,
                         "Last Share Difficulty": 1024.0, "Has Stratum": True, "Stratum Active": current,
                         "Stratum URL": pool.url.split("://")[-1].split(":")[0] if current else "",
                         "Has GBT": False, "Best Share": 0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0})
        return {"STATUS": rpc_status(7, f"{len(rows)} Pool(s)", RPC_PROGRAM), "POOLS": rows, "id": 1}

    def _rpc_stats(self) -> dict[str, Any]:
        s = self.state
        fans = {f"fan{i}": rpm if s.mining else 0 for i, rpm in enumerate(s.fan_rpms)}
        return {"STATUS": rpc_status(70, "BFGMiner stats", RPC_PROGRAM), "STATS": [
            {"STATS": 0, "ID": "INCS0", "Elapsed": s.uptime, "Calls": 0, "Wait": 0.0, "Max": 0.0, "Min": 99999999.0},
            {_GLUE: 0, "STATS": 1, "ID": "MCB", "Elapsed": s.uptime, **fans, "temp_max": 0}], "id": 1}

    # ----- web --------------------------------------------------------------------------------
    def _authorised(self, request: HttpRequest) -> bool:
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        return bool(token) and secrets.compare_digest(token, self.state.extra["token"])

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        key = f"{request.method} {path}"
        if path in ("/", "/index.html") and request.method == "GET":
            return HttpResponse.html(WEB_PAGE)
        if key == "GET /user/login":
            return self._login(request)
        if key == "GET /user/logout":
            return HttpResponse.of_json({})
        if key == "GET /mcb/status":
            return self._status()
        routes = {"GET /mcb/setting": self._setting, "PUT /mcb/setting": self._save_setting,
                  "GET /mcb/pools": self._pools_view, "PUT /mcb/pools": self._replace_pools,
                  "PUT /mcb/newpool": self._new_pool, "PUT /mcb/delpool": self._delete_pool,
                  "PUT /mcb/restart": self._restart, "GET /mcb/restart": self._restart,
                  "GET /mcb/cgminer": self._cgminer, "PUT /user/updatepd": self._update_password}
        handler = routes.get(key)
        if handler is None:
            return HttpResponse(status=404, body=b"404 page not found", content_type="text/plain")
        if not self._authorised(request):
            return HttpResponse(status=401, body=b"Check Token Error", content_type="text/plain")
        return handler(request)

    def _login(self, request: HttpRequest) -> HttpResponse:
        query = {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        s = self.state
        given = query.get("password", "")
        expected = login_cipher(s.password) if query.get("cipher") == "true" else s.password
        if (self.auth_refused() or query.get("username") != s.username
                or not secrets.compare_digest(given.lower() if query.get("cipher") == "true" else given, expected)):
            return HttpResponse.of_json({"error": "username or password error"}, status=401)
        return HttpResponse.of_json({"JWT Token": s.extra["token"]})

    def _status(self) -> HttpResponse:
        model, hardware, mcb, _ = self.hardware
        return HttpResponse.of_json({"hardware": hardware, "model": model, "mcbversion": mcb,
                                     "firmware": self.state.firmware_version})

    def _setting_view(self) -> dict[str, Any]:
        x = self.state.extra
        plans = self.powerplans()
        return {"select": x["select"], "tempcontrol": x["tempcontrol"], "ledcontrol": x["ledcontrol"],
                "manualPowerplan": plans[0]["info"], "name": self.state.mac, "powerplans": plans,
                "manual": x["manual"], "temp_targets": [65.0, 75.0], "version": "v2.1", "temp_target": x["temp_target"]}

    def _setting(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json(self._setting_view())

    @staticmethod
    def _body(request: HttpRequest) -> Any:
        try:
            return request.json()
        except ValueError:
            return None

    def _save_setting(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if not isinstance(body, dict):
            return HttpResponse.of_json({"error": "invalid settings"}, status=400)
        x = self.state.extra
        select = body.get("select", x["select"])
        if not isinstance(select, int) or not 0 <= select < len(self.powerplans()):
            return HttpResponse.of_json({"error": "invalid power plan"}, status=400)
        x["select"] = select
        for name in ("ledcontrol", "tempcontrol", "manual"):
            if isinstance(body.get(name), bool):
                x[name] = body[name]
        if isinstance(body.get("temp_target"), int | float) and 65 <= body["temp_target"] <= 75:
            x["temp_target"] = body["temp_target"]
        self.state.fault_light = x["ledcontrol"]
        self._apply_level()
        return HttpResponse.of_json({})

    def _pool_rows(self) -> list[dict[str, Any]]:
        return [{"url": p.url, "legal": True, "active": i == 0 and self.state.mining, "dragid": i,
                 "user": p.username, "pool-priority": i, "pass": p.password} for i, p in enumerate(self._pools())]

    def _pools_view(self, request: HttpRequest) -> HttpResponse:
        return HttpResponse.of_json(self._pool_rows())

    def _set_pools(self, pools: list[Pool]) -> None:
        self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)] if pools else []
        self._apply_level()

    @staticmethod
    def _pool_of(row: Any) -> Pool | None:
        if not isinstance(row, dict) or not isinstance(row.get("url"), str) or not row["url"].strip():
            return None
        try:
            return Pool(url=row["url"].strip(), username=str(row.get("user") or ""),
                        password=str(row.get("pass") or ""))
        except ValueError:
            return None

    def _replace_pools(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        if not isinstance(body, list):
            return HttpResponse.of_json({"error": "invalid pools"}, status=400)
        pools = [self._pool_of(row) for row in body]
        if any(p is None for p in pools):
            return HttpResponse.of_json({"error": "invalid pool"}, status=400)
        self._set_pools([p for p in pools if p is not None][:3])
        return HttpResponse.of_json({})

    def _new_pool(self, request: HttpRequest) -> HttpResponse:
        pool = self._pool_of(self._body(request))
        if pool is None:
            return HttpResponse.of_json({"error": "invalid pool"}, status=400)
        current = self._pools()
        if len(current) >= 3:
            return HttpResponse.of_json({"error": "at most 3 pools"}, status=400)
        self._set_pools([*current, pool])
        return HttpResponse.of_json({})

    def _delete_pool(self, request: HttpRequest) -> HttpResponse:
        """The pool named by `url` and `user` (its `dragid` when that still points at it): pyasic deletes a list
        it read once, first to last, so the ids it sends shift after the first deletion."""
        body = self._body(request)
        current = self._pools()
        if not isinstance(body, dict):
            return HttpResponse.of_json({"error": "invalid pool"}, status=400)
        dragid = body.get("dragid")
        matching = [i for i, p in enumerate(current) if p.url == body.get("url") and p.username == body.get("user")]
        if not matching:
            return HttpResponse.of_json({"error": "no such pool"}, status=400)
        index = dragid if dragid in matching else matching[0]
        self._set_pools([p for i, p in enumerate(current) if i != index])
        return HttpResponse.of_json({})

    def _restart(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["restarts"] += 1
        self.restart()
        return HttpResponse(status=200, body=b"", content_type="text/plain")

    def _cgminer(self, request: HttpRequest) -> HttpResponse:
        query = parse_qs(request.query)
        if query.get("cgminercmd", [""])[-1] != "devs":
            return HttpResponse.of_json({"status": 1, "data": []})
        s = self.state
        rows = []
        for raw in self._device_rows():
            chip0, _, pcb = self.board_temps(raw["ID"])
            rows.append({"valid": 15, "av_hashrate": raw["MHS av"], "rejected": raw["Rejected"], "time": s.uptime,
                         "id": raw["ID"], "powerplan": self.level, "hwerrors": raw["Hardware Errors"],
                         "fanspeed": " / ".join(f"{rpm if s.mining else 0} rpm" for rpm in s.fan_rpms),
                         "accepted": raw["Accepted"], "hwerr_ration": raw["Device Hardware%"] / 100,
                         "nonces": raw["Accepted"] + raw["Rejected"] + raw["Hardware Errors"],
                         "hashrate": raw["MHS 20s"], "temp": f"{chip0:.1f} °C / {pcb:.1f} °C",
                         "minerstatus": 0 if s.mining else 1})
        return HttpResponse(status=200, body=orjson.dumps({"status": 2, "data": rows}))

    def _update_password(self, request: HttpRequest) -> HttpResponse:
        body = self._body(request)
        s = self.state
        if (not isinstance(body, dict) or not isinstance(body.get("newpassword"), str) or not body["newpassword"]
                or body.get("newpassword") != body.get("cfmpassword")):
            return HttpResponse.of_json({"error": "invalid new password"}, status=400)
        if not secrets.compare_digest(str(body.get("oldpassword", "")), s.password):
            return HttpResponse.of_json({"error": "old password error"}, status=400)
        s.password = body["newpassword"]
        return HttpResponse.of_json({})

    def inventory(self) -> dict[str, Any]:
        return {**super().inventory(), "power_level": self.level}
