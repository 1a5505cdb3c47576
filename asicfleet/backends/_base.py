"""What every firmware backend is: identification, declared data locations, one collector, controls.

A backend declares, per `DataField`, which command supplies it and where in that command's reply
it lives (`DATA`). `get_data()` works out the set of commands the wanted fields need, sends each
command once (RPC commands joined into one `a+b+c` request where the firmware allows it, the rest in
parallel), then extracts every field from the replies. Extraction is pure (`extract`), so parsers are
tested on captured replies without a socket (`parse_raw`).

Command keys are the backend's own names. By convention `rpc:<command>` is a CGMiner-style RPC
command on 4028 (sent by the default `send_many`, batched when `RPC_BATCHABLE`); any other key is
sent by the backend's `send()`.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from ipaddress import IPv4Address
from typing import Any, ClassVar, TypeVar

import orjson
from pydantic import ValidationError

from asicfleet._errors import (
    AuthenticationError,
    MinerConnectionError,
    MinerError,
    MinerTimeoutError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.config import Credentials, FanConfig, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import DeviceInfo, HashRate, MinerData
from asicfleet.hardware import Cooling, lookup_model
from asicfleet.transport import HttpReply, decode_json, rpc_call, rpc_multi
from asicfleet.transport._rpc import check_status

log = logging.getLogger("asicfleet.backends")
T = TypeVar("T")


class DataField(StrEnum):
    """The fields of MinerData a backend can supply; each value is the MinerData attribute name."""

    MAC = "mac"
    SERIAL_NUMBER = "serial_number"
    HOSTNAME = "hostname"
    FIRMWARE_VERSION = "firmware_version"
    API_VERSION = "api_version"
    CONTROL_BOARD_VERSION = "control_board_version"
    HASHRATE = "hashrate"
    EXPECTED_HASHRATE = "expected_hashrate"
    HASHBOARDS = "hashboards"
    FANS = "fans"
    PSU_FANS = "psu_fans"
    WATTAGE = "wattage"
    WATTAGE_LIMIT = "wattage_limit"
    UPTIME = "uptime"
    POOLS = "pools"
    MESSAGES = "messages"
    IS_MINING = "is_mining"
    LIGHT_FLASHING = "light_flashing"
    TUNING_TARGET = "tuning_target"
    SCALED_TUNING_TARGET = "scaled_tuning_target"
    TUNING_PERCENT = "tuning_percent"
    TUNING_CAPABILITIES = "tuning_capabilities"
    FLUID_TEMPERATURE = "fluid_temperature"
    OUTLET_FLUID_TEMPERATURE = "outlet_fluid_temperature"


_MISSING = object()
# failures that say the channel (port, login) is unusable, not that the firmware refused one command
_CHANNEL_FAILURES = (MinerConnectionError, MinerTimeoutError, AuthenticationError)


@dataclass(frozen=True)
class Source:
    """Where one field comes from: `command`'s reply, at `path`, turned into the value by `parse`.

    `command` may be a tuple of keys when a field needs several replies; `parse` then receives a dict
    {key: reply} and `path` must be empty. A path that is absent from the reply yields None (the
    firmware does not report the field); an exception from `parse` is recorded in MinerData.errors.

    `same_figure` marks an alternative that reads the very figure the sources before it read (the same
    counter in another reply): when a read sends its command anyway, the field is taken from it and
    the earlier sources' commands are not sent for this field alone.
    """

    command: str | tuple[str, ...]
    path: tuple[str | int, ...] = ()
    parse: Callable[[Any], Any] | None = None
    same_figure: bool = False

    @property
    def commands(self) -> tuple[str, ...]:
        return self.command if isinstance(self.command, tuple) else (self.command,)


def at(command: str | tuple[str, ...], *path: str | int, parse: Callable[[Any], Any] | None = None,
       same_figure: bool = False) -> Source:
    """Shorthand: `at("rpc:summary", "SUMMARY", 0, "MHS 5s", parse=mhs)`."""
    return Source(command, tuple(path), parse, same_figure)


def _channel(command: str) -> str:
    """`rpc:summary` -> `rpc`; a key without a prefix is its own channel."""
    return command.split(":", 1)[0] if ":" in command else command


def dig(value: Any, path: Iterable[str | int]) -> Any:
    """Follows `path` into nested dicts/lists; returns _MISSING when any step is absent."""
    for step in path:
        try:
            value = value[step]
        except (KeyError, IndexError, TypeError):
            return _MISSING
    return value


@dataclass
class Probe:
    """What discovery learned about an address before choosing a backend.

    `web` is the reply to `GET /` on port 80; `rpc` maps an RPC command sent during discovery
    (`version`, and others a backend asked for) to its decoded reply or the error it raised.
    """

    ip: str
    web: HttpReply | None = None
    rpc: dict[str, dict[str, Any] | Exception] = field(default_factory=dict)
    # what a backend's identify() learned beyond the model (`firmware_version`, an API generation...):
    # handed to the backend it builds, which decides its capabilities from it
    learned: dict[str, Any] = field(default_factory=dict)

    @property
    def web_text(self) -> str:
        if self.web is None:
            return ""
        return self.web.text + "\n" + "\n".join(f"{k}: {v}" for k, v in self.web.headers.items())

    def rpc_reply(self, command: str) -> dict[str, Any] | None:
        reply = self.rpc.get(command)
        return reply if isinstance(reply, dict) else None


# Every control a backend may implement (the Backend methods it overrides), as the handle names them.
CONTROLS: tuple[str, ...] = (
    "restart", "pause", "resume", "set_fault_light", "set_power_limit", "set_tuning_percent", "change_password",
    "read_logs", "factory_reset", "upgrade_firmware", "get_pools_config", "set_pools_config", "get_fan_config",
    "set_fan_config", "get_tuning_config", "set_tuning_config", "get_scaling_config", "set_scaling_config",
    "get_temperature_config",
)


class Backend:
    """Base of every firmware backend. Subclasses set the ClassVars and override what they support."""

    family: ClassVar[str]  # registry key and credential family, e.g. "antminer"
    firmware: ClassVar[str]  # firmware name reported in DeviceInfo, e.g. "Stock", "Braiins OS"
    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {}
    RPC_BATCHABLE: ClassVar[bool] = True  # the firmware answers joined `a+b` RPC commands
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = ()  # (username, password), in order
    PRIORITY: ClassVar[int] = 100  # identification order: lower is tried first (more specific signals)
    POOLS_APPLY_AT_REBOOT: ClassVar[bool] = False  # pool writes wait for a reboot (sent by set_pools_config)

    def __init__(self, ip: str, device: DeviceInfo, session: Session | None = None) -> None:
        self.ip = ip
        self.device = device
        self.session = session if session is not None else Session()
        self.learned: dict[str, Any] = {}  # what identification learned: see `Probe.learned`

    @classmethod
    def from_identification(cls, ip: str, device: DeviceInfo, session: Session,
                            learned: Mapping[str, Any]) -> Backend:
        """The backend for an identified miner, knowing what identification learned about its firmware."""
        backend = cls(ip, device, session)
        backend.learned = dict(learned)
        return backend

    def adopt(self, fresh: Backend) -> None:
        """Takes what a new identification of the same miner learned (its firmware may have changed)."""
        self.learned = dict(fresh.learned)

    @property
    def firmware_version(self) -> str | None:
        """The firmware version identification read, when it read one."""
        version = self.learned.get("firmware_version")
        return version if isinstance(version, str) and version else None

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        """True when the probe's signals say this firmware (cheap, no I/O)."""
        return False

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        """Reads the model (and firmware name) of a host `matches` accepted; None if it is not one."""
        raise NotImplementedError

    @staticmethod
    def device_info(make: str, model: str, firmware: str) -> DeviceInfo:
        """DeviceInfo with the hardware shape from the hardware table, when the model is known."""
        known = lookup_model(make, model)
        if known is None:
            return DeviceInfo(make=make, model=model, firmware=firmware)
        return DeviceInfo(make=make, model=model, firmware=firmware, algo=known.algo, hardware=known.hardware)

    # ----- sending ----------------------------------------------------------------------------
    async def rpc(self, command: str, parameter: str | int | None = None) -> dict[str, Any]:
        return await rpc_call(self.ip, command, parameter, settings=self.session.settings)

    async def http(self, method: str, path: str, **kwargs: Any) -> HttpReply:
        return await self.session.http.request(method, self.ip, path, **kwargs)

    async def send(self, command: str) -> Any:
        """Sends one command key and returns its decoded reply. Override for non-RPC keys."""
        if command.startswith("rpc:"):
            name, _, param = command[4:].partition("|")
            return await self.rpc(name, param or None)
        raise NotImplementedError(f"{type(self).__name__} cannot send {command!r}")

    def joinable(self, command: str) -> bool:
        """Whether `command` may go into a joined `a+b` RPC request (parameterless RPC reads)."""
        return self.RPC_BATCHABLE and command.startswith("rpc:") and "|" not in command

    async def send_many(self, commands: Collection[str]) -> dict[str, Any]:
        """Sends each command once; returns {key: reply or the exception it raised}."""
        joinable = [c for c in commands if self.joinable(c)]
        batched = joinable if len(joinable) > 1 else []
        others = [c for c in commands if c not in batched]
        results: dict[str, Any] = {}

        async def one(key: str) -> None:
            try:
                results[key] = await self.send(key)
            except (MinerError, ValueError) as exc:
                results[key] = exc

        async def batch() -> None:
            try:
                replies = await rpc_multi(self.ip, [c[4:] for c in batched], settings=self.session.settings)
                results.update({f"rpc:{k}": v for k, v in replies.items()})
            except MinerError as exc:
                results.update({c: exc for c in batched})

        jobs: list[Awaitable[None]] = [one(c) for c in others]
        if batched:
            jobs.append(batch())
        await asyncio.gather(*jobs)
        return results

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        out: dict[DataField, list[Source]] = {}
        for name in wanted:
            declared = self.DATA.get(name)
            if declared is not None:
                out[name] = [declared] if isinstance(declared, Source) else list(declared)
        return out

    @staticmethod
    def plan(sources: Mapping[DataField, Sequence[Source]]) -> dict[DataField, int]:
        """The index of the source each field is read from first: its first source, unless a later
        `same_figure` one needs only commands that other fields need anyway (the read sends fewer)."""
        needed = {cmd for srcs in sources.values() if not any(s.same_figure for s in srcs[1:])
                  for cmd in srcs[0].commands}
        return {name: next((i for i, s in enumerate(srcs) if i and s.same_figure and set(s.commands) <= needed), 0)
                for name, srcs in sources.items()}

    def commands_for(self, wanted: Iterable[DataField]) -> set[str]:
        """The commands needed: each field's planned source (the other sources are fallbacks)."""
        sources = self.sources(wanted)
        return {cmd for name, index in self.plan(sources).items() for cmd in sources[name][index].commands}

    def fallback_commands(self, wanted: Iterable[DataField], replies: Mapping[str, Any]) -> set[str]:
        """For fields whose planned source failed: the unsent commands of their first usable fallback.

        A fallback on the channel that just failed (the key's prefix, e.g. `rpc:`) is not usable: when
        the web API refused the login, another web endpoint would be refused too; the RPC may not be. The
        sources a `same_figure` plan passed over are, unless the channel itself failed (no connection, no
        reply in time, a refused login): the firmware answered, refusing only that one command.
        """
        extra: set[str] = set()
        every = self.sources(wanted)
        for name, index in self.plan(every).items():
            sources, planned = every[name], every[name][index]
            failed = [c for c in planned.commands if isinstance(replies.get(c), BaseException)]
            if not failed:
                continue
            dead_channels = {_channel(c) for c in failed}
            passed_over = sources[:index]
            if not any(isinstance(replies[c], _CHANNEL_FAILURES) for c in failed):
                passed_over = [s for s in passed_over if not any(isinstance(replies.get(c), BaseException)
                                                                 for c in s.commands)]
                if passed_over:
                    extra.update(c for c in passed_over[0].commands if c not in replies)
                    continue
            for source in (s for s in sources if s is not planned):
                if any(isinstance(replies.get(c), BaseException) or _channel(c) in dead_channels
                       for c in source.commands):
                    continue
                extra.update(c for c in source.commands if c not in replies)
                break
        return extra

    async def get_data(self, fields: Iterable[DataField] | None = None,
                       exclude: Iterable[DataField] = ()) -> MinerData:
        """Sends each needed command once; a second round goes only to fallbacks of failed commands."""
        excluded = set(exclude)
        wanted = [f for f in (fields if fields is not None else DataField) if f not in excluded]
        replies = await self.send_many(sorted(self.commands_for(wanted)))
        extra = self.fallback_commands(wanted, replies)
        if extra:
            replies.update(await self.send_many(sorted(extra)))
        return self.extract(replies, wanted)

    def extract(self, replies: Mapping[str, Any], wanted: Iterable[DataField] | None = None) -> MinerData:
        """Builds MinerData from replies (values, or exceptions for failed commands). No I/O."""
        wanted = list(wanted) if wanted is not None else list(DataField)
        values: dict[str, Any] = {}
        errors: list[str] = [f"{k}: {v}" for k, v in replies.items() if isinstance(v, BaseException)]
        for name, sources in self.sources(wanted).items():
            for source in sources:
                got = [replies.get(c, _MISSING) for c in source.commands]
                if any(g is _MISSING or isinstance(g, BaseException) for g in got):
                    continue
                raw = dict(zip(source.commands, got, strict=True)) if isinstance(source.command, tuple) \
                    else dig(got[0], source.path)
                if raw is _MISSING:
                    continue
                try:
                    value = source.parse(raw) if source.parse is not None else raw
                except (ValueError, TypeError, KeyError, IndexError, AttributeError, ArithmeticError) as exc:
                    errors.append(f"{name.value}: cannot parse {source.commands} ({type(exc).__name__}: {exc})")
                    continue
                if value is not None:
                    values[name.value] = value
                    break
        return self.finalize(self._build(values, errors), replies)

    def _build(self, values: dict[str, Any], errors: list[str]) -> MinerData:
        """MinerData from parsed values; a value the model refuses (a hostile reply's `[]` for a serial)
        is dropped with an error naming the field, so the rest of the reply still reads."""
        while True:
            try:
                return MinerData(ip=IPv4Address(self.ip), device_info=self.device, errors=errors, **values)
            except ValidationError as exc:
                refused = {str(e["loc"][0]) for e in exc.errors() if e["loc"] and str(e["loc"][0]) in values}
                if not refused:
                    raise
                for name in sorted(refused):
                    errors.append(f"{name}: the reply's value does not fit ({type(values.pop(name)).__name__})")

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        """Fills what derives from other fields (expected hash rate from the hardware table...); keeps
        fluid temperatures for hydro models only (on an air-cooled model the same sensors read air)."""
        known = lookup_model(self.device.make, self.device.model) if self.device.make else None
        if data.expected_hashrate is None and known is not None and known.nominal_ths is not None:
            data.expected_hashrate = HashRate(value=known.nominal_ths, unit="TH/s", algo=known.algo)
        if known is None or known.cooling is not Cooling.HYDRO:
            data.fluid_temperature = data.outlet_fluid_temperature = None
        return data

    def parse_raw(self, raw: Mapping[str, bytes | Any], wanted: Iterable[DataField] | None = None) -> MinerData:
        """`extract` on undecoded replies (bytes as captured from the wire); RPC replies are status-checked."""
        replies: dict[str, Any] = {}
        for key, value in raw.items():
            try:
                decoded = decode_json(bytes(value)) if isinstance(value, bytes | bytearray) else value
                replies[key] = check_status(decoded, key) if key.startswith("rpc:") else decoded
            except MinerError as exc:
                replies[key] = exc
        return self.extract(replies, wanted)

    # ----- credentials ------------------------------------------------------------------------
    def credential_candidates(self) -> list[Credentials]:
        defaults = [Credentials(username=u, password=p) for u, p in self.DEFAULT_CREDENTIALS]
        return self.session.credentials.candidates(self.ip, self.family, defaults)

    async def with_credentials(self, call: Callable[[Credentials], Awaitable[T]], *, remember: bool = True,
                               first: Callable[[Credentials], bool] | None = None) -> T:
        """Runs `call` with each candidate login until one is not refused; remembers the winner
        (not wanted when the call itself changes the password). Candidates for which `first` is true
        are tried before the others (a refused login costs a request, and may count toward a lockout)."""
        last: AuthenticationError | None = None
        candidates = self.credential_candidates()
        if first is not None:
            candidates.sort(key=lambda c: not first(c))  # stable: the configured order holds within each part
        for creds in candidates:
            try:
                result = await call(creds)
            except AuthenticationError as exc:
                last = exc
                continue
            if remember:
                self.session.credentials.remember(self.ip, self.family, creds)
            return result
        raise last or AuthenticationError(f"{self.ip}: no credentials configured for {self.family}")

    # ----- controls: a backend overrides what its firmware can do ------------------------------
    def _unsupported(self, control: str) -> UnsupportedControlError:
        return UnsupportedControlError(
            f"{control} is not supported by {self.device.make} {self.device.model} "
            f"({self.device.firmware}) at {self.ip}"
        )

    async def restart(self) -> bool:
        raise self._unsupported("restart")

    async def pause(self) -> bool:
        raise self._unsupported("pause")

    async def resume(self) -> bool:
        raise self._unsupported("resume")

    async def set_fault_light(self, on: bool) -> bool:
        raise self._unsupported("set_fault_light")

    async def set_power_limit(self, watts: float) -> bool:
        raise self._unsupported("set_power_limit")

    async def power_limit_held(self, watts: float) -> float:
        """The limit the firmware holds when asked for `watts`: `watts` itself, unless the firmware tunes in
        steps and takes one of them (what a rollout verifies the read-back against)."""
        return watts

    async def change_password(self, password: str) -> bool:
        raise self._unsupported("change_password")

    async def read_logs(self) -> str:
        raise self._unsupported("read_logs")

    async def factory_reset(self) -> bool:
        raise self._unsupported("factory_reset")

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        raise self._unsupported("upgrade_firmware")

    async def get_pools_config(self) -> list[PoolGroup]:
        raise self._unsupported("get_pools_config")

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        raise self._unsupported("set_pools_config")

    async def get_fan_config(self) -> FanConfig:
        raise self._unsupported("get_fan_config")

    async def set_fan_config(self, config: FanConfig) -> bool:
        raise self._unsupported("set_fan_config")

    async def get_tuning_config(self) -> TuningConfig:
        raise self._unsupported("get_tuning_config")

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        raise self._unsupported("set_tuning_config")

    async def get_scaling_config(self) -> ScalingConfig:
        raise self._unsupported("get_scaling_config")

    async def get_temperature_config(self) -> TemperatureConfig:
        raise self._unsupported("get_temperature_config")

    async def set_tuning_percent(self, percent: int) -> bool:
        raise self._unsupported("set_tuning_percent")

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        raise self._unsupported("set_scaling_config")

    @classmethod
    def supports(cls, control: str) -> bool:
        """True when this backend implements `control` for some firmware version (it overrides it)."""
        return getattr(cls, control) is not getattr(Backend, control)

    @classmethod
    def implemented(cls) -> tuple[str, ...]:
        """The controls this backend implements for some firmware version."""
        return tuple(c for c in CONTROLS if cls.supports(c))

    def unavailable(self) -> dict[str, str]:
        """Controls this backend implements that the miner at hand cannot do, each with the reason.

        Decided from what identification learned (`learned`: firmware version, API generation); a fact
        identification could not learn counts against the control, so a capability is never promised
        on a guess. Backends whose controls depend on the firmware version override this.
        """
        return {}

    def can(self, control: str) -> bool:
        """True only when this miner, at its identified firmware version, can do `control`."""
        return type(self).supports(control) and control not in self.unavailable()

    def refuse(self, control: str) -> UnsupportedControlError:
        """The error for a control this miner cannot do, with the reason when the version decides it."""
        reason = self.unavailable().get(control)
        return self._unsupported(f"{control} ({reason})" if reason else control)


# ----- small parsing helpers shared by backends --------------------------------------------------
def reply_text(reply: Any) -> str:
    """A decoded reply as JSON text, for matching identification markers; '' for None.

    Any decoded reply serialises: integers beyond 64 bits (which orjson refuses) go through json.
    """
    if reply is None:
        return ""
    try:
        return orjson.dumps(reply).decode("utf-8", errors="replace")
    except TypeError:
        return json.dumps(reply, default=str)


def first_row(reply: Mapping[str, Any], section: str) -> dict[str, Any]:
    """The first row of a CGMiner-style section (`VERSION`, `DEVDETAILS`...); ValueError when there is none."""
    rows = reply.get(section)
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise ValueError(f"reply without a {section} row")
    return rows[0]


def parse_text(value: Any) -> str | None:
    """A string field, stripped; None when absent or blank."""
    return value.strip() if isinstance(value, str) and value.strip() else None


def parse_mac(value: Any) -> str | None:
    """A MAC address as firmwares write it, upper-cased; None when absent or blank."""
    return value.strip().upper() if isinstance(value, str) and value.strip() else None


MAX_BOARDS = 32  # more hashboards than any miner has: a larger count or index in a reply is garbage
MAX_FANS = 32
MAX_LISTED = 256  # any other count a reply gives of things it then lists (error codes, ...)


def bounded_count(value: Any, limit: int) -> int:
    """A count a reply gives, as an int in [0, limit]: a hostile or garbled figure (1e18, inf, NaN, "-3") never
    sizes a loop or a list, so a reply cannot make a parser build a billion boards."""
    number = to_float(value)
    if number is None or not number > 0:  # NaN included
        return 0
    return int(min(number, limit))


def to_float(value: Any) -> float | None:
    """A number from a miner reply ('12.5', 12, '' or None); None when absent or not numeric."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def hashrate_from(value: Any, unit: str) -> HashRate | None:
    """HashRate from a number in `unit` (e.g. MHS figures: unit='MH/s'), in TH/s; None when absent."""
    number = to_float(value)
    if number is None:
        return None
    return HashRate(value=number, unit=unit).into_unit("TH/s")
