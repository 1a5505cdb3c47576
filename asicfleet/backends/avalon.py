"""Canaan AvalonMiner stock firmware (Canaan's CGMiner 4.11 fork): RPC on 4028, nothing useful on the web.

Everything is read over the CGMiner RPC. The Avalon specific figures come from `estats` (or `stats`)
as one long string of bracketed fields per device, `Ver[...] ... MGHS[a b c] ... PS[...]`, which
`parse_bracket_fields` turns into a dict (numbers become ints/floats, space separated values become
lists). Two layouts exist:

- the A-series (1246, 1366, 1466...): `STATS[0]["MM ID0"]` is the field string, with per-board lists
  (`MGHS`, `MTavg`) and per-chip lists per board (`PVT_T0`, `PVT_V0`, `MW0`...);
- the home/15 series (Avalon Q, Nano): `STATS[0]["MM ID0:Summary"]` is `'STATS':{...}` and
  `STATS[0]["HBinfo"]` is `'HB0':{...}` holding the per-chip lists.

Controls go through `ascset` (`0,<option>,<setting>`), pools through the authenticated `setpool`.
"""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerError, MinerResponseError
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, hashrate_from, to_float
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import decode_json, rpc_call, rpc_raw

# ----- the bracketed field strings -----------------------------------------------------------------
_FIELD = re.compile(r"(\w+)\[([^\]]+)\]")  # an empty `SSID[]` is no field, as the firmware means it
_SECTION = re.compile(r"'([^']+)':\{([^}]*)\}")
_INTEGER = re.compile(r"[0-9]+")
_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?")
_TEXT_FIELDS = frozenset({"SYSTEMSTATU"})  # prose with spaces, never a list


def _scalar(token: str) -> int | float | str:
    if _INTEGER.fullmatch(token):
        return int(token)
    if _DECIMAL.fullmatch(token):
        return float(token)
    return token


def convert_field(value: str, key: str) -> Any:
    """One field's text as the firmware means it: `12` -> 12, `1.5` -> 1.5, `1 2 3` -> [1, 2, 3]."""
    value = value.strip()
    if key in _TEXT_FIELDS:
        return value
    if " " in value:
        return [_scalar(token) for token in value.split()]
    return _scalar(value)


def parse_bracket_fields(text: str) -> dict[str, Any]:
    """`Ver[1246-83] Fan1[5344] PS[0 1214]` -> {"Ver": "1246-83", "Fan1": 5344, "PS": [0, 1214]}."""
    return {key: convert_field(value, key) for key, value in _FIELD.findall(text)}


def parse_sections(text: str) -> dict[str, dict[str, Any]]:
    """`'HB0':{PVT_T0[58 59]} 'HB1':{...}` -> {"HB0": {"PVT_T0": [58, 59]}, "HB1": {...}}."""
    return {name: parse_bracket_fields(body) for name, body in _SECTION.findall(text)}


def expand_stats_reply(reply: Mapping[str, Any]) -> dict[str, Any]:
    """A `stats`/`estats`/`litestats` reply with its field strings turned into dicts (a new object)."""
    expanded = dict(reply)
    entries = []
    for entry in reply.get("STATS", []) or []:
        if not isinstance(entry, Mapping):
            entries.append(entry)
            continue
        item = dict(entry)
        for key in ("MM ID0:Summary", "HBinfo"):
            if isinstance(item.get(key), str):
                item[key] = parse_sections(item[key])
        if isinstance(item.get("MM ID0"), str):
            item["MM ID0"] = parse_bracket_fields(item["MM ID0"])
        entries.append(item)
    if "STATS" in reply:
        expanded["STATS"] = entries
    return expanded


_PARSED: dict[int, tuple[Mapping[str, Any], AvalonStats]] = {}


class AvalonStats:
    """The device figures of one stats reply, whichever layout the firmware uses."""

    @classmethod
    def of(cls, reply: Mapping[str, Any]) -> AvalonStats:
        """The parse of `reply`, made once however many fields read it (it costs ~0.5 ms)."""
        hit = _PARSED.get(id(reply))
        if hit is not None and hit[0] is reply:
            return hit[1]
        stats = cls(reply)
        if len(_PARSED) >= 256:
            _PARSED.clear()
        _PARSED[id(reply)] = (reply, stats)  # holding the reply keeps its id from being reused
        return stats

    def __init__(self, reply: Mapping[str, Any]) -> None:
        expanded = expand_stats_reply(reply)
        entry: Mapping[str, Any] = {}
        for candidate in expanded.get("STATS", []):
            if isinstance(candidate, Mapping) and ("MM ID0" in candidate or "MM ID0:Summary" in candidate):
                entry = candidate
                break
        self.entry = entry
        mm = entry.get("MM ID0")
        summary = entry.get("MM ID0:Summary")
        if isinstance(mm, Mapping):
            self.fields: Mapping[str, Any] = mm
            self.chip_sections: Mapping[str, Any] = {}
            self.layout = "a-series"
        elif isinstance(summary, Mapping):
            self.fields = summary.get("STATS", {}) if isinstance(summary.get("STATS"), Mapping) else {}
            hb_info = entry.get("HBinfo")
            self.chip_sections = hb_info if isinstance(hb_info, Mapping) else {}
            self.layout = "summary"
        else:
            raise ValueError("the stats reply holds no Avalon device (no 'MM ID0' entry)")

    def number(self, key: str) -> float | None:
        return to_float(self.fields.get(key))

    def per_board(self, key: str, board: int) -> float | None:
        """A per-board list's entry, or the single value a one-board layout gives."""
        value = self.fields.get(key)
        if isinstance(value, list):
            return to_float(value[board]) if board < len(value) else None
        return to_float(value)

    def board_count(self) -> int:
        rates = self.fields.get("MGHS")
        if isinstance(rates, list):
            return len(rates)
        if self.chip_sections:
            return len([k for k in self.chip_sections if k.startswith("HB")])
        numbered = [k for k in self.fields if re.fullmatch(r"PVT_T\d+", k)]
        if numbered:
            return len(numbered)
        return 1 if rates is not None else 0

    def chip_lists(self, board: int) -> tuple[list[Any], list[Any], list[Any]]:
        """(temperatures, millivolts, work counts) of one board's chips."""
        source: Mapping[str, Any] = self.fields
        if self.layout == "summary":
            section = self.chip_sections.get(f"HB{board}")
            source = section if isinstance(section, Mapping) else {}

        def first_list(*keys: str) -> list[Any]:
            for key in keys:
                value = source.get(key)
                if isinstance(value, list):
                    return value
                if value is not None:
                    return [value]
            return []

        # the summary layout numbers every board's lists 0 inside its own HB section
        index = [str(board)] if self.layout == "a-series" else [str(board), "0"]
        return (first_list(*(f"PVT_T{i}" for i in index)), first_list(*(f"PVT_V{i}" for i in index)),
                first_list(*(f"MW{i}" for i in index)))


# ----- field parsers (pure: reply in, value out) ------------------------------------------------------
_WORK_MODES = {0: "low", 1: "normal", 2: "high"}
_MODE_NUMBERS = {name: number for number, name in _WORK_MODES.items()}


def _positive(value: float | None) -> float | None:
    """Temperatures and powers the firmware reports as 0 were not measured (idle, no sensor)."""
    return value if value is not None and value > 0 else None


def _average(values: list[Any]) -> float | None:
    numbers = [n for n in (to_float(v) for v in values) if n is not None]
    return round(sum(numbers) / len(numbers), 2) if numbers else None


def parse_mac(value: Any) -> str | None:
    """`b4a2eb3526c3` or `b4:a2:...` -> `B4:A2:EB:35:26:C3`."""
    digits = re.sub(r"[^0-9A-Fa-f]", "", str(value))
    if len(digits) != 12:
        return None
    return ":".join(digits[i:i + 2] for i in range(0, 12, 2)).upper()


def parse_firmware_version(version: Mapping[str, Any]) -> str | None:
    """A-series report `VERSION`; the home series `LVERSION`/`CGVERSION` (the same build id)."""
    for key in ("VERSION", "LVERSION", "CGVERSION", "BVERSION"):
        if version.get(key):
            return str(version[key])
    return None


def parse_summary_hashrate(summary: Mapping[str, Any]) -> HashRate | None:
    for key in ("MHS 1m", "MHS 5s", "MHS av"):
        rate = hashrate_from(summary.get(key), "MH/s")
        if rate is not None:
            return rate
    return None


def parse_expected_hashrate(reply: Mapping[str, Any]) -> HashRate | None:
    return hashrate_from(AvalonStats.of(reply).number("GHSmm"), "GH/s")


def parse_hashboards(reply: Mapping[str, Any]) -> list[BoardData]:
    stats = AvalonStats.of(reply)
    boards = []
    for index in range(stats.board_count()):
        rate = hashrate_from(stats.per_board("MGHS", index), "GH/s")
        temps, millivolts, works = stats.chip_lists(index)
        chips = []
        for position, temp in enumerate(temps):
            volts = to_float(millivolts[position]) if position < len(millivolts) else None
            work = to_float(works[position]) if position < len(works) else None
            celsius = to_float(temp)
            chips.append(ChipData(
                position=position,
                temperature=_positive(celsius),
                voltage=round(volts / 1000, 3) if volts is not None else None,
                working=(work > 0) if work is not None else (celsius is not None and celsius > 0),
            ))
        frequency = None
        for key in (f"SF{index}", f"ATABD{index}"):
            if isinstance(stats.fields.get(key), list):
                frequency = _average(stats.fields[key])
                break
        if frequency is None:
            frequency = stats.number("Freq")
        if stats.layout == "a-series":
            board_temp, intake, outlet = stats.per_board("MTavg", index), None, None
        else:
            board_temp = stats.per_board("TAvg", index)
            intake, outlet = stats.per_board("HBITemp", index), stats.per_board("HBOTemp", index)
        boards.append(BoardData(
            position=index,
            hashrate=rate,
            board_temperature=_positive(board_temp),
            intake_temperature=_positive(intake),
            outlet_temperature=_positive(outlet),
            working_chips=sum(1 for c in chips if c.working) if chips else None,
            chips=chips,
            frequency=frequency,
            active=rate.value > 0 if rate is not None else None,
        ))
    return boards


def parse_fans(reply: Mapping[str, Any]) -> list[FanData]:
    stats = AvalonStats.of(reply)
    numbered = sorted((int(m.group(1)), key) for key in stats.fields if (m := re.fullmatch(r"Fan(\d+)", key)))
    return [FanData(position=number - 1, rpm=stats.number(key)) for number, key in numbered]


def parse_wattage(reply: Mapping[str, Any]) -> float | None:
    """Watts drawn from the wall: `WALLPOWER` where reported, else the PSU's input power `PS[6]`.

    PS is [error, ?, output V x100, output A, output W, set V x100, input W]: in the captures output
    V x A equals output W, and input W is output W over a plausible PSU efficiency (91-96 %).
    """
    stats = AvalonStats.of(reply)
    wall = _positive(stats.number("WALLPOWER"))
    if wall is not None:
        return wall
    power = stats.fields.get("PS")
    if isinstance(power, list):
        for index in (6, 4):
            if len(power) > index and _positive(to_float(power[index])) is not None:
                return to_float(power[index])
    return None


def parse_wattage_limit(reply: Mapping[str, Any]) -> float | None:
    """`MPO`: the power the PSU may deliver (the limit `worklevel` sets)."""
    return _positive(AvalonStats.of(reply).number("MPO"))


def parse_is_mining(reply: Mapping[str, Any]) -> bool | None:
    stats = AvalonStats.of(reply)
    status = stats.fields.get("SYSTEMSTATU")
    if isinstance(status, str):
        if "In Work" in status:
            return True
        if "In Idle" in status:
            return False
    soft_off = stats.number("SoftOFF")
    return None if soft_off is None else soft_off == 0


def parse_light(reply: Mapping[str, Any]) -> bool | None:
    led = AvalonStats.of(reply).number("Led")
    return None if led is None else led != 0


def parse_tuning_target(reply: Mapping[str, Any]) -> TuningTarget | None:
    mode = AvalonStats.of(reply).number("WORKMODE")
    if mode is None:
        return None
    return TuningTarget(target_mode=_WORK_MODES.get(int(mode), str(int(mode))))


def parse_messages(reply: Mapping[str, Any]) -> list[MinerMessage]:
    """Non-zero error codes: `ECMM` (controller) and `ECHU` (one per hash board)."""
    stats = AvalonStats.of(reply)
    messages = []
    controller = stats.number("ECMM")
    if controller:
        messages.append(MinerMessage(code=int(controller), message=f"controller error code {int(controller)}"))
    boards = stats.fields.get("ECHU")
    for index, code in enumerate(boards if isinstance(boards, list) else [boards]):
        number = to_float(code)
        if number:
            messages.append(MinerMessage(code=int(number), message=f"hash board {index} error code {int(number)}"))
    return messages


def parse_pools(pools: list[Mapping[str, Any]]) -> list[PoolGroupData]:
    """CGMiner has one failover list: one group of the pools in priority order."""
    ordered = sorted(pools, key=lambda p: (to_float(p.get("Priority")) or 0, to_float(p.get("POOL")) or 0))
    return [PoolGroupData(name="default", quota=1, pools=[
        PoolData(
            position=int(p["POOL"]) if to_float(p.get("POOL")) is not None else None,
            url=p.get("URL") or None,
            user=p.get("User") or None,
            accepted_shares=int(p["Accepted"]) if to_float(p.get("Accepted")) is not None else None,
            rejected_shares=int(p["Rejected"]) if to_float(p.get("Rejected")) is not None else None,
            active=p.get("Stratum Active") if isinstance(p.get("Stratum Active"), bool) else None,
            alive=p.get("Status") == "Alive" if p.get("Status") is not None else None,
        ) for p in ordered])]


def parse_uptime(seconds: Any) -> timedelta | None:
    number = to_float(seconds)
    return None if number is None else timedelta(seconds=int(number))


def ascset_options(reply: Mapping[str, Any]) -> list[str]:
    """The options an `ascset 0,help` reply lists (`ASC 0 set info: help|voltage|...|`)."""
    message = str(reply.get("STATUS", [{}])[0].get("Msg", ""))
    _, _, listing = message.partition(":")
    return [option for option in listing.strip().split("|") if option]


def ascset_accepted(reply: Mapping[str, Any]) -> bool:
    """`ASC 0 set OK` (S) and `ASC 0 set info: success ...` (I) both mean done; `set failed` (E) not."""
    status = reply.get("STATUS")
    if not isinstance(status, list) or not status or not isinstance(status[0], Mapping):
        return False
    message = str(status[0].get("Msg", ""))
    return status[0].get("STATUS") in ("S", "I") and ("set OK" in message or "success" in message)


# ----- model names -------------------------------------------------------------------------------------
def model_from_version(version: Mapping[str, Any]) -> str | None:
    """`MODEL: 1246-83` -> `Avalon 1246` (A1466 -> the table's `Avalon A1466`); `PROD: Avalon Q` kept."""
    model = str(version.get("MODEL") or "").strip()
    product = str(version.get("PROD") or "").strip()
    code = model.split("-")[0].strip().upper() if model else ""
    if not code and product:
        code = re.sub(r"(?i)^avalon\s*(miner)?\s*", "", product).split("-")[0].strip().upper()
    if not code:
        return None
    if code[0].isdigit():
        for name in (f"Avalon {code}", f"Avalon A{code}"):
            known = lookup_model(Make.AVALON, name)
            if known is not None:
                return known.name
        return f"Avalon {code}"
    if product.lower().startswith("avalon"):
        return re.sub(r"(?i)^avalon\s*miner", "Avalon", product).split("-")[0].strip()
    return f"Avalon {code.title()}"


def _mentions_avalon(value: Any) -> bool:
    if isinstance(value, Mapping):
        return any(_mentions_avalon(v) for v in value.values())
    if isinstance(value, list):
        return any(_mentions_avalon(v) for v in value)
    return isinstance(value, str) and "AVALON" in value.upper()


_STATS_SOURCES = ("rpc:estats", "rpc:stats", "rpc:litestats")


def parse_inlet_temperature(reply: Mapping[str, Any]) -> float | None:
    """`ITemp`: the inlet temperature (the coolant's on hydro models; the base reports only those)."""
    return _positive(AvalonStats.of(reply).number("ITemp"))


def parse_outlet_temperature(reply: Mapping[str, Any]) -> float | None:
    """`HBOTemp`: the hashboards' outlet temperature (the coolant leaving them on hydro models)."""
    return _positive(AvalonStats.of(reply).number("HBOTemp"))


def _from_stats(parse: Any) -> list[Source]:
    """The same parser on `estats` (what get_data sends) and on `stats`/`litestats` (fallbacks)."""
    return [at(command, parse=parse) for command in _STATS_SOURCES]


class AvalonBackend(Backend):
    """Canaan AvalonMiner, stock firmware: "Stock", as pyasic names it (pyasic-rs: "AvalonMiner Stock")."""

    family: ClassVar[str] = "avalon"
    firmware: ClassVar[str] = "Stock"
    PRIORITY: ClassVar[int] = 50
    POOLS_APPLY_AT_REBOOT: ClassVar[bool] = True  # "Please reboot miner to make config work"
    # `setpool` checks the web login; older A-series ship root/root, the home series admin/admin
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("root", "root"), ("admin", "admin"))

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("rpc:version", "VERSION", 0, "MAC", parse=parse_mac),
        DataField.SERIAL_NUMBER: at("rpc:version", "VERSION", 0, "DNA", parse=lambda v: str(v) or None),
        DataField.FIRMWARE_VERSION: at("rpc:version", "VERSION", 0, parse=parse_firmware_version),
        DataField.API_VERSION: at("rpc:version", "VERSION", 0, "API", parse=lambda v: str(v) or None),
        DataField.CONTROL_BOARD_VERSION: at("rpc:version", "VERSION", 0, "HWTYPE", parse=lambda v: str(v) or None),
        DataField.HASHRATE: [at("rpc:summary", "SUMMARY", 0, parse=parse_summary_hashrate),
                             at("rpc:devs", "DEVS", 0, "MHS 1m", parse=lambda v: hashrate_from(v, "MH/s"))],
        DataField.EXPECTED_HASHRATE: _from_stats(parse_expected_hashrate),
        DataField.HASHBOARDS: _from_stats(parse_hashboards),
        DataField.FANS: _from_stats(parse_fans),
        DataField.WATTAGE: _from_stats(parse_wattage),
        DataField.WATTAGE_LIMIT: _from_stats(parse_wattage_limit),
        DataField.UPTIME: [at("rpc:summary", "SUMMARY", 0, "Elapsed", parse=parse_uptime),
                           *(at(c, "STATS", 0, "Elapsed", parse=parse_uptime) for c in _STATS_SOURCES)],
        DataField.POOLS: at("rpc:pools", "POOLS", parse=parse_pools),
        DataField.MESSAGES: _from_stats(parse_messages),
        DataField.IS_MINING: _from_stats(parse_is_mining),
        DataField.LIGHT_FLASHING: _from_stats(parse_light),
        DataField.TUNING_TARGET: _from_stats(parse_tuning_target),
        DataField.FLUID_TEMPERATURE: _from_stats(parse_inlet_temperature),
        DataField.OUTLET_FLUID_TEMPERATURE: _from_stats(parse_outlet_temperature),
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        version = probe.rpc_reply("version")
        if version is not None and _mentions_avalon(version.get("VERSION")):
            return True
        details = probe.rpc_reply("devdetails")
        if details is not None and _mentions_avalon(details.get("DEVDETAILS")):
            return True
        return probe.web is not None and "Avalon" in probe.web.text

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reply = probe.rpc_reply("version")
        if reply is None:
            try:
                reply = await rpc_call(probe.ip, "version", settings=session.settings)
            except MinerError:
                return None
        entries = reply.get("VERSION")
        if not isinstance(entries, list) or not entries or not isinstance(entries[0], Mapping):
            return None
        if not _mentions_avalon(entries[0]):
            return None
        model = model_from_version(entries[0])
        if model is None:
            return None
        version = entries[0].get("VERSION")
        if isinstance(version, str) and version.strip():
            probe.learned["firmware_version"] = version.strip()
        return cls.device_info(Make.AVALON.value, model, cls.firmware)

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        data = super().finalize(data, replies)
        expected = self.device.hardware.chips_per_board
        if expected is not None:
            for board in data.hashboards:
                if board.expected_chips is None:
                    board.expected_chips = expected
        return data

    # ----- sending ----------------------------------------------------------------------------
    async def _ascset(self, setting: str) -> bool:
        reply = await self.rpc("ascset", f"0,{setting}")
        if not ascset_accepted(reply):
            raise MinerAPIError(f"ascset {setting}: {reply.get('STATUS', [{}])[0].get('Msg', 'refused')}")
        return True

    async def _stats(self) -> AvalonStats:
        return AvalonStats(await self.rpc("estats"))

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        """`ascset 0,reboot,0` (the option the firmware lists in `ascset 0,help`)."""
        return await self._ascset("reboot,0")

    async def pause(self) -> bool:
        """Soft-off now: `ascset 0,softoff,1:<unix time>` schedules standby at that time."""
        return await self._ascset(f"softoff,1:{int(time.time())}")

    async def resume(self) -> bool:
        """Soft-on now. Some firmware (seen on the A1466) starts and closes the connection silently."""
        try:
            return await self._ascset(f"softon,1:{int(time.time())}")
        except MinerResponseError as exc:
            if "empty reply" in str(exc):
                return True
            raise

    async def set_fault_light(self, on: bool) -> bool:
        """`led,<module>-<state>`: module 1 is the (only) controller's hash module group."""
        return await self._ascset(f"led,1-{1 if on else 0}")

    async def set_power_limit(self, watts: float) -> bool:
        """`worklevel,set,<watts>` caps the PSU output (`MPO`)."""
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        return await self._ascset(f"worklevel,set,{round(watts)}")

    # get_fan_config stays unsupported: the firmware reports the live duty (FanR), never the setting

    async def set_fan_config(self, config: FanConfig) -> bool:
        """`fan-spd,<percent>` fixes the duty; `fan-spd,-1` hands it back to the firmware (with
        `target-temp,<C>` first when a target temperature is given)."""
        if config.mode == "manual":
            return await self._ascset(f"fan-spd,{config.fan_speed}")
        if config.target_temp is not None:
            await self._ascset(f"target-temp,{round(config.target_temp)}")
        return await self._ascset("fan-spd,-1")

    async def get_tuning_config(self) -> TuningConfig:
        mode = (await self._stats()).number("WORKMODE")
        if mode is None:
            raise MinerResponseError(f"{self.ip}: estats reports no WORKMODE")
        return TuningConfig.mode(_WORK_MODES.get(int(mode), str(int(mode))))

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A named mode (low/normal/high) is `workmode,set,<0|1|2>`; a power target is the power limit."""
        if config.target_mode is not None:
            number = _MODE_NUMBERS.get(config.target_mode.lower())
            if number is None:
                raise ValueError(f"Avalon work modes are {sorted(_MODE_NUMBERS)}, not {config.target_mode!r}")
            return await self._ascset(f"workmode,set,{number}")
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        raise self._unsupported("set_tuning_config with a hash rate target")

    async def get_pools_config(self) -> list[PoolGroup]:
        reply = await self.rpc("pools")
        pools = sorted(reply.get("POOLS", []), key=lambda p: (to_float(p.get("Priority")) or 0, p.get("POOL", 0)))
        return [PoolGroup(name="default", quota=1, pools=[
            Pool(url=p["URL"], username=p["User"], password=str(p.get("Password") or "x"))
            for p in pools if p.get("URL") and p.get("User")])]

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Writes the first group into pool slots 0..n-1 with `setpool`, then reboots to apply them.

        The firmware answers `setpool` with "Please reboot miner to make config work", and a slot
        cannot be emptied through the API: slots beyond the given pools keep what they had.
        """
        if len(groups) != 1:
            raise ValueError("Avalon firmware has one failover pool list: give exactly one group")
        pools = groups[0].pools

        async def write(creds: Credentials) -> bool:
            secret = creds.password.get_secret_value()
            for slot, pool in enumerate(pools):
                fields = (creds.username, secret, str(slot), pool.url, pool.username, pool.password or "x")
                if any("," in f for f in fields):
                    raise ValueError("setpool fields cannot contain commas")
                reply = await rpc_raw(self.ip, "setpool", ",".join(fields), settings=self.session.settings)
                decoded = decode_json(reply)
                status = decoded.get("STATUS", [{}])[0] if isinstance(decoded, dict) else {}
                if status.get("STATUS") in ("E", "F"):
                    message = str(status.get("Msg", ""))
                    if "username err" in message or "userpass err" in message:
                        raise AuthenticationError(f"{self.ip}: setpool refused the login ({message})")
                    raise MinerAPIError(f"{self.ip}: setpool {slot}: {message}")
            return True

        await self.with_credentials(write)
        return await self.restart()
