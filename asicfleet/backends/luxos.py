"""LuxOS (Luxor's LUXminer firmware) on Antminer hardware: its CGMiner-style RPC on 4028, nothing else.

Identification: every RPC reply names `LUXminer` (in `STATUS[0].Description`, and `version` has a
`LUXminer` field), and the web page on port 80 says "Luxor Firmware". The model is `VERSION[0].Type`.

Reads are parameterless RPC commands, joined into one `a+b+c` request (LUXminer takes joined
commands when none has a parameter): `version`, `summary`, `stats`, `config` (MAC, serial, hostname,
control board, LEDs, curtailment, active profile), `devs` (board serials, nominal rates), `temps`,
`fans`, `power`, `profiles` (each profile's watts and hash rate), `pools` + `groups`, `events`.

Writes that change the miner need a session: `logon` returns a session id (one session may exist at a
time; it lapses after a minute unused), which is the first parameter of `curtail`, `ledset`,
`profileset`, `fanset`, `atmset` and `rebootdevice`; `logoff` ends it. Every control here opens its own
session and ends it, so it never holds the miner's only session longer than it needs. Pool and group
commands (`addgroup`, `addpool`, `removegroup`) take no session, as pyasic and asic-rs send them.

Tuning is by profile (frequency/voltage steps with an estimated power and hash rate each): a power
limit picks the highest profile at or below it, as pyasic does; the pools reply carries no passwords.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import MinerAPIError, MinerError, MinerResponseError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends._base import (
    Backend,
    DataField,
    Probe,
    Source,
    at,
    first_row,
    hashrate_from,
    parse_mac,
    parse_text,
    to_float,
)
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import rpc_call

MAKE = Make.ANTMINER.value
RPC_MARKER = "LUXMINER"
WEB_MARKER = "Luxor Firmware"
# event codes that are notices, not faults (the miner reports its own state)
INFO_EVENTS = frozenset({"MINER_TUNED", "MINER_TUNING", "IDLE", "SLEEP", "REBOOT_USER", "SHUTDOWN_USER",
                         "REBOOT_SYSINIT", "HASH_ON_DISCONNECT"})
LIT_LED_STATES = ("on", "blink")


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def stats_row(reply: Mapping[str, Any]) -> dict[str, Any]:
    """The device row of `stats` (STATS[0] describes the program, STATS[1] the miner)."""
    rows = reply.get("STATS")
    if not isinstance(rows, list):
        raise ValueError("stats reply without a STATS list")
    for row in rows:
        if isinstance(row, dict) and any(k.startswith("chain_rate") for k in row):
            return row
    raise ValueError("stats reply without a device row")


def ghs(value: Any) -> HashRate | None:
    return hashrate_from(value, "GH/s")


def rate_in(value: Any, unit: Any) -> HashRate | None:
    """A figure in stats' `rate_unit` (`GH`, `TH`...), GH when it is absent."""
    name = unit if isinstance(unit, str) and unit.strip() else "GH"
    return hashrate_from(value, name if "/" in name else name + "/s")


def _sensors(value: Any) -> list[float]:
    """`"47-34-34-47"` -> the non-zero readings (0 marks a missing sensor)."""
    readings = [to_float(item) for item in value.split("-")] if isinstance(value, str) else []
    return [r for r in readings if r]


def _mean(values: Sequence[float | None]) -> float | None:
    present = [v for v in values if v]
    return round(sum(present) / len(present), 2) if present else None


def parse_hashboards(stats: Mapping[str, Any], devs: Mapping[str, Any] | None = None,
                     temps: Mapping[str, Any] | None = None, board_count: int | None = None,
                     chips_per_board: int | None = None) -> list[BoardData]:
    """Boards from the stats row (`chain_rateN`, `chain_acnN`, `freqN`, `temp_pcbN`), with serial numbers
    and nominal rates from `devs` and intake/exhaust sensors from `temps` when given."""
    row = stats_row(stats)
    unit = row.get("rate_unit")
    count = board_count or sum(1 for n in range(1, 17) if to_float(row.get(f"chain_acn{n}")))
    devices = {d.get("ID", d.get("ASC")): d for d in (devs or {}).get("DEVS") or [] if isinstance(d, dict)}
    sensors = {t.get("ID"): t for t in (temps or {}).get("TEMPS") or [] if isinstance(t, dict)}
    boards = []
    for position in range(count):
        n = position + 1  # stats numbers chains from 1
        rate = rate_in(row.get(f"chain_rate{n}"), unit)
        chips = to_float(row.get(f"chain_acn{n}"))
        device = devices.get(position, {})
        sensor = sensors.get(position, {})
        boards.append(BoardData(
            position=position,
            hashrate=rate,
            expected_hashrate=hashrate_from(device.get("Nominal MHS"), "MH/s"),
            board_temperature=_mean(_sensors(row.get(f"temp_pcb{n}"))),
            # LUXminer labels TopLeft/BottomLeft the board exhaust and TopRight/BottomRight its intake
            intake_temperature=_mean([to_float(sensor.get("TopRight")), to_float(sensor.get("BottomRight"))]),
            outlet_temperature=_mean([to_float(sensor.get("TopLeft")), to_float(sensor.get("BottomLeft"))]),
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            serial_number=parse_text(device.get("SerialNumber")),
            frequency=to_float(row.get(f"freq{n}")) or None,
            active=bool((rate is not None and rate.value > 0) or (chips or 0) > 0),
        ))
    return boards


def parse_fans(reply: Mapping[str, Any]) -> list[FanData]:
    return [FanData(position=i, rpm=to_float(fan.get("RPM")))
            for i, fan in enumerate(reply.get("FANS") or []) if isinstance(fan, dict)]


def active_profile(replies: Mapping[str, Any]) -> dict[str, Any]:
    """The `profiles` row named by `config`'s Profile."""
    name = first_row(replies["rpc:config"], "CONFIG").get("Profile")
    for profile in replies["rpc:profiles"].get("PROFILES") or []:
        if isinstance(profile, dict) and profile.get("Profile Name") == name:
            return profile
    raise ValueError(f"the active profile {name!r} is not among the profiles")


def parse_wattage_limit(replies: Mapping[str, Any]) -> float | None:
    return to_float(active_profile(replies).get("Watts"))


def parse_tuning_target(replies: Mapping[str, Any]) -> TuningTarget:
    profile = active_profile(replies)
    return TuningTarget(target_watts=to_float(profile.get("Watts")), target_mode=str(profile["Profile Name"]))


def parse_pools(pools: Mapping[str, Any], groups: Mapping[str, Any] | None = None) -> list[PoolGroupData]:
    """Pools grouped by their GROUP id, named and weighted by `groups` (empty groups included)."""
    found: dict[int, PoolGroupData] = {}
    for group in (groups or {}).get("GROUPS") or []:
        if isinstance(group, dict) and to_float(group.get("GROUP")) is not None:
            found[int(group["GROUP"])] = PoolGroupData(name=str(group.get("Name") or ""),
                                                       quota=int(to_float(group.get("Quota")) or 0))
    for pool in pools.get("POOLS") or []:
        if not isinstance(pool, dict):
            continue
        group_id = int(to_float(pool.get("GROUP")) or 0)
        unnamed = "default" if group_id == 0 else f"group {group_id}"  # without `groups`, no names
        group = found.setdefault(group_id, PoolGroupData(name=unnamed, quota=int(to_float(pool.get("Quota")) or 1)))
        accepted, rejected = to_float(pool.get("Accepted")), to_float(pool.get("Rejected"))
        group.pools.append(PoolData(
            position=int(pool["POOL"]) if to_float(pool.get("POOL")) is not None else None,
            url=pool.get("URL") or None,
            user=pool.get("User") or None,
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=pool.get("Stratum Active") if isinstance(pool.get("Stratum Active"), bool) else None,
            alive=pool.get("Status") == "Alive" if "Status" in pool else None,
        ))
    return [found[k] for k in sorted(found)]


def event_severity(code: str) -> MessageSeverity:
    """Failures, panics and shutdowns not asked for are errors; the miner's own states are notices."""
    if "FAILURE" in code or "PANIC" in code or ("SHUTDOWN" in code and not code.endswith("USER")):
        return MessageSeverity.ERROR
    if code in INFO_EVENTS:
        return MessageSeverity.INFO
    return MessageSeverity.WARNING


def parse_messages(reply: Mapping[str, Any]) -> list[MinerMessage]:
    messages = []
    for event in reply.get("EVENTS") or []:
        if not isinstance(event, dict) or not isinstance(event.get("Code"), str):
            continue
        code = event["Code"]
        description = event.get("Description") or code
        target, unit = event.get("Target"), event.get("ID")
        where = f"[{target} {unit}] " if target and unit is not None else f"[{target}] " if target else ""
        messages.append(MinerMessage(code=0, message=f"{where}{description}", severity=event_severity(code)))
    return messages


def parse_is_mining(config: Mapping[str, Any]) -> bool | None:
    mode = first_row(config, "CONFIG").get("CurtailMode")
    return None if not isinstance(mode, str) else mode.strip().lower() in ("", "none")


def parse_light(config: Mapping[str, Any]) -> bool | None:
    """RedLed `on`/`blink` is lit by request; `auto` leaves the LED to the firmware (lit on faults), `off`."""
    state = first_row(config, "CONFIG").get("RedLed")
    return state.strip().lower() in LIT_LED_STATES if isinstance(state, str) else None


def parse_expected_hashrate(row: Mapping[str, Any]) -> HashRate | None:
    return rate_in(row.get("total_rateideal"), row.get("rate_unit"))


def parse_expected_hashrate_from_devs(devs: Mapping[str, Any]) -> HashRate | None:
    rates = [to_float(d.get("Nominal MHS")) for d in devs.get("DEVS") or [] if isinstance(d, dict)]
    present = [r for r in rates if r is not None]
    return hashrate_from(sum(present), "MH/s") if present else None


def model_from_version(version: Mapping[str, Any] | None) -> str | None:
    """`VERSION[0].Type` (`Antminer S19k Pro`), without a ` (...)` suffix, in the table's spelling."""
    if version is None:
        return None
    try:
        raw = first_row(version, "VERSION").get("Type")
    except ValueError:
        return None
    if not isinstance(raw, str) or not raw.strip():
        return None
    name = raw.split(" (", 1)[0].strip()
    known = lookup_model(MAKE, name)
    return known.name if known is not None else name


def _names_luxminer(value: Any) -> bool:
    return RPC_MARKER in str(value).upper()


def _profile_rows(reply: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [p for p in reply.get("PROFILES") or [] if isinstance(p, dict) and p.get("Profile Name")]


def profile_for_watts(profiles: list[dict[str, Any]], watts: float) -> dict[str, Any]:
    """The highest-power profile whose estimate is at or below `watts`."""
    fitting = [p for p in profiles if (to_float(p.get("Watts")) or 0) <= watts and to_float(p.get("Watts"))]
    if not fitting:
        lowest = min((to_float(p.get("Watts")) or 0 for p in profiles), default=0)
        raise ValueError(f"no LuxOS profile draws {watts:g} W or less (the lowest is {lowest:g} W)")
    return max(fitting, key=lambda p: to_float(p.get("Watts")) or 0)


def profile_for_hashrate(profiles: list[dict[str, Any]], ths: float) -> dict[str, Any]:
    fitting = [p for p in profiles if 0 < (to_float(p.get("Hashrate")) or 0) <= ths]
    if not fitting:
        raise ValueError(f"no LuxOS profile hashes {ths:g} TH/s or less")
    return max(fitting, key=lambda p: to_float(p.get("Hashrate")) or 0)


def _check_fields(*fields: str) -> None:
    """The RPC parameter is one comma-separated string: a comma inside a value would split it."""
    for value in fields:
        if "," in value:
            raise ValueError(f"LuxOS RPC parameters cannot contain commas: {value!r}")


class LuxOS(Backend):
    family: ClassVar[str] = "luxos"
    firmware: ClassVar[str] = "LuxOS"  # as pyasic and pyasic-rs name it
    PRIORITY: ClassVar[int] = 40  # a specific marker; tried before the generic antMiner realm
    RPC_BATCHABLE: ClassVar[bool] = True

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("rpc:config", "CONFIG", 0, "MACAddr", parse=parse_mac),
        DataField.SERIAL_NUMBER: at("rpc:config", "CONFIG", 0, "SerialNumber", parse=parse_text),
        DataField.HOSTNAME: at("rpc:config", "CONFIG", 0, "Hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: at("rpc:version", "VERSION", 0, "Miner", parse=parse_text),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at("rpc:config", "CONFIG", 0, "ControlBoardType", parse=parse_text),
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, "GHS 5s", parse=ghs),
                             at("rpc:stats", parse=lambda r: ghs(stats_row(r).get("GHS 5s")))],
        DataField.EXPECTED_HASHRATE: [
            at("rpc:stats", parse=lambda r: parse_expected_hashrate(stats_row(r))),
            at("rpc:devs", parse=parse_expected_hashrate_from_devs)],
        DataField.FANS: at("rpc:fans", parse=parse_fans),
        DataField.WATTAGE: at("rpc:power", "POWER", 0, "Watts", parse=to_float),
        DataField.WATTAGE_LIMIT: at(("rpc:config", "rpc:profiles"), parse=parse_wattage_limit),
        DataField.UPTIME: [at("rpc:stats", parse=lambda r: to_float(stats_row(r).get("Elapsed"))),
                           at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=to_float)],
        DataField.POOLS: [at(("rpc:pools", "rpc:groups"), parse=lambda r: parse_pools(r["rpc:pools"], r["rpc:groups"])),
                          at("rpc:pools", parse=parse_pools)],
        DataField.MESSAGES: at("rpc:events", parse=parse_messages),
        DataField.IS_MINING: [at("rpc:config", parse=parse_is_mining),
                              at("rpc:summary", "SUMMARY", 0, "GHS 5s", parse=lambda v: (to_float(v) or 0) > 0)],
        DataField.LIGHT_FLASHING: at("rpc:config", parse=parse_light),
        DataField.TUNING_TARGET: at(("rpc:config", "rpc:profiles"), parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if any(isinstance(reply, dict) and _names_luxminer(reply) for reply in probe.rpc.values()):
            return True
        return probe.web is not None and WEB_MARKER in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        version = probe.rpc_reply("version")
        if version is None:  # found by its web page: ask the RPC for the model
            try:
                version = await rpc_call(probe.ip, "version", settings=session.settings)
            except MinerError:
                return None
        if not _names_luxminer(version):
            return None
        model = model_from_version(version)
        return cls.device_info(MAKE, model, cls.firmware) if model is not None else None

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware

            def full(r: Mapping[str, Any]) -> list[BoardData]:
                return parse_hashboards(r["rpc:stats"], r["rpc:devs"], r["rpc:temps"], hw.board_count,
                                        hw.chips_per_board)

            out[DataField.HASHBOARDS] = [
                at(("rpc:stats", "rpc:devs", "rpc:temps"), parse=full),
                at("rpc:stats", parse=lambda r: parse_hashboards(r, None, None, hw.board_count, hw.chips_per_board)),
            ]
        return out

    # ----- sending ----------------------------------------------------------------------------
    @contextlib.asynccontextmanager
    async def _session(self) -> AsyncIterator[str]:
        """A LUXminer session for a set of writes, ended afterwards so that others can get one."""
        try:
            reply = await self.rpc("logon")
        except MinerAPIError as exc:
            raise MinerAPIError(f"{self.ip}: LuxOS refused a session ({exc}); only one session may exist at "
                                "a time and an idle one lapses after a minute: try again then") from None
        try:
            session_id = first_row(reply, "SESSION").get("SessionID")
        except ValueError:
            session_id = None
        if not isinstance(session_id, str) or not session_id:
            raise MinerResponseError(f"{self.ip}: logon answered without a session id")
        try:
            yield session_id
        finally:
            with contextlib.suppress(MinerError):  # a reboot has ended it already
                await self.rpc("logoff", session_id)

    async def _with_session(self, *steps: tuple[str, str | None]) -> list[dict[str, Any]]:
        """Runs `(command, arguments)` steps in one session; the session id goes first in each parameter."""
        replies = []
        async with self._session() as session_id:
            for command, arguments in steps:
                parameter = session_id if arguments is None else f"{session_id},{arguments}"
                replies.append(await self.rpc(command, parameter))
        return replies

    async def _profiles(self) -> list[dict[str, Any]]:
        profiles = _profile_rows(await self.rpc("profiles"))
        if not profiles:
            raise MinerResponseError(f"{self.ip}: LuxOS listed no profiles")
        return profiles

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self._with_session(("rebootdevice", None))
        return True

    async def pause(self) -> bool:
        await self._with_session(("curtail", "sleep"))
        return True

    async def resume(self) -> bool:
        await self._with_session(("curtail", "wakeup"))
        return True

    async def set_fault_light(self, on: bool) -> bool:
        # off hands the LED back to the firmware (`auto`, which lights it on faults) rather than forcing it dark
        await self._with_session(("ledset", "red,blink" if on else "red,auto"))
        return True

    async def _set_profile(self, name: str) -> bool:
        """`profileset`; ATM (thermal management) moves profiles itself, so it is paused around the change."""
        atm = first_row(await self.rpc("atm"), "ATM").get("Enabled") is True
        steps: list[tuple[str, str | None]] = [("profileset", name)]
        if atm:
            steps = [("atmset", "enabled=false"), *steps, ("atmset", "enabled=true")]
        replies = await self._with_session(*steps)
        applied = replies[1 if atm else 0].get("PROFILE")
        if isinstance(applied, list) and applied and applied[0].get("Profile") not in (None, name):
            raise MinerAPIError(f"{self.ip}: profileset applied {applied[0].get('Profile')!r}, not {name!r}")
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        return await self._set_profile(str(profile_for_watts(await self._profiles(), watts)["Profile Name"]))

    async def power_limit_held(self, watts: float) -> float:
        watts_held = to_float(profile_for_watts(await self._profiles(), watts).get("Watts"))
        assert watts_held is not None  # profile_for_watts only picks profiles with a power figure
        return watts_held

    async def get_tuning_config(self) -> TuningConfig:
        name = first_row(await self.rpc("config"), "CONFIG").get("Profile")
        if not isinstance(name, str) or not name:
            raise MinerResponseError(f"{self.ip}: config names no active profile")
        return TuningConfig.mode(name)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A profile by name (`mode`), or the highest profile within a power or hash rate target."""
        profiles = await self._profiles()
        if config.target_mode is not None:
            names = [str(p["Profile Name"]) for p in profiles]
            if config.target_mode not in names:
                raise ValueError(f"LuxOS has no profile {config.target_mode!r}; it has {', '.join(names)}")
            return await self._set_profile(config.target_mode)
        if config.target_watts is not None:
            return await self._set_profile(str(profile_for_watts(profiles, config.target_watts)["Profile Name"]))
        assert config.target_hashrate is not None
        ths = config.target_hashrate.into_unit("TH/s").value
        return await self._set_profile(str(profile_for_hashrate(profiles, ths)["Profile Name"]))

    async def get_pools_config(self) -> list[PoolGroup]:
        replies = await self.send_many(["rpc:groups", "rpc:pools"])
        for reply in replies.values():
            if isinstance(reply, BaseException):
                raise reply
        by_group: dict[int, list[Pool]] = {}
        for pool in replies["rpc:pools"].get("POOLS") or []:
            if isinstance(pool, dict) and pool.get("URL") and pool.get("User"):
                # the reply holds no pool password; "x" is what miners send when none is set
                password = str(pool.get("Password") or pool.get("Pass") or "x")
                by_group.setdefault(int(to_float(pool.get("GROUP")) or 0), []).append(
                    Pool(url=pool["URL"], username=pool["User"], password=password))
        groups = []
        for group in replies["rpc:groups"].get("GROUPS") or []:
            pools = by_group.get(int(to_float(group.get("GROUP")) or 0), [])
            if pools:  # an empty LuxOS group has no PoolGroup form
                groups.append(PoolGroup(name=str(group.get("Name") or "default"),
                                        quota=int(to_float(group.get("Quota")) or 1), pools=pools))
        return groups

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Replaces every group: `removegroup` from the last id down, then `addgroup` and `addpool` per pool."""
        names = [g.name for g in groups]
        if not groups:
            raise ValueError("give at least one pool group: a LuxOS miner without pools does not mine")
        if len(set(names)) != len(names):
            raise ValueError(f"LuxOS pool group names must be distinct, got {names}")
        for group in groups:
            _check_fields(group.name, *(f for p in group.pools for f in (p.url, p.username, p.password)))
        current = await self.rpc("groups")
        ids = sorted((int(g["GROUP"]) for g in current.get("GROUPS") or [] if to_float(g.get("GROUP")) is not None),
                     reverse=True)
        for group_id in ids:
            await self.rpc("removegroup", str(group_id))
        for group in groups:
            await self.rpc("addgroup", f"{group.name},{group.quota}")
        for group_id, group in enumerate(groups):
            for pool in group.pools:
                await self.rpc("addpool", f"{pool.url},{pool.username},{pool.password},{group_id}")
        return True

    async def get_fan_config(self) -> FanConfig:
        replies = await self.send_many(["rpc:tempctrl", "rpc:fans"])
        for reply in replies.values():
            if isinstance(reply, BaseException):
                raise reply
        control = first_row(replies["rpc:tempctrl"], "TEMPCTRL")
        if str(control.get("Mode", "")).lower() == "manual":
            speed = to_float(first_row(replies["rpc:fans"], "FANS").get("Speed"))
            if speed is None:
                raise MinerResponseError(f"{self.ip}: manual fans without a speed")
            return FanConfig.manual(int(speed))
        return FanConfig.auto()

    async def set_fan_config(self, config: FanConfig) -> bool:
        """`fanset speed=N` fixes the duty, `speed=-1` hands it back to the firmware; an idle speed is the
        speed the fans keep while the hashboards are off (`power_off_speed`)."""
        if config.target_temp is not None:
            raise UnsupportedControlError("LuxOS regulates fans to its temperature control targets "
                                          "(tempctrlset), not to a fan target temperature")
        settings = [f"speed={config.fan_speed if config.mode == 'manual' else -1}"]
        if config.idle_speed is not None:
            settings.append(f"power_off_speed={config.idle_speed}")
        await self._with_session(("fanset", ",".join(settings)))
        return True
