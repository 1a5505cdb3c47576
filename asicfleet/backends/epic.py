"""ePIC UMC OS ("PowerPlay" firmware) on Antminer hardware, and ePIC's own BlockMiner: an HTTP JSON API on 4028.

Identification: the web page on port 80 is the "Miner Web Dashboard" (the signal pyasic and asic-rs use).
Port 4028 speaks HTTP, not the CGMiner RPC: discovery's RPC `version` there is answered with an HTTP
`400 Bad Request` (its request line is not HTTP), which the probe records as a non-JSON reply starting
`HTTP/1.`; that alone is a hint worth one `GET /capabilities` when the web page could not be read. The
model is `capabilities.Model` (`AntMiner S19 XP`, `BLOCKMINER 520i`): an Antminer model is made by
AntMiner, anything else by ePIC, as pyasic and asic-rs decide. Identification keeps the tuning algorithms
`capabilities.PerpetualTune` offers (`learned["tune_algorithms"]`): power targets need `Power` among them.

Reads (GET, no login): `summary` (hash rate per board in MH/s, power, fans, pools, tuner, state, LED),
`capabilities` (model, serials, chip count, default hash rate, tuner bounds), `network` (MAC), `temps`
(board sensors), and per chip `hashrate` (MH/s), `temps/chip`, `voltages` (mV), `clocks` (MHz).

Writes are POSTs whose JSON body carries the password beside `param` (default `letmein`); a wrong one is
answered 200 `{"result": false, "error": "BadPassword"}`. `coin` (up to 3 stratum configs), `perpetualtune/algo`
(algorithm, target, min_throttle, throttle_step), `fanspeed` (`{"Auto": {...}}` or `{"Manual": N}`),
`miner` (`Stop` / `Autostart`), `identify` (the locate LED), `reboot` (delay in seconds), `password`,
`defaultconfig`, `systemupdate` (multipart: the image, its SHA-256, the password), and GET `log` / `log/error`.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import AuthenticationError, MinerAPIError, MinerError, MinerResponseError
from asicfleet._session import Session
from asicfleet.backends._base import (
    MAX_BOARDS,
    Backend,
    DataField,
    Probe,
    Source,
    at,
    bounded_count,
    hashrate_from,
    parse_mac,
    parse_text,
    to_float,
)
from asicfleet.config import Credentials, FanConfig, Pool, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningCapabilities,
    TuningRange,
    TuningTarget,
)
from asicfleet.hardware import Make, lookup_model
from asicfleet.transport import HttpReply, decode_json

API_PORT = 4028
WEB_MARKER = "Miner Web Dashboard"
HTTP_ON_RPC_PORT = "HTTP/1."  # what the RPC probe's reply starts with when an HTTP server holds 4028
SUMMARY, CAPABILITIES, NETWORK, TEMPS = "web:summary", "web:capabilities", "web:network", "web:temps"
CHIP_HASHRATES, CHIP_TEMPS, CHIP_VOLTAGES, CHIP_CLOCKS = "web:hashrate", "web:temps/chip", "web:voltages", "web:clocks"
CHIP_COMMANDS = (CHIP_HASHRATES, CHIP_TEMPS, CHIP_VOLTAGES, CHIP_CLOCKS)
POWER_ALGORITHM = "Power"  # the perpetual-tune algorithm whose target is watts (the API's enum)
HASHRATE_ALGORITHMS = ("VoltageOptimizer", "ChipTune", "BoardTune")
NOT_MINING_STATES = frozenset({"Idling"})  # the firmware's state with the hashboards off
MAX_POOLS = 3
UPLOAD_SECONDS = 300.0  # a firmware image upload (asic-rs allows as long)
DEFAULT_IDLE_SPEED = 20  # percent: the firmware's own default (the captured summary's), asic-rs's too
_VERSION = re.compile(r"v?(\d+(?:\.\d+)+)\s*$")


# ----- pure parsers: replies in, model values out -----------------------------------------------------
def parse_firmware_version(software: Any) -> str | None:
    """`PowerPlay-BMS v1.5.13` -> `1.5.13`."""
    text = parse_text(software)
    match = _VERSION.search(text) if text else None
    return match.group(1) if match else None


def parse_network_mac(network: Mapping[str, Any]) -> str | None:
    """The MAC of the interface in use: `dhcp` or `static` (whichever the miner reports)."""
    for kind in ("dhcp", "static"):
        interface = network.get(kind)
        if isinstance(interface, dict) and parse_mac(interface.get("mac_address")):
            return parse_mac(interface.get("mac_address"))
    return None


def parse_serial(capabilities: Mapping[str, Any]) -> str | None:
    """`Miner Serial Number` where the unit reports one (often null), else the control board's CPU serial,
    as asic-rs does."""
    board = capabilities.get("Control Board Version")
    return parse_text(capabilities.get("Miner Serial Number")) or (
        parse_text(board.get("cpuSerial")) if isinstance(board, dict) else None)


def _boards(summary: Mapping[str, Any]) -> list[dict[str, Any]]:
    rows = summary.get("HBs")
    return [b for b in rows if isinstance(b, dict)] if isinstance(rows, list) else []


def _mhs(row: Mapping[str, Any]) -> float | None:
    """A board's `Hashrate` is `[MH/s, percent of its ideal, ...]`."""
    rate = row.get("Hashrate")
    return to_float(rate[0]) if isinstance(rate, list) and rate else None


def parse_hashrate(summary: Mapping[str, Any]) -> HashRate | None:
    """The sum of the boards' MH/s; a miner with no board hashing reports `HBs: null` or `[]` (0)."""
    hbs = summary.get("HBs", ...)
    if hbs is ...:
        return None
    return hashrate_from(sum(_mhs(b) or 0.0 for b in _boards(summary)), "MH/s")


def parse_fans(summary: Mapping[str, Any]) -> list[FanData]:
    """`Fans Rpm` names twelve slots (`Fans Speed 1`..`12`); null marks a slot without a fan, 0 a stopped fan."""
    rpms = summary.get("Fans Rpm")
    if not isinstance(rpms, dict):
        return []
    slots = []
    for key, value in rpms.items():
        number = key.rsplit(" ", 1)[-1]
        rpm = to_float(value)
        if number.isdigit() and rpm is not None:
            slots.append((int(number), rpm))
    return [FanData(position=slot - 1, rpm=rpm) for slot, rpm in sorted(slots)]


def _by_index(rows: Any) -> dict[int, Any]:
    """`[{"Index": n, "Data": [...]}, ...]` -> {n: data}."""
    out: dict[int, Any] = {}
    for row in rows if isinstance(rows, list) else []:
        if isinstance(row, dict) and isinstance(row.get("Index"), int) and isinstance(row.get("Data"), list):
            out[row["Index"]] = row["Data"]
    return out


def _reading(value: Any) -> float | None:
    """A per-chip sensor figure; 0 means the hardware has no such sensor (S19 XP chips report 0.0)."""
    number = to_float(value)
    return number if number else None


def parse_chips(hashrates: Any = None, temps: Any = None, voltages: Any = None, clocks: Any = None
                ) -> dict[int, list[ChipData]]:
    """Per board index, its chips: hash rate (MH/s, `[[MH/s, percent, ...], ...]`), temperature (C),
    voltage (mV in the reply, volts here) and clock (MHz). A chip with a hash rate entry is working."""
    rates, heat, volts, freqs = _by_index(hashrates), _by_index(temps), _by_index(voltages), _by_index(clocks)
    boards: dict[int, list[ChipData]] = {}
    for index in sorted(set(rates) | set(heat) | set(volts) | set(freqs)):
        count = max(len(rates.get(index, [])), len(heat.get(index, [])), len(volts.get(index, [])),
                    len(freqs.get(index, [])))
        chips = []
        for n in range(count):
            rate_row = rates.get(index, [])[n] if n < len(rates.get(index, [])) else None
            rate = hashrate_from(rate_row[0], "MH/s") if isinstance(rate_row, list) and rate_row else None
            millivolts = _reading(volts[index][n]) if n < len(volts.get(index, [])) else None
            chips.append(ChipData(
                position=n, hashrate=rate,
                temperature=_reading(heat[index][n]) if n < len(heat.get(index, [])) else None,
                voltage=round(millivolts / 1000, 4) if millivolts is not None else None,
                frequency=_reading(freqs[index][n]) if n < len(freqs.get(index, [])) else None,
                working=True if rate is not None else None,
            ))
        boards[index] = chips
    return boards


def _tuned(summary: Mapping[str, Any]) -> bool | None:
    algorithms = dig_dict(summary, "PerpetualTune", "Algorithm")
    for stats in algorithms.values():
        if isinstance(stats, dict) and isinstance(stats.get("Optimized"), bool):
            return bool(stats["Optimized"])
    return None


def dig_dict(value: Any, *path: str) -> dict[str, Any]:
    """The dict at `path`, or {} when any step is absent or not a dict."""
    for step in path:
        value = value.get(step) if isinstance(value, dict) else None
    return value if isinstance(value, dict) else {}


def parse_hashboards(summary: Mapping[str, Any], capabilities: Mapping[str, Any] | None = None,
                     temps: Any = None, chips: Mapping[int, list[ChipData]] | None = None,
                     board_count: int | None = None, chips_per_board: int | None = None) -> list[BoardData]:
    """Every slot (`capabilities["Max HBs"]`, else the catalogue's count): `HBStatus` says which are enabled,
    `HBs` holds the hashing ones (MH/s, average clock, input voltage, temperature), `temps` each board's
    sensors (the lower is the intake side, the higher the outlet), `Board Serial Numbers` the serials of the
    enabled boards in slot order; the expected rate is chips x hashes per clock x clock (asic-rs's estimate)."""
    caps = capabilities or {}
    slots = bounded_count(caps.get("Max HBs"), MAX_BOARDS) or board_count or bounded_count(max(
        [len(summary.get("HBStatus") or []), *(b.get("Index", -1) + 1 for b in _boards(summary)
                                               if isinstance(b.get("Index"), int))], default=0), MAX_BOARDS)
    estimator = dig_dict(caps, "Performance Estimator")
    chip_count = bounded_count(estimator.get("Chip Count"), 10_000) or chips_per_board
    per_clock = to_float(estimator.get("Hashes Per Second Per Chip"))
    enabled = {s["Index"]: s.get("Enabled") is True for s in summary.get("HBStatus") or []
               if isinstance(s, dict) and isinstance(s.get("Index"), int)}
    rows = {b["Index"]: b for b in _boards(summary) if isinstance(b.get("Index"), int)}
    sensors = _by_index(temps)
    serials = [s for s in caps.get("Board Serial Numbers") or [] if isinstance(s, str)]
    tuned = _tuned(summary)
    boards = []
    for slot in range(slots):
        row = rows.get(slot, {})
        active = enabled.get(slot, slot in rows)
        clock = to_float(row.get("Core Clock Avg")) or None
        readings = [r for r in (to_float(v) for v in sensors.get(slot, [])) if r]
        board_chips = list((chips or {}).get(slot, [])) if active else []
        working = sum(1 for c in board_chips if c.working) if board_chips else (
            chip_count if active and row else 0 if not active else None)
        expected = hashrate_from(chip_count * per_clock * clock, "MH/s") if chip_count and per_clock and clock \
            else None
        boards.append(BoardData(
            position=slot,
            hashrate=hashrate_from(_mhs(row), "MH/s") if row else None,
            expected_hashrate=expected,
            board_temperature=to_float(row.get("Temperature")),
            intake_temperature=min(readings) if readings else None,
            outlet_temperature=max(readings) if readings else None,
            expected_chips=chip_count,
            working_chips=working,
            serial_number=serials.pop(0) if active and serials else None,
            chips=board_chips,
            voltage=to_float(row.get("Input Voltage")) if row else None,
            frequency=clock,
            tuned=tuned if active else None,
            active=active,
        ))
    return boards


def parse_pools(summary: Mapping[str, Any]) -> list[PoolGroupData]:
    """The configured `StratumConfigs`; the one `Stratum.Config Id` names is in use, with the session's shares."""
    stratum = dig_dict(summary, "Stratum")
    session = dig_dict(summary, "Session")
    in_use = stratum.get("Config Id") if isinstance(stratum.get("Config Id"), int) else None
    pools = []
    for position, config in enumerate(summary.get("StratumConfigs") or []):
        if not isinstance(config, dict) or not parse_text(config.get("pool")):
            continue
        active = position == in_use
        accepted, rejected = to_float(session.get("Accepted")), to_float(session.get("Rejected"))
        pools.append(PoolData(
            position=position, url=parse_text(config.get("pool")), user=parse_text(config.get("login")),
            accepted_shares=int(accepted) if active and accepted is not None else None,
            rejected_shares=int(rejected) if active and rejected is not None else None,
            active=active,
            alive=stratum.get("IsPoolConnected") if active and isinstance(stratum.get("IsPoolConnected"), bool)
            else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def parse_messages(summary: Mapping[str, Any]) -> list[MinerMessage]:
    status = dig_dict(summary, "Status")
    messages = []
    if parse_text(status.get("Last Error")):
        messages.append(MinerMessage(message=str(status["Last Error"]).strip(), severity=MessageSeverity.ERROR))
    if parse_text(summary.get("Last License Error")):
        messages.append(MinerMessage(message=str(summary["Last License Error"]).strip(),
                                     severity=MessageSeverity.WARNING))
    return messages


def parse_is_mining(state: Any) -> bool | None:
    text = parse_text(state)
    return None if text is None else text not in NOT_MINING_STATES


def tuner_algorithm(summary: Mapping[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """The running perpetual-tune algorithm and its stats (`Target`, `Unit`, throttle figures)."""
    for name, stats in dig_dict(summary, "PerpetualTune", "Algorithm").items():
        if isinstance(stats, dict):
            return name, stats
    return None


def _target(name: str, stats: Mapping[str, Any], value: float | None) -> TuningTarget | None:
    if value is None:
        return None
    unit = str(stats.get("Unit") or "")
    if name == POWER_ALGORITHM or unit.strip().upper() == "W":
        return TuningTarget(target_watts=value, target_mode=name)
    return TuningTarget(target_hashrate=HashRate(value=value, unit=unit or "TH/s").into_unit("TH/s"), target_mode=name)


def parse_tuning_target(summary: Mapping[str, Any]) -> TuningTarget | None:
    found = tuner_algorithm(summary)
    return _target(found[0], found[1], to_float(found[1].get("Target"))) if found else None


def parse_scaled_tuning_target(summary: Mapping[str, Any]) -> TuningTarget | None:
    """The target after throttling: the lower of `Throttle Target` and `Error Throttle Target` when either is set."""
    found = tuner_algorithm(summary)
    if found is None:
        return None
    throttled = [t for t in (to_float(found[1].get("Throttle Target")), to_float(found[1].get("Error Throttle Target")))
                 if t is not None]
    return _target(found[0], found[1], min(throttled)) if throttled else None


def parse_wattage_limit(summary: Mapping[str, Any]) -> float | None:
    """A power limit exists only while the tuner holds a power target."""
    target = parse_tuning_target(summary)
    return target.target_watts if target is not None else None


def parse_tuning_capabilities(capabilities: Mapping[str, Any]) -> TuningCapabilities | None:
    """The bounds `PerpetualTune` gives per algorithm (TH/s for the hash rate tuners, W for `Power`), the
    `Default Hashrate`, and `Tune Presets` (power and hash rate of each preset)."""
    ranges: dict[str, TuningRange] = {}
    for option in capabilities.get("PerpetualTune") or []:
        if not isinstance(option, dict):
            continue
        low, high = to_float(option.get("min")), to_float(option.get("max"))
        if option.get("algorithm") == POWER_ALGORITHM and "power" not in ranges:
            ranges["power"] = TuningRange(minimum=TuningTarget(target_watts=low) if low is not None else None,
                                          maximum=TuningTarget(target_watts=high) if high is not None else None)
        elif option.get("algorithm") in HASHRATE_ALGORITHMS and "hashrate" not in ranges:
            default = to_float(capabilities.get("Default Hashrate"))
            ranges["hashrate"] = TuningRange(
                default=TuningTarget(target_hashrate=HashRate(value=default, unit="TH/s")) if default else None,
                minimum=TuningTarget(target_hashrate=HashRate(value=low, unit="TH/s")) if low is not None else None,
                maximum=TuningTarget(target_hashrate=HashRate(value=high, unit="TH/s")) if high is not None else None)
    presets = [TuningTarget(target_watts=to_float(p.get("power")),
                            target_hashrate=HashRate(value=float(p["hashrate"]), unit="TH/s")
                            if to_float(p.get("hashrate")) is not None else None)
               for p in capabilities.get("Tune Presets") or [] if isinstance(p, dict)]
    if not ranges and not presets:
        return None
    return TuningCapabilities(power=ranges.get("power"), hashrate=ranges.get("hashrate"), presets=presets or None)


def parse_fan_config(summary: Mapping[str, Any]) -> FanConfig:
    mode = dig_dict(summary, "Fans", "Fan Mode")
    if isinstance(mode.get("Auto"), dict):
        auto = mode["Auto"]
        target, idle = to_float(auto.get("Target Temperature")), to_float(auto.get("Idle Speed"))
        return FanConfig.auto(target_temp=target or None, idle_speed=int(idle) if idle is not None else None)
    speed = to_float(mode.get("Manual"))
    if speed is not None:
        return FanConfig.manual(int(speed))
    raise MinerResponseError("summary holds no fan mode (Auto or Manual)")


def tune_algorithms(capabilities: Mapping[str, Any]) -> list[str]:
    """The perpetual-tune algorithms this miner offers."""
    return [str(o["algorithm"]) for o in capabilities.get("PerpetualTune") or []
            if isinstance(o, dict) and isinstance(o.get("algorithm"), str)]


def model_from_capabilities(capabilities: Any) -> tuple[str, str] | None:
    """(make, model) from `capabilities.Model`: a catalogued Antminer model is made by AntMiner, a catalogued ePIC
    build (BlockMiner, the dual S19s) by ePIC; an unknown string keeps its spelling, its make from its prefix."""
    if not isinstance(capabilities, dict):
        return None
    raw = parse_text(capabilities.get("Model"))
    if raw is None or raw.upper() == "UNDEFINED":
        return None
    for make in (Make.ANTMINER.value, Make.EPIC.value):  # ePIC's own builds (the dual S19s) are catalogued as ePIC
        known = lookup_model(make, raw)
        if known is not None:
            return make, known.name
    return (Make.ANTMINER.value if raw.upper().startswith("ANTMINER") else Make.EPIC.value), raw


def _is_http_reply(error: Any) -> bool:
    return isinstance(error, MinerResponseError) and HTTP_ON_RPC_PORT in str(error)


class EPic(Backend):
    family: ClassVar[str] = "epic"
    firmware: ClassVar[str] = "ePIC"  # pyasic's name (pyasic-rs says "UMC OS")
    PRIORITY: ClassVar[int] = 45  # a specific web marker; tried before the generic Antminer realm
    DEFAULT_CREDENTIALS: ClassVar[tuple[tuple[str, str], ...]] = (("root", "letmein"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(NETWORK, parse=parse_network_mac),
        DataField.SERIAL_NUMBER: at(CAPABILITIES, parse=parse_serial),
        DataField.HOSTNAME: at(SUMMARY, "Hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: at(SUMMARY, "Software", parse=parse_firmware_version),
        DataField.CONTROL_BOARD_VERSION: at(CAPABILITIES, "Control Board Version", "cpuHardware", parse=parse_text),
        DataField.HASHRATE: at(SUMMARY, parse=parse_hashrate),
        DataField.EXPECTED_HASHRATE: at(CAPABILITIES, "Default Hashrate", parse=lambda v: hashrate_from(v, "TH/s")),
        DataField.FANS: at(SUMMARY, parse=parse_fans),
        DataField.WATTAGE: at(SUMMARY, "Power Supply Stats", "Input Power", parse=to_float),
        DataField.WATTAGE_LIMIT: at(SUMMARY, parse=parse_wattage_limit),
        DataField.UPTIME: at(SUMMARY, "Session", "Uptime", parse=to_float),
        DataField.POOLS: at(SUMMARY, parse=parse_pools),
        DataField.MESSAGES: at(SUMMARY, parse=parse_messages),
        DataField.IS_MINING: at(SUMMARY, "Status", "Operating State", parse=parse_is_mining),
        DataField.LIGHT_FLASHING: at(SUMMARY, "Misc", "Locate Miner State",
                                     parse=lambda v: v if isinstance(v, bool) else None),
        DataField.TUNING_TARGET: at(SUMMARY, parse=parse_tuning_target),
        DataField.SCALED_TUNING_TARGET: at(SUMMARY, parse=parse_scaled_tuning_target),
        DataField.TUNING_CAPABILITIES: at(CAPABILITIES, parse=parse_tuning_capabilities),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if probe.web is not None and WEB_MARKER in probe.web.text:
            return True
        # no dashboard seen (no web port, or it failed): an HTTP server on 4028 is worth one look
        return probe.web is None and _is_http_reply(probe.rpc.get("version"))

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        try:
            reply = await session.http.request("GET", probe.ip, "/capabilities", port=API_PORT)
        except MinerError:
            if probe.web is None:
                return None  # only the hint: not worth an error
            raise
        if reply.status != 200:
            return None
        try:
            capabilities = decode_json(reply.body)
        except MinerResponseError:
            return None
        found = model_from_capabilities(capabilities)
        if found is None:
            return None
        probe.learned["tune_algorithms"] = tune_algorithms(capabilities)
        return cls.device_info(found[0], found[1], cls.firmware)

    def unavailable(self) -> dict[str, str]:
        algorithms = self.learned.get("tune_algorithms")
        if isinstance(algorithms, list) and POWER_ALGORITHM in algorithms:
            return {}
        offered = ", ".join(algorithms) if isinstance(algorithms, list) and algorithms else "none read"
        return {"set_power_limit": f"this miner's perpetual tune offers no power target (it offers {offered})"}

    # ----- sending ----------------------------------------------------------------------------
    async def get(self, route: str) -> Any:
        reply = await self.http("GET", "/" + route, port=API_PORT)
        return self._decoded(route, reply)

    def _decoded(self, route: str, reply: HttpReply) -> Any:
        if reply.status != 200:
            raise MinerAPIError(f"{self.ip}: /{route} answered HTTP {reply.status}")
        return decode_json(reply.body)

    async def post(self, route: str, param: Any) -> Any:
        """A control: `{"param": ..., "password": ...}`; a refused password tries the next candidate."""
        async def attempt(creds: Credentials) -> Any:
            body = {"param": param, "password": creds.password.get_secret_value()}
            reply = self._decoded(route, await self.http("POST", "/" + route, port=API_PORT, json=body))
            if isinstance(reply, dict) and reply.get("result") is False:
                if reply.get("error") == "BadPassword":
                    raise AuthenticationError(f"{self.ip}: ePIC refused the password for /{route}")
                raise MinerAPIError(f"{self.ip}: /{route} failed: {reply.get('error')}")
            return reply

        return await self.with_credentials(attempt)

    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            return await self.get(command[4:])
        return await super().send(command)

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = super().sources(wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware

            def full(r: Mapping[str, Any]) -> list[BoardData]:
                chips = parse_chips(r[CHIP_HASHRATES], r[CHIP_TEMPS], r[CHIP_VOLTAGES], r[CHIP_CLOCKS])
                return parse_hashboards(r[SUMMARY], r[CAPABILITIES], r[TEMPS], chips, hw.board_count,
                                        hw.chips_per_board)

            out[DataField.HASHBOARDS] = [
                at((SUMMARY, CAPABILITIES, TEMPS, *CHIP_COMMANDS), parse=full),
                at((SUMMARY, CAPABILITIES), parse=lambda r: parse_hashboards(
                    r[SUMMARY], r[CAPABILITIES], None, None, hw.board_count, hw.chips_per_board)),
                at(SUMMARY, parse=lambda r: parse_hashboards(r, None, None, None, hw.board_count,
                                                             hw.chips_per_board)),
            ]
        return out

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self.post("reboot", 0)
        return True

    async def pause(self) -> bool:
        await self.post("miner", "Stop")
        return True

    async def resume(self) -> bool:
        await self.post("miner", "Autostart")
        return True

    async def set_fault_light(self, on: bool) -> bool:
        await self.post("identify", on)
        return True

    async def _tune(self, algorithm: str, target: float) -> bool:
        """`perpetualtune/algo`, keeping the throttle settings the tuner has."""
        found = tuner_algorithm(await self.get("summary"))
        stats = found[1] if found is not None else {}
        param: dict[str, Any] = {"algo": algorithm, "target": round(target)}
        for ours, theirs in (("min_throttle", "Min Throttle Target"), ("throttle_step", "Throttle Step")):
            if to_float(stats.get(theirs)) is not None:
                param[ours] = int(to_float(stats[theirs]) or 0)
        await self.post("perpetualtune/algo", param)
        return True

    async def set_power_limit(self, watts: float) -> bool:
        if not self.can("set_power_limit"):
            raise self.refuse("set_power_limit")
        if watts <= 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        return await self._tune(POWER_ALGORITHM, watts)

    async def get_tuning_config(self) -> TuningConfig:
        target = parse_tuning_target(await self.get("summary"))
        if target is None:
            raise MinerResponseError(f"{self.ip}: summary names no perpetual-tune target")
        if target.target_watts is not None:
            return TuningConfig.power(target.target_watts)
        assert target.target_hashrate is not None
        return TuningConfig.hashrate(target.target_hashrate)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A power target tunes with `Power`; a hash rate target keeps the running hash rate tuner (else
        `VoltageOptimizer`); a mode names the algorithm and keeps the target it had."""
        if config.target_watts is not None:
            return await self.set_power_limit(config.target_watts)
        summary = await self.get("summary")
        found = tuner_algorithm(summary)
        running = found[0] if found is not None else None
        if config.target_hashrate is not None:
            algorithm = running if running in HASHRATE_ALGORITHMS else HASHRATE_ALGORITHMS[0]
            assert algorithm is not None
            return await self._tune(algorithm, config.target_hashrate.into_unit("TH/s").value)
        assert config.target_mode is not None
        if config.target_mode not in (*HASHRATE_ALGORITHMS, POWER_ALGORITHM):
            raise ValueError(f"ePIC has no tuning algorithm {config.target_mode!r}; it has "
                             f"{', '.join((*HASHRATE_ALGORITHMS, POWER_ALGORITHM))}")
        target = to_float(found[1].get("Target")) if found is not None else None
        if target is None or (config.target_mode == POWER_ALGORITHM) != (running == POWER_ALGORITHM):
            raise ValueError(f"switching to {config.target_mode} needs a target in its unit: give target_watts "
                             "or target_hashrate instead")
        return await self._tune(config.target_mode, target)

    async def get_scaling_config(self) -> ScalingConfig:
        found = tuner_algorithm(await self.get("summary"))
        stats = found[1] if found is not None else {}
        step, minimum = to_float(stats.get("Throttle Step")), to_float(stats.get("Min Throttle Target"))
        if not step or minimum is None:
            raise MinerResponseError(f"{self.ip}: the tuner reports no throttle step and minimum")
        return ScalingConfig(step=int(step), minimum=int(minimum))

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        """Throttle step and minimum go with the running algorithm and its target in one `perpetualtune/algo`."""
        found = tuner_algorithm(await self.get("summary"))
        target = to_float(found[1].get("Target")) if found is not None else None
        if found is None or target is None:
            raise MinerResponseError(f"{self.ip}: no running tuner to scale")
        await self.post("perpetualtune/algo", {"algo": found[0], "target": round(target),
                                               "min_throttle": config.minimum, "throttle_step": config.step})
        return True

    async def get_temperature_config(self) -> TemperatureConfig:
        misc = dig_dict(await self.get("summary"), "Misc")
        return TemperatureConfig(hot=to_float(misc.get("Critical Temp")), danger=to_float(misc.get("Shutdown Temp")))

    async def get_pools_config(self) -> list[PoolGroup]:
        summary = await self.get("summary")
        pools = [Pool(url=str(c["pool"]).strip(), username=str(c["login"]), password=str(c.get("password") or "x"))
                 for c in summary.get("StratumConfigs") or []
                 if isinstance(c, dict) and parse_text(c.get("pool")) and parse_text(c.get("login"))]
        return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """One group of up to three pools, for the coin the miner mines (BTC, or LTC on a Scrypt model)."""
        if len(groups) != 1:
            raise ValueError(f"ePIC takes exactly one pool group (up to {MAX_POOLS} pools), got {len(groups)}")
        coin = dig_dict(await self.get("summary"), "Mining").get("Coin")
        if coin not in ("BTC", "LTC"):
            coin = "LTC" if str(self.device.algo).lower() == "scrypt" else "BTC"
        configs = [{"pool": p.url, "login": p.username, "password": p.password} for p in groups[0].pools]
        await self.post("coin", {"coin": coin, "stratum_configs": configs})
        return True

    async def get_fan_config(self) -> FanConfig:
        return parse_fan_config(await self.get("summary"))

    async def set_fan_config(self, config: FanConfig) -> bool:
        if config.mode == "manual":
            assert config.fan_speed is not None
            await self.post("fanspeed", {"Manual": config.fan_speed})
            return True
        current = dig_dict(await self.get("summary"), "Fans", "Fan Mode", "Auto")
        target = config.target_temp if config.target_temp is not None else to_float(current.get("Target Temperature"))
        idle = config.idle_speed if config.idle_speed is not None else to_float(current.get("Idle Speed"))
        if idle is None:
            idle = DEFAULT_IDLE_SPEED  # coming from manual fans, the reply holds no idle speed to keep
        if target is None:
            raise ValueError("automatic fans on ePIC need a target temperature (the miner reports none to keep)")
        await self.post("fanspeed", {"Auto": {"Target Temperature": round(target), "Idle Speed": int(idle)}})
        return True

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("the new password must not be empty")

        async def attempt(creds: Credentials) -> None:
            body = {"param": password, "password": creds.password.get_secret_value()}
            reply = self._decoded("password", await self.http("POST", "/password", port=API_PORT, json=body))
            if isinstance(reply, dict) and reply.get("result") is False:
                if reply.get("error") == "BadPassword":
                    raise AuthenticationError(f"{self.ip}: ePIC refused the current password")
                raise MinerAPIError(f"{self.ip}: /password failed: {reply.get('error')}")

        await self.with_credentials(attempt, remember=False)
        self.session.credentials.remember(self.ip, self.family, Credentials(username="root", password=password))
        return True

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        """`systemupdate`: the image with its SHA-256 and the password as form fields, settings kept; the
        miner installs it and reboots."""
        checksum = hashlib.sha256(image).hexdigest()

        async def attempt(creds: Credentials) -> None:
            form = {"password": creds.password.get_secret_value(), "checksum": checksum, "keepsettings": "true"}
            reply = self._decoded("systemupdate", await self.http(
                "POST", "/systemupdate", port=API_PORT, data=form,
                files={"update.zip": (filename, image, "application/zip")}, timeout=UPLOAD_SECONDS))
            if isinstance(reply, dict) and reply.get("result") is False:
                if reply.get("error") == "BadPassword":
                    raise AuthenticationError(f"{self.ip}: ePIC refused the password for /systemupdate")
                raise MinerAPIError(f"{self.ip}: firmware update refused: {reply.get('error')}")

        await self.with_credentials(attempt)
        return True

    async def factory_reset(self) -> bool:
        """`defaultconfig`: the firmware's default settings (fans, tuner, thresholds); no reboot."""
        await self.post("defaultconfig", None)
        return True

    async def read_logs(self) -> str:
        main = await self.http("GET", "/log", port=API_PORT)
        errors = await self.http("GET", "/log/error", port=API_PORT)
        for route, reply in (("log", main), ("log/error", errors)):
            if reply.status != 200:
                raise MinerAPIError(f"{self.ip}: /{route} answered HTTP {reply.status}")
        return f"== log ==\n{main.text}\n== log/error ==\n{errors.text}"
