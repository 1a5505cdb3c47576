"""Simulated LuxOS (Luxor's LUXminer firmware) on Antminer hardware.

Port 4028 answers LUXminer's CGMiner-style RPC: every reply's `STATUS[0].Description` reads
`LUXminer <version>`, which is how clients tell it from stock bmminer, and parameterless commands
may be joined with `+`. Reads: `version`, `summary`, `stats`, `pools`, `groups`, `devs`,
`devdetails`, `config`, `profiles`, `power`, `temps`, `fans`, `tempctrl`, `atm`, `events`, `limits`,
`session`, and per board `voltageget <board>` and `healthchipget <board>[,chip]`.

Writes that change the miner's configuration need a session: `logon` creates one (only one may
exist; it expires after 60 s without use) and its id is the first comma-separated parameter of
`curtail`, `ledset`, `profileset`, `fanset`, `atmset`, `rebootdevice`, `resetminer` and `logoff`.
The pool commands (`addgroup`, `removegroup`, `groupquota`, `addpool`, `removepool`, `switchpool`)
are taken without a session, as pyasic and asic-rs send them.

Port 80 serves the LuxOS web UI, whose page names "Luxor Firmware".

Reply shapes follow the LUXminer 2025.4 replies captured by asic-rs (an S19k Pro; see
tests/fixtures/luxos/README.md) and Luxor's API documentation; figures come from `self.state`. The
error codes of refused session commands are not from a capture (no such reply was published).
"""

from __future__ import annotations

import random
import secrets
import time
from dataclasses import dataclass
from typing import Any

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

LUXMINER_VERSION = "2025.4.8.220305-57b389c7"
API_VERSION = "3.7"
COMPILE_TIME = "Tue Apr  8 22:05:35 UTC 2025"
SESSION_SECONDS = 60.0  # a session expires this long after its last use
MAX_FAN_RPM = 6000
SLEEP_WATTS = 15  # control board and fans while the hashboards and PSU output are off
PROFILE_STEPS = range(-16, 9)  # LuxOS builds 16 steps below the default and 8 above
FREQUENCY_STEP = 25  # MHz per profile step
VOLTAGE_STEP = 0.1  # V per profile step
# commands that change the miner and so need the session id as their first parameter
SESSION_COMMANDS = frozenset({"curtail", "ledset", "profileset", "fanset", "atmset", "rebootdevice", "resetminer",
                              "logoff", "frequencyset", "voltageset", "healthchipset", "reboot"})
LED_STATES = ("auto", "on", "off", "blink")

# Codes of the documented replies; 14 and 45 are CGMiner's "invalid command" / "access denied".
CODE = {"version": 22, "summary": 11, "stats": 70, "pools": 7, "devs": 9, "devdetails": 69, "config": 33,
        "groups": 305, "profiles": 327, "power": 311, "temps": 201, "fans": 202, "tempctrl": 200, "atm": 339,
        "events": 357, "limits": 320, "session": 319, "logon": 316, "logoff": 317, "curtail": 335, "ledset": 324,
        "profileset": 321, "fanset": 203, "atmset": 340, "rebootdevice": 318, "resetminer": 328,
        "addgroup": 300, "removegroup": 303, "groupquota": 304, "addpool": 55, "removepool": 68,
        "switchpool": 27}


@dataclass(frozen=True)
class Nameplate:
    """A model's LuxOS default profile: what its EEPROM says the boards run at."""

    frequency: int  # MHz
    voltage: float  # V
    control_board: str  # CONFIG.ControlBoardType
    board: str  # DEVS.Board


NAMEPLATES: dict[str, Nameplate] = {
    "Antminer S19": Nameplate(650, 13.8, "xilinx", "BHB42611"),
    "Antminer S19 Pro": Nameplate(675, 13.9, "xilinx", "BHB42601"),
    "Antminer S19j Pro": Nameplate(545, 13.4, "amlogic", "BHB42801"),
    "Antminer S19 XP": Nameplate(500, 13.5, "cvitek", "BHB56903"),
    "Antminer S21": Nameplate(490, 13.2, "cvitek", "BHB68606"),
    "Antminer T21": Nameplate(480, 13.6, "cvitek", "BHB68703"),
}


def _profile_name(step: int, frequency: int) -> str:
    return "default" if step == 0 else f"{frequency}MHz"


class LuxOSSim(SimMiner):
    family = "luxos"
    make = "AntMiner"
    firmware = "LuxOS"
    models = tuple(NAMEPLATES)
    services = (Service(4028, "rpc"), Service(80, "http"))
    http_server_header = None
    rpc_terminator = b"\n"  # LUXminer ends a reply with a newline, not CGMiner's NUL

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in NAMEPLATES  # its profiles step from a nameplate

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.firmware_version = LUXMINER_VERSION.split("-")[0]
        s.extra.update(
            hash_factor=s.hashrate_ths / model.nominal_ths,  # this unit's chips against the nameplate
            watt_factor=s.wattage / model.nominal_watts,
            profile="default",
            red_led="auto",
            green_led="auto",
            curtailed=False,
            atm_enabled=True,
            min_fans=max(1, model.fans - 1),
            power_off_speed=20,
            auto_fan_rpms=list(s.fan_rpms),
            session_id="",
            session_used=0.0,
            board_serials=["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(17))
                           for _ in range(model.boards)],
            events=[],  # extra LUXminer events (dicts as `events` lists them), for tests
        )
        s.extra["groups"] = [[g.name, g.quota, list(g.pools)] for g in s.pools]
        assert isinstance(miner, LuxOSSim)
        miner._apply_profile("default")
        return miner

    @property
    def nameplate(self) -> Nameplate:
        return NAMEPLATES[self.state.model.name]

    # ----- profiles -----------------------------------------------------------------------------
    def profiles(self) -> list[dict[str, Any]]:
        """The built-in profiles: 25 MHz / 0.1 V steps around the nameplate, figures scaled from it."""
        model, plate = self.state.model, self.nameplate
        rows = []
        for step in PROFILE_STEPS:
            frequency = plate.frequency + step * FREQUENCY_STEP
            ratio = frequency / plate.frequency
            rows.append({
                "CanRestore": True, "Frequency": frequency, "HasOverrides": False,
                "Hashrate": round(model.nominal_ths * ratio, 1), "IsDynamic": True,
                "IsTuned": _profile_name(step, frequency) == self.state.extra["profile"],
                "Profile Name": _profile_name(step, frequency), "Step": str(step),
                "Voltage": round(plate.voltage + step * VOLTAGE_STEP, 2),
                "Watts": round(model.nominal_watts * ratio ** 1.6),
            })
        return rows

    def _profile(self, name: str) -> dict[str, Any] | None:
        return next((p for p in self.profiles() if p["Profile Name"] == name), None)

    def _apply_profile(self, name: str) -> None:
        s = self.state
        profile = self._profile(name)
        assert profile is not None
        s.extra["profile"] = name
        s.hashrate_ths = round(profile["Hashrate"] * s.extra["hash_factor"], 3)
        s.wattage = round(profile["Watts"] * s.extra["watt_factor"], 1)
        s.power_limit = float(profile["Watts"])

    @property
    def frequency(self) -> float:
        profile = self._profile(self.state.extra["profile"])
        return float(profile["Frequency"]) if profile and self.state.mining else 0.0

    # ----- replies ----------------------------------------------------------------------------
    def _status(self, command: str, message: str, state: str = "S", code: int | None = None) -> list[dict[str, Any]]:
        return [{"Code": code if code is not None else CODE.get(command, 0),
                 "Description": f"LUXminer {LUXMINER_VERSION}", "Msg": message, "STATUS": state,
                 "When": int(time.time())}]

    def _ok(self, command: str, message: str, **sections: Any) -> dict[str, Any]:
        return {**sections, "STATUS": self._status(command, message), "id": 1}

    def _error(self, command: str, message: str, code: int = 14) -> dict[str, Any]:
        return {"STATUS": self._status(command, message, "E", code), "id": 1}

    def rpc_invalid_request(self) -> Any:
        return self._error("", "Invalid JSON", 23)

    def rpc_join(self, parts: list[str], parameter: Any, port: int) -> dict[str, Any]:
        if parameter not in (None, ""):  # LUXminer joins parameterless commands only
            self.count(f"{port}:{'+'.join(parts)}")
            return self._error("", "Multiple commands can only be parameterless", 45)
        return super().rpc_join(parts, parameter, port)

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        params = [p.strip() for p in str(parameter).split(",")] if parameter not in (None, "") else []
        if command in SESSION_COMMANDS:
            refusal = self._check_session(command, params)
            if refusal is not None:
                return refusal
            params = params[1:]
        reads = {"version": self._version, "summary": self._summary, "stats": self._stats, "pools": self._pools,
                 "groups": self._groups, "devs": self._devs, "devdetails": self._devdetails, "config": self._config,
                 "profiles": self._profiles, "power": self._power, "temps": self._temps, "fans": self._fans,
                 "tempctrl": self._tempctrl, "atm": self._atm, "events": self._events, "limits": self._limits,
                 "session": self._session, "logon": self._logon}
        if command in reads:
            return reads[command]()
        per_board = {"voltageget": self._voltageget, "healthchipget": self._healthchipget}
        if command in per_board:
            return per_board[command](params)
        writes = {"logoff": self._logoff, "curtail": self._curtail, "ledset": self._ledset,
                  "profileset": self._profileset, "fanset": self._fanset, "atmset": self._atmset,
                  "rebootdevice": self._rebootdevice, "resetminer": self._resetminer, "addgroup": self._addgroup,
                  "removegroup": self._removegroup, "groupquota": self._groupquota, "addpool": self._addpool,
                  "removepool": self._removepool, "switchpool": self._switchpool}
        if command in writes:
            return writes[command](params)
        return self._error(command, "Invalid command")

    # ----- sessions ---------------------------------------------------------------------------
    def _live_session(self) -> str:
        extra = self.state.extra
        if extra["session_id"] and time.monotonic() - extra["session_used"] > SESSION_SECONDS:
            extra["session_id"] = ""
        return str(extra["session_id"])

    def _check_session(self, command: str, params: list[str]) -> dict[str, Any] | None:
        current = self._live_session()
        if not params or not params[0]:
            return self._error(command, f"Missing session id for '{command}'", 45)
        if not current or not secrets.compare_digest(params[0], current):
            return self._error(command, "Invalid session id", 45)
        self.state.extra["session_used"] = time.monotonic()
        return None

    def _session(self) -> dict[str, Any]:
        return self._ok("session", "Session information", SESSION=[{"SessionID": self._live_session()}])

    def _logon(self) -> dict[str, Any]:
        if self.auth_refused():
            return self._error("logon", "Logon refused", 45)
        if self._live_session():
            return self._error("logon", "Another session is active", 45)
        sid = "".join(self.rng.choice("abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789") for _ in range(8))
        self.state.extra.update(session_id=sid, session_used=time.monotonic())
        return self._ok("logon", "Session created", SESSION=[{"SessionID": sid}])

    def _logoff(self, params: list[str]) -> dict[str, Any]:
        self.state.extra["session_id"] = ""
        return self._ok("logoff", "Session closed")

    # ----- reads ------------------------------------------------------------------------------
    def _board_rates_ghs(self) -> list[float]:
        return [round(ths * 1000, 2) for ths in self.state.board_hashrates()]

    def _board_sensors(self, board: int) -> list[int]:
        """Four PCB sensors, two on the exhaust (hot) side and two on the intake side; whole degrees,
        as LUXminer writes them. Their mean is the board temperature."""
        mean = round(self.state.board_temps[board]) if self.state.mining else 30
        return [mean + 6, mean - 6, mean - 6, mean + 6]

    def _version(self) -> dict[str, Any]:
        return self._ok("version", "LUXminer versions", VERSION=[{
            "API": API_VERSION, "CompileTime": COMPILE_TIME, "LUXminer": LUXMINER_VERSION,
            "Miner": self.state.firmware_version, "Type": self.model_name}])

    def _summary(self) -> dict[str, Any]:
        s = self.state
        total = round(sum(self._board_rates_ghs()), 2)
        return self._ok("summary", "Summary", SUMMARY=[{
            "Accepted": s.accepted, "Best Share": 32768, "Device Hardware%": 0.0, "Device Rejected%": 0.0,
            "Difficulty Accepted": s.accepted * 32768, "Difficulty Rejected": s.rejected * 32768,
            "Difficulty Stale": 0, "Discarded": 0, "Elapsed": s.uptime, "Found Blocks": 0,
            "GHS 15m": total, "GHS 1m": total, "GHS 24h": total, "GHS 30m": total, "GHS 5m": total, "GHS 5s": total,
            "GHS av": total, "Get Failures": 0, "Getworks": s.accepted // 2, "Hardware Errors": 0,
            "Last getwork": int(time.time()), "Local Work": 0, "Network Blocks": 0, "Pool Rejected%": 0.0,
            "Pool Stale%": 0.0, "Rejected": s.rejected, "Remote Failures": 0, "Stale": 0,
            "Total MH": round(total * 1000 * s.uptime, 1), "Utility": round(s.accepted / max(1, s.uptime) * 60, 2),
            "Work Utility": 11.5}])

    def _stats(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        rates = self._board_rates_ghs()
        total = round(sum(rates), 2)
        slots = max(4, model.boards)
        row: dict[str, Any] = {"Calls": 0, "Elapsed": s.uptime, "GHS 5s": total, "GHS av": total, "ID": "BTM_SOC0",
                               "Max": 0, "Min": 99999999, "Mode": 2, "STATS": 0, "Wait": 0}
        for n in range(1, slots + 1):
            present = n <= model.boards
            row[f"chain_acn{n}"] = model.chips_per_board if present and s.mining else 0
            row[f"chain_acs{n}"] = " oooo" * (model.chips_per_board // 4) if present else ""
            row[f"chain_hw{n}"] = 0
            row[f"chain_rate{n}"] = f"{rates[n - 1]:.2f}" if present else "0"
        for i, rpm in enumerate(s.fan_rpms, start=1):
            row[f"fan{i}"] = rpm
        row["fan_num"] = len(s.fan_rpms)
        for n in range(1, slots + 1):
            row[f"freq{n}"] = self.frequency if n <= model.boards else 0.0
        row.update({"frequency": int(self.frequency), "miner_count": model.boards,
                    "miner_id": s.mac.replace(":", "").lower(), "miner_version": s.firmware_version,
                    "no_matching_work": 0, "rate_30m": total, "rate_unit": "GH"})
        for n in range(1, model.boards + 1):
            row[f"temp{n}"] = float(max(self._board_sensors(n - 1)))
        for n in range(1, slots + 1):
            sensors = self._board_sensors(n - 1) if n <= model.boards else [0, 0, 0, 0]
            text = "-".join(str(t) for t in sensors)
            row[f"temp_chip{n}"] = text
            row[f"temp_pcb{n}"] = text
            row[f"temp_pic{n}"] = text
        row.update({"temp_max": float(max(max(self._board_sensors(i)) for i in range(model.boards))),
                    "temp_num": model.boards, "total rate": total, "total_acn": model.boards * model.chips_per_board,
                    "total_freqavg": self.frequency,
                    "total_rateideal": round(model.nominal_ths * 1000 * self._ratio(), 1)})
        program = {"CompileTime": COMPILE_TIME, "Miner": s.firmware_version, "Type": self.model_name}
        return self._ok("stats", "LUXminer stats", STATS=[program, row])

    def _ratio(self) -> float:
        """The current profile's frequency against the nameplate's (1.0 on the default profile)."""
        profile = self._profile(self.state.extra["profile"])
        return float(profile["Frequency"]) / self.nameplate.frequency if profile else 1.0

    def _pools(self) -> dict[str, Any]:
        s = self.state
        rows = []
        index = 0
        for group_id, (_, quota, pools) in enumerate(self._group_list()):
            for position, pool in enumerate(pools):
                first = position == 0
                accepted, rejected = (s.accepted, s.rejected) if first and group_id == 0 else (0, 0)
                active = first and s.mining
                rows.append({
                    "Accepted": accepted, "AsicBoost": True, "Bad Work": 0, "Best Share": 32768 if active else 0,
                    "Current Block Height": 0, "Current Block Version": 536870912 if active else 0,
                    "Diff": "32K" if active else "0", "Diff1 Shares": accepted * 32768,
                    "Difficulty Accepted": accepted * 32768, "Difficulty Rejected": rejected * 32768,
                    "Difficulty Stale": 0, "Discarded": 0, "GROUP": group_id, "Get Failures": 0,
                    "Getworks": accepted // 2, "Has GBT": False, "Has Stratum": True, "Has Vmask": True,
                    "Last Share Difficulty": 32768 if active else 0,
                    "Last Share Time": "00:00:01" if active else "00:57:33", "Long Pool": "N", "POOL": index,
                    "Pool Rejected%": 0.0, "Pool Stale%": 0.0, "Priority": index, "Proxy": "", "Proxy Type": "",
                    "Quota": float(quota), "Rejected": rejected, "Remote Failures": 0, "Stale": 0,
                    "Status": "Alive", "Stratum Active": active, "Stratum Difficulty": 32768 if active else 0,
                    "Stratum URL": pool.url.split("://", 1)[-1], "URL": pool.url, "User": pool.username,
                    "Work Difficulty": 32768 if active else 0, "Works": 0,
                })
                index += 1
        return self._ok("pools", f"{len(rows)} Pool(s)", POOLS=rows)

    def _groups(self) -> dict[str, Any]:
        groups = [{"GROUP": i, "Name": name, "Quota": float(quota), "Strategy": "Failover"}
                  for i, (name, quota, _) in enumerate(self._group_list())]
        return self._ok("groups", f"{len(groups)} Group(s)", GROUPS=groups)

    def _devs(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        nominal_mhs = round(model.nominal_ths * 1e6 * self._ratio() / model.boards, 1)
        rows = []
        for board, ths in enumerate(s.board_hashrates()):
            mhs = round(ths * 1e6, 3)
            rows.append({
                "ASC": board, "Accepted": s.accepted // model.boards, "Board": self.nameplate.board,
                "Connector": f"J{board + 7}", "Device Elapsed": s.uptime, "Device Hardware%": 0,
                "Device Rejected%": 0, "Enabled": "Y", "Hardware Errors": 0, "ID": board, "IsRamping": False,
                "IsUserShutdown": False, "MHS 15m": mhs, "MHS 1m": mhs, "MHS 30m": mhs, "MHS 5m": mhs, "MHS 5s": mhs,
                "MHS 60m": mhs, "MHS av": mhs, "Name": "", "Nominal MHS": nominal_mhs, "Profile": s.extra["profile"],
                "Rejected": 0, "SerialNumber": s.extra["board_serials"][board],
                "Status": "Alive" if s.mining else "Sleep",
                "Temperature": float(max(self._board_sensors(board))), "Total MH": mhs * s.uptime, "Utility": 0,
            })
        return self._ok("devs", f"{len(rows)} ASC(s)", DEVS=rows)

    def _devdetails(self) -> dict[str, Any]:
        rows = [{"DEVDETAILS": i, "Name": "", "ID": i, "Driver": "luxminer", "Kernel": "", "Model": self.model_name,
                 "Device Path": "", "Connector": f"J{i + 7}"} for i in range(self.state.model.boards)]
        return self._ok("devdetails", "Device Details", DEVDETAILS=rows)

    def _config(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        return self._ok("config", "LUXminer config", CONFIG=[{
            "ASC Count": model.boards, "BcastAddr": "", "ControlBoardType": self.nameplate.control_board,
            "Cooling": "Air", "CurtailMode": "Sleep" if s.extra["curtailed"] else "None", "DHCP": True,
            "DNS Servers": "", "Device Code": "", "FeeStatus": "Ok", "Gateway": "", "GreenLed": s.extra["green_led"],
            "Hostname": s.hostname, "Hotplug": "None", "IPAddr": s.ip, "ImmersionMode": False,
            "IsAtmEnabled": s.extra["atm_enabled"], "IsPowerSupplyOn": not s.extra["curtailed"],
            "IsSingleVoltage": True, "IsTuning": False, "Log Interval": 0, "LogFileLevel": "info",
            "MACAddr": s.mac.lower(), "Model": self.model_name, "NameplateTHS": model.nominal_ths,
            "Netmask": "255.255.255.0", "OS": "LuxOS", "PGA Count": 0, "PSUHwVersion": "75", "PSULabel": "APW121215e",
            "Pool Count": sum(len(g[2]) for g in self._group_list()), "Profile": s.extra["profile"],
            "ProfileStep": next((p["Step"] for p in self.profiles() if p["Profile Name"] == s.extra["profile"]), "0"),
            "RedLed": s.extra["red_led"], "SerialNumber": s.serial, "Strategy": "Failover",
            "SystemStatus": "Sleep" if s.extra["curtailed"] else "Normal", "UpdateOnStartup": "off",
            "UpdateOnTimeout": "off", "UpdateOnUser": "full",
            "UpdateSource": "https://storage.googleapis.com/luxor-firmware/stable", "UpdateTimeout": 60}])

    def _profiles(self) -> dict[str, Any]:
        rows = self.profiles()
        return self._ok("profiles", f"{len(rows)} Profile(s)", PROFILES=rows)

    def _power(self) -> dict[str, Any]:
        watts = round(self.state.wattage) if self.state.mining else SLEEP_WATTS
        return self._ok("power", "Power usage", POWER=[{"PSU": False, "Watts": watts}])

    def _temps(self) -> dict[str, Any]:
        rows = []
        for board in range(self.state.model.boards):
            top_left, top_right, bottom_right, bottom_left = self._board_sensors(board)
            rows.append({"BottomLeft": float(bottom_left), "BottomRight": float(bottom_right), "ID": board,
                         "TEMP": board, "TopLeft": float(top_left), "TopRight": float(top_right)})
        meta = {"BottomLeft": {"Label": "Board Exhaust (bottom)", "Position": [1, 0]},
                "BottomRight": {"Label": "Board Intake (bottom)", "Position": [1, 1]},
                "TopLeft": {"Label": "Board Exhaust (top)", "Position": [0, 0]},
                "TopRight": {"Label": "Board Intake (top)", "Position": [0, 1]}}
        return self._ok("temps", f"{len(rows)} Temp(s)", METADATA=[meta], TEMPS=rows)

    def _fan_percent(self) -> int:
        fan = self.state.fan
        if fan.mode == "manual" and fan.fan_speed is not None:
            return fan.fan_speed
        return round(sum(self.state.fan_rpms) / max(1, len(self.state.fan_rpms)) / MAX_FAN_RPM * 100)

    def _fans(self) -> dict[str, Any]:
        percent = self._fan_percent()
        rows = [{"FAN": f"FAN{i + 1}", "ID": i, "RPM": rpm, "Speed": percent}
                for i, rpm in enumerate(self.state.fan_rpms)]
        return self._ok("fans", f"{len(rows)} Fan(s)", FANCTRL=[{
            "MinFans": self.state.extra["min_fans"], "PowerOffSpeed": self.state.extra["power_off_speed"]}],
            FANS=rows)

    def _tempctrl(self) -> dict[str, Any]:
        mode = "Manual" if self.state.fan.mode == "manual" else "Auto"
        return self._ok("tempctrl", "Temperature control", TEMPCTRL=[{
            "Dangerous": 70.0, "Hot": 65.0, "Mode": mode, "Target": 55.0}])

    def _atm(self) -> dict[str, Any]:
        profiles = self.profiles()
        return self._ok("atm", "Advanced Thermal Management configuration", ATM=[{
            "Enabled": self.state.extra["atm_enabled"], "MaxProfile": profiles[-1]["Profile Name"],
            "MinProfile": profiles[0]["Profile Name"], "PostRampMinutes": 15, "StartupMinutes": 15,
            "TempWindow": 7}])

    def _events(self) -> dict[str, Any]:
        s = self.state
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S+00:00", time.gmtime(s.boot_time))
        events: list[dict[str, Any]] = []
        if s.extra["curtailed"]:
            events.append({"Code": "SLEEP", "CreatedAt": stamp, "Description": "Miner is in Sleep mode.",
                           "Target": "MINER"})
        events += [{"Code": f"ERROR_{code}", "CreatedAt": stamp, "Description": text, "Target": "MINER"}
                   for code, text in s.messages]
        events += list(s.extra["events"])
        return self._ok("events", "Miner Events", EVENTS=events)

    def _limits(self) -> dict[str, Any]:
        profiles = self.profiles()
        return self._ok("limits", "Limits", LIMITS=[{
            "FanSpeedMax": 100, "FanSpeedMin": -1, "FrequencyMax": profiles[-1]["Frequency"],
            "FrequencyMin": profiles[0]["Frequency"], "MinFansMax": self.state.model.fans, "MinFansMin": 0}])

    def _board_param(self, command: str, params: list[str]) -> int | dict[str, Any]:
        """The board id a per-board read names, or the error reply."""
        if not params or not params[0].isdigit() or int(params[0]) >= self.state.model.boards:
            return self._error(command, f"Invalid board id (0..{self.state.model.boards - 1})", 45)
        return int(params[0])

    def _voltageget(self, params: list[str]) -> dict[str, Any]:
        board = self._board_param("voltageget", params)
        if isinstance(board, dict):
            return board
        profile = self._profile(self.state.extra["profile"])
        volts = float(profile["Voltage"]) if profile and self.state.mining else 0.0
        return self._ok("voltageget", "Get Voltage", VOLTAGE=[{"Board": board, "Voltage": volts}])

    def _healthchipget(self, params: list[str]) -> dict[str, Any]:
        board = self._board_param("healthchipget", params)
        if isinstance(board, dict):
            return board
        chips = self.state.model.chips_per_board
        per_chip = round(self._board_rates_ghs()[board] / chips, 2)
        rows = [{"Board": board, "Chip": chip, "Column": chip % 12, "Domain": chip // 4, "Frequency": self.frequency,
                 "GHS 15m": per_chip, "GHS 1m": per_chip, "GHS 5m": per_chip, "Healthy": "Y", "IsChecking": False,
                 "Row": chip // 12} for chip in range(chips)]
        if len(params) > 1 and params[1].isdigit():
            rows = [r for r in rows if r["Chip"] == int(params[1])]
        return self._ok("healthchipget", "Health Chip Get", CHIPS=rows)

    # ----- writes -----------------------------------------------------------------------------
    def _curtail(self, params: list[str]) -> dict[str, Any]:
        action = params[0].lower() if params else ""
        s = self.state
        if action == "sleep":
            s.extra["curtailed"] = True
            s.mining = False
            return self._ok("curtail", "Curtailment command sent", CURTAIL=[{"Action": "sleep mode"}])
        if action == "wakeup":
            s.extra["curtailed"] = False
            self._sync_pools()
            return self._ok("curtail", "Curtailment command sent", CURTAIL=[{"Action": "wake up"}])
        return self._error("curtail", f"Invalid curtail action '{action}'", 45)

    def _ledset(self, params: list[str]) -> dict[str, Any]:
        if len(params) != 2 or params[0] not in ("red", "green") or params[1] not in LED_STATES:
            return self._error("ledset", "Invalid parameters: expected red|green,auto|on|off|blink", 45)
        self.state.extra[f"{params[0]}_led"] = params[1]
        self.state.fault_light = self.state.extra["red_led"] in ("on", "blink")
        return self._ok("ledset", "LED set", LED=[{"Color": params[0], "State": params[1]}])

    def _profileset(self, params: list[str]) -> dict[str, Any]:
        name = params[0] if params else ""
        if self._profile(name) is None:
            return self._error("profileset", f"Profile '{name}' not found", 45)
        self._apply_profile(name)
        return self._ok("profileset", "Profile Set", PROFILE=[{"Board": 0, "FrequencyStep": 5, "Profile": name,
                                                               "VoltageStep": 0.05}])

    def _fanset(self, params: list[str]) -> dict[str, Any]:
        s = self.state
        try:
            values = {k.strip(): int(v) for k, v in (p.split("=", 1) for p in params if p)}
        except ValueError:
            return self._error("fanset", "Invalid parameters: expected speed=N,min_fans=N,power_off_speed=N", 45)
        unknown = set(values) - {"speed", "min_fans", "power_off_speed"}
        if not values or unknown:
            return self._error("fanset", f"Invalid parameters {sorted(unknown) or params}", 45)
        speed = values.get("speed")
        if speed is not None:
            if speed == -1:
                s.fan = FanConfig.auto()
                s.fan_rpms = list(s.extra["auto_fan_rpms"])
            elif 0 <= speed <= 100:
                s.fan = FanConfig.manual(speed)
                s.fan_rpms = [round(MAX_FAN_RPM * speed / 100 / 10) * 10 for _ in s.fan_rpms]
            else:
                return self._error("fanset", "Fan speed must be -1 (auto) or 0..100", 45)
        if "min_fans" in values:
            if not 0 <= values["min_fans"] <= s.model.fans:
                return self._error("fanset", f"min_fans must be 0..{s.model.fans}", 45)
            s.extra["min_fans"] = values["min_fans"]
        if "power_off_speed" in values:
            s.extra["power_off_speed"] = values["power_off_speed"]
        return self._ok("fanset", "Fan control set")

    def _atmset(self, params: list[str]) -> dict[str, Any]:
        for item in params:
            key, _, value = item.partition("=")
            if key == "enabled":
                self.state.extra["atm_enabled"] = value.lower() == "true"
        return self._ok("atmset", "Advanced Thermal Management configuration updated")

    def _rebootdevice(self, params: list[str]) -> dict[str, Any]:
        self.state.extra["session_id"] = ""
        self.restart()
        return self._ok("rebootdevice", "Device reboot requested")

    def _resetminer(self, params: list[str]) -> dict[str, Any]:
        self.state.boot_time = time.time()  # the mining process restarts; the device stays up
        return self._ok("resetminer", "Miner reset requested")

    # LUXminer groups may be empty while a PoolGroup holds at least one pool: the ordered group list
    # lives in `extra["groups"]` ([name, quota, pools]) and `state.pools` shows its non-empty groups.
    def _group_list(self) -> list[list[Any]]:
        groups: list[list[Any]] = self.state.extra["groups"]
        return groups

    def _sync_pools(self) -> None:
        s = self.state
        s.pools = [PoolGroup(name=name, quota=quota, pools=pools) for name, quota, pools in self._group_list()
                   if pools]
        s.mining = bool(s.pools) and not s.extra["curtailed"]

    def _group_index(self, text: str) -> int:
        """A group given by id or by name; -1 when there is none."""
        groups = self._group_list()
        if text.isdigit():
            return int(text) if int(text) < len(groups) else -1
        return next((i for i, g in enumerate(groups) if g[0] == text), -1)

    def _addgroup(self, params: list[str]) -> dict[str, Any]:
        if not params or not params[0]:
            return self._error("addgroup", "Missing group name", 45)
        try:
            quota = int(float(params[1])) if len(params) > 1 and params[1] else 1
        except ValueError:
            return self._error("addgroup", "Invalid quota", 45)
        groups = self._group_list()
        if any(g[0] == params[0] for g in groups):
            return self._error("addgroup", f"Group '{params[0]}' already exists", 45)
        groups.append([params[0], quota, []])
        return self._ok("addgroup", f"Added group '{params[0]}'",
                        GROUP=[{"GROUP": len(groups) - 1, "Name": params[0], "Quota": float(quota)}])

    def _removegroup(self, params: list[str]) -> dict[str, Any]:
        index = self._group_index(params[0]) if params else -1
        if index < 0:
            return self._error("removegroup", "Invalid group id", 45)
        del self._group_list()[index]
        self._sync_pools()
        return self._ok("removegroup", f"Removed group {index}")

    def _groupquota(self, params: list[str]) -> dict[str, Any]:
        index = self._group_index(params[0]) if params else -1
        try:
            quota = int(float(params[1]))
        except (IndexError, ValueError):
            index = -1
        if index < 0:
            return self._error("groupquota", "Invalid parameters", 45)
        self._group_list()[index][1] = quota
        self._sync_pools()
        return self._ok("groupquota", f"Group {index} quota set to {quota}")

    def _addpool(self, params: list[str]) -> dict[str, Any]:
        if len(params) < 2:
            return self._error("addpool", "Invalid parameters: expected url,user,pass[,group]", 45)
        url, user = params[0], params[1]
        password = params[2] if len(params) > 2 and params[2] else "x"
        index = self._group_index(params[3]) if len(params) > 3 and params[3] else 0
        groups = self._group_list()
        if not 0 <= index < len(groups):
            return self._error("addpool", "Invalid group id", 45)
        try:
            pool = Pool(url=url, username=user, password=password)
        except ValueError:
            return self._error("addpool", f"Invalid pool URL '{url}'", 45)
        if len(groups[index][2]) >= 3:
            return self._error("addpool", "Group is full", 45)
        groups[index][2].append(pool)
        self._sync_pools()
        return self._ok("addpool", f"Added pool '{url}'")

    def _removepool(self, params: list[str]) -> dict[str, Any]:
        flat = [(gi, pi) for gi, g in enumerate(self._group_list()) for pi in range(len(g[2]))]
        try:
            gi, pi = flat[int(params[0])]
        except (IndexError, ValueError):
            return self._error("removepool", "Invalid pool id", 45)
        del self._group_list()[gi][2][pi]  # the group stays, maybe empty
        self._sync_pools()
        return self._ok("removepool", f"Removed pool {params[0]}")

    def _switchpool(self, params: list[str]) -> dict[str, Any]:
        return self._ok("switchpool", f"Switching to pool {params[0] if params else 0}")

    # ----- web --------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.path in ("/", "/index.html"):
            return HttpResponse.html('<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
                                     "<title>Luxor Firmware</title></head>"
                                     '<body><div id="root"></div></body></html>')
        return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")

    def inventory(self) -> dict[str, Any]:
        return {**super().inventory(), "profile": self.state.extra["profile"]}
