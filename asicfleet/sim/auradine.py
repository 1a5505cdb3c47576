"""Simulated Auradine Teraflux miners (stock FluxOS firmware, Auradine's GCMiner inside).

Port 4028 answers GCMiner's CGMiner-style RPC; every reply's `STATUS[0].Description` reads
`FluxOS-<version>-<build hash>`, and `version` has the `GCMiner` field clients look for. Port 8080 is the
REST API: `POST /token` with `{"command": "token", "user", "password"}` gives `Token[0].Token`; every other
route wants that token in a `Token` header (HTTP 401 with a STATUS E body without it). `GET /<command>`
reads; `POST /<command>` with a JSON body writes (`led` code, `mode` sleep/custom power, `updatepools`,
`restart`, `password`). The reads are the same on both ports: `version`, `summary`, `devs`, `devdetails`,
`asccount`, `pools`, `ipreport`, `fan`, `led`, `mode`, `psu`, `temperature`, `voltage`, `frequency`.
Port 80 serves the web UI, whose page is titled "Miner UI".

Reply shapes follow the replies captured by asic-rs from Teraflux miners (GCMiner 2022-2023 and FluxOS
2023-12 releases; ../shared/fixtures/asic-rs/responses/auradine/v1); figures come from `self.state`. Not from
a capture: `devdetails` (only its `DEVDETAILS[0].Model` is known, from pyasic and asic-rs), the body of a
refused token or login, and whether GCMiner takes joined `a+b` commands (answered here, as CGMiner does).
"""

from __future__ import annotations

import random
import secrets
import time
from typing import Any

from asicfleet.config import Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

FIRMWARE_DATE = "2023-12.27"
BUILD_HASH = "9bf070ee4408866329c93a70f2dfdc6248938aaa"
API_VERSION = "1.0"
WEB_PORT = 8080
IDLE_WATTS = 58.94  # control board and fans, PSU output off (the captured psu reply of a sleeping miner)
PSU_MAX_WATTS = 3452.0
FAN_MAX_RPM = 7700
MAX_POOLS = 3
LED_MESSAGES = {1: "No power", 2: "Normal", 3: "Locate miner", 4: "Temperature", 5: "Pool config",
                6: "Network", 7: "Control board", 8: "Hash rate low"}
CODE = {"version": 22, "summary": 11, "devs": 9, "devdetails": 69, "asccount": 104, "pools": 7, "ipreport": 620,
        "fan": 510, "led": 530, "mode": 540, "psu": 570, "temperature": 590, "voltage": 630, "frequency": 640,
        "token": 600, "restart": 580, "updatepools": 550, "password": 610}
# the named modes' power against the nameplate (the simulator's own figures: no capture gives them)
MODE_POWER = {"eco": 0.8, "normal": 1.0, "turbo": 1.15}
# chips: a nominal frequency (MHz) and core voltage (V) at which the model's nameplate rate is reached
NOMINAL_MHZ = 300.0
NOMINAL_VOLTS = 0.245


class AuradineSim(SimMiner):
    family = "auradine"
    make = "Auradine"
    firmware = "Stock"
    models = ("AT1500", "AT2880")
    services = (Service(4028, "rpc"), Service(80, "http"), Service(WEB_PORT, "http"))
    http_server_header = None
    default_username = "admin"
    default_password = "admin"
    token_seconds = 3600.0  # a token lapses this long after it was given

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.firmware_version = FIRMWARE_DATE
        s.serial = "AU" + "".join(rng.choice("0123456789") for _ in range(8))
        s.extra.update(
            hash_factor=s.hashrate_ths / model.nominal_ths,  # this unit's chips against the nameplate
            watt_factor=s.wattage / model.nominal_watts,
            mode="normal",
            target_ths=model.nominal_ths,
            led_code=2,
            tokens={},  # token -> when it was given
            board_serials=[f"QAHB0123{rng.randrange(10**8):08d}" for _ in range(model.boards)],
            chassis_serial=f"{rng.randrange(10**6):06d}",
            control_board="T0",
            psu_fans=[rng.randrange(3800, 4400, 4) for _ in range(2)],
        )
        assert isinstance(miner, AuradineSim)
        return miner

    def restart(self) -> None:
        self.state.extra["tokens"].clear()  # tokens live in memory: a reboot ends them
        super().restart()

    # ----- replies ----------------------------------------------------------------------------
    @property
    def description(self) -> str:
        return f"FluxOS-{self.state.firmware_version}-{BUILD_HASH}"

    def _status(self, command: str, message: str, state: str = "S", code: int | None = None) -> list[dict[str, Any]]:
        return [{"Code": code if code is not None else CODE.get(command, 0), "Description": self.description,
                 "Msg": message, "STATUS": state, "When": int(time.time())}]

    def _ok(self, command: str, message: str, **sections: Any) -> dict[str, Any]:
        return {**sections, "STATUS": self._status(command, message), "id": 1}

    def _error(self, command: str, message: str, code: int = 14) -> dict[str, Any]:
        return {"STATUS": self._status(command, message, "E", code), "id": 1}

    def rpc_invalid_request(self) -> Any:
        return self._error("", "Invalid JSON", 23)

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        read = self._reads().get(command)
        if read is None:
            self.count(f"{port}:unanswered {command}")  # tests check that clients ask nothing we lack
            return self._error(command, "Invalid command")
        return read()

    def _reads(self) -> dict[str, Any]:
        return {"version": self._version, "summary": self._summary, "devs": self._devs,
                "devdetails": self._devdetails, "asccount": self._asccount, "pools": self._pools,
                "ipreport": self._ipreport, "fan": self._fan, "led": self._led, "mode": self._mode,
                "psu": self._psu, "temperature": self._temperature, "voltage": self._voltage,
                "frequency": self._frequency}

    def _board_mhs(self) -> list[float]:
        return [round(ths * 1e6, 3) for ths in self.state.board_hashrates()]

    def _version(self) -> dict[str, Any]:
        return self._ok("version", "GCMiner versions", VERSION=[{"API": API_VERSION,
                                                                 "GCMiner": self.state.firmware_version}])

    def _summary(self) -> dict[str, Any]:
        s = self.state
        total = round(sum(self._board_mhs()), 3)
        return self._ok("summary", "Summary", SUMMARY=[{
            "Accepted": s.accepted, "Difficulty Accepted": s.accepted * 65536,
            "Difficulty Rejected": s.rejected * 65536,
            "Elapsed": s.uptime, "Hardware Errors": 0, "Last getwork": 0, "MHS 15m": total, "MHS 1m": total,
            "MHS 5m": total, "MHS 5s": total, "MHS av": total, "Rejected": s.rejected,
            "Total MH": round(total * s.uptime, 1), "Utility": round(s.accepted / max(1, s.uptime) * 60, 4)}])

    def _devs(self) -> dict[str, Any]:
        rates = self._board_mhs()
        rows = [{"DEV": n + 1, "Enabled": True, "ID": n + 1, "MHS 5s": rates[n], "Name": "ASICBoard",
                 "Status": "Alive", "Temperature": self._board_temp(n)} for n in range(self.state.model.boards)]
        return self._ok("devs", f"{len(rows)} Dev(s)", DEVS=rows)

    def _devdetails(self) -> dict[str, Any]:
        rows = [{"DEVDETAILS": n, "Name": "ASICBoard", "ID": n + 1, "Driver": "gcminer", "Kernel": "",
                 "Model": self.model_name, "Device Path": ""} for n in range(self.state.model.boards)]
        return self._ok("devdetails", "Device Details", DEVDETAILS=rows)

    def _asccount(self) -> dict[str, Any]:
        model = self.state.model
        return self._ok("asccount", "ASC count", ASCCount=[{"AsicCount": model.boards * model.chips_per_board,
                                                             "BoardCount": model.boards}])

    def _pools(self) -> dict[str, Any]:
        s = self.state
        rows = []
        for index, pool in enumerate(p for g in s.pools for p in g.pools):
            first = index == 0
            rows.append({"Accepted": s.accepted if first else 0, "POOL": index, "Priority": index, "Quota": 1,
                         "Rejected": s.rejected if first else 0, "Status": "Alive" if first else "Dead",
                         "Stratum Active": first and s.mining, "URL": pool.url, "User": pool.username})
        return self._ok("pools", f"{len(rows)} Pool(s)", POOLS=rows)

    def _ipreport(self) -> dict[str, Any]:
        s = self.state
        return self._ok("ipreport", "IP Report", IPReport=[{
            "CBSerialNo": s.serial, "ChassisSerialNo": s.extra["chassis_serial"],
            "HBSerialNo": s.extra["board_serials"],
            "InternalType": s.extra["control_board"], "SerialNo": s.serial, "command": "ipreport",
            "hostname": s.hostname, "ip": s.ip, "mac": s.mac.lower(), "model": self.model_name,
            "version": s.firmware_version}])

    def _fan(self) -> dict[str, Any]:
        rows = [{"ID": i + 1, "Max": FAN_MAX_RPM, "Speed": rpm, "Target": round(rpm, -2)}
                for i, rpm in enumerate(self.state.fan_rpms)]
        return self._ok("fan", f"Total fans: {len(rows)}", Fan=rows)

    def _led(self) -> dict[str, Any]:
        code = self.state.extra["led_code"]
        return self._ok("led", "Total LEDs 2", LED=[{"Code": code, "LED1": 1, "LED2": 1 if code == 2 else 5,
                                                     "Msg": LED_MESSAGES.get(code, "Custom")}])

    def _mode(self) -> dict[str, Any]:
        s = self.state
        sleeping = "on" if not s.mining else "off"
        return self._ok("mode", f"Operating mode: '{s.extra['mode']}', sleep: '{str(not s.mining).lower()}'",
                        Mode=[{"Mode": s.extra["mode"], "Power": round(s.power_limit), "Sleep": sleeping,
                               "Ths": round(s.extra["target_ths"], 1)}])

    def _psu(self) -> dict[str, Any]:
        s = self.state
        watts_in = round(s.wattage, 2) if s.mining else IDLE_WATTS
        watts_out = round(watts_in * 0.96, 2) if s.mining else 0.0
        return self._ok("psu", "PSU status", PSU=[{
            "FanSpeed1": f"{s.extra['psu_fans'][0]:.2f} RPM", "FanSpeed2": f"{s.extra['psu_fans'][1]:.2f} RPM",
            "Iin": f"{watts_in / 245:.2f}A", "Iout": f"{watts_out / 12.5:.2f}A", "PoutMax": f"{PSU_MAX_WATTS:.2f}W",
            "PowerIn": f"{watts_in:.2f}W", "PowerOut": f"{watts_out:.2f}W", "Vin": "245.00V",
            "Vout": "12.50V" if s.mining else "11.53V", "VoutSet": "12.50V" if s.mining else "11.50V"}])

    def _board_temp(self, board: int) -> float:
        return self.state.board_temps[board] if self.state.mining else 28.0

    def _board_sensors(self, board: int) -> list[float]:
        """Five PCB sensors: three on the intake side, two on the exhaust; the board temperature between them."""
        mean = self._board_temp(board)
        return [mean - 8, mean - 9, mean - 7, mean + 9, mean + 8]

    def _chip_rows(self, key: str, value: Any) -> list[dict[str, Any]]:
        return [{"ID": chip, key: value(chip)} for chip in range(self.state.model.chips_per_board)]

    def _temperature(self) -> dict[str, Any]:
        rows: list[dict[str, Any]] = [{"BoardTemp": [{"ID": 0, "Temperature": 24.9375}], "ChipTemp": None, "ID": 0,
                                       "Name": "Control Board"}]
        for board in range(self.state.model.boards):
            chip_temp = self._board_temp(board) + 10 if self.state.mining else 0.0
            rows.append({"BoardTemp": [{"ID": i, "Temperature": t} for i, t in enumerate(self._board_sensors(board))],
                         "ChipTemp": self._chip_rows("Temperature", lambda c, t=chip_temp: t), "ID": board + 1,
                         "Name": f"Hash Board {board + 1}"})
        return self._ok("temperature", "System temperature", Temperature=rows)

    @property
    def chip_volts(self) -> float:
        return round(NOMINAL_VOLTS * (self.state.power_limit / self.state.model.nominal_watts) ** 0.25, 4) \
            if self.state.mining else 0.0

    @property
    def chip_mhz(self) -> float:
        return round(NOMINAL_MHZ * self.state.extra["target_ths"] / self.state.model.nominal_ths, 2) \
            if self.state.mining else 0.0

    def _voltage(self) -> dict[str, Any]:
        rows = [{"ChipVoltage": self._chip_rows("Voltage", lambda c: self.chip_volts), "ID": board + 1,
                 "Name": f"Hash Board {board + 1}"} for board in range(self.state.model.boards)]
        return self._ok("voltage", "System voltage", Voltage=rows)

    def _frequency(self) -> dict[str, Any]:
        rows = [{"ChipFrequency": self._chip_rows("Frequency", lambda c: self.chip_mhz), "ID": board + 1,
                 "Name": f"Hash Board {board + 1}"} for board in range(self.state.model.boards)]
        return self._ok("frequency", "System frequency", Frequency=rows)

    # ----- writes -----------------------------------------------------------------------------
    def _set_power(self, watts: float) -> None:
        s, model = self.state, self.state.model
        ratio = watts / model.nominal_watts
        s.power_limit = float(watts)
        s.extra["target_ths"] = round(model.nominal_ths * ratio, 1)
        s.hashrate_ths = round(s.extra["target_ths"] * s.extra["hash_factor"], 3)
        s.wattage = round(watts * s.extra["watt_factor"], 1)

    def _write_mode(self, body: dict[str, Any]) -> dict[str, Any]:
        s = self.state
        sleep = body.get("sleep")
        if sleep is not None:
            if sleep not in ("on", "off"):
                return self._error("mode", f"Invalid sleep value '{sleep}'", 45)
            s.mining = sleep == "off"
        mode = body.get("mode")
        if mode in MODE_POWER:
            s.extra["mode"] = mode
            self._set_power(s.model.nominal_watts * MODE_POWER[mode])
        elif mode is not None:
            if mode != "custom" or body.get("tune") not in ("power", "ths", None):
                return self._error("mode", f"Unsupported mode '{mode}'", 45)
            if body.get("tune") == "ths":
                rate = body.get("ths")
                if not isinstance(rate, int | float) or not 0.5 <= rate / s.model.nominal_ths <= 1.15:
                    return self._error("mode", f"Ths must be {0.5 * s.model.nominal_ths:.0f}.."
                                               f"{1.15 * s.model.nominal_ths:.0f}", 45)
                s.extra["mode"] = "custom"
                self._set_power(s.model.nominal_watts * rate / s.model.nominal_ths)
                return self._mode()
            power = body.get("power")
            low, high = 0.5 * s.model.nominal_watts, 1.15 * s.model.nominal_watts
            if not isinstance(power, int | float) or not low <= power <= high:
                return self._error("mode", f"Power must be {low:.0f}..{high:.0f} W", 45)
            s.extra["mode"] = "custom"
            self._set_power(float(power))
        return self._mode()

    def _write_led(self, body: dict[str, Any]) -> dict[str, Any]:
        code = body.get("code")
        if code not in LED_MESSAGES and code not in (101, 102):
            return self._error("led", f"Invalid LED code '{code}'", 45)
        self.state.extra["led_code"] = code
        self.state.fault_light = code == 3
        return self._led()

    def _write_pools(self, body: dict[str, Any]) -> dict[str, Any]:
        given = body.get("pools")
        if not isinstance(given, list) or not 1 <= len(given) <= MAX_POOLS:
            return self._error("updatepools", f"Give 1..{MAX_POOLS} pools", 45)
        try:
            pools = [Pool(url=p["url"], username=p["user"], password=p.get("pass") or "x") for p in given]
        except (KeyError, TypeError, ValueError):
            return self._error("updatepools", "Invalid pool", 45)
        self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)]
        return self._pools()

    def _write_password(self, body: dict[str, Any]) -> dict[str, Any]:
        s = self.state
        if body.get("user") != s.username or not secrets.compare_digest(str(body.get("old", "")), s.password):
            return self._error("password", "Invalid user or password", 45)
        if not isinstance(body.get("new"), str) or not body["new"]:
            return self._error("password", "Invalid new password", 45)
        s.password = body["new"]
        s.extra["tokens"].clear()
        return self._ok("password", "Password changed")

    def _write_restart(self, body: dict[str, Any]) -> dict[str, Any]:
        if body.get("parameter") in ("gcminer", "api-server"):
            self.state.boot_time = time.time()  # the process restarts, the device stays up
            return self._ok("restart", f"Restarting {body['parameter']}")
        self.restart()
        return self._ok("restart", "Rebooting")

    # ----- web --------------------------------------------------------------------------------
    def _token_ok(self, request: HttpRequest) -> bool:
        token = request.headers.get("token", "")
        given = self.state.extra["tokens"].get(token)
        return given is not None and time.monotonic() - given < self.token_seconds

    def _login(self, request: HttpRequest) -> HttpResponse:
        try:
            body = request.json()
        except ValueError:
            body = None
        s = self.state
        if not isinstance(body, dict):
            return HttpResponse.of_json(self._error("token", "Invalid JSON", 23), 400)
        if self.auth_refused() or body.get("user") != s.username or \
                not secrets.compare_digest(str(body.get("password", "")), s.password):
            return HttpResponse.of_json(self._error("token", "Invalid user or password", 45), 401)
        token = secrets.token_hex(16)
        s.extra["tokens"][token] = time.monotonic()
        return HttpResponse.of_json(self._ok("token", "Token", Token=[{"Token": token}]))

    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.port == 80:
            if request.path in ("/", "/index.html"):
                return HttpResponse.html('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                                         "<title>Miner UI</title></head><body><div id=\"app\"></div></body></html>")
            self.count(f"{request.port}:unanswered {request.method} {request.path}")
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        command = request.path.strip("/")
        if command == "token" and request.method == "POST":
            return self._login(request)
        if not self._token_ok(request):
            return HttpResponse.of_json(self._error(command, "Invalid or expired token", 45), 401)
        if request.method == "GET":
            read = self._reads().get(command)
            if read is None:
                self.count(f"{request.port}:unanswered GET {request.path}")
                return HttpResponse.of_json(self._error(command, "Invalid command"), 404)
            return HttpResponse.of_json(read())
        if request.method != "POST":
            return HttpResponse.of_json(self._error(command, "Method not allowed"), 405)
        try:
            body = request.json()
        except ValueError:
            return HttpResponse.of_json(self._error(command, "Invalid JSON", 23), 400)
        body = body if isinstance(body, dict) else {}
        writes = {"mode": self._write_mode, "led": self._write_led, "updatepools": self._write_pools,
                  "password": self._write_password, "restart": self._write_restart}
        if command in writes:
            return HttpResponse.of_json(writes[command](body))
        read = self._reads().get(command)  # a POST without settings reads, as pyasic sends some reads
        if read is not None:
            return HttpResponse.of_json(read())
        self.count(f"{request.port}:unanswered POST {request.path}")
        return HttpResponse.of_json(self._error(command, "Invalid command"), 404)

    def inventory(self) -> dict[str, Any]:
        return {**super().inventory(), "mode": self.state.extra["mode"]}
