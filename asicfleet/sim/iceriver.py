"""Simulated IceRiver stock firmware (KS series, kHeavyHash; AL series, Blake3): its web API on port 80.

As the firmware behaves for pyasic, asic-rs and other public clients, and as published replies of a KS3M
and a KS5L show (restated, with this miner's figures):

- `GET /` is the login page, titled `<TITLE>用户界面</TITLE>` (upper-case tags, as pyasic matches them).
  No CGMiner RPC: 4028 refuses connections.
- `POST /user/loginpost` (`post=6`, `user`, `pwd`, as form fields or in the query string: pyasic sends
  the query, the web page and bitcap-ipr the form) answers `{"error": 0, "message": "", "data": {}}` and
  from then on serves that client's address: the firmware sets no session cookie, and clients send their
  next calls on new connections without one. A reboot forgets every login. A wrong password answers
  `error` 1. A call from an address that has not logged in answers `error` 1 as well (what the firmware
  sends then was not published; a client that logs in first, as every known one does, never sees it).
- Every call is `POST /user/<name>` with a `post` code: `userpanel` 4 (the status page's data), 5
  (`locate` 1/0: the locate LED), 3 (reboot); `machineconfig` 1 (configured pools with passwords, fan
  `ratio`, work `mode` 1 normal / 0 sleep, `locate`), 2 (pools `pool{1..3}address|miner|pwd`), 3 (work
  mode: `fanmode` `normal` or `sleep`); `ipconfig` 1 (network); `systemconfig` 2 (`nowpwd`, `newpwd`,
  `compwd`: the web password); `GET /user/version`.
- Pools: `connect` is true for the pool in use (as in the KS3M capture; a KS5L capture on a later build
  has 1 / -1 there, which pyasic 0.79 cannot read, so the simulator keeps the booleans).
- Hash rates are in GH/s of the model's algorithm (`unit` `G`): the total as `15011G`, the boards' as
  `5160.37G`; counts are integers here (one published capture has them as floats, `1.0`).
"""

from __future__ import annotations

import random
import time
from typing import Any
from urllib.parse import parse_qs

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

# what `softver1` ends with per model: the model in lower case, or a board code for AL3 and KS7
BUILD_TAILS = {"IceRiver AL3": "10306_miner", "IceRiver KS7": "11304_miner", "IceRiver KS5L": "ks5L_miner"}
BUILDS = ("ICM168_3_2_10", "ICM168_3_2_8")  # firmware builds (the part of softver1 before the model)
LOGIN_PAGE = ('<!DOCTYPE html><HTML><HEAD><meta charset="utf-8"><TITLE>用户界面</TITLE>'
              '<link rel="stylesheet" href="/css/login.css"></HEAD><BODY><div class="login">'
              '<input id="user" value="admin"><input id="pwd" type="password"><button id="loginbtn">Login'
              '</button></div><script src="/js/login.js"></script></BODY></HTML>')
SLEEP_FAN_RPM = 1000


def _runtime(seconds: int) -> str:
    days, rest = divmod(seconds, 86400)
    return f"{days:02d}:{rest // 3600:02d}:{rest % 3600 // 60:02d}:{rest % 60:02d}"


class IceRiverSim(SimMiner):
    family = "iceriver"
    make = "IceRiver"
    firmware = "Stock"
    models = ("IceRiver KS3M", "IceRiver KS5L", "IceRiver AL3")
    services = (Service(80, "http"),)
    http_server_header = None  # not published
    default_username = "admin"
    default_password = "12345678"

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(BUILDS)

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        state = miner.state
        state.hostname = "".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ") for _ in range(6))
        state.extra.update(sessions=set(), fan_ratio=100, chip_temps=[round(t + rng.uniform(3, 8), 1)
                                                                       for t in state.board_temps])
        state.pools = [PoolGroup(name="default", pools=[
            Pool(url=p.url.replace(":3333", ":4441"), username=p.username, password=p.password)
            for p in state.pools[0].pools])]
        return miner

    @property
    def build_name(self) -> str:
        """`softver1`: the firmware build and the model, e.g. `ICM168_3_2_10_ks3m_miner`."""
        name = self.state.model.name
        tail = BUILD_TAILS.get(name, name.removeprefix("IceRiver ").lower().replace(" ", "") + "_miner")
        return f"{self.state.firmware_version}_{tail}"

    def restart(self) -> None:
        self.state.extra["sessions"] = set()  # a reboot forgets every login
        super().restart()

    # ----- HTTP ---------------------------------------------------------------------------------
    @staticmethod
    def fields(request: HttpRequest) -> dict[str, str]:
        """Form fields from the query string and the url-encoded body (the body wins)."""
        found = {k: v[-1] for k, v in parse_qs(request.query, keep_blank_values=True).items()}
        content_type = request.headers.get("content-type", "")
        if request.body and "json" not in content_type:
            found |= {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace"),
                                                       keep_blank_values=True).items()}
        return found

    @staticmethod
    def answer(data: dict[str, Any] | None = None, error: int = 0, message: str = "") -> HttpResponse:
        body: dict[str, Any] = {"error": error, "message": message}
        if data is not None or error == 0:
            body["data"] = data if data is not None else {}
        return HttpResponse.of_json(body)

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path in ("/", "/index.html"):
            return HttpResponse.html(LOGIN_PAGE)
        if not request.path.startswith("/user/"):
            return HttpResponse(status=404, body=b"404 Not Found", content_type="text/html")
        name = request.path.removeprefix("/user/")
        fields = self.fields(request)
        self.count(f"user:{name}:{fields.get('post', '')}")
        if name == "loginpost" and request.method == "POST":
            return self.login(request, fields)
        if request.client not in self.state.extra["sessions"] or self.auth_refused():
            return self.answer(error=1, message="please log in")
        if name == "version" and request.method == "GET":
            return HttpResponse.of_json({"version": self.state.firmware_version})
        if request.method != "POST":
            return HttpResponse(status=405, body=b"", content_type="text/html")
        handler = {"userpanel": self.userpanel, "machineconfig": self.machineconfig, "ipconfig": self.ipconfig,
                   "systemconfig": self.systemconfig}.get(name)
        if handler is None:
            return HttpResponse(status=404, body=b"404 Not Found", content_type="text/html")
        return handler(fields)

    def login(self, request: HttpRequest, fields: dict[str, str]) -> HttpResponse:
        s = self.state
        if self.auth_refused() or (fields.get("user"), fields.get("pwd")) != (s.username, s.password):
            return self.answer(error=1, message="user or password error")
        s.extra["sessions"].add(request.client)
        return self.answer({})

    # ----- userpanel --------------------------------------------------------------------------------
    def userpanel(self, fields: dict[str, str]) -> HttpResponse:
        post = fields.get("post")
        if post == "4":
            return self.answer(self.panel())
        if post == "5":
            self.state.fault_light = fields.get("locate") == "1"
            return self.answer({})
        if post == "3":
            self.restart()
            return self.answer({})
        return self.answer(error=1, message="unknown request")

    def network(self) -> dict[str, Any]:
        s = self.state
        return {"nic": "eth0", "mac": s.mac.lower().replace(":", "-"), "ip": s.ip, "netmask": "255.255.255.0",
                "host": s.hostname, "dhcp": True, "gateway": "192.168.1.1", "dns": "192.168.1.1"}

    def pool_rows(self, *, live: bool) -> list[dict[str, Any]]:
        """The three pool slots; the first configured pool is the connected one."""
        s = self.state
        pools = s.pools[0].pools if s.pools else []
        rows = []
        for number in range(1, 4):
            pool = pools[number - 1] if number <= len(pools) else None
            first = number == 1 and pool is not None and live
            rows.append({"no": number, "addr": pool.url if pool else "", "user": pool.username if pool else "",
                         "pass": pool.password if pool else "", "connect": first,
                         "diff": "140737.49 G" if first else "0.00 G", "priority": number,
                         "accepted": s.accepted if first else 0, "rejected": s.rejected if first else 0,
                         "diffa": 0, "diffr": 0, "state": 1 if first else 0, "lsdiff": 0, "lstime": "00:00:00"})
        return rows

    def panel(self) -> dict[str, Any]:
        s = self.state
        rates = s.board_hashrates()  # TH/s, adding up to the total
        chips = s.model.chips_per_board
        boards = [{"no": i + 1, "chipnum": chips, "chipsuc": 0, "error": 0, "freq": 875 if s.mining else 0,
                   "rtpow": f"{rate * 1000:.2f}G", "avgpow": f"{rate * 1000:.2f}G", "idealpow": "0.00G",
                   "tempnum": "(null)", "pcbtemp": "0.00-0.00-0.00-0.00", "intmp": round(s.board_temps[i]),
                   "outtmp": round(s.extra["chip_temps"][i]), "state": s.mining, "false": list(range(1, chips + 1))}
                  for i, rate in enumerate(rates)]
        total = f"{s.live_hashrate_ths * 1000:.0f}G"
        return {
            "model": "none", "algo": "none", "online": True, "firmver1": "BOOT_3_1", "firmver2": "image_1.0",
            "softver1": self.build_name, "softver2": self.build_name.removesuffix("_miner") + "_bg",
            "firmtype": "Factory", **self.network(), "locate": s.fault_light,
            "rtpow": total, "avgpow": total, "reject": round(100 * s.rejected / max(1, s.accepted + s.rejected), 6),
            "runtime": _runtime(s.uptime), "unit": "G",
            "pows": {f"board{i + 1}": [round(rate * 1000)] * 3 for i, rate in enumerate(rates)},
            "pows_x": ["0 mins", "5 mins", "10 mins"],
            "powstate": s.mining, "netstate": True, "fanstate": True, "tempstate": True,
            "fans": list(s.fan_rpms) if s.mining else [SLEEP_FAN_RPM] * len(s.fan_rpms),
            "pools": self.pool_rows(live=s.mining), "boards": boards,
            "refTime": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        }

    # ----- machineconfig, ipconfig, systemconfig ------------------------------------------------------
    def machineconfig(self, fields: dict[str, str]) -> HttpResponse:
        s = self.state
        post = fields.get("post")
        if post == "1":
            return self.answer({"pools": self.pool_rows(live=s.mining), "ratio": s.extra["fan_ratio"],
                                "mode": 1 if s.mining else 0, "locate": 1 if s.fault_light else 0})
        if post not in ("2", "3"):
            return self.answer(error=1, message="unknown request")
        mode = fields.get("fanmode")
        if mode not in ("normal", "sleep"):
            return self.answer(error=1, message="invalid mode")
        if fields.get("fanratio", "").isdigit():
            s.extra["fan_ratio"] = int(fields["fanratio"])
        if post == "2":  # the pools; the work mode comes along
            pools = []
            for number in range(1, 4):
                url, user = fields.get(f"pool{number}address", ""), fields.get(f"pool{number}miner", "")
                if url and user:
                    pools.append(Pool(url=url, username=user, password=fields.get(f"pool{number}pwd") or "x"))
            if not pools:
                return self.answer(error=1, message="at least one pool")
            s.pools = [PoolGroup(name="default", pools=pools)]
        s.mining = mode == "normal"
        return self.answer({})

    def ipconfig(self, fields: dict[str, str]) -> HttpResponse:
        if fields.get("post") == "1":
            return self.answer(self.network())
        return self.answer(error=1, message="unknown request")

    def systemconfig(self, fields: dict[str, str]) -> HttpResponse:
        s = self.state
        if fields.get("post") != "2":
            return self.answer(error=1, message="unknown request")
        new = fields.get("newpwd", "")
        if fields.get("nowpwd") != s.password:
            return self.answer(error=1, message="current password error")
        if not new or new != fields.get("compwd"):
            return self.answer(error=1, message="passwords differ")
        s.password = new
        return self.answer({})
