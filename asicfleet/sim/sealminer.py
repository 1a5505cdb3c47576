"""Simulated SealMiner stock firmware (BDMiner, a CGMiner-style miner program): RPC on 4028 and PHP web on 80.

As asic-rs uses the firmware, and as the replies of an A2 (firmware 2025091001, BDMiner 4.11.1) that asic-rs
publishes show (restated, with this miner's figures):

- RPC: every reply's `STATUS[0].Description` is `bdminer <version>`; `version` answers
  `VERSION[0] = {"API": "3.7", "BDMiner": "4.11.1"}` and names no model; `devdetails` names it
  (`DEVDETAILS[0].Model`, `A2`). `summary` (`MHS 5s`, `MHS av`, `MHS 1m`.. in MH/s), `stats` (one row: the
  board figures as `<n> Chip Count`, `<n> MHS(Sample)`, `<n> Temp 0..3`, `<n> SN`; fans as `<n> Speed`; MAC,
  `Ctrl Board` and its SN, `Firmware` (a date, `2025091001`), power supply figures, `Power Limit`,
  `PM State` `Running`, `Mining Mode`), `pools`. Writes: `ascset` `0,suspend` (stops hashing),
  `0,powerlimit,{"value":"3500"}` (taken at once: pyasic-rs 0.8.6 sends it alone, where asic-rs before it
  rebooted afterwards; the miner then draws and hashes in proportion, up to its stock figures),
  `0,workmode,{"mode":"low_power"|"normal"|"high_performance"}` (the mining mode, as pyasic-rs 0.8.6 sets
  it; the web's `set_mining_mode.php` sets the same); `updatepools` (a JSON `{"pools": [{url, user, pass}]}`)
  is stored and taken at the next boot, which is why both clients reboot after it; `restart` restarts the
  miner program (hashing again). The devdetails reply's shape beyond `Model` is CGMiner's.
  pyasic-rs 0.8.6 reads the rate from `stats` `MHS(2m)` and `<n> MHS(2m)` (newer than the published capture,
  which has the total's `MHS(2m)` only): both are served.
- Web: `GET /` is the login page (built on Amaze UI: its page names `amazeui`, the mark asic-rs looks
  for). `POST /cgi-bin/login.php` with the form `username`, `origin_pwd` (default seal / seal) sets the
  session cookie (`PHPSESSID`); a wrong password sets none (what its body says then was not published).
  With the cookie: `get_system_info.php` (`miner_type`, `firmware_version`, `macaddr`, `ctrl_version`,
  `led` `on`/`off`, `miningMode` and the mode codes), `miner-psu-status.php`, `get_miner_poolconf.php`
  (the configured pools with passwords), `reboot.php`, `led_conf.php` (POST JSON `{"key": "led",
  "value": "on"|"off"}`), `set_mining_mode.php` (POST JSON `{"miningMode": code}`). Without the cookie
  a page redirects to the login page (not published; assumed as PHP interfaces usually do).
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any
from urllib.parse import parse_qs

import orjson

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner, rpc_error, rpc_status

BDMINER_VERSION = "4.11.1"
FIRMWARES = ("2025091001", "2025061802")
MINING_MODES = {"low_power": 0, "normal": 2, "high_performance": 3, "custom": 5}
MODE_NAMES = {0: "Low Power", 2: "Normal", 3: "High Performance", 5: "Custom"}
CHIP_FREQUENCY = 346
SUSPENDED_WATTS = 95  # control board, fans and the power supply's own draw with the boards off
LOGIN_PAGE = ('<!DOCTYPE html><html><head><meta charset="utf-8"><title>Login</title>'
              '<link rel="stylesheet" href="/assets/css/amazeui.min.css">'
              '<script src="/assets/js/amazeui.min.js"></script></head><body><form class="am-form" id="login">'
              '<input name="username" value="seal"><input name="origin_pwd" type="password">'
              '<button class="am-btn am-btn-primary">Login</button></form></body></html>')


class SealMinerSim(SimMiner):
    family = "sealminer"
    make = "SealMiner"
    firmware = "Stock"
    models = ("A2",)
    services = (Service(4028, "rpc"), Service(80, "http"))
    http_server_header = None  # not published
    default_username = "seal"
    default_password = "seal"

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(FIRMWARES)

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.serial = "S1272" + "".join(rng.choice("0123456789") for _ in range(11))
        s.extra.update(
            sessions=set(), mining_mode=MINING_MODES["normal"], program_start=s.boot_time + 220,
            board_serials=["S1246" + "".join(rng.choice("0123456789") for _ in range(11))
                           for _ in range(s.model.boards)],
            pending_pools=None, psu_fan=rng.randrange(4000, 4800, 8), stock_watts=s.wattage,
            stock_ths=s.hashrate_ths,
        )
        return miner

    def restart(self) -> None:
        """A reboot: the stored pools take effect, and every web session ends."""
        s = self.state
        if s.extra["pending_pools"] is not None:
            s.pools = s.extra["pending_pools"]
        s.extra.update(pending_pools=None, sessions=set())
        s.mining = True
        super().restart()
        s.extra["program_start"] = s.boot_time

    # ----- RPC ----------------------------------------------------------------------------------
    def _status(self, code: int, message: str) -> list[dict[str, Any]]:
        return rpc_status(code, message, f"bdminer {BDMINER_VERSION}")

    @property
    def elapsed(self) -> int:
        return max(0, int(time.time() - self.state.extra["program_start"]))

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        reads = {"version": self._version, "devdetails": self._devdetails, "summary": self._summary,
                 "stats": self._stats, "pools": self._pools}
        if command in reads:
            return reads[command]()
        if command == "ascset":
            return self._ascset(str(parameter or ""))
        if command == "updatepools":
            return self._updatepools(parameter)
        if command == "restart":
            self.state.mining = True
            self.state.extra["program_start"] = time.time()
            return {"STATUS": self._status(7, "BDMiner restart"), "id": 1}
        return rpc_error(14, "Invalid command")

    def _version(self) -> dict[str, Any]:
        return {"STATUS": self._status(22, "BDMiner versions"),
                "VERSION": [{"API": "3.7", "BDMiner": BDMINER_VERSION}], "id": 1}

    def _devdetails(self) -> dict[str, Any]:
        rows = [{"DEVDETAILS": i, "Name": "SEAL", "ID": i, "Driver": "bdminer", "Kernel": "", "Model": self.model_name,
                 "Device Path": ""} for i in range(self.state.model.boards)]
        return {"STATUS": self._status(69, "Device Details"), "DEVDETAILS": rows, "id": 1}

    def _summary(self) -> dict[str, Any]:
        s = self.state
        mhs = round(s.live_hashrate_ths * 1e6, 2)
        return {"STATUS": self._status(11, "Summary"), "SUMMARY": [{
            "Elapsed": self.elapsed, "MHS av": mhs, "MHS 5s": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 15m": mhs,
            "Found Blocks": 0, "Getworks": 264, "Accepted": s.accepted, "Rejected": s.rejected, "Hardware Errors": 0,
            "Utility": 34.37, "Discarded": 0, "Stale": 0, "Get Failures": 0, "Local Work": 97055,
            "Remote Failures": 0, "Network Blocks": 2, "Total MH": round(mhs * self.elapsed, 1),
            "Work Utility": 2889807.43, "Difficulty Accepted": float(s.accepted * 262144),
            "Difficulty Rejected": float(s.rejected * 262144), "Difficulty Stale": 0.0, "Best Share": 33318911,
            "Device Hardware%": 0.0, "Device Rejected%": 0.0, "Pool Rejected%": 0.0, "Pool Stale%": 0.0,
            "Last getwork": int(time.time())}], "id": 1}

    def _stats(self) -> dict[str, Any]:
        s = self.state
        chips = s.model.chips_per_board
        row: dict[str, Any] = {"STATS": 0, "ID": f"{self.model_name}0", "Elapsed": self.elapsed, "Calls": 0,
                               "Wait": 0.0, "Max": 0.0, "Min": 99999999.0}
        for i, ths in enumerate(s.board_hashrates()):
            temp = s.board_temps[i]
            row |= {f"{i} Online": True, f"{i} Chip Count": chips, f"{i} Bad Chip Count": 0,
                    f"{i} Freq": CHIP_FREQUENCY if s.mining else 0, f"{i} MHS(Sample)": round(ths * 1e6, 6),
                    f"{i} MHS(2m)": round(ths * 1e6, 6),
                    f"{i} MHS(Ideal)": round(s.model.nominal_ths / s.model.boards * 0.96e6),
                    f"{i} SN": s.extra["board_serials"][i], f"{i} Temp 0": round(temp - 14),
                    f"{i} Temp 1": round(temp - 17), f"{i} Temp 2": round(temp), f"{i} Temp 3": round(temp - 1),
                    f"{i} Tune Status": "Fine Tuning Done"}
        for i, rpm in enumerate(s.fan_rpms):
            row |= {f"{i} PWM": 112, f"{i} Speed": rpm if s.mining else 0}
        mhs = round(s.live_hashrate_ths * 1e6, 6)
        watts = round(s.wattage) if s.mining else SUSPENDED_WATTS
        row |= {
            "ASIC": "Seal02-V1", "Board Count": s.model.boards, "Chip Count": chips * s.model.boards,
            "Bad Chip Count": 0, "Fan Count": len(s.fan_rpms), "Firmware": s.firmware_version,
            "Software Version": f"{BDMINER_VERSION}-08690-gd309fbe0", "Model": self.model_name,
            "MAC": s.mac.lower(),
            "IP": s.ip, "Ctrl Board": "taurus_air_v1.1", "Ctrl Board SN": s.serial, "Freq": CHIP_FREQUENCY,
            "MHS(30s)": mhs, "MHS(1m)": mhs, "MHS(2m)": mhs, "MHS(5m)": mhs, "MHS(15m)": mhs, "MHS(Avg)": mhs,
            "MHS(Sample)": mhs,
            "MHS(Ideal)": round(s.model.nominal_ths * 0.96e6), "MHS(Rated)": round(s.model.nominal_ths * 1e6, 5),
            "Mining Mode": MODE_NAMES.get(s.extra["mining_mode"], "Normal"),
            "PM State": "Running" if s.mining else "Suspend", "Power Limit": round(s.power_limit),
            "PSU Input Power": watts, "PSU Output Power": round(watts * 0.922), "PSU Fan Speed": s.extra["psu_fan"],
            "PSU Model": "BTPSU04KSA-03.00", "PSU Input Voltage": 246.0, "Liquid Cooling": False,
            "Temp": round(max(s.board_temps)), "Target Ctrl Temp": 70, "System Uptime": s.uptime,
            "Error Code": "", "Error Chip": "", "Tune Status": "Fine Tuning Done", "Stratum Disconnect": False,
        }
        return {"STATUS": self._status(70, "BDMiner stats"), "STATS": [row], "id": 1}

    def _pools(self) -> dict[str, Any]:
        s = self.state
        pools = s.pools[0].pools if s.pools else []
        rows = []
        for i, pool in enumerate(pools):
            first = i == 0 and s.mining
            rows.append({"POOL": i, "URL": pool.url, "User": pool.username, "Status": "Alive" if first else "Dead",
                         "Priority": i, "Quota": 1, "Long Poll": "N", "Getworks": 84 if first else 0,
                         "Accepted": s.accepted if first else 0, "Rejected": s.rejected if first else 0,
                         "Works": 35726 if first else 0, "Discarded": 0, "Stale": 0, "Get Failures": 0,
                         "Remote Failures": 0, "Stratum Active": first, "Stratum URL": pool.host,
                         "Has Stratum": True, "Has GBT": False, "Has Vmask": True, "Best Share": 8834293,
                         "Stratum Difficulty": 262144.0, "Last Share Difficulty": 262144.0,
                         "Last Share Time": int(time.time()) if first else 0, "Proxy Type": "", "Proxy": "",
                         "Pool Rejected%": 0.0, "Pool Stale%": 0.0, "Bad Work": 0})
        return {"STATUS": self._status(7, f"{len(rows)} Pool(s)"), "POOLS": rows, "id": 1}

    def _ascset(self, parameter: str) -> dict[str, Any]:
        parts = parameter.split(",", 2)
        if len(parts) < 2 or parts[0] != "0":
            return rpc_error(15, "Missing or invalid ASC parameter")
        if parts[1] == "suspend":
            self.state.mining = False
            return {"STATUS": self._status(119, "ASC 0 set OK"), "id": 1}
        if parts[1] == "powerlimit" and len(parts) == 3:
            try:
                watts = float(orjson.loads(parts[2])["value"])
            except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
                return rpc_error(16, "Invalid powerlimit value")
            if not 0 < watts <= 100_000:
                return rpc_error(16, "Invalid powerlimit value")
            self.limit_power(watts)
            return {"STATUS": self._status(119, "ASC 0 set OK"), "id": 1}
        if parts[1] == "workmode" and len(parts) == 3:
            try:
                mode = orjson.loads(parts[2])["mode"]
            except (orjson.JSONDecodeError, KeyError, TypeError):
                mode = None
            if mode not in ("low_power", "normal", "high_performance"):
                return rpc_error(16, "Invalid workmode value")
            self.state.extra["mining_mode"] = MINING_MODES[mode]
            return {"STATUS": self._status(119, "ASC 0 set OK"), "id": 1}
        return rpc_error(14, f"Unknown ascset option {parts[1]}")

    def limit_power(self, watts: float) -> None:
        """Draw at most `watts`: power and hash rate scale down together, never above the stock figures."""
        s = self.state
        ratio = min(1.0, watts / s.extra["stock_watts"])
        s.power_limit = watts
        s.wattage = round(s.extra["stock_watts"] * ratio, 1)
        s.hashrate_ths = round(s.extra["stock_ths"] * ratio, 3)

    def _updatepools(self, parameter: Any) -> dict[str, Any]:
        try:
            rows = orjson.loads(str(parameter))["pools"]
            pools = [Pool(url=r["url"], username=r["user"], password=r.get("pass") or "x") for r in rows]
            group = PoolGroup(name="default", pools=pools)
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return rpc_error(16, "Invalid pools parameter")
        self.state.extra["pending_pools"] = [group]
        return {"STATUS": self._status(7, "Pools updated"), "id": 1}

    # ----- web ----------------------------------------------------------------------------------
    def _session(self, request: HttpRequest) -> str | None:
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "PHPSESSID" and value in self.state.extra["sessions"]:
                return value
        return None

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path in ("/", "/index.html", "/login.html"):
            return HttpResponse.html(LOGIN_PAGE)
        page = request.path.removeprefix("/cgi-bin/")
        if page == "login.php" and request.method == "POST":
            return self._login(request)
        if page == request.path or not page.endswith(".php"):
            return HttpResponse(status=404, body=b"404 Not Found", content_type="text/html")
        if self._session(request) is None or self.auth_refused():
            return HttpResponse.redirect("/", status=302)
        handlers = {"get_system_info.php": self._system_info, "miner-psu-status.php": self._psu_status,
                    "get_miner_poolconf.php": self._poolconf, "reboot.php": self._reboot}
        if page in handlers:
            return handlers[page]()
        if page in ("led_conf.php", "set_mining_mode.php") and request.method == "POST":
            try:
                body = orjson.loads(request.body or b"null")
            except orjson.JSONDecodeError:
                body = None
            if not isinstance(body, dict):
                return HttpResponse.of_json({"status": "error", "message": "invalid request"}, status=400)
            return self._led(body) if page == "led_conf.php" else self._mining_mode(body)
        return HttpResponse(status=404, body=b"404 Not Found", content_type="text/html")

    def _login(self, request: HttpRequest) -> HttpResponse:
        s = self.state
        form = {k: v[-1] for k, v in parse_qs(request.body.decode("utf-8", "replace")).items()}
        if self.auth_refused() or (form.get("username"), form.get("origin_pwd")) != (s.username, s.password):
            return HttpResponse.of_json({"status": "error", "message": "username or password error"})
        session = secrets.token_hex(13)
        s.extra["sessions"].add(session)
        response = HttpResponse.of_json({"status": "success"})
        response.headers["Set-Cookie"] = f"PHPSESSID={session}; path=/"
        return response

    def _system_info(self) -> HttpResponse:
        s = self.state
        return HttpResponse.of_json({
            "DHCP": "true", "brand": "Sealminer", "crtl_sn": s.serial, "ctrl_version": "taurus_air_v1.1",
            "firmware_version": s.firmware_version, "ipaddress": s.ip, "led": "on" if s.fault_light else "off",
            "macaddr": s.mac.lower(), "miner_type": self.model_name, "miningMode": str(s.extra["mining_mode"]),
            **MINING_MODES, "nomalPowerRatio": None, "psu_model": "boco_v2.0", "ratedHashrate": 0,
            "systemTime": time.strftime("%a %b %d %H:%M:%S UTC %Y", time.gmtime()), "tuning_done": 0,
            "upgrade_result": "0\n"})

    def _psu_status(self) -> HttpResponse:
        watts = round(self.state.wattage) if self.state.mining else SUSPENDED_WATTS
        return HttpResponse.of_json({"Current": round(watts / 15.67), "Online": 1, "Power": watts,
                                     "StatusCode": "0x0000", "Temp": 26, "Voltage": 15.67})

    def _poolconf(self) -> HttpResponse:
        configured = self.state.extra["pending_pools"] or self.state.pools
        pools = configured[0].pools if configured else []
        return HttpResponse.of_json({"pools": [{"url": p.url, "user": p.username, "pass": p.password} for p in pools]})

    def _reboot(self) -> HttpResponse:
        self.restart()
        return HttpResponse.of_json({"status": "success"})

    def _led(self, body: dict[str, Any]) -> HttpResponse:
        if body.get("key") != "led" or body.get("value") not in ("on", "off"):
            return HttpResponse.of_json({"status": "error", "message": "invalid led value"}, status=400)
        self.state.fault_light = body["value"] == "on"
        return HttpResponse.of_json({"status": "success"})

    def _mining_mode(self, body: dict[str, Any]) -> HttpResponse:
        mode = body.get("miningMode")
        if mode not in MINING_MODES.values() or isinstance(mode, bool):
            return HttpResponse.of_json({"status": "error", "message": "invalid mining mode"}, status=400)
        self.state.extra["mining_mode"] = mode
        return HttpResponse.of_json({"status": "success"})
