"""Bitaxe (and other ESP-Miner boards) running AxeOS: a JSON REST API on port 80, no RPC, no login.

Identification: the web page (`GET /`, served gzip-compressed) has the title "AxeOS"; the model is
`ASICModel` from `GET /api/system/info` (BM1366 Ultra, BM1368 Supra, BM1370 Gamma), which is how the
hardware table keys these boards. Everything else is read from that one `system/info` reply, whose
hash rates are in GH/s.

Two API generations are in the field and both are handled by what a reply contains, not by version
numbers: before 2.14 (e.g. v2.4.5) `system/info` carries `asicCount`, `fanspeed` is the manual fan
speed setting and there is no pause, identify or log endpoint (a GET elsewhere redirects to `/`, other
methods get a 405); from 2.14 `system/info` adds `expectedHashrate`, `miningPaused`, `temptarget`,
`manualFanSpeed`, TLS and Stratum V2 pool fields, and unknown `/api/*` routes answer a JSON 404.

Settings are changed with `PATCH /api/system` (a JSON object of setting names; numbers, not JSON
booleans, since the old firmware reads `true` as 0). The firmware never shows pool passwords. AxeOS
tunes by ASIC frequency, so the tuning target is a hash rate: small cores x chips x MHz.
"""

from __future__ import annotations

import contextlib
import zlib
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, ClassVar

import httpx

from asicfleet._errors import (
    MinerAPIError,
    MinerConnectionError,
    MinerResponseError,
    MinerTimeoutError,
    UnsupportedControlError,
)
from asicfleet._session import Session
from asicfleet.backends._base import Backend, DataField, Probe, Source, at, hashrate_from, to_float
from asicfleet.config import FanConfig, Pool, PoolGroup, TuningConfig
from asicfleet.data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    HashRate,
    MessageSeverity,
    MinerData,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.hardware import Make
from asicfleet.transport import HttpReply, decode_json

MAKE = Make.BITAXE.value
INFO = "web:system/info"
WEB_MARKER = "AxeOS"
MAX_POOLS = 2  # a primary and a fallback pool
OTA_TIMEOUT = 180.0  # seconds: an ESP32 writes a 1-2 MB image to flash while receiving it
_POOL_PREFIXES = ("stratum", "fallbackStratum")
_TLS_SCHEMES = ("stratum+ssl://", "stratum+tls://")
_SV2_SCHEME = "stratum2+tcp://"
_NO_SUCH_ROUTE = (302, 404, 405)  # an older firmware's answers to an endpoint it does not have


# ----- reading the web page ------------------------------------------------------------------------
def page_text(reply: HttpReply) -> str:
    """The page as text, inflating the gzip body AxeOS sends whatever the client asked for."""
    body = reply.body
    if "gzip" in reply.headers.get("content-encoding", "").lower() or body[:2] == b"\x1f\x8b":
        with contextlib.suppress(zlib.error):
            body = zlib.decompressobj(wbits=31).decompress(body)  # tolerates a cut-off stream
    return body.decode("utf-8", errors="replace")


# ----- parsers: the system/info object in, models out -----------------------------------------------
def ghs(value: Any) -> HashRate | None:
    """A GH/s figure from system/info, in TH/s."""
    return hashrate_from(value, "GH/s")


def has_current_api(info: Mapping[str, Any]) -> bool:
    """True for the 2.14+ settings (temptarget, manualFanSpeed, TLS and Stratum V2 pool fields)."""
    return "manualFanSpeed" in info or "temptarget" in info


def asic_count(info: Mapping[str, Any]) -> int | None:
    """How many ASICs the board has: `asicCount` (old API) or the hash rate monitor's list (new API)."""
    count = to_float(info.get("asicCount"))
    if count is not None and count > 0:
        return int(count)
    monitored = (info.get("hashrateMonitor") or {}).get("asics")
    return len(monitored) if isinstance(monitored, list) and monitored else None


def frequency_hashrate(info: Mapping[str, Any], frequency: Any) -> HashRate | None:
    """ESP-Miner's expected hash rate for a frequency: small cores x chips x MHz / 1000 GH/s."""
    cores, mhz, chips = to_float(info.get("smallCoreCount")), to_float(frequency), asic_count(info)
    if cores is None or mhz is None or cores <= 0 or cores >= 65535:  # 65535: the firmware's "unknown ASIC"
        return None
    return ghs(cores * (chips or 1) * mhz / 1000.0)


def parse_expected_hashrate(info: Mapping[str, Any]) -> HashRate | None:
    reported = ghs(info.get("expectedHashrate"))
    return reported if reported is not None else frequency_hashrate(info, info.get("frequency"))


def _chip_temperature(info: Mapping[str, Any]) -> float | None:
    temp = to_float(info.get("temp"))
    return temp if temp is not None and temp > -50 else None  # -1: no sensor


def _millis(value: Any) -> float | None:
    number = to_float(value)
    return round(number / 1000.0, 4) if number is not None else None


def parse_hashboards(info: Mapping[str, Any]) -> list[BoardData]:
    """The whole device as one board: vrTemp is the board sensor, temp the ASIC's."""
    if "hashRate" not in info:
        return []
    rate = ghs(info.get("hashRate"))
    chip_temp = _chip_temperature(info)
    mhz = to_float(info.get("actualFrequency"))
    mhz = mhz if mhz is not None else to_float(info.get("frequency"))
    core_volts = _millis(info.get("coreVoltageActual"))
    count = asic_count(info)
    monitored = (info.get("hashrateMonitor") or {}).get("asics")
    chips: list[ChipData] = []
    if isinstance(monitored, list) and monitored:
        for position, asic in enumerate(monitored):
            chip_rate = ghs(asic.get("total")) if isinstance(asic, Mapping) else None
            chips.append(ChipData(position=position, hashrate=chip_rate, voltage=core_volts, frequency=mhz,
                                  temperature=chip_temp if len(monitored) == 1 else None,
                                  working=True if chip_rate is not None and chip_rate.value > 0 else None))
    elif count == 1:
        chips.append(ChipData(position=0, hashrate=rate, temperature=chip_temp, voltage=core_volts, frequency=mhz,
                              working=True if rate is not None and rate.value > 0 else None))
    paused = info.get("miningPaused")
    return [BoardData(
        position=0, hashrate=rate, expected_hashrate=parse_expected_hashrate(info),
        board_temperature=to_float(info.get("vrTemp")), intake_temperature=chip_temp, outlet_temperature=chip_temp,
        working_chips=count, chips=chips, voltage=_millis(info.get("voltage")), frequency=mhz,
        active=None if paused is None else not paused,
    )]


def parse_fans(info: Mapping[str, Any]) -> list[FanData]:
    fans = []
    if (rpm := to_float(info.get("fanrpm"))) is not None:
        fans.append(FanData(position=0, rpm=rpm))
    if (rpm2 := to_float(info.get("fan2rpm"))) is not None and rpm2 > 0:  # reported as 0 without a second fan
        fans.append(FanData(position=1, rpm=rpm2))
    return fans


def pool_url(info: Mapping[str, Any], prefix: str) -> str | None:
    """The pool a `stratum`/`fallbackStratum` setting group points at, as a URL; None when unset."""
    host = str(info.get(f"{prefix}URL") or "").strip()
    if not host:
        return None
    if "://" in host:  # a client stored a whole URL where the firmware wants a host name
        return host
    port = info.get(f"{prefix}Port")
    if info.get(f"{prefix}Protocol") == "SV2":
        key = info.get(f"{prefix}V2AuthorityPubkey") or ""
        return f"{_SV2_SCHEME}{host}:{port}" + (f"/{key}" if key else "")
    scheme = "stratum+ssl" if to_float(info.get(f"{prefix}TLS")) else "stratum+tcp"
    return f"{scheme}://{host}:{port}"


def parse_pools(info: Mapping[str, Any]) -> list[PoolGroupData]:
    """Primary and fallback pool; the share counters belong to the pool in use."""
    using_fallback = bool(to_float(info.get("isUsingFallbackStratum")))
    connection = info.get("poolConnectionInfo")
    pools = []
    for position, prefix in enumerate(_POOL_PREFIXES):
        url = pool_url(info, prefix)
        if url is None:
            continue
        active = using_fallback == (position == 1)
        pools.append(PoolData(
            position=position, url=url, user=info.get(f"{prefix}User") or None, active=active,
            accepted_shares=int(info["sharesAccepted"]) if active and "sharesAccepted" in info else None,
            rejected_shares=int(info["sharesRejected"]) if active and "sharesRejected" in info else None,
            alive=(connection != "Not Connected") if active and isinstance(connection, str) else None,
        ))
    return [PoolGroupData(name="default", quota=1, pools=pools)] if pools else []


def parse_messages(info: Mapping[str, Any]) -> list[MinerMessage]:
    messages = []
    if to_float(info.get("overheat_mode")):
        messages.append(MinerMessage(message="Overheat mode: the ASIC was stopped to protect it; clear "
                                             "overheat_mode to resume", severity=MessageSeverity.ERROR))
    for key, what in (("power_fault", "Power fault"), ("hardware_fault", "Hardware fault")):
        if info.get(key):
            messages.append(MinerMessage(message=f"{what}: {info[key]}", severity=MessageSeverity.ERROR))
    return messages


def parse_is_mining(info: Mapping[str, Any]) -> bool | None:
    """Mining unless paused (2.14+) or stopped by overheat mode; the old firmware cannot be paused."""
    if "overheat_mode" not in info and "miningPaused" not in info:
        return None
    return not info.get("miningPaused") and not to_float(info.get("overheat_mode"))


def parse_tuning_target(info: Mapping[str, Any]) -> TuningTarget | None:
    target = frequency_hashrate(info, info.get("frequency"))
    return TuningTarget(target_hashrate=target) if target is not None else None


def parse_uptime(value: Any) -> timedelta | None:
    seconds = to_float(value)
    return timedelta(seconds=int(seconds)) if seconds is not None else None


def parse_text(value: Any) -> str | None:
    return str(value) if value not in (None, "") else None


# ----- configuration: system/info in, config models out; config models in, PATCH bodies out -------
def pools_from_info(info: Mapping[str, Any]) -> list[PoolGroup]:
    """The pool settings as a group; passwords read as "" (the firmware never shows them)."""
    pools = [Pool(url=url, username=str(info.get(f"{prefix}User") or ""), password="")
             for prefix in _POOL_PREFIXES if (url := pool_url(info, prefix)) is not None]
    return [PoolGroup(name="default", quota=1, pools=pools)] if pools else []


def fan_config_from_info(info: Mapping[str, Any]) -> FanConfig:
    current = has_current_api(info)
    if to_float(info.get("autofanspeed")):
        if not current:
            return FanConfig.auto()
        target, idle = to_float(info.get("temptarget")), to_float(info.get("minFanSpeed"))
        return FanConfig.auto(target_temp=target, idle_speed=int(idle) if idle is not None else None)
    speed = to_float(info.get("manualFanSpeed" if current else "fanspeed"))
    return FanConfig.manual(round(speed) if speed is not None else 100)


def pool_settings(groups: list[PoolGroup], *, current: bool) -> dict[str, Any]:
    """PATCH fields for a primary and an optional fallback pool (a missing fallback is cleared)."""
    pools = [pool for group in groups for pool in group.pools]
    if len(groups) != 1 or not 1 <= len(pools) <= MAX_POOLS:
        raise ValueError(f"AxeOS takes one group of 1..{MAX_POOLS} pools (primary and fallback), "
                         f"got {len(groups)} group(s) with {len(pools)} pool(s)")
    settings: dict[str, Any] = {}
    for prefix, pool in zip(_POOL_PREFIXES, [*pools, None], strict=False):
        if pool is None:
            settings.update({f"{prefix}URL": "", f"{prefix}User": "", f"{prefix}Password": ""})
            continue
        lower = pool.url.lower()
        tls, sv2 = lower.startswith(_TLS_SCHEMES), lower.startswith(_SV2_SCHEME)
        if (tls or sv2) and not current:
            raise UnsupportedControlError(f"this AxeOS version takes plain stratum+tcp pools only, not {pool.url}")
        settings.update({f"{prefix}URL": pool.host, f"{prefix}Port": pool.port, f"{prefix}User": pool.username,
                         f"{prefix}Password": pool.password})
        if current:
            settings[f"{prefix}TLS"] = 1 if tls else 0  # 1: verified against the bundled CA certificates
            settings[f"{prefix}Protocol"] = "SV2" if sv2 else "SV1"
            if sv2:
                settings[f"{prefix}V2AuthorityPubkey"] = pool.url.split("://", 1)[1].partition("/")[2]
    return settings


def fan_settings(config: FanConfig, *, current: bool) -> dict[str, Any]:
    """PATCH fields for a fan config; numbers, not JSON booleans (the old firmware reads `true` as 0)."""
    if config.mode == "manual":
        return {"autofanspeed": 0, ("manualFanSpeed" if current else "fanspeed"): config.fan_speed}
    settings: dict[str, Any] = {"autofanspeed": 1}
    if not current and (config.target_temp is not None or config.idle_speed is not None):
        raise UnsupportedControlError("this AxeOS version's automatic fan curve has no target temperature "
                                      "or minimum speed")
    if config.target_temp is not None:
        if not 35 <= config.target_temp <= 66:
            raise ValueError(f"AxeOS takes a fan target temperature of 35..66 °C, not {config.target_temp}")
        settings["temptarget"] = round(config.target_temp)
    if config.idle_speed is not None:
        if config.idle_speed > 99:
            raise ValueError(f"AxeOS takes a minimum fan speed of 0..99 %, not {config.idle_speed}")
        settings["minFanSpeed"] = config.idle_speed
    return settings


def frequency_for(info: Mapping[str, Any], target: HashRate, *, current: bool) -> float | int:
    """The ASIC frequency (MHz) at which ESP-Miner expects `target`."""
    cores, chips = to_float(info.get("smallCoreCount")), asic_count(info) or 1
    if cores is None or cores <= 0 or cores >= 65535:
        raise MinerResponseError("the firmware does not report the ASIC's core count; cannot map a hash rate "
                                 "to a frequency")
    mhz = target.into_unit("GH/s").value * 1000.0 / (cores * chips)
    if not 1 <= mhz <= 65535:
        raise ValueError(f"{target} needs {mhz:.1f} MHz, outside what AxeOS accepts")
    return round(mhz, 2) if current else round(mhz)  # the old firmware stores whole MHz


def json_object(reply: HttpReply, what: str) -> dict[str, Any]:
    """The JSON object of a 200 reply; MinerAPIError for a refusal, MinerResponseError for anything else."""
    refuse_if_error(reply, what)
    decoded = decode_json(reply.body)
    if not isinstance(decoded, dict):
        raise MinerResponseError(f"{what}: expected a JSON object, got {type(decoded).__name__}")
    return decoded


def refuse_if_error(reply: HttpReply, what: str) -> None:
    if reply.status == 401:
        raise MinerAPIError(f"{what}: refused (401): AxeOS answers clients on private networks only")
    if reply.status != 200:
        raise MinerAPIError(f"{what}: HTTP {reply.status} {reply.text[:80].strip()!r}")


_SINCE_2_14 = ("pause", "resume", "set_fault_light", "read_logs")  # endpoints the older API lacks


class Bitaxe(Backend):
    family: ClassVar[str] = "bitaxe"
    firmware: ClassVar[str] = "Stock"  # pyasic: "Stock"; pyasic-rs: "Bitaxe Stock"; the UI calls itself AxeOS
    PRIORITY: ClassVar[int] = 60  # the page title is specific to ESP-Miner
    RPC_BATCHABLE: ClassVar[bool] = False  # there is no RPC at all
    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        DataField.MAC: at(INFO, "macAddr", parse=lambda v: str(v).upper() if v else None),
        DataField.HOSTNAME: at(INFO, "hostname", parse=parse_text),
        DataField.FIRMWARE_VERSION: at(INFO, "version", parse=parse_text),
        DataField.API_VERSION: at(INFO, "version", parse=parse_text),  # the API is versioned with the firmware
        DataField.CONTROL_BOARD_VERSION: at(INFO, "boardVersion", parse=parse_text),
        DataField.HASHRATE: at(INFO, "hashRate", parse=ghs),
        DataField.EXPECTED_HASHRATE: at(INFO, parse=parse_expected_hashrate),
        DataField.HASHBOARDS: at(INFO, parse=parse_hashboards),
        DataField.FANS: at(INFO, parse=parse_fans),
        DataField.WATTAGE: at(INFO, "power", parse=to_float),
        DataField.UPTIME: at(INFO, "uptimeSeconds", parse=parse_uptime),
        DataField.POOLS: at(INFO, parse=parse_pools),
        DataField.MESSAGES: at(INFO, parse=parse_messages),
        DataField.IS_MINING: at(INFO, parse=parse_is_mining),
        DataField.TUNING_TARGET: at(INFO, parse=parse_tuning_target),
    }

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        return probe.web is not None and WEB_MARKER in page_text(probe.web)

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reply = await session.http.request("GET", probe.ip, "/api/system/info")
        if reply.status == 401:  # an AxeOS that refuses this client: known make, model unread
            return cls.device_info(MAKE, "unknown", cls.firmware)
        info = json_object(reply, "GET /api/system/info")
        model = parse_text(info.get("ASICModel"))
        version = parse_text(info.get("version"))
        if version:
            probe.learned["firmware_version"] = version
        probe.learned["current_api"] = has_current_api(info)
        return cls.device_info(MAKE, model, cls.firmware) if model else None

    def unavailable(self) -> dict[str, str]:
        """Pause, resume, identify (the fault light) and logs came with AxeOS 2.14's reworked API."""
        if self.learned.get("current_api") is True:
            return {}
        seen = f"this one runs {self.firmware_version}" if self.firmware_version else "its version was not read"
        return {c: f"needs AxeOS 2.14 or later; {seen}" for c in _SINCE_2_14}

    # ----- sending ----------------------------------------------------------------------------
    async def send(self, command: str) -> Any:
        if command.startswith("web:"):
            path = "/api/" + command[4:]
            return json_object(await self.http("GET", path), f"GET {path}")
        return await super().send(command)

    async def _info(self) -> dict[str, Any]:
        info: dict[str, Any] = await self.send(INFO)
        return info

    async def _call(self, method: str, path: str, control: str | None = None, **kwargs: Any) -> HttpReply:
        """One API call; for an optional endpoint (`control`), a firmware without it is unsupported."""
        reply = await self.http(method, path, **kwargs)
        if control is not None and reply.status in _NO_SUCH_ROUTE:
            raise UnsupportedControlError(f"{control}: this AxeOS version ({self.ip}) has no {path} "
                                          f"(HTTP {reply.status})")
        refuse_if_error(reply, f"{method} {path}")
        return reply

    async def _patch(self, settings: dict[str, Any]) -> bool:
        await self._call("PATCH", "/api/system", json=settings)
        return True

    def finalize(self, data: MinerData, replies: Mapping[str, Any]) -> MinerData:
        data = super().finalize(data, replies)
        per_board = self.device.hardware.chips_per_board
        for board in data.hashboards:
            if board.expected_chips is None and per_board is not None:
                board.expected_chips = per_board
        return data

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        await self._call("POST", "/api/system/restart")
        return True

    async def pause(self) -> bool:
        await self._call("POST", "/api/system/pause", "pause")
        return True

    async def resume(self) -> bool:
        await self._call("POST", "/api/system/resume", "resume")
        return True

    async def set_fault_light(self, on: bool) -> bool:
        """`identify` toggles a 30-second "Hi!" on the screen and LED; its reply says which way it went."""
        for _ in range(2):
            reply = await self._call("POST", "/api/system/identify", "set_fault_light")
            message = str(json_object(reply, "POST /api/system/identify").get("message", ""))
            if ("no longer" not in message) == on:
                return True
        return False

    async def read_logs(self) -> str:
        return (await self._call("GET", "/api/system/logs", "read_logs")).text

    async def upgrade_firmware(self, image: bytes, filename: str) -> bool:
        """`www.bin` replaces the web interface (OTAWWW); any other image is the firmware (OTA)."""
        path = "/api/system/OTAWWW" if filename.lower().endswith("www.bin") else "/api/system/OTA"
        settings = self.session.settings
        url = self.session.http.url(self.ip, 80, path)
        timeout = httpx.Timeout(max(settings.read_timeout, OTA_TIMEOUT), connect=settings.connect_timeout)
        try:  # own client: the shared one's deadline is far shorter than flashing takes
            async with httpx.AsyncClient(timeout=timeout, trust_env=False) as client:
                response = await client.post(url, content=image,
                                             headers={"Content-Type": "application/octet-stream"})
        except httpx.TimeoutException:
            raise MinerTimeoutError(f"POST {path}: no reply within {timeout.read:g}s") from None
        except httpx.HTTPError as exc:
            raise MinerConnectionError(f"POST {path}: {exc or type(exc).__name__}") from None
        refuse_if_error(HttpReply(response.status_code, dict(response.headers), response.content, str(url)),
                        f"POST {path}")
        return True

    async def get_pools_config(self) -> list[PoolGroup]:
        return pools_from_info(await self._info())

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """Stores the pools; the firmware connects to them after its next restart."""
        return await self._patch(pool_settings(groups, current=has_current_api(await self._info())))

    async def get_fan_config(self) -> FanConfig:
        return fan_config_from_info(await self._info())

    async def set_fan_config(self, config: FanConfig) -> bool:
        return await self._patch(fan_settings(config, current=has_current_api(await self._info())))

    async def get_tuning_config(self) -> TuningConfig:
        info = await self._info()
        target = frequency_hashrate(info, info.get("frequency"))
        if target is None:
            raise MinerResponseError(f"{self.ip}: system/info has no frequency or core count")
        return TuningConfig.hashrate(target)

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        """A hash rate target becomes the ASIC frequency; the core voltage is left as it is."""
        if config.target_hashrate is None:
            raise UnsupportedControlError("AxeOS tunes by ASIC frequency: give a hash rate target, not a power "
                                          "target or a named mode")
        info = await self._info()
        frequency = frequency_for(info, config.target_hashrate, current=has_current_api(info))
        return await self._patch({"frequency": frequency})


__all__ = ["Bitaxe", "page_text"]
