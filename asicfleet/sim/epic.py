"""Simulated ePIC UMC OS (PowerPlay firmware) on Antminer hardware.

Port 4028 is ePIC's HTTP JSON API as its OpenAPI specification describes it (shared/fixtures/asic-rs/meta/epic,
1.22.5 and 1.30.0), with reply shapes and example figures from the captured replies in
shared/fixtures/asic-rs/responses/epic/v1. Its web server answers a request that is not HTTP (the CGMiner RPC's
`{"command": ...}`) at once with `400 Bad Request` and closes, as hyper-based servers do
(`http_rejects_non_http`). Port 80 serves the web UI, whose page title is "Miner Web Dashboard" (how pyasic and
asic-rs recognise the firmware).

- GET without a login: `summary`, `capabilities`, `network`, `temps`, `temps/board`, `temps/chip`, `hashrate`
  (per chip, MH/s), `voltages` (per chip, mV), `clocks` (per chip, MHz), `perpetualtune`,
  `hashratesplit/config`, `hashratesplit/status`, `log`, `log/error` (text).
- POST with `{"param": ..., "password": ...}` (the password is `letmein`; a wrong one answers 200
  `{"result": false, "error": "BadPassword"}`, a missing or ill-typed param `MissingParam`): `coin` (a coin and
  1..3 stratum configs), `perpetualtune` (enable), `perpetualtune/algo` (algorithm, target, throttle settings;
  the target is held within the algorithm's bounds), `shutdowntemp` and `criticaltemp` (C), `hashratesplit`
  and `hashratesplit/enable` (kept and shown, not simulated: the `coin` pools mine), `fanspeed`
  (`{"Auto": {...}}` or `{"Manual": N}`, held within 1..100), `miner` (`Stop` / `Autostart`), `identify`
  (LED), `reboot` (a delay in seconds, u64) and `softreboot`, `password`, `defaultconfig`, `authenticate`;
  `systemupdate` is multipart/form-data (`password`, `checksum`: the image's SHA-256, `keepsettings`, the image)
  and reboots into the image's version. Every accepted
  POST answers `{"result": true, "error": null}`.

The tuner offers `Power` (a watts target) on the S21 generation only: the published S19 XP capture offers the
three hash rate tuners alone, and no capture of a unit offering `Power` was published, so which units offer it
is the simulator's choice; clients learn it from `capabilities.PerpetualTune`, as on real units.
Figures come from `self.state`, so controls show in later reads.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import math
import random
import secrets
import time
from collections.abc import Callable
from typing import Any, ClassVar

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner
from asicfleet.sim.antminer import build_of

VERSIONS = ("1.5.13",)  # `Software` of the published capture: "PowerPlay-BMS v1.5.13"
FAN_SLOTS = 12  # `Fans Rpm` always names twelve slots; null where no fan is fitted
MAX_FAN_RPM = 6000
STOPPED_WATTS = 24.0  # control board and fans with the hashboards off
HASHRATE_ALGORITHMS = ("VoltageOptimizer", "ChipTune", "BoardTune")
POWER_ALGORITHM = "Power"
POWER_TUNED_MODELS = frozenset({"Antminer S21", "Antminer T21"})
PRESET_RATIOS = (0.55, 0.7, 0.85, 1.0, 1.08, 1.18)  # tune presets around the nameplate, as in the capture
WATTS_EXPONENT = 1.3  # power grows faster than hash rate when clocks and voltage go up
WEB_PAGE = ('<!DOCTYPE html><html lang="en"><head><meta charset="UTF-8"><meta name="viewport" '
            'content="width=device-width, initial-scale=1.0"><title>Miner Web Dashboard</title></head>'
            '<body><div id="root"></div></body></html>')
OK: dict[str, Any] = {"result": True, "error": None}
PARAM_OPTIONAL = frozenset({"softreboot", "authenticate", "defaultconfig"})  # `JsonRequestOptional_String` posts
DESCRIPTIONS = {  # the tuners as `capabilities.PerpetualTune` names and describes them
    "VoltageOptimizer": ("Voltage Optimizer", "Maintain the target hashrate by perpetually adjusting voltage for "
                                              "efficiency."),
    "ChipTune": ("Chip Tune", "Maintain the target hashrate by adjusting individual chip clocks to squeeze more "
                              "performance while perpetually optimizing voltage for efficiency."),
    "BoardTune": ("Board Tune", "Maintain the target hashrate by perpetually adjusting board clocks to improve "
                                "performance while optimizing voltage for efficiency."),
    "Power": ("Power Tune", "Maintain the target power by perpetually adjusting clocks and voltage."),
}


def epic_model_name(name: str) -> str:
    """The catalogue's `Antminer S19 XP` as ePIC writes it in `capabilities.Model`: `AntMiner S19 XP`."""
    return "AntMiner " + name.removeprefix("Antminer ").strip()


class EPicSim(SimMiner):
    family = "epic"
    make = "AntMiner"
    firmware = "ePIC"
    models = ("Antminer S19", "Antminer S19 Pro", "Antminer S19j Pro", "Antminer S19k Pro", "Antminer S19 XP",
              "Antminer S21", "Antminer T21")
    services = (Service(80, "http"), Service(4028, "http"))
    http_server_header = None  # ePIC's API server sends none
    http_rejects_non_http: ClassVar[bool] = True
    default_username = "root"
    default_password = "letmein"

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in cls.models

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice(VERSIONS)

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        s = miner.state
        s.pools = [PoolGroup(name="default", quota=1, pools=s.pools[0].pools[:1])]  # ePIC mines one config at a time
        s.extra.update(
            hash_factor=s.hashrate_ths / model.nominal_ths,
            watt_factor=s.wattage / model.nominal_watts,
            algorithm="VoltageOptimizer",
            target=round(model.nominal_ths),
            min_throttle=50,
            throttle_step=5,
            tune_enabled=True,
            board_serials=["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(17))
                           for _ in range(model.boards)],
            cpu_serial="".join(rng.choice("0123456789") for _ in range(24)),
            fan_target=60,
            fan_idle=20,
            critical_temp=100.0,
            shutdown_temp=85.0,
            coin="BTC",
            split_enabled=False,  # hash rate split between pools (kept, not simulated: the `coin` pools mine)
            splits=[],
            last_command=None,
            reboots=0,
            board_temp_spread=[round(rng.uniform(10, 14), 3) for _ in range(model.boards)],
        )
        return miner

    # ----- the hardware's figures ------------------------------------------------------------------------
    @property
    def offers(self) -> list[str]:
        """The perpetual-tune algorithms this unit offers."""
        extra = [POWER_ALGORITHM] if self.state.model.name in POWER_TUNED_MODELS else []
        return [*HASHRATE_ALGORITHMS, *extra]

    def bounds(self, algorithm: str) -> tuple[int, int]:
        model = self.state.model
        if algorithm == POWER_ALGORITHM:
            return round(model.nominal_watts * 0.5), round(model.nominal_watts * 1.2)
        return round(model.nominal_ths * 0.42), round(model.nominal_ths * 2.1)

    @property
    def clock(self) -> float:
        """Average core clock: the stock clock, scaled with the hash rate the tuner holds."""
        stock = build_of(self.state.model.name).frequency
        stock_ths = float(self.state.model.nominal_ths * self.state.extra["hash_factor"])
        return round(stock * self.state.hashrate_ths / stock_ths, 1)

    @property
    def hashes_per_clock(self) -> float:
        """`Performance Estimator.Hashes Per Second Per Chip`: MH/s per chip per MHz of clock."""
        model = self.state.model
        per_chip = model.nominal_ths * 1e6 / (model.boards * model.chips_per_board)
        return round(per_chip / build_of(model.name).frequency, 1)

    def _retune(self) -> None:
        """Hash rate and power after the tuner reaches its target (it does so at once here)."""
        s, model = self.state, self.state.model
        algorithm, target = s.extra["algorithm"], float(s.extra["target"])
        if algorithm == POWER_ALGORITHM:
            s.wattage = round(target * 0.99, 1)
            ratio = (s.wattage / (model.nominal_watts * s.extra["watt_factor"])) ** (1 / WATTS_EXPONENT)
            s.hashrate_ths = round(model.nominal_ths * ratio * s.extra["hash_factor"], 3)
            s.power_limit = target
        else:
            s.hashrate_ths = round(target * s.extra["hash_factor"], 3)
            s.wattage = round(model.nominal_watts * (target / model.nominal_ths) ** WATTS_EXPONENT
                              * s.extra["watt_factor"], 1)

    def board_mhs(self) -> list[float]:
        return [round(t * 1e6, 2) for t in self.state.board_hashrates()]

    def chip_mhs(self, board: int) -> list[float]:
        """Per-chip MH/s that add up to the board's rate (a fixed spread per chip)."""
        chips = self.state.model.chips_per_board
        weights = [1.0 + 0.12 * math.sin(board * 7 + n * 1.7) for n in range(chips)]
        total = self.board_mhs()[board]
        rates = [round(total * w / sum(weights), 2) for w in weights]
        rates[-1] = round(total - sum(rates[:-1]), 2)
        return rates

    def ideal_board_mhs(self) -> float:
        return self.state.model.chips_per_board * self.hashes_per_clock * self.clock

    def board_temps(self, board: int) -> tuple[float, float]:
        """(intake, outlet) sensor readings; `HBs.Temperature` is the outlet."""
        outlet = self.state.board_temps[board]
        return round(outlet - self.state.extra["board_temp_spread"][board], 3), outlet

    # ----- replies ---------------------------------------------------------------------------------------
    def summary(self) -> dict[str, Any]:
        s, x = self.state, self.state.extra
        mining = s.mining
        boards = []
        if mining:
            ideal = self.ideal_board_mhs()
            for index, mhs in enumerate(self.board_mhs()):
                boards.append({"Core Clock": [], "Core Clock Avg": self.clock,
                               "Hashrate": [mhs, round(mhs / ideal * 100, 1) if ideal else 0.0, 0.8],
                               "Index": index, "Input Current": 0.0, "Input Power": 0.0, "Input Voltage": 12.6,
                               "Output Current": 0.0, "Output Power": 0.0, "Output Voltage": 0.0,
                               "Temperature": self.board_temps(index)[1]})
        rpms: dict[str, int | None] = {f"Fans Speed {n}": None for n in range(1, FAN_SLOTS + 1)}
        for n, rpm in enumerate(s.fan_rpms, start=1):
            rpms[f"Fans Speed {n}"] = rpm
        if s.fan.mode == "manual":
            fan_mode: dict[str, Any] = {"Manual": s.fan.fan_speed}
        else:
            fan_mode = {"Auto": {"Idle Speed": x["fan_idle"], "Target Temperature": x["fan_target"]}}
        pool = s.pools[0].pools[0] if s.pools and s.pools[0].pools else None
        stats: dict[str, Any] = {"Min Throttle Target": x["min_throttle"], "Optimized": True,
                                 "Target": x["target"], "Throttle Step": x["throttle_step"], "Throttle Target": None,
                                 "Unit": "W" if x["algorithm"] == POWER_ALGORITHM else "TH/s"}
        uptime = s.uptime
        now = int(time.time())
        return {
            "Disable Board On Failure": True, "Enable Boards On Idle": False,
            "Fans": {"Fan Mode": fan_mode, "Fans Speed": s.fan.fan_speed if s.fan.mode == "manual" else 100,
                     "Minimum Working Fans": 0,
                     # 1.30's addition (the 1.5.13 capture has none); zero-based, as the spec's minimum 0 allows
                     "Working Fan Indices": [i for i, rpm in enumerate(s.fan_rpms) if rpm > 0]},
            "Fans Rpm": rpms,
            "HBStatus": [{"Detected": True, "Enabled": True, "Index": i} for i in range(s.model.boards)],
            "HBs": boards,
            "Hostname": s.hostname,
            "HwConfig": {"Boards Target Clock": [{"Data": float(build_of(s.model.name).frequency), "Index": i}
                                                 for i in range(s.model.boards)]},
            "IdleOnConnectionLost": True,
            "Last License Error": None,
            "Mining": {"Algorithm": "SHA-256", "Coin": x["coin"]},
            "Misc": {"Critical Temp": x["critical_temp"], "Locate Miner State": s.fault_light,
                     "Shutdown Temp": x["shutdown_temp"]},
            "OS Type": "umcOS",
            "Overdrive": False,
            "PerpetualTune": {"Algorithm": {x["algorithm"]: stats}, "Running": x["tune_enabled"] and mining},
            "Power Supply Stats": {"Input Current": 0.0, "Input Power": s.wattage if mining else STOPPED_WATTS,
                                   "Input Voltage": 0.0, "Output Current": 0.0, "Output Power": 0.0,
                                   "Output Voltage": 12.595, "Target Voltage": 12600},
            "PreInitCooldown Max Duration": 300,
            "PresetInfo": {"Target Power": round(s.model.nominal_watts)},
            "Session": {"Accepted": s.accepted, "Active HBs": len(boards),
                        "Average MHs": round(s.live_hashrate_ths * 1e6, 1), "Difficulty": 262144.0,
                        "Last Accepted Share Timer": 25, "Last Accepted Share Timestamp": now - 25,
                        "Last Work Timer": 34, "Last Work Timestamp": now - 34,
                        "LastAverageMHs": {"Hashrate": round(s.live_hashrate_ths * 1e6, 1),
                                           "Timestamp": now - now % 3600},
                        "Rejected": s.rejected,
                        "Startup String": time.strftime("%a, %d %b %Y %H:%M:%S +0000", time.gmtime(s.boot_time)),
                        "Startup Timestamp": int(s.boot_time), "Submitted": s.accepted + s.rejected,
                        "Uptime": uptime, "WorkReceived": max(1, uptime // 36)},
            "Software": f"PowerPlay-BMS v{s.firmware_version}",
            "Status": {"Last Command": x["last_command"], "Last Command Result": None, "Last Error": None,
                       "Operating State": "Mining" if mining else "Idling"},
            "Stratum": {"Average Latency": 0.038, "Config Id": 0,
                        "Current Pool": pool.url.split("://", 1)[-1] if pool and mining else "",
                        "Current User": f"{pool.username}-{s.ip.replace('.', 'x')}" if pool else "",
                        "IsPoolConnected": bool(pool) and mining, "Worker Unique Id": True,
                        "Worker Unique Id Variant": "IpAddress"},
            "StratumConfigs": [{"login": p.username, "password": p.password, "pool": p.url}
                               for g in s.pools[:1] for p in g.pools],
        }

    def capabilities(self) -> dict[str, Any]:
        s, model = self.state, self.state.model
        presets = []
        for ratio in PRESET_RATIOS:
            ths = model.nominal_ths * ratio
            presets.append({"clk": round(build_of(model.name).frequency * ratio), "hashrate": round(ths, 1),
                            "power": round(model.nominal_watts * ratio ** WATTS_EXPONENT / 50) * 50,
                            "voltage": 12300 + round(1200 * (ratio - PRESET_RATIOS[0]) / 0.63 / 100) * 100})
        tuners = []
        for algorithm in self.offers:
            low, high = self.bounds(algorithm)
            name, description = DESCRIPTIONS[algorithm]
            tuners.append({"algorithm": algorithm, "description": description, "max": high, "min": low, "name": name})
        return {
            "Board Serial Numbers": list(s.extra["board_serials"]),
            "Chip Type": model.chip,
            "Chips Per Bank": 10,
            "Coins": ["BTC"],
            "Control Board Version": {"carrierBoardVersion": "4.1.0", "cpuHardware": "STM32 (Device Tree Support)",
                                      "cpuSerial": s.extra["cpu_serial"], "somBoardVersion": "7.1.0"},
            "Default Clock": build_of(model.name).frequency,
            "Default Hashrate": round(model.nominal_ths),
            "Default Voltage": 12900,
            "Display": ["ClksAndVoltage", "ShutdownTemp", "PerpetualTune"],
            "Max Clock Configs": 1,
            "Max HBs": model.boards,
            "Miner Serial Number": s.serial,
            "Model": epic_model_name(model.name),
            "Model Subtype": build_of(model.name).subtype.rsplit("_", 1)[-1],
            "Performance Estimator": {"Chip Count": model.chips_per_board,
                                      "Hashes Per Second Per Chip": self.hashes_per_clock},
            "PerpetualTune": tuners,
            "Psu Info": {"FW": 25, "Max Vout": 15182, "Min Vout": 11877, "PSU Type": 118, "True Power": False},
            "Temp Sensor Info": {"Count": 2, "Type": "Board"},
            "Tune Presets": presets,
            "Voltage Estimator": {"Slope": 0.0041, "Y Intercept": 11.0},
        }

    def network(self) -> dict[str, Any]:
        octets = self.state.ip.split(".")
        # `dns2`, `dnsv6`: the 1.30 spec's (the 1.5.13 capture has neither)
        return {"dhcp": {"address": self.state.ip, "dns": "8.8.8.8", "dns2": "8.8.4.4", "dnsv6": None,
                         "gateway": ".".join([*octets[:3], "1"]),
                         "mac_address": self.state.mac, "netmask": "255.255.255.0"}}

    def per_board(self, values: Any) -> list[dict[str, Any]]:
        return [{"Data": values(i), "Index": i, "Total": 0.0} for i in range(self.state.model.boards)]

    def chip_hashrates(self) -> list[dict[str, Any]]:
        if not self.state.mining:
            return self.per_board(lambda i: [])
        ideal = self.ideal_board_mhs() / self.state.model.chips_per_board

        def chips(board: int) -> list[list[float]]:
            return [[mhs, round(mhs / ideal * 100, 1) if ideal else 0.0, 4.0] for mhs in self.chip_mhs(board)]

        rows = self.per_board(chips)
        for row, mhs in zip(rows, self.board_mhs(), strict=True):  # `Total` is the board's [MH/s, percent, ...]
            row["Total"] = [mhs, round(mhs / ideal / self.state.model.chips_per_board * 100, 1) if ideal else 0.0, 4.1]
        return rows

    # ----- HTTP ------------------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if request.port == 80:
            if request.method == "GET" and path in ("/", "/index.html"):
                return HttpResponse.html(WEB_PAGE)
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        route = path.lstrip("/")
        if request.method == "GET":
            reader = self._reads().get(route)
            if reader is None:
                return HttpResponse(status=404, body=b"", content_type="text/plain")
            return reader()
        if request.method == "POST" and route == "systemupdate":
            return self._system_update(request)
        if request.method == "POST":
            writer = self._writes().get(route)
            if writer is None:
                return HttpResponse(status=404, body=b"", content_type="text/plain")
            try:
                body = request.json()
            except ValueError:
                body = None
            if not isinstance(body, dict) or ("param" not in body and route not in PARAM_OPTIONAL):
                return HttpResponse.of_json({"result": False, "error": "MissingParam"})
            password = body.get("password")
            if self.auth_refused() or not isinstance(password, str) or \
                    not secrets.compare_digest(password.encode(), self.state.password.encode()):
                return HttpResponse.of_json({"result": False, "error": "BadPassword"})
            self.state.extra["last_command"] = route
            return writer(body.get("param"))
        return HttpResponse(status=405, body=b"", content_type="text/plain")

    def _reads(self) -> dict[str, Callable[[], HttpResponse]]:
        s = self.state
        boards = s.model.boards
        json_of = HttpResponse.of_json
        return {
            "summary": lambda: json_of(self.summary()),
            "capabilities": lambda: json_of(self.capabilities()),
            "network": lambda: json_of(self.network()),
            "temps": lambda: json_of(self.per_board(lambda i: list(self.board_temps(i)))),
            "temps/board": lambda: json_of(self.per_board(lambda i: list(self.board_temps(i)))),
            # the hardware has no per-chip sensors for these: the firmware reports 0.0 for each chip
            "temps/chip": lambda: json_of(self.per_board(lambda i: [0.0] * s.model.chips_per_board)),
            "voltages": lambda: json_of(self.per_board(lambda i: [0.0] * s.model.chips_per_board)),
            "clocks": lambda: json_of(self.per_board(lambda i: [self.clock] * s.model.chips_per_board
                                                     if s.mining else [])),
            "hashrate": lambda: json_of(self.chip_hashrates()),
            "perpetualtune": lambda: json_of(self._perpetualtune()),
            "hashratesplit/config": lambda: json_of({"enabled": s.extra["split_enabled"],
                                                     "hashrate_splits": list(s.extra["splits"])}),
            "hashratesplit/status": lambda: json_of([]),
            "log": lambda: HttpResponse(body=f"[{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}] "
                                             f"PowerPlay-BMS v{s.firmware_version}: {boards} hashboards "
                                             "detected\n".encode(), content_type="text/plain"),
            "log/error": lambda: HttpResponse(body=b"", content_type="text/plain"),
        }

    def _perpetualtune(self) -> dict[str, Any]:
        x = self.state.extra
        return {"Enable": x["tune_enabled"], "Running": x["tune_enabled"] and self.state.mining,
                "Current Algorithm": x["algorithm"],
                "Algorithms": {x["algorithm"]: {"Optimized": True, "Target": x["target"],
                                                "Min Throttle Target": x["min_throttle"],
                                                "Throttle Step": x["throttle_step"],
                                                "Unit": "W" if x["algorithm"] == POWER_ALGORITHM else "TH/s"}}}

    def _writes(self) -> dict[str, Callable[[Any], HttpResponse]]:
        return {"coin": self._coin, "perpetualtune": self._tune_enable, "perpetualtune/algo": self._tune_algo,
                "fanspeed": self._fanspeed, "miner": self._miner, "identify": self._identify,
                "reboot": self._reboot, "softreboot": self._reboot, "password": self._password,
                "defaultconfig": self._defaults,
                "hashratesplit": self._split, "hashratesplit/enable": self._split_enable,
                "shutdowntemp": lambda param: self._threshold("shutdown_temp", param),
                "criticaltemp": lambda param: self._threshold("critical_temp", param),
                "authenticate": lambda param: HttpResponse.of_json(OK)}

    @staticmethod
    def _missing() -> HttpResponse:
        return HttpResponse.of_json({"result": False, "error": "MissingParam"})

    def _coin(self, param: Any) -> HttpResponse:
        if not isinstance(param, dict) or param.get("coin") not in ("BTC", "LTC"):
            return self._missing()
        configs = param.get("stratum_configs")
        if not isinstance(configs, list) or not 1 <= len(configs) <= 3:
            return self._missing()
        pools = []
        for config in configs:
            if not isinstance(config, dict) or not isinstance(config.get("pool"), str) or \
                    not isinstance(config.get("login"), str):
                return self._missing()
            try:
                pools.append(Pool(url=config["pool"], username=config["login"],
                                  password=str(config.get("password") or "")))
            except ValueError:
                return self._missing()
        self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)]
        self.state.extra["coin"] = param["coin"]
        return HttpResponse.of_json(OK)

    def _tune_enable(self, param: Any) -> HttpResponse:
        if not isinstance(param, bool):
            return self._missing()
        self.state.extra["tune_enabled"] = param
        return HttpResponse.of_json(OK)

    def _tune_algo(self, param: Any) -> HttpResponse:
        if not isinstance(param, dict) or param.get("algo") not in self.offers or \
                not isinstance(param.get("target"), int) or isinstance(param.get("target"), bool):
            return self._missing()
        x = self.state.extra
        low, high = self.bounds(param["algo"])
        x.update(algorithm=param["algo"], target=min(high, max(low, param["target"])), tune_enabled=True)
        for key in ("min_throttle", "throttle_step"):
            if isinstance(param.get(key), int) and not isinstance(param.get(key), bool):
                x[key] = param[key]
        self._retune()
        return HttpResponse.of_json(OK)

    def _fanspeed(self, param: Any) -> HttpResponse:
        s = self.state
        if isinstance(param, dict) and isinstance(param.get("Manual"), int):
            speed = min(100, max(1, param["Manual"]))
            s.fan = FanConfig.manual(speed)
            s.fan_rpms = [round(MAX_FAN_RPM * speed / 100) for _ in s.fan_rpms]
            return HttpResponse.of_json(OK)
        auto = param.get("Auto") if isinstance(param, dict) else None
        if isinstance(auto, dict) and isinstance(auto.get("Target Temperature"), int) and \
                isinstance(auto.get("Idle Speed"), int):
            s.extra.update(fan_target=auto["Target Temperature"], fan_idle=min(100, max(0, auto["Idle Speed"])))
            s.fan = FanConfig.auto(target_temp=auto["Target Temperature"], idle_speed=s.extra["fan_idle"])
            return HttpResponse.of_json(OK)
        return self._missing()

    def _miner(self, param: Any) -> HttpResponse:
        if param not in ("Stop", "Autostart"):
            return self._missing()
        self.state.mining = param == "Autostart"
        return HttpResponse.of_json(OK)

    def _identify(self, param: Any) -> HttpResponse:
        if not isinstance(param, bool):
            return self._missing()
        self.state.fault_light = param
        return HttpResponse.of_json(OK)

    def _reboot(self, param: Any) -> HttpResponse:
        """`reboot` takes a delay in seconds (u64); the simulated miner reboots at once whatever it is."""
        if param is not None and (not isinstance(param, int) or isinstance(param, bool) or param < 0):
            return self._missing()
        self.state.extra["reboots"] += 1
        self.state.fault_light = False
        self.restart()
        return HttpResponse.of_json(OK)

    def _split(self, param: Any) -> HttpResponse:
        """`hashratesplit`: up to three {coin, ratio, stratum_configs, unique_worker_id_variant} entries."""
        if not isinstance(param, list) or len(param) > 3 or not all(
                isinstance(p, dict) and p.get("coin") in ("BTC", "LTC") and isinstance(p.get("ratio"), int)
                and isinstance(p.get("stratum_configs"), list) and isinstance(p.get("unique_worker_id_variant"), str)
                for p in param):
            return self._missing()
        self.state.extra["splits"] = param
        return HttpResponse.of_json(OK)

    def _split_enable(self, param: Any) -> HttpResponse:
        if not isinstance(param, bool):
            return self._missing()
        self.state.extra["split_enabled"] = param
        return HttpResponse.of_json(OK)

    def _system_update(self, request: HttpRequest) -> HttpResponse:
        """`systemupdate`: multipart/form-data with `password`, `checksum` (the image's SHA-256, hex),
        `keepsettings` and the image; the image is checked as a miner checks it, installed, and the miner reboots."""
        parts = _form_parts(request)
        if parts is None:
            return HttpResponse.of_json({"result": False, "error": "InvalidMultipart"})
        password = parts.pop("password", b"").decode("utf-8", errors="replace")
        if self.auth_refused() or not secrets.compare_digest(password.encode(), self.state.password.encode()):
            return HttpResponse.of_json({"result": False, "error": "BadPassword"})
        checksum = parts.pop("checksum", b"").decode("ascii", errors="replace").strip().lower()
        parts.pop("keepsettings", None)
        if len(parts) != 1:
            return HttpResponse.of_json({"result": False, "error": "InvalidNumberOfFiles"})
        [image] = parts.values()
        if hashlib.sha256(image).hexdigest() != checksum:
            return HttpResponse.of_json({"result": False, "error": "InvalidChecksum"})
        if self.install_image(image) is not None:
            return HttpResponse.of_json({"result": False, "error": "BadUpdateFile"})
        self.state.extra["reboots"] += 1
        self.restart()
        return HttpResponse.of_json(OK)

    def _defaults(self, param: Any) -> HttpResponse:
        """`defaultconfig`: automatic fans (60 C, idle 20 %), the Voltage Optimizer at the nameplate rate, the
        default thresholds, the LED off and no hash rate split; pools and password stay (as far as the spec
        tells, it restores settings, not credentials)."""
        s, x = self.state, self.state.extra
        x.update(fan_target=60, fan_idle=20, algorithm="VoltageOptimizer", target=round(s.model.nominal_ths),
                 min_throttle=50, throttle_step=5, tune_enabled=True, critical_temp=100.0, shutdown_temp=85.0,
                 split_enabled=False, splits=[])
        s.fan = FanConfig.auto(target_temp=60, idle_speed=20)
        s.fault_light = False
        self._retune()
        return HttpResponse.of_json(OK)

    def _threshold(self, key: str, param: Any) -> HttpResponse:
        """`shutdowntemp` / `criticaltemp`: degrees Celsius (usize)."""
        if not isinstance(param, int) or isinstance(param, bool) or param < 0:
            return self._missing()
        self.state.extra[key] = float(param)
        return HttpResponse.of_json(OK)

    def _password(self, param: Any) -> HttpResponse:
        if not isinstance(param, str) or not param:
            return HttpResponse.of_json({"result": False, "error": {"PasswdChangeFailed": "empty password"}})
        self.state.password = param
        return HttpResponse.of_json(OK)


def _form_parts(request: HttpRequest) -> dict[str, bytes] | None:
    """The named parts of a multipart/form-data body; None when the body is not one."""
    content_type = request.headers.get("content-type", "")
    if "multipart/form-data" not in content_type:
        return None
    message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
        b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n" + request.body)
    parts: dict[str, bytes] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            parts[name] = payload
    return parts
