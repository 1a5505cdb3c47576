"""Simulated Innosilicon stock firmware: the DragonMint-derived web API behind a JWT, and `innominer` (a CGMiner
build) on 4028.

What it serves, as Innosilicon controllers answer (facts gathered from pyasic's and Foreman's Innosilicon and
DragonMint clients and the replies Foreman's tests restate; see tests/fixtures/innosilicon/README.md):

- Port 80: the web UI, whose page names `DragonMint` (the marker pyasic identifies it by).
  `POST /api/auth` (form or JSON `username`, `password`; default admin / admin) answers
  `{"success": true, "jwt": ...}`. Every other `POST /api/<command>` needs `Authorization: Bearer <jwt>`;
  without a valid one it answers 401 `{"success": false, "token": "expired"}` (the reply pyasic renews its
  token on). Replies carry `success`. Commands: `type` (`{"type": "A11 Pro"}`), `overview` (`type`, `hardware`,
  `network`, `version`: `ethaddr` is the MAC, `hwver` the control board), `summary` (`DEVS` per board, `POOLS`),
  `getAll` (`all`: `mac`, `total_hash` with `Hash Rate H` in H/s, `chain` per board, `power` in W,
  `fansSpeed` in percent, `running_mode`), `getErrorDetail` (`code`, 0 when healthy), `pools` (`pools`:
  `url`, `user`, `pass`), `updatePools` (`Pool1`, `UserName1`, `Password1` ... up to 3, JSON or form),
  `reboot`, `restartCgMiner`, `updatePassword` (`user`, `currentPassword`, `newPassword`).
- Port 4028: the CGMiner RPC; every reply's `STATUS` names the program, `innominer <model>-<version>` (the
  `INNOMINER` marker pyasic's RPC check looks for): `version` (`CGMiner` is that version), `summary`
  (`MHS av`, `MHS 5s`, `MHS 1m` in MH/s, `Elapsed`), `stats` (a row per board: `Chain ID`, `Num chips`,
  `Num active chips`, `Temp`, `Temp min`, `Temp max`, `Fan duty`, `MHS av`, `Elapsed`), `devs`, `pools`.
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, rpc_error, rpc_status

VERSIONS = ("1.2.0", "1.3.1")
# the type the firmware reports, its program's model code, the control board's hardware version
HARDWARE: dict[str, tuple[str, str, str]] = {
    "Innosilicon A11 Pro": ("A11 Pro", "a11pro", "g19"),
}
MAX_POOLS = 3
WEB_PAGE = ('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>DragonMint</title>'
            '<link rel="stylesheet" href="/static/css/app.css"></head><body><div id="app"></div>'
            '<script src="/static/js/app.js"></script></body></html>')


class InnosiliconSim(SimMiner):
    family = "innosilicon"
    make = "Innosilicon"
    firmware = "Stock"
    models = tuple(HARDWARE)
    services = (Service(80, "http"), Service(4028, "rpc"))
    http_server_header = None
    default_username = "admin"
    default_password = "admin"

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.name in HARDWARE

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        # the base rounds to 1e-3 TH/s, which wipes out the rates of non-SHA-256 models (an A11 Pro: 0.0015 TH/s)
        s.hashrate_ths = float(f"{model.nominal_ths * rng.uniform(0.95, 1.03):.5g}")
        s.firmware_version = f"{HARDWARE[model.name][1]}-{s.firmware_version}"
        s.extra.update(tokens=set(), error_code=0, cgminer_restarts=0,
                       fan_duty=rng.randrange(40, 80), hardware_errors=rng.randrange(0, 400))
        return miner

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(VERSIONS)

    @property
    def model_name(self) -> str:
        return self.state.model.name

    @property
    def program(self) -> str:
        return f"innominer {self.state.firmware_version}"

    def _pools(self) -> list[Pool]:
        return [p for g in self.state.pools for p in g.pools]

    def board_mhs(self) -> list[float]:
        """Each board's rate in MH/s, adding up to the total."""
        return [round(ths * 1e6, 3) for ths in self.state.board_hashrates()]

    def board_temps(self, board: int) -> tuple[float, float, float]:
        """`Temp min`, `Temp`, `Temp max` of one board."""
        temp = self.state.board_temps[board]
        return round(temp - 6, 1), temp, round(temp + 7, 1)

    # ----- RPC --------------------------------------------------------------------------------
    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        handlers = {"version": self._rpc_version, "summary": self._rpc_summary, "stats": self._rpc_stats,
                    "devs": self._rpc_devs, "pools": self._rpc_pools}
        handler = handlers.get(command)
        return rpc_error(14, "Invalid command") if handler is None else handler()

    def _rpc_version(self) -> dict[str, Any]:
        return {"STATUS": rpc_status(22, "CGMiner versions", self.program),
                "VERSION": [{"CGMiner": self.state.firmware_version, "API": "3.7"}], "id": 1}

    def _rpc_summary(self) -> dict[str, Any]:
        s = self.state
        total = round(sum(self.board_mhs()), 3)
        return {"STATUS": rpc_status(11, "Summary", self.program), "SUMMARY": [{
            "Elapsed": s.uptime, "MHS av": total, "MHS 5s": total, "MHS 1m": total, "MHS 5m": total,
            "MHS 15m": total, "Found Blocks": 0, "Getworks": s.accepted // 3, "Accepted": s.accepted,
            "Rejected": s.rejected, "Hardware Errors": s.extra["hardware_errors"],
            "Utility": round(s.accepted / max(1, s.uptime) * 60, 2), "Discarded": 0, "Stale": 0,
            "Get Failures": 0, "Local Work": s.accepted * 9, "Remote Failures": 0, "Network Blocks": 0,
            "Total MH": round(total * s.uptime, 1), "Work Utility": 0.0,
            "Difficulty Accepted": float(s.accepted), "Difficulty Rejected": float(s.rejected),
            "Difficulty Stale": 0.0, "Best Share": 0, "Device Hardware%": 0.0, "Device Rejected%": 0.0,
            "Pool Rejected%": 0.0, "Pool Stale%": 0.0, "Last getwork": int(time.time())}], "id": 1}

    def _board_rows(self) -> list[dict[str, Any]]:
        s, model = self.state, self.state.model
        rates = self.board_mhs()
        rows = []
        for board in range(model.boards):
            low, temp, high = self.board_temps(board)
            rows.append({"STATS": board, "ID": f"HLT{board}", "Elapsed": s.uptime, "Chain ID": board,
                         "Num chips": model.chips_per_board,
                         "Num cores": model.chips_per_board * 32,
                         "Num active chips": model.chips_per_board if s.mining else 0,
                         "Temp max": high, "Temp min": low, "Temp": temp, "Fan duty": s.extra["fan_duty"],
                         "iVid": 165, "PLL": 1150 if s.mining else 0, "Voltage Max": 868, "Voltage Min": 859,
                         "Voltage Avg": 863, "Chain num": board, "MHS av": rates[board],
                         "Enabled chips": "f" * max(1, model.chips_per_board // 4),
                         "power": round(s.wattage / model.boards) if s.mining else 0})
        return rows

    def _rpc_stats(self) -> dict[str, Any]:
        rows = self._board_rows()
        pools = [{"STATS": len(rows) + i, "ID": f"POOL{i}", "Elapsed": self.state.uptime, "Pool Calls": 0,
                  "Pool Attempts": 0, "Pool Wait": 0.0, "Pool Max": 0.0, "Pool Min": 99999999.0, "Pool Av": 0.0,
                  "Work Diff": 65536.0, "Min Diff": 65536.0, "Max Diff": 65536.0, "Times Sent": 0,
                  "Bytes Sent": 0, "Times Recv": 0, "Bytes Recv": 0} for i, _ in enumerate(self._pools())]
        return {"STATUS": rpc_status(70, "CGMiner stats", self.program), "STATS": rows + pools, "id": 1}

    def _device_rows(self) -> list[dict[str, Any]]:
        s = self.state
        rates = self.board_mhs()
        return [{"ASC": board, "Name": "HLT", "ID": board, "Enabled": "Y", "Status": "Alive" if s.mining else "Dead",
                 "Temperature": self.board_temps(board)[1], "MHS av": rates[board], "MHS 5s": rates[board],
                 "MHS 1m": rates[board], "MHS 5m": rates[board], "MHS 15m": rates[board],
                 "Accepted": s.accepted // s.model.boards, "Rejected": s.rejected // s.model.boards,
                 "Hardware Errors": s.extra["hardware_errors"] // s.model.boards, "Utility": 0.0,
                 "Last Share Pool": 0, "Last Share Time": int(time.time()), "Total MH": round(rates[board] * s.uptime),
                 "Diff1 Work": 0, "Difficulty Accepted": 0.0, "Difficulty Rejected": 0.0, "Last Share Difficulty": 0.0,
                 "Last Valid Work": int(time.time()), "Device Hardware%": 0.0, "Device Rejected%": 0.0,
                 "Device Elapsed": s.uptime} for board in range(s.model.boards)]

    def _rpc_devs(self) -> dict[str, Any]:
        rows = self._device_rows()
        return {"STATUS": rpc_status(9, f"{len(rows)} ASC(s)", self.program), "DEVS": rows, "id": 1}

    def _pool_rows(self) -> list[dict[str, Any]]:
        s = self.state
        rows = []
        for i, pool in enumerate(self._pools()):
            current = i == 0 and s.mining
            rows.append({"POOL": i, "URL": pool.url, "User": pool.username, "Status": "Alive", "Priority": i,
                         "Quota": 1, "Long Poll": "N", "Getworks": s.accepted // 3 if i == 0 else 0,
                         "Accepted": s.accepted if i == 0 else 0, "Rejected": s.rejected if i == 0 else 0,
                         "Works": 0, "Discarded": 0, "Stale": 0, "Get Failures": 0, "Remote Failures": 0,
                         "Last Share Time": int(time.time()) if current else 0, "Proxy Type": "", "Proxy": "",
                         "Difficulty Accepted": float(s.accepted if i == 0 else 0), "Difficulty Rejected": 0.0,
                         "Difficulty Stale": 0.0, "Last Share Difficulty": 65536.0 if current else 0.0,
                         "Has Stratum": True, "Stratum Active": current,
                         "Stratum URL": pool.url.split("://")[-1].split(":")[0] if current else "",
                         "Has GBT": False, "Pool Rejected%": 0.0, "Pool Stale%": 0.0})
        return rows

    def _rpc_pools(self) -> dict[str, Any]:
        rows = self._pool_rows()
        return {"STATUS": rpc_status(7, f"{len(rows)} Pool(s)", self.program), "POOLS": rows, "id": 1}

    # ----- web --------------------------------------------------------------------------------
    @staticmethod
    def _fields(request: HttpRequest) -> dict[str, Any]:
        """A request's fields: a JSON object, or a form (pyasic sends JSON, the web UI and Foreman forms)."""
        if request.headers.get("content-type", "").startswith("application/json"):
            try:
                body = request.json()
            except ValueError:
                return {}
            return body if isinstance(body, dict) else {}
        return {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", errors="replace"),
                                              keep_blank_values=True).items()}

    def _authorised(self, request: HttpRequest) -> bool:
        header = request.headers.get("authorization", "").strip()
        token = header[7:].strip() if header.lower().startswith("bearer ") else header
        return bool(token) and token in self.state.extra["tokens"]

    @staticmethod
    def _ok(**fields: Any) -> HttpResponse:
        return HttpResponse.of_json({"success": True, **fields})

    @staticmethod
    def _refused(message: str, status: int = 200) -> HttpResponse:
        return HttpResponse.of_json({"success": False, "message": message}, status=status)

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if path in ("/", "/index.html") and request.method == "GET":
            return HttpResponse.html(WEB_PAGE)
        if not path.startswith("/api/") or request.method != "POST":
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        command = path[len("/api/"):]
        if command == "auth":
            return self._auth(request)
        routes = {"type": self._type, "overview": self._overview, "summary": self._summary, "getAll": self._get_all,
                  "getErrorDetail": self._error_detail, "pools": self._pools_view, "updatePools": self._update_pools,
                  "reboot": self._reboot, "restartCgMiner": self._restart_cgminer,
                  "updatePassword": self._update_password}
        handler = routes.get(command)
        if handler is None:
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        if not self._authorised(request):
            return HttpResponse.of_json({"success": False, "token": "expired"}, status=401)
        return handler(request)

    def _auth(self, request: HttpRequest) -> HttpResponse:
        fields = self._fields(request)
        s = self.state
        if (self.auth_refused() or fields.get("username") != s.username
                or not secrets.compare_digest(str(fields.get("password", "")), s.password)):
            return self._refused("Invalid username or password", status=403)
        token = secrets.token_urlsafe(32)
        s.extra["tokens"].add(token)
        return self._ok(jwt=token)

    def _type(self, request: HttpRequest) -> HttpResponse:
        return self._ok(type=HARDWARE[self.model_name][0])

    def _overview(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        days, rest = divmod(s.uptime, 86400)
        return self._ok(
            type=HARDWARE[self.model_name][0],
            hardware={"status": f"{time.strftime('%H:%M:%S', time.gmtime())} up {days} days, {rest // 3600}:"
                                f"{rest % 3600 // 60:02d}, load average: 0.00, 0.05, 0.07",
                      "memUsed": 124468, "memFree": 126096, "memTotal": 250564, "cacheUsed": 37232,
                      "cacheFree": 145460, "cacheTotal": 182692},
            network={"dhcp": "dhcp", "ipaddress": s.ip, "netmask": "255.255.255.0", "gateway": "", "dns1": "",
                     "dns2": ""},
            version={"hwver": HARDWARE[self.model_name][2], "ethaddr": s.mac.lower(),
                     "build_date": "3rd of March 2021 10:12 AM", "platform_v": s.firmware_version})

    def _summary(self, request: HttpRequest) -> HttpResponse:
        return self._ok(DEVS=self._device_rows(), POOLS=self._pool_rows())

    def _get_all(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        rates = self.board_mhs()
        chains = []
        for board, row in enumerate(self._board_rows()):
            chains.append({"ASC": board, "Name": "HLT", "Temp min": row["Temp min"], "Temp": row["Temp"],
                           "Temp max": row["Temp max"], "Hash Rate H": round(rates[board] * 1e6),
                           "Num active chips": row["Num active chips"], "Fan duty": s.extra["fan_duty"]})
        total = round(sum(rates), 3)
        return self._ok(all={
            "mac": s.mac.lower(), "type": HARDWARE[self.model_name][0], "power": round(s.wattage) if s.mining else 0,
            "fansSpeed": s.extra["fan_duty"], "total_hash": {"Hash Rate H": round(total * 1e6), "Hash Rate": total},
            "chain": chains, "running_mode": {"level": 0, "mode": "normal"}, "pools": len(self._pools())})

    def _error_detail(self, request: HttpRequest) -> HttpResponse:
        return self._ok(code=self.state.extra["error_code"])

    def _pools_view(self, request: HttpRequest) -> HttpResponse:
        return self._ok(pools=[{"url": p.url, "user": p.username, "pass": p.password} for p in self._pools()])

    def _update_pools(self, request: HttpRequest) -> HttpResponse:
        fields = self._fields(request)
        pools = []
        for n in range(1, MAX_POOLS + 1):
            url = str(fields.get(f"Pool{n}") or "").strip()
            if url:
                try:
                    pools.append(Pool(url=url, username=str(fields.get(f"UserName{n}") or ""),
                                      password=str(fields.get(f"Password{n}") or "")))
                except ValueError:
                    return self._refused(f"invalid pool {n}")
        self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)] if pools else []
        self.state.mining = bool(pools)
        return self._ok()

    def _reboot(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["tokens"].clear()  # a reboot forgets every token
        self.restart()
        return self._ok()

    def _restart_cgminer(self, request: HttpRequest) -> HttpResponse:
        self.state.extra["cgminer_restarts"] += 1
        return self._ok()

    def _update_password(self, request: HttpRequest) -> HttpResponse:
        fields = self._fields(request)
        s = self.state
        new = fields.get("newPassword")
        if fields.get("user", s.username) != s.username or not isinstance(new, str) or not new:
            return self._refused("invalid new password")
        if not secrets.compare_digest(str(fields.get("currentPassword", "")), s.password):
            return self._refused("wrong current password")
        s.password = new
        return self._ok()

    def inventory(self) -> dict[str, Any]:
        return {**super().inventory(), "cgminer_restarts": self.state.extra["cgminer_restarts"]}
