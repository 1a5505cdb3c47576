"""Simulated Braiins OS (BOS+) on Antminer hardware.

Serves what a real Braiins OS 25.07+ miner serves:
- the BOSer CGMiner-compatible RPC on 4028 (`version`, `devdetails`, `summary`, `pools`, `devs`,
  `fans`, `temps`, `tempctrl`, `tunerstatus`, `stats`, `config`, `pause`, `resume`, joined `a+b`),
  NUL-terminated, bodies with alphabetically sorted keys (BOSer serialises through a sorted map);
- the public REST API on port 80 under `/api/v1/` (token from `POST /api/v1/auth/login`, sent back
  raw in the `Authorization` header), in the shapes of the 25.07 / 25.11 / 26.04 OpenAPI documents:
  the release in the firmware version picks the API version and the extra endpoints of 26.04
  (factory reset, logs, system upgrade);
- the web UI page at `/` ("Braiins OS") and the few GraphQL queries clients still use to read the
  model and version (`{ bosminer { info { modelName } } }`, `{ bos { info { version { full } } } }`);
- for the releases before 25.07 (22.08, 24.09, 25.03, 25.05.1, with the version strings of captured
  miners) no REST API, but GraphQL on `POST /graphql` (`_graphql`, a small executor: the fields each
  release's schema has, reads after the `auth { login }` mutation's `session_id` cookie, the model and
  version public), LuCI's form login and `admin/network/iface_status/lan` (the MAC), the RPC as above
  (BOSer on OpenWrt before 23.03), and the gRPC port only from 23.03, when the public API came;
- the BOS+ gRPC API on 50051 (grpc.aio, cleartext; messages generated from the public
  braiins/bos-plus-api .proto files, `asicfleet.sim.bos_api`): `AuthenticationService/Login` answers
  with the token in the `authorization` response header,
  which later calls send back as `authorization` metadata. The replies are built from the same dicts
  as the REST replies (the REST API is a gateway over these messages), so both always agree.

Login: Braiins OS ships without a password for `root`; while none is set any password is accepted
(clients commonly send `root`/`root`). Once a password is set, only it is accepted.
"""

from __future__ import annotations

import email.parser
import email.policy
import hashlib
import random
import secrets
import time
import urllib.parse
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, ClassVar

import orjson

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.sim import _graphql as gql
from asicfleet.sim import _grpc as pb
from asicfleet.sim._core import HttpRequest, HttpResponse, MinerState, Service, SimMiner, read_sim_image
from asicfleet.sim._grpc import GrpcCall, GrpcError, GrpcReply, GrpcStatus
from asicfleet.sim.bos_api.bos import version_pb2
from asicfleet.sim.bos_api.bos.v1 import (
    actions_pb2,
    authentication_pb2,
    configuration_pb2,
    cooling_pb2,
    miner_pb2,
    network_pb2,
    performance_pb2,
    pool_pb2,
)

# firmware builds this simulator can present: (version string, REST API version)
_RELEASES: dict[str, tuple[str, str]] = {
    "25.07": ("2025-08-06-0-3881c51d-25.07-plus", "1.0.0"),
    "25.11": ("2025-11-21-0-eb658dcd-25.11-plus", "1.1.0"),
    "26.04": ("2026-04-14-0-912d084c-26.04-plus", "1.3.0"),
}
# the releases before 25.07, which have no REST API: GraphQL on /graphql, LuCI's network status, the
# RPC. Their version strings are the ones real miners report in the captured replies (asic-rs fixtures).
_GRAPHQL_RELEASES: dict[str, str] = {
    "22.08": "2022-09-13-0-11012d53-22.08-plus",
    "24.09": "2024-10-17-0-75912fc7-24.09-plus",
    "25.03": "2025-04-07-0-424f9a7f-25.03-plus",
    "25.05": "2025-06-25-0-45f356ea-25.05.1-plus",
}
FIRMWARE_VERSIONS: tuple[str, ...] = (*_GRAPHQL_RELEASES.values(), *(v for v, _ in _RELEASES.values()))
_MAJOR_VERSION = "2022-09-13-0-11012d53-22.08-plus"
_FIRST_REST_RELEASE = "25.07"
_FIRST_GRPC_RELEASE = "23.03"  # the BOS+ public gRPC API came with 23.03 (braiins/bos-plus-api README)
_RPC_API = "3.7"
_TOKEN_TIMEOUT_S = 3600


# what the firmware calls each model: REST miner_identity name, its (deprecated) MinerModel enum
# number (0 where the enum has none), chip type and hashboard name
_MODEL_FACTS: dict[str, tuple[str, int, str, str]] = {
    "Antminer S19j Pro": ("Antminer S19J Pro", 15, "BM1362", "BHB42631"),
    "Antminer S19 XP": ("Antminer S19 XP", 18, "BM1366", "BHB56801"),
    "Antminer S19 Pro": ("Antminer S19 Pro", 12, "BM1398", "BHB42601"),
    "Antminer S21": ("Antminer S21", 0, "BM1368", "BHB68601"),
}

_MINER_STATUS_NORMAL = 2
_MINER_STATUS_PAUSED = 3
# what GraphQL answers without a session: the model and version clients read to identify a miner, and
# the login itself
_GQL_PUBLIC = (("query", "bosminer", "info", "modelName"), ("query", "bos", "info", "version"),
               ("mutation", "auth", "login"))


def _void(action: Callable[[dict[str, Any]], None]) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """A mutation field that does `action` and answers the schema's VoidResult."""
    def resolve(args: dict[str, Any]) -> dict[str, Any]:
        action(args)
        return {"__typename": "VoidResult", "void": None}
    return resolve


def _gql_public(path: tuple[str, ...]) -> bool:
    """A path on the way to, or inside, a public field."""
    return any(path[:len(public)] == public[:len(path)] for public in _GQL_PUBLIC)
_LOG_TYPES = ("errors", "bosminer", "boser", "monitor", "syslog", "dmesg")


def _release_tuple(release: str) -> tuple[int, ...]:
    """"25.05.1" -> (25, 5, 1); a part that is no number counts as 0."""
    return tuple(int(part) if part.isdigit() else 0 for part in release.split("."))


def _sorted(value: Any) -> Any:
    """Sorts every object's keys, as BOSer's serialisation through a sorted map does."""
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


def _ghs(ths: float) -> dict[str, float]:
    return {"gigahash_per_second": round(ths * 1000.0, 6)}


def _timestamp(seconds: float) -> dict[str, int]:
    return {"nanos": int((seconds % 1) * 1e9), "seconds": int(seconds)}


# ----- BOS+ gRPC API (braiins/bos-plus-api: bos/version.proto, bos/v1/*.proto, generated in bos_api) ---
_SERVICES = (version_pb2, actions_pb2, authentication_pb2, configuration_pb2, cooling_pb2, miner_pb2, network_pb2,
             performance_pb2, pool_pb2)  # their import registers the services whose methods are served

_LOGIN_PATH = "/braiins.bos.v1.AuthenticationService/Login"
_PUBLIC_PATHS = frozenset({_LOGIN_PATH, "/braiins.bos.ApiVersionService/GetApiVersion"})
# path -> handler method name. A `_grpc_*` handler takes the decoded request; the others are the
# REST reply builders, whose dicts are the gRPC replies as they are.
_GRPC_METHODS: dict[str, str] = {
    "/braiins.bos.ApiVersionService/GetApiVersion": "_grpc_api_version",
    _LOGIN_PATH: "_grpc_login",
    "/braiins.bos.v1.AuthenticationService/SetPassword": "_grpc_set_password",
    "/braiins.bos.v1.ActionsService/Start": "_grpc_start",
    "/braiins.bos.v1.ActionsService/Stop": "_grpc_stop",
    "/braiins.bos.v1.ActionsService/PauseMining": "_grpc_pause",
    "/braiins.bos.v1.ActionsService/ResumeMining": "_grpc_resume",
    "/braiins.bos.v1.ActionsService/Restart": "_grpc_restart",
    "/braiins.bos.v1.ActionsService/Reboot": "_grpc_reboot",
    "/braiins.bos.v1.ActionsService/SetLocateDeviceStatus": "_grpc_set_locate",
    "/braiins.bos.v1.ActionsService/GetLocateDeviceStatus": "_grpc_locate",
    "/braiins.bos.v1.CoolingService/GetCoolingState": "_cooling_state",
    "/braiins.bos.v1.PerformanceService/GetTunerState": "_grpc_tuner_state",
    "/braiins.bos.v1.PerformanceService/SetPowerTarget": "_grpc_set_power_target",
    "/braiins.bos.v1.PerformanceService/SetDefaultPowerTarget": "_grpc_default_power_target",
    "/braiins.bos.v1.PerformanceService/IncrementPowerTarget": "_grpc_increment_power_target",
    "/braiins.bos.v1.PerformanceService/DecrementPowerTarget": "_grpc_decrement_power_target",
    "/braiins.bos.v1.PerformanceService/SetHashrateTarget": "_grpc_set_hashrate_target",
    "/braiins.bos.v1.PerformanceService/SetDPS": "_grpc_set_dps",
    "/braiins.bos.v1.PerformanceService/SetPerformanceMode": "_grpc_set_performance_mode",
    "/braiins.bos.v1.PerformanceService/GetActivePerformanceMode": "_grpc_performance_mode",
    "/braiins.bos.v1.PoolService/GetPoolGroups": "_grpc_pool_groups",
    "/braiins.bos.v1.PoolService/SetPoolGroups": "_grpc_set_pool_groups",
    "/braiins.bos.v1.ConfigurationService/GetMinerConfiguration": "_grpc_configuration",
    # GetMinerStatus streams; the simulator sends the current status and ends the stream
    "/braiins.bos.v1.MinerService/GetMinerStatus": "_grpc_miner_status",
    "/braiins.bos.v1.MinerService/GetMinerDetails": "_details",
    "/braiins.bos.v1.MinerService/GetMinerStats": "_stats",
    "/braiins.bos.v1.MinerService/GetErrors": "_errors",
    "/braiins.bos.v1.MinerService/GetHashboards": "_hashboards",
    "/braiins.bos.v1.NetworkService/GetNetworkInfo": "_network",
}
# path -> (request message, reply message), as the services in the .proto files declare them
_GRPC_TYPES = {path: pb.method_messages(path) for path in _GRPC_METHODS}


class BraiinsSim(SimMiner):
    family: ClassVar[str] = "braiins"
    make: ClassVar[str] = "AntMiner"
    firmware: ClassVar[str] = "Braiins OS"
    models: ClassVar[tuple[str, ...]] = tuple(_MODEL_FACTS)
    services: ClassVar[tuple[Service, ...]] = (Service(4028, "rpc"), Service(80, "http"),
                                               Service(50051, "grpc"))
    default_username: ClassVar[str] = "root"
    default_password: ClassVar[str] = ""  # no password set out of the box
    ip_report_port: ClassVar[int | None] = 14235  # the stock firmware's IP-report port and format

    @classmethod
    def ip_report_payload(cls, ip: str, mac: str) -> bytes:
        """`ip,mac` like the stock firmware, the MAC as the kernel spells it (lower case)."""
        return f"{ip},{mac.lower()}".encode("ascii")

    def __init__(self, state: MinerState, rng: random.Random) -> None:
        super().__init__(state, rng)
        alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
        self.uid = "".join(rng.choice(alphabet) for _ in range(16))
        self.board_serials = ["".join(rng.choice("ABCDEFGHJKLMNPQRSTUVWXYZ0123456789") for _ in range(17))
                              for _ in range(state.model.boards)]
        self.auto_fan_rpms = list(state.fan_rpms)
        self.tokens: dict[str, float] = {}  # token -> expiry (monotonic seconds)
        self.started = time.time()
        state.extra.setdefault("tuner_mode", 1)  # 1 = power target, 2 = hashrate target
        state.extra.setdefault("hashrate_target_ths", None)
        state.extra.setdefault("cooling", None)  # the mode dict once the user set one
        state.extra.setdefault("dps", None)  # the DPS configuration once the user set one
        state.extra.setdefault("pool_uids", {})

    def served(self) -> tuple[Service, ...]:
        """No gRPC API (port 50051) before 23.03."""
        if self.at_least(_FIRST_GRPC_RELEASE):
            return self.services
        return tuple(s for s in self.services if s.kind != "grpc")

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        """Any release, the GraphQL ones before 25.07 included (so `--mix braiins` has them too)."""
        return rng.choice(FIRMWARE_VERSIONS)

    # ----- derived facts ----------------------------------------------------------------------
    @property
    def release(self) -> str:
        parts = self.state.firmware_version.split("-")
        return parts[5] if len(parts) > 5 else "25.07"

    @property
    def build_hash(self) -> str:
        parts = self.state.firmware_version.split("-")
        return parts[4] if len(parts) > 4 else "00000000"

    def at_least(self, release: str) -> bool:
        return _release_tuple(self.release) >= _release_tuple(release)

    @property
    def rest_api_version(self) -> str:
        known = {r: api for r, (_, api) in _RELEASES.items()}
        return known.get(self.release, "1.0.0")

    @property
    def speaks_rest(self) -> bool:
        """25.07 and later serve the REST API; the releases before speak GraphQL (and LuCI) instead."""
        return self.at_least(_FIRST_REST_RELEASE)

    @property
    def signature(self) -> str:
        # BOSer was built on OpenWrt up to 22.x, on buildroot since (the captured `version` replies)
        system = "openwrt" if not self.at_least("23.03") else "buildroot"
        return f"BOSer boser-{system} 0.1.0-{self.build_hash}"

    @property
    def identity_name(self) -> str:
        return _MODEL_FACTS.get(self.state.model.name, (self.state.model.name, 0, "", ""))[0]

    @property
    def rpc_model(self) -> str:
        """The model string BOSer's devdetails and GraphQL report: the maker's name in front."""
        return f"Bitmain {self.identity_name}"

    def board_hashrates(self) -> list[float]:
        return self.state.board_hashrates()

    def board_nominal_ths(self) -> float:
        return self.state.model.nominal_ths / max(1, self.state.model.boards)

    def live_wattage(self) -> float:
        return self.state.wattage if self.state.mining else 0.0

    def fan_ratio(self) -> float:
        fan = self.state.fan
        if fan.mode == "manual" and fan.fan_speed is not None:
            return round(fan.fan_speed / 100.0, 2)
        rpms = self.state.fan_rpms or [0]
        return round(min(1.0, sum(rpms) / len(rpms) / 6600.0), 2)

    def chip_temps(self) -> list[float]:
        return [round(t + 15.0, 1) for t in self.state.board_temps]

    def pools_flat(self) -> list[tuple[int, PoolGroup, int, Pool]]:
        """(group index, group, pool index within group, pool) for every configured pool."""
        return [(g, group, p, pool) for g, group in enumerate(self.state.pools) for p, pool in enumerate(group.pools)]

    def pool_uid(self, group: int, pool: int) -> str:
        uids: dict[str, str] = self.state.extra["pool_uids"]
        key = f"{group}/{pool}"
        if key not in uids:
            uids[key] = hashlib.sha256(f"{self.uid}/{key}".encode()).hexdigest()[:16]
        return uids[key]

    # ----- RPC --------------------------------------------------------------------------------
    def _status(self, code: int, message: str, status: str = "S") -> list[dict[str, Any]]:
        return [{"STATUS": status, "When": int(time.time()), "Code": code, "Msg": message,
                 "Description": self.signature}]

    def _reply(self, code: int, message: str, name: str, body: list[dict[str, Any]] | list[bool]) -> dict[str, Any]:
        return {"STATUS": self._status(code, message), name: _sorted(body), "id": 1}

    def rpc_invalid_request(self) -> Any:
        return {"STATUS": self._status(23, "Invalid JSON", "E"), "id": 1}

    def handle_rpc(self, command: str, parameter: Any, port: int) -> Any:
        handler = {
            "version": self._rpc_version, "devdetails": self._rpc_devdetails, "summary": self._rpc_summary,
            "pools": self._rpc_pools, "devs": self._rpc_devs, "edevs": self._rpc_devs, "fans": self._rpc_fans,
            "temps": self._rpc_temps, "tempctrl": self._rpc_tempctrl, "tunerstatus": self._rpc_tunerstatus,
            "stats": self._rpc_stats, "estats": self._rpc_stats, "config": self._rpc_config,
            "pause": self._rpc_pause, "resume": self._rpc_resume,
        }.get(command)
        if handler is None:
            return {"STATUS": self._status(14, "Invalid command", "E"), "id": 1}
        return handler()

    def _rpc_version(self) -> dict[str, Any]:
        return self._reply(22, "BOSer versions", "VERSION",
                           [{"API": _RPC_API, "BOSer": self.signature.removeprefix("BOSer ")}])

    def _rpc_devdetails(self) -> dict[str, Any]:
        model = self.state.model
        boards = [{"Chips": model.chips_per_board, "DEVDETAILS": i, "Device Path": "", "Driver": "",
                   "Frequency": round(480.0 + 10 * i, 1), "ID": i + 1, "Kernel": "", "Model": self.rpc_model,
                   "Name": f"Hash Chain {i + 1}", "Voltage": 13.2} for i in range(model.boards)]
        return self._reply(69, "Device Details", "DEVDETAILS", boards)

    def _summary_body(self) -> dict[str, Any]:
        s = self.state
        mhs = round(s.live_hashrate_ths * 1e6, 3)
        elapsed = max(1, s.uptime)
        diff_accepted = float(s.accepted * 262144)
        return {
            "Accepted": s.accepted, "Best Share": 776342690, "Device Hardware%": 0.0012,
            "Device Rejected%": round(100.0 * s.rejected / max(1, s.accepted + s.rejected), 4),
            "Difficulty Accepted": diff_accepted, "Difficulty Rejected": float(s.rejected * 262144),
            "Difficulty Stale": 0.0, "Discarded": 0, "Elapsed": elapsed, "Found Blocks": 0, "Get Failures": 0,
            "Getworks": s.accepted + s.rejected, "Hardware Errors": 12, "Last getwork": int(time.time()),
            "Local Work": (s.accepted + s.rejected) * 40, "MHS 15m": mhs, "MHS 1m": mhs, "MHS 24h": mhs,
            "MHS 5m": mhs, "MHS 5s": mhs, "MHS av": mhs, "Network Blocks": 0,
            "Pool Rejected%": round(100.0 * s.rejected / max(1, s.accepted + s.rejected), 4), "Pool Stale%": 0.0,
            "Rejected": s.rejected, "Remote Failures": 0, "Stale": 0, "Total MH": round(mhs * elapsed, 1),
            "Utility": round(s.accepted / elapsed * 60, 4), "Work Utility": round(diff_accepted / elapsed * 60, 4),
        }

    def _rpc_summary(self) -> dict[str, Any]:
        return self._reply(11, "Summary", "SUMMARY", [self._summary_body()])

    def _rpc_pools(self) -> dict[str, Any]:
        pools = []
        for index, (g, group, p, pool) in enumerate(self.pools_flat()):
            active = g == 0 and p == 0 and self.state.mining
            accepted, rejected = (self.state.accepted, self.state.rejected) if g == 0 and p == 0 else (0, 0)
            pools.append({
                "AsicBoost": True, "Accepted": accepted, "Bad Work": 0, "Best Share": 776342690 if accepted else 0,
                "Current Block Height": 0, "Current Block Version": 536870912, "Diff1 Shares": accepted * 262144,
                "Difficulty Accepted": float(accepted * 262144), "Difficulty Rejected": float(rejected * 262144),
                "Difficulty Stale": 0.0, "Discarded": 0, "Get Failures": 0, "Getworks": accepted + rejected,
                "Has GBT": False, "Has Stratum": True, "Has Vmask": True, "Last Share Difficulty": 262144.0,
                "Last Share Time": int(time.time()) if accepted else 0, "Long Poll": "N", "POOL": index,
                "Pool Rejected%": round(100.0 * rejected / max(1, accepted + rejected), 4), "Pool Stale%": 0.0,
                "Priority": index, "Proxy": "", "Proxy Type": "", "Quota": group.quota, "Rejected": rejected,
                "Remote Failures": 0, "Stale": 0, "Status": "Alive", "Stratum Active": active,
                "Stratum Difficulty": 262144.0, "Stratum URL": f"{pool.host}:{pool.port}", "URL": pool.url,
                "User": pool.username, "Work Difficulty": 262144.0, "Works": accepted + rejected,
            })
        return self._reply(7, f"{len(pools)} Pool(s)", "POOLS", pools)

    def _rpc_devs(self) -> dict[str, Any]:
        devs = []
        elapsed = max(1, self.state.uptime)
        for i, ths in enumerate(self.board_hashrates()):
            mhs = round(ths * 1e6, 3)
            devs.append({
                "ASC": i, "Accepted": 0, "Device Elapsed": elapsed, "Device Hardware%": 0.0012,
                "Device Rejected%": 0.0, "Diff1 Work": 0, "Difficulty Accepted": 0.0, "Difficulty Rejected": 0.0,
                "Enabled": "Y", "Hardware Error MHS 15m": 0.0, "Hardware Errors": 4, "ID": i + 1,
                "Last Share Difficulty": 0.0, "Last Share Pool": -1, "Last Share Time": 0, "Last Valid Work": 0,
                "MHS 15m": mhs, "MHS 1m": mhs, "MHS 5m": mhs, "MHS 5s": mhs, "MHS av": mhs,
                "Name": "BC50", "Nominal MHS": round(self.board_nominal_ths() * 1e6, 3), "Rejected": 0,
                "Status": "Alive", "Temperature": self.state.board_temps[i], "Total MH": round(mhs * elapsed, 1),
                "Utility": 0.0,
            })
        return self._reply(9, f"{len(devs)} ASC(s)", "DEVS", devs)

    def _rpc_fans(self) -> dict[str, Any]:
        speed = round(self.fan_ratio() * 100)
        fans = [{"FAN": i, "ID": i, "RPM": rpm, "Speed": speed} for i, rpm in enumerate(self.state.fan_rpms)]
        return self._reply(202, f"{len(fans)} Fan(s)", "FANS", fans)

    def _rpc_temps(self) -> dict[str, Any]:
        temps = [{"Board": t, "Chip": c, "ID": i + 1, "TEMP": i}
                 for i, (t, c) in enumerate(zip(self.state.board_temps, self.chip_temps(), strict=True))]
        return self._reply(201, f"{len(temps)} Temp(s)", "TEMPS", temps)

    def _rpc_tempctrl(self) -> dict[str, Any]:
        fan = self.state.fan
        if fan.mode == "manual":
            body: dict[str, Any] = {"Mode": "Manual"}
        else:
            body = {"Dangerous": 110.0, "Hot": 90.0, "Mode": "Automatic", "Target": fan.target_temp or 75.0}
        return self._reply(200, "Temperature control", "TEMPCTRL", [body])

    def _rpc_tunerstatus(self) -> dict[str, Any]:
        s = self.state
        watts = round(self.live_wattage())
        per_board = round(watts * 0.94 / max(1, s.model.boards))
        chains = [{"ApproximatePowerConsumptionWatt": per_board, "HashchainIndex": i + 1, "Iteration": 0,
                   "LoadedProfileCreatedOn": int(self.started) - 3600, "PowerLimitWatt": int(s.power_limit // 3),
                   "StageElapsed": 0, "Status": "Stable" if s.mining else "Paused", "TunerRunning": False,
                   "TuningElapsed": 0} for i in range(s.model.boards)]
        dps = s.extra.get("dps") or {}
        body = {"ApproximateChainPowerConsumption": per_board * s.model.boards,
                "ApproximateMinerPowerConsumption": watts,
                "DynamicPowerScaling": "Enabled" if dps.get("enabled") else "Disabled",
                "PowerLimit": int(s.power_limit), "TunerChainStatus": chains}
        return self._reply(203, "Tuner Status", "TUNERSTATUS", [body])

    def _rpc_stats(self) -> dict[str, Any]:
        elapsed = max(1, self.state.uptime)
        stats: list[dict[str, Any]] = [{"Calls": 0, "Elapsed": elapsed, "ID": f"ASC{i}", "Max": 0.0, "Min": 0.0,
                                        "STATS": i, "Wait": 0.0} for i in range(self.state.model.boards)]
        return self._reply(70, "BOSer stats", "STATS", stats)

    def _rpc_config(self) -> dict[str, Any]:
        body = {"ASC Count": self.state.model.boards, "Device Code": "", "Hotplug": "None", "Log Interval": 5,
                "OS": "Braiins OS", "PGA Count": 0, "Pool Count": len(self.pools_flat()), "Strategy": "Failover"}
        return self._reply(33, "CGMiner config", "CONFIG", [body])

    def _rpc_pause(self) -> dict[str, Any]:
        self.state.mining = False
        return self._reply(204, "Pause", "PAUSE", [True])

    def _rpc_resume(self) -> dict[str, Any]:
        self.state.mining = True
        return self._reply(205, "Resume", "RESUME", [True])

    # ----- HTTP -------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        path = request.path.rstrip("/") or "/"
        if path == "/" and request.method in ("GET", "HEAD"):
            return HttpResponse.html(self._index_page())
        if path == "/graphql" and request.method == "POST":
            return self._graphql(request)
        if path.startswith("/cgi-bin/luci") and not self.speaks_rest:
            return self._luci(request, path)
        if not path.startswith("/api/v1/") or not self.speaks_rest:
            return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")
        route = path.removeprefix("/api/v1/")
        try:
            if route == "auth/login" and request.method == "POST":
                return self._login(request)
            if route == "version" and request.method == "GET":
                major, minor, patch = (int(x) for x in self.rest_api_version.split("."))
                return HttpResponse.of_json({"major": major, "minor": minor, "patch": patch})
            if not self._authorised(request):
                return HttpResponse.of_json({"message": "Unauthorized"}, status=401)
            return await self._rest(request.method, route, request)
        except (ValueError, TypeError, KeyError, AttributeError, orjson.JSONDecodeError) as exc:
            return HttpResponse.of_json({"message": f"Invalid request payload: {exc}"}, status=400)

    def _index_page(self) -> str:
        return ("<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\" />\n"
                "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\" />\n"
                "<title>Braiins OS</title>\n"
                f"<script type=\"module\" crossorigin src=\"/assets/index-{self.build_hash}.js\"></script>\n"
                "</head>\n<body>\n<noscript>Braiins OS needs JavaScript.</noscript>\n<div id=\"root\"></div>\n"
                "</body>\n</html>\n")

    def _password_ok(self, password: Any) -> bool:
        if self.state.password == "":
            return True  # no password set: the firmware does not check it
        return isinstance(password, str) and secrets.compare_digest(password, self.state.password)

    def _login(self, request: HttpRequest) -> HttpResponse:
        body = request.json()
        if not isinstance(body, dict) or not isinstance(body.get("username"), str):
            return HttpResponse.of_json({"message": "Invalid request payload"}, status=400)
        if not self._credentials_ok(body["username"], body.get("password")):
            return HttpResponse.of_json({"message": "Invalid username or password"}, status=401)
        return HttpResponse.of_json({"timeout_s": _TOKEN_TIMEOUT_S, "token": self._new_token()})

    def _credentials_ok(self, username: Any, password: Any) -> bool:
        """The one login rule of the REST API, the gRPC API and GraphQL."""
        return not self.auth_refused() and username == self.state.username and self._password_ok(password)

    def _new_token(self) -> str:
        token = secrets.token_urlsafe(12)[:16]
        self.tokens[token] = time.monotonic() + _TOKEN_TIMEOUT_S
        return token

    def _authorised(self, request: HttpRequest) -> bool:
        return self._token_ok(request.headers.get("authorization", ""))

    def _token_ok(self, header: str) -> bool:
        """A live session token (REST and gRPC sessions are one and the same)."""
        if self.auth_refused():
            return False
        token = header.strip().removeprefix("Bearer ").strip()
        expiry = self.tokens.get(token)
        if expiry is None or expiry < time.monotonic():
            return False
        self.tokens[token] = time.monotonic() + _TOKEN_TIMEOUT_S  # activity extends the session
        return True

    # ----- GraphQL (the API of the releases before 25.07; 25.07+ keep the model/version queries) ----
    def _session_cookie(self, request: HttpRequest) -> str:
        for part in request.headers.get("cookie", "").split(";"):
            name, _, value = part.strip().partition("=")
            if name == "session_id":
                return value
        return ""

    def _graphql(self, request: HttpRequest) -> HttpResponse:
        try:
            body = request.json()
        except orjson.JSONDecodeError:
            return HttpResponse.of_json({"errors": [{"message": "invalid JSON body"}]}, status=400)
        if not isinstance(body, dict) or not isinstance(body.get("query"), str):
            return HttpResponse.of_json({"errors": [{"message": "a query is required"}]}, status=400)
        variables = body.get("variables") if isinstance(body.get("variables"), dict) else {}
        authorised = self._token_ok(self._session_cookie(request))
        login: dict[str, str] = {}  # the token a successful login mutation created: sent back as a cookie
        root = self._graphql_root(login) if not self.speaks_rest else self._graphql_public_root(login)
        # each mutation is counted by its field (`80:graphql bosminer.config.updateGroups`), as the REST
        # writes are by their routes: a test can tell a pool write from the reads around it
        reply = gql.execute(body["query"], root, variables, body.get("operationName"),
                            allowed=lambda path: authorised or _gql_public(path),
                            called=lambda path: self.count(f"{request.port}:graphql {'.'.join(path[1:])}")
                            if path[0] == "mutation" else None)
        response = HttpResponse.of_json(reply)
        if "token" in login:
            response.headers["Set-Cookie"] = f"session_id={login['token']}; Path=/; HttpOnly"
        return response

    def _gql_login(self, login: dict[str, str]) -> Callable[[dict[str, Any]], dict[str, Any]]:
        def resolve(args: dict[str, Any]) -> dict[str, Any]:
            if not self._credentials_ok(args.get("username"), args.get("password")):
                return {"__typename": "AuthError", "message": "Invalid username or password"}
            login["token"] = self._new_token()
            return {"__typename": "VoidResult", "void": None}
        return resolve

    def _graphql_public_root(self, login: dict[str, str]) -> dict[str, Any]:
        """25.07+: the web UI moved to the REST API; the model and version queries still answer."""
        return {"query": {"bosminer": {"info": {"modelName": self.rpc_model}},
                          "bos": {"info": {"version": {"full": self.state.firmware_version, "isPlus": True}}}},
                "mutation": {"auth": {"login": self._gql_login(login)}}}

    def _graphql_root(self, login: dict[str, str]) -> dict[str, Any]:
        """The schema of this release, as far as clients use it (meta/braiins/<release>/schema.graphql):
        fields a release lacks are left out, so asking for them fails as on the real firmware."""
        s = self.state
        since_24_09, since_25_03 = self.at_least("24.09"), self.at_least("25.03")
        bos_info: dict[str, Any] = {"mode": "NAND", "version": {"full": s.firmware_version, "isPlus": True}}
        if since_25_03:
            bos_info.update({"controlBoardSocFamily": "Amlogic", "platform": "AM3_AML"})
        bos: dict[str, Any] = {
            "hostname": s.hostname, "faultLight": s.fault_light, "info": bos_info,
            "uptime": {"since": int(s.boot_time), "durationS": s.uptime},
            "log": lambda args: self._log_lines(str(args["target"]).lower()),
        }
        if since_24_09:
            bos["macAddress"] = s.mac.lower()
        if since_25_03:
            bos["serialNumber"] = s.serial
        bos_mutation: dict[str, Any] = {
            "reboot": _void(lambda args: self._reboot()),
            "setPassword": _void(lambda args: setattr(s, "password", args.get("newPassword") or "")),
            "setFaultLight": lambda args: {"enabled": self._gql_set_fault_light(args["enable"])},
        }
        if since_24_09:
            bos_mutation["factoryReset"] = _void(lambda args: self._factory_reset())
        configurator = {
            "updateAutotuning": lambda args: self._gql_update_autotuning(args["input"]),
            "updateGroups": lambda args: self._gql_update_groups(args["groups"]),
            "updateTempAndFans": lambda args: self._gql_update_temp_and_fans(args["input"]),
        }
        return {
            "query": {
                "bos": bos,
                "bosminer": {"info": self._gql_bosminer_info(), "config": self._gql_config(),
                             "metadata": self._gql_metadata()},
                "events": {"appeals": self._gql_appeals()},
            },
            "mutation": {
                "auth": {"login": self._gql_login(login)},
                "bos": bos_mutation,
                "bosminer": {"config": configurator,
                             "start": _void(lambda args: setattr(s, "mining", True)),
                             "stop": _void(lambda args: setattr(s, "mining", False)),
                             "restart": _void(lambda args: setattr(s, "mining", True))},
            },
        }

    @staticmethod
    def _gql_hashrate(ths: float) -> dict[str, float]:
        mhs = round(ths * 1e6, 3)
        return {"mhsAv": mhs, "mhs5S": mhs, "mhs1M": mhs, "mhs5M": mhs, "mhs15M": mhs, "mhs24H": mhs}

    def _gql_temperatures(self, index: int) -> list[dict[str, Any]]:
        """Board sensors, named as each release names them (the captured replies)."""
        board, chip = self.state.board_temps[index], self.chip_temps()[index]
        inlet = round(board - 14.0, 1)
        if self.at_least("25.05"):
            return [{"name": "MAX_BOARD", "degreesC": board}, {"name": "MAX_CHIP", "degreesC": chip},
                    {"name": "INLET", "degreesC": inlet}, {"name": "OUTLET", "degreesC": board}]
        if self.at_least("25.03"):
            return [{"name": "Max Board", "degreesC": board}, {"name": "Max Chip", "degreesC": chip},
                    {"name": "Inlet", "degreesC": inlet}, {"name": "Outlet", "degreesC": board}]
        return [{"name": "Board", "degreesC": board}, {"name": "Chip", "degreesC": chip}]

    def _gql_bosminer_info(self) -> dict[str, Any]:
        s = self.state
        watts = round(self.live_wattage())
        boards = []
        for i, ths in enumerate(self.board_hashrates()):
            details: dict[str, Any] = {"chips": s.model.chips_per_board, "frequencyMhz": round(480.0 + 10 * i, 1),
                                       "voltageV": 13.2}
            if self.at_least("25.03"):
                details["hbSerialNumber"] = self.board_serials[i]
            boards.append({"name": str(i + 1), "nominalMhs": round(self.board_nominal_ths() * 1e6, 3),
                           "realHashrate": self._gql_hashrate(ths), "hwErrorMhs15M": 0.0, "hwDetails": details,
                           "temperatures": self._gql_temperatures(i)})
        speed = round(self.fan_ratio() * 100)
        pool_groups = []
        for g, group in enumerate(s.pools):
            pools = []
            for p, pool in enumerate(group.pools):
                first = g == 0 and p == 0
                accepted, rejected = (s.accepted, s.rejected) if first else (0, 0)
                pools.append({"url": pool.url, "user": pool.username, "status": "ALIVE",
                              "active": first and s.mining,
                              "shares": {"acceptedSolutions": accepted, "rejectedSolutions": rejected,
                                         "acceptedDifficulty": accepted * 262144,
                                         "rejectedDifficulty": rejected * 262144, "staleSolutions": 0},
                              "lastDifficulty": 262144.0, "generatedWork": accepted * 1700000, "bestShare": 0})
            pool_groups.append({"name": group.name, "pools": pools})
        return {
            "modelName": self.rpc_model,
            "workSolver": {"name": "", "nominalMhs": round(s.model.nominal_ths * 1e6, 3),
                           "realHashrate": self._gql_hashrate(s.live_hashrate_ths), "hwErrorMhs15M": 0.0,
                           "childSolvers": boards},
            "fans": [{"name": str(i), "speed": speed, "rpm": rpm} for i, rpm in enumerate(s.fan_rpms)],
            "summary": {"realHashrate": self._gql_hashrate(s.live_hashrate_ths),
                        "power": {"limitW": int(s.power_limit), "approxConsumptionW": watts,
                                  "efficiencyWMhs": round(watts / (s.live_hashrate_ths * 1e6), 9)
                                  if s.live_hashrate_ths else 0.0}},
            "poolGroups": pool_groups,
        }

    def _gql_config(self) -> dict[str, Any]:
        s = self.state
        target = s.extra.get("hashrate_target_ths")
        fan = s.fan
        cooling: dict[str, Any] = s.extra.get("gql_cooling") or {"mode": "AUTO", "targetTemp": 75.0,
                                                                  "hotTemp": 90.0, "dangerousTemp": 110.0}
        groups = [{"id": str(g), "name": group.name,
                   "strategy": {"__typename": "QuotaStrategy", "quota": group.quota},
                   "pools": [{"id": str(p), "enabled": True, "url": pool.url, "user": pool.username,
                              "password": pool.password} for p, pool in enumerate(group.pools)]}
                  for g, group in enumerate(s.pools)]
        return {
            "__typename": "BosminerConfig",
            "autotuning": {"enabled": True, "mode": "HASHRATE_TARGET" if s.extra["tuner_mode"] == 2 else "POWER_TARGET",
                           "powerTarget": int(s.power_limit), "hashrateTarget": target},
            "groups": groups,
            "tempControl": {"mode": "MANUAL" if fan.mode == "manual" else cooling["mode"],
                            "targetTemp": fan.target_temp if fan.target_temp is not None else cooling["targetTemp"],
                            "hotTemp": cooling["hotTemp"], "dangerousTemp": cooling["dangerousTemp"]},
            # minFans is how many fans must run (the schema has no idle speed)
            "fanControl": {"speed": fan.fan_speed if fan.mode == "manual" else None, "minFans": 1,
                           "immersionModeEnabled": False},
        }

    def _gql_metadata(self) -> dict[str, Any]:
        nominal, low, high = self._power_bounds()
        ths = self.state.model.nominal_ths
        return {"autotuning": {
            "enabled": {"default": True}, "modes": ["POWER_TARGET", "HASHRATE_TARGET"], "modeDefault": "POWER_TARGET",
            "powerTarget": {"default": nominal, "min": low, "max": high, "unit": "W"},
            "hashrateTarget": {"default": ths, "min": round(ths * 0.25, 3), "max": round(ths * 1.3, 3),
                               "step": 0.1, "unit": "TH/s"}}}

    def _gql_appeals(self) -> list[dict[str, Any]]:
        return [{"id": str(n + 1), "kind": "ERROR", "timestamp": int(self.state.boot_time) + 60 * (n + 1),
                 "message": text} for n, (_, text) in enumerate(self.state.messages)]

    def _gql_set_fault_light(self, enable: Any) -> bool:
        if not isinstance(enable, bool):
            raise ValueError("enable must be a Boolean")
        self.state.fault_light = enable
        return enable

    def _gql_update_autotuning(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValueError("input must be an AutotuningIn object")
        mode = changes.get("mode")
        try:
            if changes.get("powerTarget") is not None:
                self._set_power_target({"watt": changes["powerTarget"]})  # switches to the power mode too
            if changes.get("hashrateTarget") is not None:
                self._set_hashrate_target({"terahash_per_second": changes["hashrateTarget"]})
        except ValueError as exc:
            return {"__typename": "AutotuningError", "message": str(exc)}
        if mode == "POWER_TARGET":
            self.state.extra["tuner_mode"] = 1
        elif mode == "HASHRATE_TARGET" and self.state.extra.get("hashrate_target_ths") is not None:
            self.state.extra["tuner_mode"] = 2
        return {"__typename": "AutotuningOut", "hashChains": [], "autotuning": self._gql_config()["autotuning"]}

    def _gql_update_groups(self, groups: Any) -> dict[str, Any]:
        if not isinstance(groups, list) or not groups:
            return {"__typename": "GroupListError", "message": "at least one group is required"}
        body = [{"name": g.get("name") or f"group{i}", "load_balance_strategy": {"quota": {"value": g.get("quota", 1)}},
                 "pools": [{"url": p["url"], "user": p["user"], "password": p.get("password"),
                            "enabled": p.get("enabled", True)} for p in g.get("pools") or []]}
                for i, g in enumerate(groups)]
        self._set_pools(body)
        return {"__typename": "GroupList", "groups": self._gql_config()["groups"]}

    def _gql_update_temp_and_fans(self, changes: Any) -> dict[str, Any]:
        if not isinstance(changes, dict):
            raise ValueError("input must be a TempAndFansIn object")
        cooling = dict(self._gql_config()["tempControl"])
        mode = changes.get("mode") or cooling["mode"]
        for key in ("targetTemp", "hotTemp", "dangerousTemp"):
            if changes.get(key) is not None:
                cooling[key] = float(changes[key])
        if mode == "MANUAL":
            speed = changes.get("speed")
            if not isinstance(speed, int) or not 0 <= speed <= 100:
                return {"__typename": "TempAndFansError", "message": "manual mode needs a speed of 0-100 %"}
            self._set_cooling({"manual": {"fan_speed_ratio": speed / 100.0}})
        else:
            self._set_cooling({"auto": {"target_temperature": {"degree_c": cooling["targetTemp"]}}})
        self.state.extra["gql_cooling"] = {**cooling, "mode": mode}
        config = self._gql_config()
        return {"__typename": "TempAndFansOut", "tempControl": config["tempControl"],
                "fanControl": config["fanControl"]}

    def _log_lines(self, target: str) -> list[str]:
        reply = self._log(target)
        if reply.status != 200:
            raise ValueError(f"unknown log target {target!r}")
        return reply.body.decode().splitlines()

    # ----- LuCI (releases before 25.07): its login and the network status asic-rs and pyasic read ----
    def _luci(self, request: HttpRequest, path: str) -> HttpResponse:
        if path == "/cgi-bin/luci" and request.method == "POST":
            form = urllib.parse.parse_qs(request.body.decode("utf-8", errors="replace"))
            username = (form.get("luci_username") or [""])[0]
            password = (form.get("luci_password") or [""])[0]
            if not self._credentials_ok(username, password):
                return HttpResponse.html("<title>Braiins OS - Login</title><p>Invalid username and/or password!</p>",
                                         status=403)
            response = HttpResponse.html("<title>Braiins OS</title>")
            response.headers["Set-Cookie"] = f"session_id={self._new_token()}; Path=/cgi-bin/luci; HttpOnly"
            return response
        if not self._token_ok(self._session_cookie(request)):
            return HttpResponse.html("<title>Braiins OS - Login</title>", status=403)
        if path == "/cgi-bin/luci/admin/network/iface_status/lan" and request.method == "GET":
            return HttpResponse.of_json([{"macaddr": self.state.mac.lower()}])
        return HttpResponse(status=404, body=b"Not Found", content_type="text/plain")

    async def _rest(self, method: str, route: str, request: HttpRequest) -> HttpResponse:
        gets: dict[str, Callable[[], Any]] = {
            "miner/details": self._details, "miner/stats": self._stats, "miner/hw/hashboards": self._hashboards,
            "miner/errors": self._errors, "cooling/state": self._cooling_state, "pools": self._pools,
            "configuration/miner": self._configuration, "configuration/constraints": self._constraints,
            "performance/tuner-state": self._tuner_state, "network": self._network,
            "actions/locate": lambda: self.state.fault_light,
        }
        if method == "GET" and route in gets:
            return HttpResponse.of_json(gets[route]())
        if method == "GET" and route.startswith("miner/log/") and self.at_least("26.04"):
            return self._log(route.removeprefix("miner/log/"))
        if method == "PUT":
            return self._put(route, request)
        if method == "POST" and route == "upgrade/system-upgrade" and self.at_least("26.04"):
            return self._system_upgrade(request)
        return HttpResponse(status=404, body=b"", content_type="text/plain")

    def _put(self, route: str, request: HttpRequest) -> HttpResponse:
        s = self.state
        if route == "actions/locate":
            value = request.json()
            if not isinstance(value, bool):
                raise ValueError("expected a boolean")
            s.fault_light = value
            return HttpResponse.of_json(value)
        if route in ("actions/pause", "actions/stop"):
            s.mining = False
            return HttpResponse.of_json(True)
        if route in ("actions/resume", "actions/start"):
            s.mining = True
            return HttpResponse.of_json(True)
        if route == "actions/restart":
            s.mining = True
            return HttpResponse.of_json(True)
        if route == "actions/reboot":
            self._reboot()
            return HttpResponse(status=204, content_type="application/json")
        if route == "actions/factory-reset" and self.at_least("26.04"):
            self._factory_reset()
            return HttpResponse(status=204, content_type="application/json")
        if route == "auth/password":
            body = request.json()
            password = body.get("password") if isinstance(body, dict) else ""
            if password is not None and not isinstance(password, str):
                raise ValueError("password must be a string or null")
            s.password = password or ""
            return HttpResponse(status=204, content_type="application/json")
        if route == "performance/power-target":
            return HttpResponse.of_json(self._set_power_target(request.json()))
        if route == "performance/hashrate-target":
            return HttpResponse.of_json(self._set_hashrate_target(request.json()))
        if route == "cooling/mode":
            return HttpResponse.of_json(self._set_cooling(request.json()))
        if route == "performance/dps":
            return HttpResponse.of_json(self._set_dps(request.json()))
        if route == "pools/batch":
            return HttpResponse.of_json(self._set_pools(request.json()))
        return HttpResponse(status=404, body=b"", content_type="text/plain")

    # ----- gRPC (BOS+ API on 50051) -----------------------------------------------------------
    async def handle_grpc(self, call: GrpcCall) -> GrpcReply:
        self.count(f"{call.port}:{call.path}")
        name = _GRPC_METHODS.get(call.path)
        if name is None:
            raise GrpcError(GrpcStatus.UNIMPLEMENTED, f"unknown method {call.path}")
        request_type, reply_type = _GRPC_TYPES[call.path]
        if call.path not in _PUBLIC_PATHS and not self._token_ok(call.metadata.get("authorization", "")):
            raise GrpcError(GrpcStatus.UNAUTHENTICATED, "authentication token is missing or invalid")
        try:
            request = pb.decode(request_type, call.message)
        except pb.ProtobufError as exc:
            raise GrpcError(GrpcStatus.INTERNAL, f"failed to decode request: {exc}") from exc
        handler = getattr(self, name)
        try:
            body = handler(request) if name.startswith("_grpc_") else handler()
        except (ValueError, TypeError, KeyError) as exc:
            raise GrpcError(GrpcStatus.INVALID_ARGUMENT, str(exc)) from exc
        # the session token also travels in the `authorization` response header, where clients read it
        metadata = [("authorization", body["token"])] if call.path == _LOGIN_PATH else []
        return GrpcReply(pb.encode(reply_type, body), metadata)

    def _grpc_api_version(self, request: dict[str, Any]) -> dict[str, Any]:
        major, minor, patch = (int(x) for x in self.rest_api_version.split("."))
        return {"major": major, "minor": minor, "patch": patch}

    def _grpc_login(self, request: dict[str, Any]) -> dict[str, Any]:
        if not self._credentials_ok(request.get("username", ""), request.get("password", "")):
            raise GrpcError(GrpcStatus.UNAUTHENTICATED, "Invalid username or password")
        return {"token": self._new_token(), "timeout_s": _TOKEN_TIMEOUT_S}

    def _grpc_set_password(self, request: dict[str, Any]) -> dict[str, Any]:
        self.state.password = request.get("password") or ""
        return {}

    def _grpc_start(self, request: dict[str, Any]) -> dict[str, Any]:
        already, self.state.mining = self.state.mining, True
        return {"already_running": already}

    def _grpc_stop(self, request: dict[str, Any]) -> dict[str, Any]:
        already, self.state.mining = not self.state.mining, False
        return {"already_stopped": already}

    def _grpc_pause(self, request: dict[str, Any]) -> dict[str, Any]:
        already, self.state.mining = not self.state.mining, False
        return {"already_paused": already}

    def _grpc_resume(self, request: dict[str, Any]) -> dict[str, Any]:
        already, self.state.mining = self.state.mining, True
        return {"already_mining": already}

    def _grpc_restart(self, request: dict[str, Any]) -> dict[str, Any]:
        already, self.state.mining = self.state.mining, True  # restarts the mining software only
        return {"already_running": already}

    def _grpc_reboot(self, request: dict[str, Any]) -> dict[str, Any]:
        self._reboot()
        return {}

    def _grpc_set_locate(self, request: dict[str, Any]) -> dict[str, Any]:
        self.state.fault_light = bool(request.get("enable", False))
        return {"enabled": self.state.fault_light}

    def _grpc_locate(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"enabled": self.state.fault_light}

    def _grpc_tuner_state(self, request: dict[str, Any]) -> dict[str, Any]:
        rest = self._tuner_state()
        names = {"powertargetmodestate": "power_target_mode_state",
                 "hashratetargetmodestate": "hashrate_target_mode_state"}
        return {"overall_tuner_state": rest["overall_tuner_state"],
                **{names[k]: v for k, v in rest["mode_state"].items()}}

    def _grpc_set_power_target(self, request: dict[str, Any]) -> dict[str, Any]:
        watt = request.get("power_target", {}).get("watt", 0)
        return {"power_target": self._set_power_target({"watt": watt})}

    def _grpc_default_power_target(self, request: dict[str, Any]) -> dict[str, Any]:
        nominal, _, _ = self._power_bounds()
        return {"power_target": self._set_power_target({"watt": nominal})}

    def _grpc_increment_power_target(self, request: dict[str, Any]) -> dict[str, Any]:
        step = request.get("power_target_increment", {}).get("watt", 0)
        return {"power_target": self._set_power_target({"watt": int(self.state.power_limit) + step})}

    def _grpc_decrement_power_target(self, request: dict[str, Any]) -> dict[str, Any]:
        step = request.get("power_target_decrement", {}).get("watt", 0)
        return {"power_target": self._set_power_target({"watt": int(self.state.power_limit) - step})}

    def _grpc_set_hashrate_target(self, request: dict[str, Any]) -> dict[str, Any]:
        ths = request.get("hashrate_target", {}).get("terahash_per_second", 0.0)
        return {"hashrate_target": self._set_hashrate_target({"terahash_per_second": ths})}

    def _grpc_set_dps(self, request: dict[str, Any]) -> dict[str, Any]:
        body: dict[str, Any] = {k: request.get(k) for k in ("enable", "enable_shutdown", "shutdown_duration", "mode")}
        power = request.get("target", {}).get("power_target")
        if power is not None:
            body["target"] = {"target": {"powertarget": power}}
        return self._set_dps(body)

    def _grpc_set_performance_mode(self, request: dict[str, Any]) -> dict[str, Any]:
        tuner = request.get("mode", {}).get("tuner_mode")
        if tuner is None:
            raise GrpcError(GrpcStatus.UNIMPLEMENTED, "manual performance mode is not supported on this model")
        if "power_target" in tuner:
            self._set_power_target({"watt": tuner["power_target"].get("power_target", {}).get("watt", 0)})
        elif "hashrate_target" in tuner:
            target = tuner["hashrate_target"].get("hashrate_target", {})
            self._set_hashrate_target({"terahash_per_second": target.get("terahash_per_second", 0.0)})
        else:
            raise ValueError("a tuner mode needs a power or a hashrate target")
        return self._grpc_performance_mode({})

    def _grpc_performance_mode(self, request: dict[str, Any]) -> dict[str, Any]:
        s = self.state
        if s.extra["tuner_mode"] == 2 and s.extra.get("hashrate_target_ths") is not None:
            target: dict[str, Any] = {"hashrate_target": {
                "hashrate_target": {"terahash_per_second": s.extra["hashrate_target_ths"]}}}
        else:
            target = {"power_target": {"power_target": {"watt": int(s.power_limit)}}}
        return {"tuner_mode": target}

    def _grpc_pool_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"pool_groups": self._pools()}

    def _grpc_set_pool_groups(self, request: dict[str, Any]) -> dict[str, Any]:
        groups = [{"name": group.get("name", ""),
                   "load_balance_strategy": {"quota": group.get("quota", {"value": 1})},
                   "pools": [{"url": pool.get("url", ""), "user": pool.get("user", ""),
                              "password": pool.get("password"), "enabled": pool.get("enabled", True)}
                             for pool in group.get("pools", [])]}
                  for group in request.get("pool_groups", [])]
        return {"pool_groups": self._set_pools(groups)}

    def _grpc_configuration(self, request: dict[str, Any]) -> dict[str, Any]:
        """The REST configuration, with each pool's password as the gRPC message carries it."""
        config = self._configuration()
        for entry, group in zip(config["pool_groups"], self.state.pools, strict=True):
            for pool_entry, pool in zip(entry["pools"], group.pools, strict=True):
                pool_entry["password"] = pool.password
        return config

    def _grpc_miner_status(self, request: dict[str, Any]) -> dict[str, Any]:
        return {"status": _MINER_STATUS_NORMAL if self.state.mining else _MINER_STATUS_PAUSED}

    # ----- REST reads -------------------------------------------------------------------------
    def _details(self) -> dict[str, Any]:
        s = self.state
        name, model_enum, _, _ = _MODEL_FACTS.get(s.model.name, (s.model.name, 0, "", ""))
        return {
            "bos_mode": 4, "bos_version": {"bos_plus": True, "current": s.firmware_version, "major": _MAJOR_VERSION},
            "bosminer_uptime_s": s.uptime, "control_board_soc_family": 3, "hostname": s.hostname,
            "kernel_version": "4.9.113", "mac_address": s.mac.lower(),
            "miner_identity": {"brand": 1, "miner_model": name, "model": model_enum, "name": name},
            "platform": 4,
            "psu_info": {"fw_version": None, "max_voltage": {"volt": 15.2}, "min_voltage": {"volt": 11.96},
                         "model_name": "APW121215d/e", "serial_number": None, "version": 117},
            "serial_number": s.serial,
            "status": _MINER_STATUS_NORMAL if s.mining else _MINER_STATUS_PAUSED,
            "sticker_hashrate": _ghs(s.model.nominal_ths),
            "system_uptime": s.uptime, "system_uptime_s": s.uptime, "uid": self.uid,
        }

    def _work_stats(self, ths: float, nominal_ths: float) -> dict[str, Any]:
        windows = ("last_15m", "last_15s", "last_1h", "last_1m", "last_24h", "last_30m", "last_30s", "last_5m",
                   "last_5s", "since_restart")
        stats: dict[str, Any] = {"best_share": 776342690}
        if self.at_least("26.04"):
            stats["best_share_str"] = "776.34M"
        stats.update({"error_hashrate": {"megahash_per_second": 0.0}, "found_blocks": 0,
                      "nominal_hashrate": _ghs(nominal_ths), "real_hashrate": {w: _ghs(ths) for w in windows}})
        return stats

    def _pool_stats(self, accepted: int, rejected: int) -> dict[str, Any]:
        stats: dict[str, Any] = {"accepted_shares": accepted, "best_share": 776342690 if accepted else 0}
        if self.at_least("26.04"):
            stats["best_share_str"] = "776.34M" if accepted else "0"
        stats.update({"generated_work": accepted * 1700000, "last_difficulty": 262144,
                      "last_share_time": _timestamp(time.time()) if accepted else None,
                      "rejected_shares": rejected, "stale_shares": 0})
        return stats

    def _stats(self) -> dict[str, Any]:
        s = self.state
        ths = s.live_hashrate_ths
        watts = round(self.live_wattage())
        return {
            "miner_stats": self._work_stats(ths, s.model.nominal_ths),
            "pool_stats": self._pool_stats(s.accepted, s.rejected),
            "power_stats": {"approximated_consumption": {"watt": watts},
                            "efficiency": {"joule_per_terahash": round(watts / ths, 6) if ths > 0 else 0.0}},
        }

    def _hashboards(self) -> dict[str, Any]:
        s = self.state
        _, _, chip, board_name = _MODEL_FACTS.get(s.model.name, ("", 0, "BM13xx", "BHB00000"))
        boards = []
        for i, ths in enumerate(self.board_hashrates()):
            temp = s.board_temps[i]
            boards.append({
                "board_name": board_name, "board_temp": {"degree_c": temp}, "chip_type": chip,
                "chips_count": s.model.chips_per_board,
                "current_frequency": {"hertz": 486704545.0 + 1e6 * i},
                "current_voltage": {"volt": 12.93826530612245}, "enabled": True,
                "highest_chip_temp": {"id": i + 1, "location": 1, "temperature": {"degree_c": self.chip_temps()[i]}},
                "highest_outlet_temp": {"degree_c": temp}, "id": str(i + 1),
                "lowest_inlet_temp": {"degree_c": round(temp - 14.0, 1)}, "model": board_name,
                "serial_number": self.board_serials[i],
                "stats": self._work_stats(ths, self.board_nominal_ths()),
            })
        return {"hashboards": boards}

    def _errors(self) -> dict[str, Any]:
        errors = []
        for n, (code, text) in enumerate(self.state.messages):
            when = datetime.fromtimestamp(self.state.boot_time + 60 * (n + 1), UTC)
            codes = [{"code": str(code), "hint": "", "reason": text}] if code else []
            errors.append({"components": [], "error_codes": codes, "message": text,
                           "timestamp": when.strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
        return {"errors": errors}

    def _cooling_state(self) -> dict[str, Any]:
        ratio = self.fan_ratio()
        fans = [{"position": i, "rpm": rpm, "target_speed_ratio": ratio} for i, rpm in enumerate(self.state.fan_rpms)]
        hottest = max(self.chip_temps(), default=0.0)
        return {"fans": fans, "highest_temperature": {"id": None, "location": 1, "temperature": {"degree_c": hottest}}}

    def _group_strategy(self, group: PoolGroup) -> dict[str, Any]:
        return {"quota": {"value": group.quota}}

    def _pools(self) -> list[dict[str, Any]]:
        groups = []
        for g, group in enumerate(self.state.pools):
            pools = []
            for p, pool in enumerate(group.pools):
                first = g == 0 and p == 0
                accepted, rejected = (self.state.accepted, self.state.rejected) if first else (0, 0)
                pools.append({"active": first and self.state.mining, "alive": True, "enabled": True,
                              "stats": self._pool_stats(accepted, rejected), "uid": self.pool_uid(g, p),
                              "url": pool.url, "user": pool.username})
            entry: dict[str, Any] = {"name": group.name, "pools": pools, "strategy": self._group_strategy(group)}
            if self.at_least("25.11"):
                entry["uid"] = str(g)
            groups.append(entry)
        return groups

    def _configuration(self) -> dict[str, Any]:
        s = self.state
        groups = [{"load_balance_strategy": self._group_strategy(group), "name": group.name,
                   "pools": [{"enabled": True, "uid": self.pool_uid(g, p), "url": pool.url, "user": pool.username}
                             for p, pool in enumerate(group.pools)], "uid": str(g)}
                  for g, group in enumerate(s.pools)]
        target = s.extra.get("hashrate_target_ths")
        config: dict[str, Any] = {
            "pool_groups": groups,
            "tuner": {"enabled": True,
                      "hashrate_target": {"terahash_per_second": target} if target is not None else None,
                      "power_target": {"watt": int(s.power_limit)}, "tuner_mode": s.extra["tuner_mode"]},
        }
        # unset sections are left out, as the firmware leaves out what still has its default
        if s.extra.get("cooling") is not None:
            config["temperature"] = {"mode": s.extra["cooling"]}
        if s.extra.get("dps") is not None:
            config["dps"] = s.extra["dps"]
        return config

    def _power_bounds(self) -> tuple[int, int, int]:
        nominal = round(self.state.model.nominal_watts)
        return nominal, round(nominal * 0.25), round(nominal * 1.3)

    def _constraints(self) -> dict[str, Any]:
        nominal, low, high = self._power_bounds()
        ths = self.state.model.nominal_ths
        return {
            "cooling_constraints": {
                "dangerous_temperature": {"default": {"degree_c": 110.0}, "max": {"degree_c": 200.0},
                                          "min": {"degree_c": 0.0}},
                "default_cooling_mode": 1,
                "fan_speed_ratio": {"default": 1.0, "max": 1.0, "min": 0.0},
                "hot_temperature": {"default": {"degree_c": 90.0}, "max": {"degree_c": 200.0},
                                    "min": {"degree_c": 0.0}},
                "min_fan_speed": {"default": 0, "max": 100, "min": 0},
                "max_fan_speed": {"default": 100, "max": 100, "min": 0},
                "minimum_required_fans": {"default": 1, "max": self.state.model.fans, "min": 0},
                "target_temperature": {"default": {"degree_c": 75.0}, "max": {"degree_c": 200.0},
                                       "min": {"degree_c": 0.0}},
            },
            "dps_constraints": {
                "enabled": {"default": False}, "mode": 1,
                "min_power_target": {"default": {"watt": low}, "max": {"watt": nominal}, "min": {"watt": low}},
                "power_step": {"default": {"watt": round(nominal * 0.1)}, "max": {"watt": nominal},
                               "min": {"watt": 1}},
                "shutdown_duration": {"default": {"hours": 3}, "max": {"hours": 720}, "min": {"hours": 1}},
                "shutdown_enabled": {"default": False},
            },
            "hashboards_constraints": {"enabled": {"default": True},
                                       "hashboard_ids": [str(i + 1) for i in range(self.state.model.boards)]},
            "tuner_constraints": {
                "default_mode": 1, "enabled": {"default": True},
                "hashrate_target": {"default": {"terahash_per_second": ths},
                                    "max": {"terahash_per_second": round(ths * 1.3, 3)},
                                    "min": {"terahash_per_second": round(ths * 0.25, 3)}},
                "power_target": {"default": {"watt": nominal}, "max": {"watt": high}, "min": {"watt": low}},
            },
        }

    def _tuner_state(self) -> dict[str, Any]:
        s = self.state
        profile: dict[str, Any] = {"created": _timestamp(self.started - 3600),
                                   "estimated_power_consumption": {"watt": round(s.wattage)},
                                   "measured_hashrate": _ghs(s.hashrate_ths)}
        if s.extra["tuner_mode"] == 2 and s.extra.get("hashrate_target_ths") is not None:
            target: dict[str, Any] = {"terahash_per_second": s.extra["hashrate_target_ths"]}
            mode = {"hashratetargetmodestate": {"current_target": target, "profile": {**profile, "target": target}}}
        else:
            target = {"watt": int(s.power_limit)}
            mode = {"powertargetmodestate": {"current_target": target, "profile": {**profile, "target": target}}}
        return {"mode_state": mode, "overall_tuner_state": 2}

    def _network(self) -> dict[str, Any]:
        s = self.state
        return {"default_gateway": "10.0.0.1", "dns_servers": ["127.0.0.1"], "hostname": s.hostname,
                "mac_address": s.mac.lower(), "name": "eth0",
                "networks": [{"address": s.ip, "netmask": "255.255.0.0"}], "protocol": 1}

    def _log(self, log_type: str) -> HttpResponse:
        if log_type not in _LOG_TYPES:
            return HttpResponse(status=404, body=b"", content_type="text/plain")
        start = datetime.fromtimestamp(self.state.boot_time, UTC)
        stamp = f"{start:%Y-%m-%dT%H:%M:%S}Z"
        lines = [f"{stamp} INFO bosminer: starting {self.signature}",
                 f"{stamp} INFO bosminer: {self.identity_name}, {self.state.model.boards} hashboards",
                 f"{stamp} INFO tuner: power target {int(self.state.power_limit)} W"]
        lines += [f"{stamp} ERROR {text}" for _, text in self.state.messages]
        return HttpResponse(body=("\n".join(lines) + "\n").encode(), content_type="application/octet-stream")

    # ----- REST writes ------------------------------------------------------------------------
    def _set_power_target(self, body: Any) -> dict[str, int]:
        watt = body["watt"]
        _, low, high = self._power_bounds()
        if not isinstance(watt, int) or not low <= watt <= high:
            raise ValueError(f"power target must be between {low} and {high} W")
        self.state.power_limit = float(watt)
        self.state.extra["tuner_mode"] = 1
        return {"watt": watt}

    def _set_hashrate_target(self, body: Any) -> dict[str, float]:
        ths = float(body["terahash_per_second"])
        nominal = self.state.model.nominal_ths
        if not nominal * 0.25 <= ths <= nominal * 1.3:
            raise ValueError("hashrate target out of range")
        self.state.extra["hashrate_target_ths"] = ths
        self.state.extra["tuner_mode"] = 2
        return {"terahash_per_second": ths}

    def _set_cooling(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict) or len(body) != 1:
            raise ValueError("expected one cooling mode")
        (mode, settings), = body.items()
        if mode == "manual":
            ratio = float(settings["fan_speed_ratio"])
            if not 0.0 <= ratio <= 1.0:
                raise ValueError("fan_speed_ratio must be between 0.0 and 1.0")
            self.state.fan = FanConfig.manual(round(ratio * 100))
            self.state.fan_rpms = [round(6600 * ratio) for _ in self.state.fan_rpms]
            stored: dict[str, Any] = {"fan_speed_ratio": ratio}
        elif mode == "auto":
            target = (settings.get("target_temperature") or {}).get("degree_c")
            idle = settings.get("min_fan_speed")
            self.state.fan = FanConfig.auto(target_temp=target, idle_speed=idle)
            self.state.fan_rpms = list(self.auto_fan_rpms)
            stored = {k: v for k, v in settings.items() if v is not None}
        elif mode in ("immersion", "hydro"):
            self.state.fan = FanConfig.auto()
            stored = dict(settings)
        else:
            raise ValueError(f"unknown cooling mode {mode!r}")
        self.state.extra["cooling"] = {mode: stored}
        return {mode: stored}

    def _set_dps(self, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise ValueError("expected an object")
        current = dict(self.state.extra.get("dps") or {"enabled": False, "mode": 1, "shutdown_enabled": False})
        if body.get("enable") is not None:
            current["enabled"] = bool(body["enable"])
        if body.get("enable_shutdown") is not None:
            current["shutdown_enabled"] = bool(body["enable_shutdown"])
        if body.get("shutdown_duration") is not None:
            current["shutdown_duration"] = {"hours": int(body["shutdown_duration"]["hours"])}
        if body.get("mode") is not None:
            current["mode"] = int(body["mode"])
        target = ((body.get("target") or {}).get("target") or {})
        power = target.get("powertarget")
        if power is not None:
            for key in ("power_step", "min_power_target"):
                if power.get(key) is not None:
                    current[key] = {"watt": int(power[key]["watt"])}
        self.state.extra["dps"] = current
        reply = {k: v for k, v in current.items() if k in ("enabled", "mode", "shutdown_duration", "shutdown_enabled")}
        reply["power_target"] = {k: current[k] for k in ("power_step", "min_power_target") if k in current}
        return reply

    def _set_pools(self, body: Any) -> list[dict[str, Any]]:
        if not isinstance(body, list) or not body:
            raise ValueError("expected a non-empty list of pool groups")
        groups = []
        for item in body:
            strategy = item.get("load_balance_strategy") or {}
            quota = int((strategy.get("quota") or {}).get("value", 1))
            pools = [Pool(url=p["url"], username=p["user"], password=p.get("password") or "x")
                     for p in item["pools"] if p.get("enabled", True) is not False]
            groups.append(PoolGroup(name=item["name"], quota=quota, pools=pools))
        self.state.pools = groups
        self.state.extra["pool_uids"] = {}
        return [{"load_balance_strategy": self._group_strategy(group), "name": group.name,
                 "pools": [{"enabled": True, "password": pool.password, "uid": self.pool_uid(g, p), "url": pool.url,
                            "user": pool.username} for p, pool in enumerate(group.pools)], "uid": str(g)}
                for g, group in enumerate(groups)]

    def _system_upgrade(self, request: HttpRequest) -> HttpResponse:
        parts = self._multipart(request)
        if "metadata" not in parts or "data" not in parts:
            raise ValueError("metadata and data parts are required")
        metadata = orjson.loads(parts["metadata"])
        image = parts["data"]
        if int(metadata["size"]) != len(image) or metadata["hash"].lower() != hashlib.sha256(image).hexdigest():
            raise ValueError("image size or hash does not match the metadata")
        if read_sim_image(image) is not None:  # a simulated image names its version (BOS's full version string)
            refusal = self.install_image(image)
            if refusal is not None:
                raise ValueError(refusal)
        self.state.extra["last_upgrade"] = {"size": len(image), "hash": metadata["hash"].lower()}
        self._reboot()
        return HttpResponse(status=204, content_type="application/json")

    @staticmethod
    def _multipart(request: HttpRequest) -> dict[str, bytes]:
        content_type = request.headers.get("content-type", "")
        if "multipart/form-data" not in content_type:
            raise ValueError("expected multipart/form-data")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(
            b"Content-Type: " + content_type.encode() + b"\r\n\r\n" + request.body)
        parts: dict[str, bytes] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True)
            if isinstance(name, str) and isinstance(payload, bytes):
                parts[name] = payload
        return parts

    def _reboot(self) -> None:
        self.tokens.clear()  # sessions do not survive a reboot
        self.state.mining = True
        self.restart()

    def _factory_reset(self) -> None:
        s = self.state
        s.password = self.default_password
        s.fan = FanConfig.auto()
        s.fan_rpms = list(self.auto_fan_rpms)
        s.fault_light = False
        s.power_limit = round(s.model.nominal_watts, 0)
        s.extra.update({"tuner_mode": 1, "hashrate_target_ths": None, "cooling": None, "dps": None})
        self._reboot()
