"""Braiins OS (BOS+) on Antminer hardware: the public REST API on port 80, the BOSer RPC on 4028.

Reads and controls go through the REST API (`/api/v1/...`, Braiins OS 25.07 and later): a token
from `POST /api/v1/auth/login` is sent back raw in the `Authorization` header. The CGMiner-style
RPC on 4028 (no authentication) identifies the miner (`version`, `devdetails`) and is the fallback
for the fields it also carries when the REST API refuses us (no such API on older releases, or no
login accepted): hash rate, boards, fans, pools, power, uptime.

Logs, factory reset and firmware upgrade exist in the REST API from 26.04 on; on older releases
those controls raise UnsupportedControlError.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Collection, Mapping
from datetime import datetime, timedelta
from typing import Any, ClassVar

import orjson
from pydantic import ValidationError

from asicfleet._errors import (
    AuthenticationError,
    MinerAPIError,
    MinerError,
    MinerResponseError,
)
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, dig, hashrate_from, reply_text, to_float
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningCapabilities,
    TuningRange,
    TuningTarget,
)
from asicfleet.data._miner_data import MessageSeverity
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, rpc_call

API = "/api/v1/"
_MINER_STATUS_NORMAL = 2  # MinerStatus NORMAL: mining; 3 is paused, 4 suspended, 1 not started
_TUNER_MODE_HASHRATE = 2
_SAVE_AND_APPLY = 2
# ControlBoardSocFamily of the Braiins OS API
_CONTROL_BOARDS = {1: "CVITek", 2: "BeagleBone Black", 3: "Amlogic", 4: "Xilinx Zynq", 5: "Braiins"}


REST_API_WITH_LOGS = "1.3.0"  # the REST API of Braiins OS 26.04: logs, factory reset, system upgrade
_SINCE_26_04 = ("read_logs", "factory_reset", "upgrade_firmware")


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) if part.isdigit() else 0 for part in version.split("."))


class HttpStatusError(MinerAPIError):
    """The REST API answered with an HTTP error status."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


# ----- pure parsers: reply fragments in, model values out ----------------------------------------
def ths_from_ghs(value: Any) -> HashRate | None:
    """`{"gigahash_per_second": x}` -> HashRate in TH/s."""
    return hashrate_from(value.get("gigahash_per_second"), "GH/s") if isinstance(value, dict) else None


def degrees(value: Any) -> float | None:
    return to_float(value.get("degree_c")) if isinstance(value, dict) else None


def parse_mac(value: Any) -> str | None:
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


def parse_api_version(value: Any) -> str | None:
    if not isinstance(value, dict) or not all(isinstance(value.get(k), int) for k in ("major", "minor", "patch")):
        return None
    return f"{value['major']}.{value['minor']}.{value['patch']}"


def parse_tuning_capabilities(tuner: Any) -> TuningCapabilities | None:
    """REST `tuner_constraints`: the power target (watts) and hash rate target (TH/s) ranges."""
    if not isinstance(tuner, dict):
        return None

    def watts(value: Any) -> TuningTarget | None:
        watt = to_float(value.get("watt")) if isinstance(value, dict) else None
        return TuningTarget(target_watts=watt) if watt is not None else None

    def terahash(value: Any) -> TuningTarget | None:
        ths = to_float(value.get("terahash_per_second")) if isinstance(value, dict) else None
        return TuningTarget(target_hashrate=HashRate(value=ths, unit="TH/s")) if ths is not None else None

    def axis(key: str, target: Callable[[Any], TuningTarget | None]) -> TuningRange | None:
        limits = tuner.get(key)
        if not isinstance(limits, dict):
            return None
        return TuningRange(default=target(limits.get("default")), minimum=target(limits.get("min")),
                           maximum=target(limits.get("max")))

    power, hashrate = axis("power_target", watts), axis("hashrate_target", terahash)
    return TuningCapabilities(power=power, hashrate=hashrate) if power or hashrate else None


def parse_control_board(value: Any) -> str | None:
    return _CONTROL_BOARDS.get(value) if isinstance(value, int) else None


def parse_uptime(value: Any) -> timedelta | None:
    seconds = to_float(value)
    return timedelta(seconds=int(seconds)) if seconds is not None else None


def parse_is_mining(status: Any) -> bool | None:
    return status == _MINER_STATUS_NORMAL if isinstance(status, int) else None


def parse_light(value: Any) -> bool | None:
    return value if isinstance(value, bool) else None


def _board_positions(ids: list[Any]) -> list[int]:
    """Slots from board ids: "1","2","3" -> 0,1,2 (S9-era chains 6,7,8 -> 0,1,2); otherwise in order."""
    numbers = [int(i) if isinstance(i, int | str) and str(i).isdigit() else None for i in ids]
    if not numbers or any(n is None for n in numbers):
        return list(range(len(ids)))
    offset = 6 if min(n for n in numbers if n is not None) >= 6 else 1
    return [max(0, (n or 0) - offset) for n in numbers]


def parse_hashboards(boards: Any) -> list[BoardData]:
    """REST `miner/hw/hashboards` -> boards, in slot order."""
    if not isinstance(boards, list):
        raise TypeError("hashboards is not a list")
    entries = [b for b in boards if isinstance(b, dict)]
    out = []
    for position, board in zip(_board_positions([b.get("id") for b in entries]), entries, strict=True):
        stats = board.get("stats") or {}
        hertz = to_float(dig(board, ("current_frequency", "hertz")) if board.get("current_frequency") else None)
        out.append(BoardData(
            position=position,
            hashrate=ths_from_ghs(dig(stats, ("real_hashrate", "last_5s"))),
            expected_hashrate=ths_from_ghs(stats.get("nominal_hashrate")),
            board_temperature=degrees(board.get("board_temp")),
            intake_temperature=degrees(board.get("lowest_inlet_temp")),
            outlet_temperature=degrees(board.get("highest_outlet_temp")),
            working_chips=board.get("chips_count") if isinstance(board.get("chips_count"), int) else None,
            serial_number=board.get("serial_number") or None,
            voltage=to_float(dig(board, ("current_voltage", "volt")) if board.get("current_voltage") else None),
            frequency=round(hertz / 1e6, 3) if hertz is not None else None,
            active=board.get("enabled") if isinstance(board.get("enabled"), bool) else None,
        ))
    return sorted(out, key=lambda b: b.position)


def parse_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise TypeError("fans is not a list")
    return [FanData(position=f.get("position") if isinstance(f.get("position"), int) else i, rpm=to_float(f.get("rpm")))
            for i, f in enumerate(fans) if isinstance(f, dict)]


def _quota(strategy: Any) -> int:
    value = dig(strategy, ("quota", "value")) if isinstance(strategy, dict) else None
    return value if isinstance(value, int) and value >= 0 else 1


def parse_pools(groups: Any) -> list[PoolGroupData]:
    """REST `pools` (a list of pool groups) -> groups of pools with their share counts."""
    if not isinstance(groups, list):
        raise TypeError("pools is not a list")
    out = []
    for group in groups:
        if not isinstance(group, dict):
            continue
        pools = []
        for index, pool in enumerate(group.get("pools") or []):
            stats = pool.get("stats") or {}
            pools.append(PoolData(position=index, url=pool.get("url"), user=pool.get("user"),
                                  accepted_shares=stats.get("accepted_shares"),
                                  rejected_shares=stats.get("rejected_shares"),
                                  active=pool.get("active"), alive=pool.get("alive")))
        out.append(PoolGroupData(name=group.get("name") or "default", quota=_quota(group.get("strategy")),
                                 pools=pools))
    return out


def parse_messages(errors: Any) -> list[MinerMessage]:
    """REST `miner/errors` -> messages; the firmware's error codes are strings, so `code` stays 0."""
    if not isinstance(errors, list):
        raise TypeError("errors is not a list")
    out = []
    for error in errors:
        if not isinstance(error, dict) or not error.get("message"):
            continue
        stamp = error.get("timestamp")
        when = int(datetime.fromisoformat(stamp).timestamp()) if isinstance(stamp, str) and stamp else None
        out.append(MinerMessage(code=0, message=str(error["message"]), severity=MessageSeverity.ERROR,
                                timestamp=when))
    return out


def parse_tuner_state(mode_state: Any) -> TuningTarget | None:
    """REST `performance/tuner-state` mode_state -> the target the tuner works towards."""
    if not isinstance(mode_state, dict):
        return None
    watt = dig(mode_state, ("powertargetmodestate", "current_target", "watt"))
    if isinstance(watt, int | float):
        return TuningTarget(target_watts=float(watt))
    ths = dig(mode_state, ("hashratetargetmodestate", "current_target", "terahash_per_second"))
    if isinstance(ths, int | float):
        return TuningTarget(target_hashrate=HashRate(value=float(ths), unit="TH/s"))
    return None


def parse_tuner_config(tuner: Any) -> TuningTarget | None:
    """REST `configuration/miner` tuner -> the configured target (power or hash rate per tuner_mode)."""
    if not isinstance(tuner, dict):
        return None
    ths = dig(tuner, ("hashrate_target", "terahash_per_second")) if tuner.get("hashrate_target") else None
    if tuner.get("tuner_mode") == _TUNER_MODE_HASHRATE and isinstance(ths, int | float):
        return TuningTarget(target_hashrate=HashRate(value=float(ths), unit="TH/s"))
    watt = dig(tuner, ("power_target", "watt")) if tuner.get("power_target") else None
    return TuningTarget(target_watts=float(watt)) if isinstance(watt, int | float) else None


# ----- RPC fallbacks ----------------------------------------------------------------------------
def mhs(value: Any) -> HashRate | None:
    return hashrate_from(value, "MH/s")


def rpc_expected_hashrate(devs: Any) -> HashRate | None:
    nominal = [to_float(d.get("Nominal MHS")) for d in devs if isinstance(d, dict)] if isinstance(devs, list) else []
    known = [n for n in nominal if n is not None]
    return hashrate_from(sum(known), "MH/s") if known else None


def rpc_is_mining(devs: Any) -> bool | None:
    if not isinstance(devs, list) or not devs:
        return None
    return any((to_float(d.get("MHS 5s")) or 0.0) > 0 for d in devs if isinstance(d, dict))


def rpc_fans(fans: Any) -> list[FanData]:
    if not isinstance(fans, list):
        raise TypeError("FANS is not a list")
    return [FanData(position=f.get("FAN", i), rpm=to_float(f.get("RPM"))) for i, f in enumerate(fans)
            if isinstance(f, dict)]


def rpc_pools(pools: Any) -> list[PoolGroupData]:
    if not isinstance(pools, list):
        raise TypeError("POOLS is not a list")
    return [PoolGroupData(name="default", quota=1, pools=[
        PoolData(position=p.get("POOL", i), url=p.get("URL"), user=p.get("User"), accepted_shares=p.get("Accepted"),
                 rejected_shares=p.get("Rejected"), active=p.get("Stratum Active"),
                 alive=p.get("Status") == "Alive" if p.get("Status") else None)
        for i, p in enumerate(pools) if isinstance(p, dict)])]


def rpc_hashboards(replies: Mapping[str, Any]) -> list[BoardData]:
    """Boards from RPC `devs` (hash rate), `temps` (board temperature) and `devdetails` (chips...)."""
    devs = [d for d in replies["rpc:devs"].get("DEVS") or [] if isinstance(d, dict)]
    temps = {t.get("ID"): t for t in replies["rpc:temps"].get("TEMPS") or [] if isinstance(t, dict)}
    details = {d.get("ID"): d for d in replies["rpc:devdetails"].get("DEVDETAILS") or [] if isinstance(d, dict)}
    boards = []
    for position, dev in zip(_board_positions([d.get("ID") for d in devs]), devs, strict=True):
        detail = details.get(dev.get("ID"), {})
        boards.append(BoardData(
            position=position, hashrate=mhs(dev.get("MHS 5s")), expected_hashrate=mhs(dev.get("Nominal MHS")),
            board_temperature=to_float(temps.get(dev.get("ID"), {}).get("Board")),
            working_chips=detail.get("Chips") if isinstance(detail.get("Chips"), int) else None,
            voltage=to_float(detail.get("Voltage")), frequency=to_float(detail.get("Frequency")),
            active=dev.get("Enabled") == "Y" if dev.get("Enabled") else None))
    return boards


def model_from_devdetails(reply: Mapping[str, Any] | None) -> str | None:
    """`DEVDETAILS[0].Model` ("Bitmain Antminer S19j Pro") -> the model name."""
    model = dig(reply, ("DEVDETAILS", 0, "Model")) if reply else None
    return canonical_model(model) if isinstance(model, str) and model.strip() else None


def canonical_model(raw: str) -> str:
    """The hardware table's name for a model string the firmware reports, or the string itself."""
    name = raw.strip()
    if name.lower().startswith("bitmain "):
        name = name[len("bitmain "):].strip()
    name = name.replace("S19XP", "S19 XP")
    known = lookup_model(Make.ANTMINER, name)
    return known.name if known is not None else name


class BraiinsBackend(Backend):
    family: ClassVar[str] = "braiins"
    firmware: ClassVar[str] = "Braiins OS"
    PRIORITY: ClassVar[int] = 20  # "Braiins OS" / BOSer are unambiguous: ahead of the generic Antminer stock
    RPC_BATCHABLE: ClassVar[bool] = True
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("root", ""), ("root", "root"))

    DATA: ClassVar[Mapping[DataField, Source | list[Source]]] = {
        DataField.MAC: [at("web:miner/details", "mac_address", parse=parse_mac),
                        at("web:network", "mac_address", parse=parse_mac)],
        DataField.SERIAL_NUMBER: at("web:miner/details", "serial_number"),
        DataField.HOSTNAME: [at("web:miner/details", "hostname"), at("web:network", "hostname")],
        DataField.FIRMWARE_VERSION: at("web:miner/details", "bos_version", "current"),
        DataField.API_VERSION: [at("web:version", parse=parse_api_version),
                                at("rpc:version", "VERSION", 0, "API", parse=str)],
        DataField.CONTROL_BOARD_VERSION: at("web:miner/details", "control_board_soc_family",
                                            parse=parse_control_board),
        DataField.HASHRATE: [at("web:miner/stats", "miner_stats", "real_hashrate", "last_5s", parse=ths_from_ghs),
                             at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs)],
        DataField.EXPECTED_HASHRATE: [at("web:miner/details", "sticker_hashrate", parse=ths_from_ghs),
                                      at("rpc:devs", "DEVS", parse=rpc_expected_hashrate)],
        DataField.HASHBOARDS: [at("web:miner/hw/hashboards", "hashboards", parse=parse_hashboards),
                               at(("rpc:devs", "rpc:temps", "rpc:devdetails"), parse=rpc_hashboards)],
        DataField.FANS: [at("web:cooling/state", "fans", parse=parse_fans), at("rpc:fans", "FANS", parse=rpc_fans)],
        DataField.WATTAGE: [at("web:miner/stats", "power_stats", "approximated_consumption", "watt", parse=to_float),
                            at("rpc:tunerstatus", "TUNERSTATUS", 0, "ApproximateMinerPowerConsumption",
                               parse=to_float)],
        DataField.WATTAGE_LIMIT: [at("web:configuration/miner", "tuner", "power_target", "watt", parse=to_float),
                                  at("rpc:tunerstatus", "TUNERSTATUS", 0, "PowerLimit", parse=to_float)],
        DataField.UPTIME: [at("web:miner/details", "system_uptime_s", parse=parse_uptime),
                           at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=parse_uptime)],
        DataField.POOLS: [at("web:pools", parse=parse_pools), at("rpc:pools", "POOLS", parse=rpc_pools)],
        DataField.MESSAGES: at("web:miner/errors", "errors", parse=parse_messages),
        DataField.IS_MINING: [at("web:miner/details", "status", parse=parse_is_mining),
                              at("rpc:devs", "DEVS", parse=rpc_is_mining)],
        DataField.LIGHT_FLASHING: at("web:actions/locate", parse=parse_light),
        # as asic-rs: the target is the configured one, the scaled one what the tuner runs now (DPS may
        # have stepped it down)
        DataField.TUNING_TARGET: [at("web:configuration/miner", "tuner", parse=parse_tuner_config),
                                  at("web:performance/tuner-state", "mode_state", parse=parse_tuner_state)],
        DataField.SCALED_TUNING_TARGET: at("web:performance/tuner-state", "mode_state", parse=parse_tuner_state),
        DataField.TUNING_CAPABILITIES: at("web:configuration/constraints", "tuner_constraints",
                                          parse=parse_tuning_capabilities),
    }

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        super().__init__(ip, device, session)
        self._token: str | None = None
        self._username = "root"

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if "Braiins OS" in probe.web_text:
            return True
        text = reply_text(probe.rpc_reply("version")).upper()
        return "BOSMINER" in text or "BOSER" in text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """The model from RPC `devdetails`; from GraphQL `modelName` when the RPC cannot tell."""
        model: str | None = None
        rpc_error: MinerError | None = None
        reply = probe.rpc_reply("devdetails")
        if reply is None:
            try:
                reply = await rpc_call(probe.ip, "devdetails", settings=session.settings)
            except MinerError as exc:
                rpc_error = exc
        model = model_from_devdetails(reply)
        if model is None:
            try:
                model = await cls._graphql_model(probe.ip, session)
            except MinerError:
                if rpc_error is not None:
                    raise rpc_error from None
                raise
        if model is None:
            if rpc_error is not None:
                raise rpc_error
            return None
        probe.learned["rest_api_version"] = await cls._rest_api_version(probe.ip, session)
        return cls.device_info(Make.ANTMINER.value, model, cls.firmware)

    @staticmethod
    async def _rest_api_version(ip: str, session: Session) -> str | None:
        """`GET /api/v1/version` (answered without a login): which release's REST API the miner serves;
        None when it serves none (releases before 25.07) or did not answer."""
        try:
            reply = await session.http.request("GET", ip, API + "version")
        except MinerError:
            return None
        if reply.status != 200:
            return None
        try:
            return parse_api_version(reply.json())
        except (ValueError, MinerError):
            return None

    def unavailable(self) -> dict[str, str]:
        """Every control goes through the REST API (25.07+); logs, factory reset and firmware upgrade came
        with its 1.3.0 (Braiins OS 26.04)."""
        api = self.learned.get("rest_api_version")
        if not isinstance(api, str):
            return {c: "the Braiins OS REST API (25.07 and later) did not answer at identification"
                    for c in self.implemented()}
        if _version_tuple(api) < _version_tuple(REST_API_WITH_LOGS):
            return {c: f"needs Braiins OS 26.04 or later (REST API {REST_API_WITH_LOGS}); this one serves {api}"
                    for c in _SINCE_26_04}
        return {}

    @staticmethod
    async def _graphql_model(ip: str, session: Session) -> str | None:
        reply = await session.http.request("POST", ip, "/graphql",
                                           json={"query": "{ bosminer { info { modelName } } }"})
        if reply.status != 200:
            return None
        model = dig(reply.json(), ("data", "bosminer", "info", "modelName"))
        return canonical_model(model) if isinstance(model, str) and model.strip() else None

    # ----- REST transport ---------------------------------------------------------------------
    async def _login_with(self, creds: Credentials) -> str:
        reply = await self.http("POST", API + "auth/login",
                                json={"username": creds.username, "password": creds.password.get_secret_value()})
        if reply.status in (401, 403):
            raise AuthenticationError(f"{self.ip}: Braiins OS refused the login of {creds.username!r}")
        self._check(reply, "POST auth/login")
        token = dig(reply.json(), ("token",))
        if not isinstance(token, str) or not token:
            raise MinerResponseError("POST auth/login: the reply holds no token")
        self._username = creds.username
        return token

    async def _ensure_token(self) -> str:
        if self._token is None:
            self._token = await self.with_credentials(self._login_with)
        return self._token

    @staticmethod
    def _check(reply: HttpReply, what: str) -> None:
        if not 200 <= reply.status < 300:
            raise HttpStatusError(f"{what}: HTTP {reply.status}", reply.status)

    async def request(self, method: str, route: str, **kwargs: Any) -> HttpReply:
        """One authenticated REST call; logs in again once when the session has expired."""
        for attempt in range(2):
            token = await self._ensure_token()
            reply = await self.http(method, API + route, headers={"Authorization": token}, **kwargs)
            if reply.status != 401:
                break
            self._token = None  # expired, or the miner rebooted: a fresh login, then one more try
            if attempt == 1:
                raise AuthenticationError(f"{method} {route}: the session token was refused")
        self._check(reply, f"{method} {route}")
        return reply

    async def call(self, method: str, route: str, **kwargs: Any) -> Any:
        reply = await self.request(method, route, **kwargs)
        return reply.json() if reply.body.strip() else None

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.call("GET", command[4:])
        return await super().send(command)

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Logs in once before the REST reads go out in parallel; a refused login fails them all."""
        web = [c for c in commands if c.startswith("web:")]
        results: dict[str, Any] = {}
        if web:
            try:
                await self._ensure_token()
            except MinerError as exc:
                results.update({c: exc for c in web})
                commands = [c for c in commands if c not in results]
        results.update(await super().send_many(commands))
        return results

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        chips = self.device.hardware.chips_per_board
        if chips is not None:
            for board in data.hashboards:
                if board.expected_chips is None:
                    board.expected_chips = chips
        return super().finalize(data, replies)

    async def _optional(self, method: str, route: str, control: str, **kwargs: Any) -> HttpReply:
        """A call to an endpoint newer releases have: HTTP 404 means this release lacks the control."""
        try:
            return await self.request(method, route, **kwargs)
        except HttpStatusError as exc:
            if exc.status in (404, 405, 501):
                raise self._unsupported(f"{control} (needs Braiins OS 26.04 or later)") from None
            raise

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.request("PUT", "actions/reboot")
        self._token = None  # the reboot ends the session
        return True

    async def pause(self) -> bool:
        return await self.call("PUT", "actions/pause") is True

    async def resume(self) -> bool:
        return await self.call("PUT", "actions/resume") is True

    async def set_fault_light(self, on: bool) -> bool:
        reply = await self.call("PUT", "actions/locate", json=bool(on))
        return reply is bool(on)

    async def set_power_limit(self, watts: float) -> bool:
        target = round(watts)
        reply = await self.call("PUT", "performance/power-target", json={"watt": target})
        return bool(dig(reply, ("watt",)) == target)

    async def get_pools_config(self) -> list[PoolGroup]:
        """Pool groups as configured; the API does not give passwords back, so they read as 'x'."""
        groups = []
        for group in await self.call("GET", "pools") or []:
            pools = []
            for pool in (group.get("pools") or [])[:3]:
                try:
                    pools.append(Pool(url=pool["url"], username=pool["user"]))
                except (ValidationError, KeyError, TypeError):
                    continue  # a pool our model cannot express (odd scheme): left out rather than guessed
            if pools:
                groups.append(PoolGroup(name=group.get("name") or "default", quota=_quota(group.get("strategy")),
                                        pools=pools))
        return groups

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        body = [{"name": g.name, "load_balance_strategy": {"quota": {"value": g.quota}},
                 "pools": [{"url": p.url, "user": p.username, "password": p.password, "enabled": True}
                           for p in g.pools]} for g in groups]
        reply = await self.call("PUT", "pools/batch", json=body)
        return isinstance(reply, list) and len(reply) == len(groups)

    async def get_fan_config(self) -> FanConfig:
        config = await self.call("GET", "configuration/miner") or {}
        mode = dig(config, ("temperature", "mode"))
        if isinstance(mode, dict) and isinstance(mode.get("manual"), dict):
            ratio = to_float(mode["manual"].get("fan_speed_ratio"))
            if ratio is not None:
                return FanConfig.manual(round(ratio * 100))
        if isinstance(mode, dict) and isinstance(mode.get("auto"), dict):
            auto = mode["auto"]
            idle = auto.get("min_fan_speed")
            return FanConfig.auto(target_temp=degrees(auto.get("target_temperature")),
                                  idle_speed=idle if isinstance(idle, int) else None)
        return FanConfig.auto()  # no cooling section: the firmware's default automatic control

    async def set_fan_config(self, config: FanConfig) -> bool:
        if config.mode == "manual":
            assert config.fan_speed is not None  # guaranteed by FanConfig's validation
            body: dict[str, Any] = {"manual": {"fan_speed_ratio": round(config.fan_speed / 100.0, 4)}}
        else:
            auto: dict[str, Any] = {}
            if config.target_temp is not None:
                auto["target_temperature"] = {"degree_c": config.target_temp}
            if config.idle_speed is not None:
                auto["min_fan_speed"] = config.idle_speed
            body = {"auto": auto}
        reply = await self.call("PUT", "cooling/mode", json=body)
        return isinstance(reply, dict) and config.mode in reply

    async def get_temperature_config(self) -> TemperatureConfig:
        """Hot and dangerous temperatures of the automatic cooling mode; the firmware's defaults (its
        constraints) while the mode leaves them unset. Braiins OS has no minimum temperature."""
        config = await self.call("GET", "configuration/miner") or {}
        auto = dig(config, ("temperature", "mode", "auto"))
        auto = auto if isinstance(auto, dict) else {}
        hot, danger = degrees(auto.get("hot_temperature")), degrees(auto.get("dangerous_temperature"))
        if hot is None or danger is None:
            limits = dig(await self.call("GET", "configuration/constraints") or {}, ("cooling_constraints",))
            limits = limits if isinstance(limits, dict) else {}
            hot = hot if hot is not None else degrees(dig(limits, ("hot_temperature", "default")))
            danger = danger if danger is not None else degrees(dig(limits, ("dangerous_temperature", "default")))
        if hot is None and danger is None:
            raise MinerResponseError("GET configuration/miner: no hot or dangerous temperature")
        return TemperatureConfig(hot=hot, danger=danger)

    async def get_tuning_config(self) -> TuningConfig:
        config = await self.call("GET", "configuration/miner") or {}
        target = parse_tuner_config(config.get("tuner"))
        if target is None:
            raise MinerResponseError("GET configuration/miner: no tuner target in the reply")
        if target.target_hashrate is not None:
            return TuningConfig.hashrate(target.target_hashrate)
        assert target.target_watts is not None
        return TuningConfig.power(target.target_watts)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        if config.target_hashrate is not None:
            ths = round(config.target_hashrate.into_unit("TH/s").value, 3)
            reply = await self.call("PUT", "performance/hashrate-target", json={"terahash_per_second": ths})
            return to_float(dig(reply, ("terahash_per_second",))) == ths
        raise self._unsupported(f"set_tuning_config with a named mode ({config.target_mode!r})")

    async def _nominal_watts(self) -> float:
        """The default power target: what scaling percentages are percentages of."""
        constraints = await self.call("GET", "configuration/constraints") or {}
        watt = to_float(dig(constraints, ("tuner_constraints", "power_target", "default", "watt")))
        if watt:
            return watt
        known = lookup_model(self.device.make, self.device.model)
        if known is None or known.nominal_watts is None:
            raise MinerResponseError("no default power target to scale against")
        return known.nominal_watts

    async def get_scaling_config(self) -> ScalingConfig:
        """Dynamic Performance Scaling; steps in watts are read as percent of the default power target."""
        nominal = await self._nominal_watts()
        config = await self.call("GET", "configuration/miner") or {}
        dps = config.get("dps")
        if not isinstance(dps, dict):  # never configured: the firmware's defaults
            constraints = await self.call("GET", "configuration/constraints") or {}
            defaults = constraints.get("dps_constraints") or {}
            dps = {"power_step": dig(defaults, ("power_step", "default")),
                   "min_power_target": dig(defaults, ("min_power_target", "default")),
                   "shutdown_enabled": dig(defaults, ("shutdown_enabled", "default")),
                   "shutdown_duration": dig(defaults, ("shutdown_duration", "default"))}
        step = to_float(dig(dps, ("power_step", "watt"))) or 0.0
        minimum = to_float(dig(dps, ("min_power_target", "watt"))) or 0.0
        hours = to_float(dig(dps, ("shutdown_duration", "hours")))
        shutdown = dps.get("shutdown_enabled")
        return ScalingConfig(step=min(100, max(1, round(100 * step / nominal))),
                             minimum=min(100, max(0, round(100 * minimum / nominal))),
                             shutdown=shutdown if isinstance(shutdown, bool) else None, shutdown_duration=hours)

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        nominal = await self._nominal_watts()
        body: dict[str, Any] = {
            "enable": True, "save_action": _SAVE_AND_APPLY,
            "target": {"target": {"powertarget": {
                "power_step": {"watt": round(nominal * config.step / 100)},
                "min_power_target": {"watt": round(nominal * config.minimum / 100)}}}},
        }
        if config.shutdown is not None:
            body["enable_shutdown"] = config.shutdown
        if config.shutdown_duration is not None:
            body["shutdown_duration"] = {"hours": round(config.shutdown_duration)}
        reply = await self.call("PUT", "performance/dps", json=body)
        return isinstance(reply, dict)

    async def change_password(self, password: str) -> bool:
        await self.request("PUT", "auth/password", json={"password": password})
        self.session.credentials.remember(self.ip, self.family, Credentials(username=self._username,
                                                                            password=password))
        return True

    async def read_logs(self) -> str:
        reply = await self._optional("GET", "miner/log/bosminer", "read_logs")
        return reply.text

    async def factory_reset(self) -> bool:
        await self._optional("PUT", "actions/factory-reset", "factory_reset")
        self._token = None  # the reset reboots the miner and forgets the password
        return True

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        metadata = {"disable_cleanup": False, "discard_settings": False,
                    "hash": hashlib.sha256(image).hexdigest(), "size": len(image)}
        await self._optional("POST", "upgrade/system-upgrade", "upgrade_firmware",
                             data={"metadata": orjson.dumps(metadata).decode()},
                             files={"data": (filename, image, "application/octet-stream")})
        self._token = None  # the miner reboots into the new image
        return True


__all__ = ["BraiinsBackend", "HttpStatusError", "canonical_model", "model_from_devdetails"]

