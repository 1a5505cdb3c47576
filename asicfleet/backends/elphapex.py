"""Elphapex (DG1 / DG1+ / DG-Home1 Scrypt miners) stock firmware: an Antminer-like CGI web API, no RPC.

The web server asks for HTTP digest auth under its own realm ("Daoge Miner...", root/root by default), in
front of `/` too, so an unauthenticated `GET /` answers 401 with that realm: the identification signal,
and what tells it from stock Antminer's "antMiner Configuration". Everything is read from
`/cgi-bin/<name>.cgi`: `get_system_info` (model `minertype`, MAC, hostname, firmware
`system_filesystem_version` such as `DG1+_SW_V1.0.2`), `stats` (per chain rates in `rate_unit`, MH/s, chip
counts, PCB temperatures, board serials, fans; `INFO.dev_sn` the miner's serial, `INFO.hw_version`),
`summary` (`STATUS.api_version`, status entries), `pools`, `get_blink_status`, `get_miner_conf` (`fc-*`
settings and the `pools` slots) and `get_power` (`power_output`, watts). No RPC port is known: neither
pyasic nor asic-rs talks RPC to it.

Controls go through the same CGIs as stock Antminer (inherited transport, digest and login handling):
`reboot`, `blink`, and a read-modify-write of `get_miner_conf` into `set_miner_conf`. The firmware
reports its work mode as `fc-work-mode` and is told one as `miner-mode` (what pyasic sends), sleep (1)
being the pause. No password change, logs, factory reset or firmware upload are known for it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import MinerAPIError, MinerResponseError, UnsupportedControlError
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
from asicfleet.backends.antminer import (
    MAX_POOLS,
    SLEEP_MODE,
    WORK_MODE_NAMES,
    WORK_MODES,
    AntminerStock,
    parse_messages,
    pool_slots,
    pools_from_conf,
)
from asicfleet.config import FanConfig, PoolGroup, TuningConfig
from asicfleet.data import BoardData, DeviceInfo, FanData, HashRate, PoolData, PoolGroupData, TuningTarget
from asicfleet.hardware import Make, lookup_model

REALM_PREFIX = "Daoge"  # the realm starts so on every build clients have seen ("Daoge Miner ...")
MAKE = Make.ELPHAPEX.value
DEFAULT_RATE_UNIT = "MH/s"  # what the firmware writes, and what clients assume when `rate_unit` is absent


# ----- pure parsers -------------------------------------------------------------------------------------
def canonical_model(raw: str) -> str:
    """The catalogue's spelling of `minertype` (`DG1+`, `DG1`, `DG-Home1`) when known, the firmware's otherwise."""
    known = lookup_model(MAKE, raw)
    return known.name if known is not None else raw.strip()


def firmware_version(value: Any) -> str | None:
    """`DG1+_SW_V1.0.2` -> `1.0.2` (the part after the last `V`, as both clients read it)."""
    text = parse_text(value)
    if text is None:
        return None
    return text.upper().rsplit("V", 1)[-1] or None


def stats_body(reply: Mapping[str, Any]) -> dict[str, Any]:
    """The one row of a `stats.cgi` reply (`STATS[0]`)."""
    rows = reply.get("STATS")
    if not isinstance(rows, list) or not rows or not isinstance(rows[0], dict):
        raise ValueError("stats reply without a STATS row")
    return rows[0]


def rate(value: Any, unit: Any) -> HashRate | None:
    """A figure in the reply's `rate_unit` (`MH/s` on every build seen) in TH/s."""
    text = unit if isinstance(unit, str) and unit.strip() else DEFAULT_RATE_UNIT
    return hashrate_from(value, text if "/" in text else text + "/s")


def parse_hashrate(reply: Mapping[str, Any]) -> HashRate | None:
    row = stats_body(reply)
    return rate(row.get("rate_5s", row.get("rate_avg")), row.get("rate_unit"))


def parse_expected_hashrate(reply: Mapping[str, Any]) -> HashRate | None:
    row = stats_body(reply)
    return rate(row.get("rate_ideal"), row.get("rate_unit"))


def parse_uptime(reply: Mapping[str, Any]) -> float | None:
    return to_float(stats_body(reply).get("elapsed"))


def parse_fans(reply: Mapping[str, Any]) -> list[FanData]:
    """`fan` is a list of rpm figures (strings on the builds seen)."""
    fans = stats_body(reply).get("fan")
    return [FanData(position=i, rpm=to_float(rpm)) for i, rpm in enumerate(fans if isinstance(fans, list) else [])]


def _mean_positive(values: Any) -> float | None:
    readings = [r for r in (to_float(v) for v in (values if isinstance(values, list) else [])) if r]
    return round(sum(readings) / len(readings), 2) if readings else None


def _chip_temperatures(values: Any) -> list[float]:
    """`temp_chip` holds milli-degrees as strings, blank where a sensor is absent."""
    readings = [to_float(v) for v in (values if isinstance(values, list) else [])]
    return [r / 1000 for r in readings if r]


def parse_hashboards(reply: Mapping[str, Any], board_count: int | None, chips_per_board: int | None
                     ) -> list[BoardData]:
    """One board per `chain` entry (by its `index`); slots the model has but the reply lacks stay inactive."""
    row = stats_body(reply)
    unit = row.get("rate_unit")
    chains = {int(c["index"]): c for c in row.get("chain") or []
              if isinstance(c, dict) and to_float(c.get("index")) is not None}
    count = bounded_count(max(board_count or 0, max(chains, default=-1) + 1), MAX_BOARDS)
    boards = []
    for position in range(count):
        chain = chains.get(position)
        if chain is None:
            boards.append(BoardData(position=position, expected_chips=chips_per_board, active=False))
            continue
        hashrate = rate(chain.get("rate_real"), unit)
        chips = to_float(chain.get("asic_num"))
        chip_temps = _chip_temperatures(chain.get("temp_chip"))
        frequency = to_float(chain.get("freq_avg"))
        boards.append(BoardData(
            position=position,
            hashrate=hashrate,
            expected_hashrate=rate(chain.get("rate_ideal"), unit),
            board_temperature=_mean_positive(chain.get("temp_pcb")),
            # two chip sensors per board, one at each end of the air path
            intake_temperature=min(chip_temps) if chip_temps else None,
            outlet_temperature=max(chip_temps) if chip_temps else None,
            expected_chips=chips_per_board,
            working_chips=int(chips) if chips is not None else None,
            frequency=frequency / 1000 if frequency else None,  # kHz on the wire (62000 -> 62 MHz)
            serial_number=parse_text(chain.get("sn")),
            active=bool((chips or 0) > 0 or (hashrate is not None and hashrate.value > 0)),
        ))
    return boards


def parse_pools(reply: Mapping[str, Any]) -> list[PoolGroupData]:
    """`pools.cgi`: the active pool is the alive one of the best (lowest) priority, as the firmware fails over."""
    rows = [p for p in reply.get("POOLS") or [] if isinstance(p, dict)]
    alive = [p for p in rows if p.get("status") == "Alive" and to_float(p.get("priority")) is not None]
    active = min(alive, key=lambda p: float(p["priority"])).get("index") if alive else None
    pools = []
    for position, pool in enumerate(rows):
        accepted, rejected = to_float(pool.get("accepted")), to_float(pool.get("rejected"))
        index = to_float(pool.get("index"))
        pools.append(PoolData(
            position=int(index) if index is not None else position,
            url=parse_text(pool.get("url")),
            user=parse_text(pool.get("user")),
            accepted_shares=int(accepted) if accepted is not None else None,
            rejected_shares=int(rejected) if rejected is not None else None,
            active=pool.get("index") == active if active is not None else False,
            alive=pool.get("status") == "Alive" if "status" in pool else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)]


def work_mode(conf: Mapping[str, Any]) -> int | None:
    number = to_float(conf.get("fc-work-mode"))
    return int(number) if number is not None else None


def parse_is_mining(conf: Mapping[str, Any]) -> bool | None:
    mode = work_mode(conf)
    return None if mode is None else mode != SLEEP_MODE


def parse_tuning_target(conf: Mapping[str, Any]) -> TuningTarget | None:
    mode = work_mode(conf)
    return None if mode is None else TuningTarget(target_mode=WORK_MODE_NAMES.get(mode, str(mode)))


def fan_config_from_conf(conf: Mapping[str, Any]) -> FanConfig:
    manual = conf.get("fc-fan-ctrl")
    if isinstance(manual, str):
        manual = manual.strip().lower() in ("true", "1")
    return FanConfig.manual(int(to_float(conf.get("fc-fan-pwm")) or 100)) if manual else FanConfig.auto()


def conf_payload(conf: Mapping[str, Any]) -> dict[str, Any]:
    """The complete `set_miner_conf` body, carrying the current settings over (pools in three slots)."""
    slots = [{"url": p.get("url", ""), "user": p.get("user", ""), "pass": p.get("pass", "")}
             for p in conf.get("pools") or [] if isinstance(p, dict)][:MAX_POOLS]
    slots += [{"url": "", "user": "", "pass": ""}] * (MAX_POOLS - len(slots))
    payload: dict[str, Any] = {
        "fc-fan-ctrl": fan_config_from_conf(conf).mode == "manual",
        "fc-fan-pwm": str(conf.get("fc-fan-pwm", "100")),
        "fc-freq-level": str(conf.get("fc-freq-level", "100")),
        "pools": slots,
    }
    mode = work_mode(conf)
    if mode is not None:
        payload["miner-mode"] = mode  # read back as `fc-work-mode`
    return payload


class Elphapex(AntminerStock):
    family = "elphapex"
    firmware = "Stock"  # pyasic's name; pyasic-rs says "Elphapex Stock"
    PRIORITY = 140  # its own realm: no overlap with the Antminer family's signals
    DEFAULT_CREDENTIALS = (("root", "root"),)

    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at("web:get_system_info", "macaddr", parse=parse_mac),
        DataField.SERIAL_NUMBER: at("web:stats", "INFO", "dev_sn", parse=parse_text),
        DataField.HOSTNAME: at("web:get_system_info", "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: [at("web:get_system_info", "system_filesystem_version", parse=firmware_version),
                                     at("web:stats", "INFO", "miner_version", parse=firmware_version)],
        DataField.API_VERSION: at("web:summary", "STATUS", "api_version", parse=parse_text),
        DataField.CONTROL_BOARD_VERSION: at("web:stats", "INFO", "hw_version", parse=parse_text),
        DataField.HASHRATE: at("web:stats", parse=parse_hashrate),
        DataField.EXPECTED_HASHRATE: at("web:stats", parse=parse_expected_hashrate),
        DataField.FANS: at("web:stats", parse=parse_fans),
        DataField.UPTIME: at("web:stats", parse=parse_uptime),
        DataField.WATTAGE: at("web:get_power", "power_output", parse=to_float),
        DataField.POOLS: at("web:pools", parse=parse_pools),
        DataField.MESSAGES: at("web:summary", "SUMMARY", 0, "status", parse=parse_messages),
        DataField.IS_MINING: at("web:get_miner_conf", parse=parse_is_mining),
        DataField.LIGHT_FLASHING: at("web:get_blink_status", "blink"),
        DataField.TUNING_TARGET: at("web:get_miner_conf", parse=parse_tuning_target),
        # HASHBOARDS is resolved in `sources()`: it needs the model's board count.
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        web = probe.web
        return web is not None and web.status == 401 and \
            f'realm="{REALM_PREFIX}' in web.headers.get("www-authenticate", "")

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reader = cls.probe_reader(probe, DeviceInfo(make=MAKE, model="unknown", firmware=cls.firmware), session)
        info = await reader.send("web:get_system_info")
        model = parse_text(info.get("minertype")) if isinstance(info, dict) else None
        if model is None:
            return None
        probe.learned["firmware_version"] = firmware_version(info.get("system_filesystem_version"))
        return cls.device_info(MAKE, canonical_model(model), cls.firmware)

    # ----- collecting -------------------------------------------------------------------------
    def sources(self, wanted: Iterable[DataField]) -> dict[DataField, list[Source]]:
        wanted = list(wanted)
        out = Backend.sources(self, wanted)
        if DataField.HASHBOARDS in wanted:
            hw = self.device.hardware
            out[DataField.HASHBOARDS] = [at("web:stats", parse=lambda r: parse_hashboards(
                r, hw.board_count, hw.chips_per_board))]
        return out

    async def _set_conf(self, change: Callable[[dict[str, Any]], None]) -> bool:
        payload = conf_payload(await self.web_json("GET", "get_miner_conf"))
        change(payload)
        reply = await self.web_json("POST", "set_miner_conf", json=payload)
        if reply.get("stats") != "success":
            raise MinerAPIError(f"{self.ip}: set_miner_conf refused ({reply.get('code')}: {reply.get('msg')})")
        return True

    # ----- controls (restart, fault light, pause/resume, pools: inherited, same CGIs) -----------
    async def get_pools_config(self) -> list[PoolGroup]:
        return pools_from_conf(await self.web_json("GET", "get_miner_conf"))

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        slots = pool_slots(groups)  # validates before anything is sent
        return await self._set_conf(lambda p: p.__setitem__("pools", slots))

    async def get_fan_config(self) -> FanConfig:
        return fan_config_from_conf(await self.web_json("GET", "get_miner_conf"))

    async def set_fan_config(self, config: FanConfig) -> bool:
        if config.target_temp is not None or config.idle_speed is not None:
            raise UnsupportedControlError("Elphapex firmware has no fan target temperature or idle speed; "
                                          "use FanConfig.auto() or FanConfig.manual(speed)")

        def change(payload: dict[str, Any]) -> None:
            payload["fc-fan-ctrl"] = config.mode == "manual"
            if config.fan_speed is not None:
                payload["fc-fan-pwm"] = str(config.fan_speed)

        return await self._set_conf(change)

    async def get_tuning_config(self) -> TuningConfig:
        mode = work_mode(await self.web_json("GET", "get_miner_conf"))
        if mode is None:
            raise MinerResponseError(f"{self.ip}: get_miner_conf holds no fc-work-mode")
        return TuningConfig.mode(WORK_MODE_NAMES.get(mode, str(mode)))

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if config.target_mode is None:
            raise UnsupportedControlError("Elphapex firmware tunes by work mode only "
                                          f"({', '.join(WORK_MODES)}), not by power or hash rate targets")
        mode = WORK_MODES.get(config.target_mode.strip().lower())
        if mode is None:
            raise ValueError(f"unknown work mode {config.target_mode!r}; known: {', '.join(WORK_MODES)}")
        return await self._set_conf(lambda p: p.__setitem__("miner-mode", mode))

    # not known on this firmware (neither client has them): back to the base's refusal, so supports_* is false
    change_password = Backend.change_password
    read_logs = Backend.read_logs
    factory_reset = Backend.factory_reset
    upgrade_firmware = Backend.upgrade_firmware

