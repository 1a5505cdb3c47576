"""Simulated Bitaxe (Ultra BM1366, Supra BM1368, Gamma BM1370) running AxeOS, the ESP-Miner firmware.

A Bitaxe speaks HTTP on port 80 only: nothing listens on 4028, 443 or 4433, so those connections are
refused. Two firmware generations are simulated, chosen by the version string the miner reports:

- legacy (versions before 2.14, reported as v2.4.5): `/api/system/info` in the captured fixture's
  shape (pretty-printed by cJSON, floats with their float32 artefacts), `PATCH /api/system`,
  `POST /api/system/restart`, `POST /api/system/OTA` and `OTAWWW`. Any other GET falls through to the
  static-file handler, which redirects (302) to `/`; any other method is a 405.
- current (2.14 and later, reported as v2.14.2): the richer compact `/api/system/info` (no
  `asicCount`, `expectedHashrate` instead), `/api/system/asic`, `identify` (a toggle), `pause`,
  `resume`, `logs`, `statistics`, `scoreboard`, `wifi/scan`; unknown `/api/*` routes answer a JSON
  404; settings are validated all-or-nothing (400 "Wrong API input").

Both look settings up case-insensitively, as cJSON_GetObjectItem does. The current generation also
answers 401 to clients outside the private address ranges; the simulator treats its clients as on the
LAN and uses that 401 for the AUTH_FAILURE fault (the legacy firmware has no access control at all).
"""

from __future__ import annotations

import gzip
import math
import random
import struct
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import orjson

from asicfleet.config import FanConfig, Pool, PoolGroup
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, Service, SimMiner

LEGACY_VERSION = "v2.4.5"
CURRENT_VERSION = "v2.14.2"
_CURRENT_FROM = (2, 14)  # first release with pause/resume/logs and the reworked system info
_IDENTIFY_SECONDS = 30.0
_WWW_PARTITION_BYTES = 0x300000
_ESP_IMAGE_MAGIC = 0xE9
_APP_DESC_MAGIC = 0xABCD5432

Generation = Literal["legacy", "current"]


@dataclass(frozen=True)
class AsicFacts:
    """What ESP-Miner's device table says about a board family (device_config.h)."""

    family: str  # deviceModel: "Ultra", "Supra", "Gamma"
    board_version: str
    small_cores: int
    default_mhz: int
    default_mv: int
    frequency_options: tuple[int, ...]
    voltage_options: tuple[int, ...]
    swarm_color: str
    max_power: int
    asic_count: int = 1
    hash_domains: int = 4


ASICS: dict[str, AsicFacts] = {
    "BM1366": AsicFacts("Ultra", "204", 894, 485, 1200, (400, 425, 450, 475, 485, 500, 525, 550, 575),
                        (1100, 1150, 1200, 1250, 1300), "purple", 25),
    "BM1368": AsicFacts("Supra", "401", 1276, 490, 1166, (400, 425, 450, 475, 485, 490, 500, 525, 550, 575),
                        (1100, 1150, 1166, 1200, 1250, 1300), "blue", 40),
    "BM1370": AsicFacts("Gamma", "601", 2040, 525, 1150, (400, 490, 525, 550, 600, 625),
                        (1000, 1060, 1100, 1150, 1200, 1250), "green", 40),
}


def generation_of(version: str) -> Generation:
    """Which simulated firmware generation a version string (`v2.4.5-3-g...`) belongs to."""
    digits = version.lstrip("vV").split("-", 1)[0].split(".")
    try:
        major_minor = (int(digits[0]), int(digits[1]))
    except (IndexError, ValueError):
        return "current"
    return "current" if major_minor >= _CURRENT_FROM else "legacy"


def expected_ghs(asic: AsicFacts, frequency_mhz: float) -> float:
    """ESP-Miner's expected hash rate: small cores x chips x MHz / 1000, in GH/s."""
    return asic.small_cores * asic.asic_count * frequency_mhz / 1000.0


# ----- cJSON output: the numbers and layout the ESP32 prints ------------------------------------
def f32(value: float) -> float:
    """`value` stored in a C float and widened back to double (as cJSON receives it)."""
    result: float = struct.unpack("<f", struct.pack("<f", value))[0]
    return result


def axe_float(value: float) -> float:
    """ESP-Miner's cJSON_AddFloatToObject: a float rounded to 7 decimals."""
    return round(f32(value) * 10_000_000.0) / 10_000_000.0


def _cjson_number(value: float | int) -> str:
    if isinstance(value, float) and (math.isnan(value) or math.isinf(value)):
        return "null"
    if float(value).is_integer() and -(2**31) <= value < 2**31:
        return str(int(value))
    # cJSON tries "%1.15g" first; the device's output (see the captured fixture: power 2.65000009536743
    # for the float 2.65) shows it keeps those 15 digits, so no 17-digit fallback here.
    return f"{value:1.15g}"


def _cjson_string(text: str) -> str:
    out = ['"']
    for char in text:
        if char in '"\\':
            out.append("\\" + char)
        elif char in "\b\f\n\r\t":
            out.append({"\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r", "\t": "\\t"}[char])
        elif ord(char) < 32:
            out.append(f"\\u{ord(char):04x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def cjson(value: Any, *, formatted: bool, depth: int = 0) -> str:
    """Prints `value` as cJSON_Print (formatted) or cJSON_PrintUnformatted would."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return _cjson_number(value)
    if isinstance(value, str):
        return _cjson_string(value)
    if isinstance(value, list | tuple):
        items = [cjson(v, formatted=formatted, depth=depth + 1) for v in value]
        return "[" + (", " if formatted else ",").join(items) + "]"
    if isinstance(value, dict):
        if not value:
            return "{}"
        if not formatted:
            return "{" + ",".join(f"{_cjson_string(k)}:{cjson(v, formatted=False)}" for k, v in value.items()) + "}"
        inner = "\t" * (depth + 1)
        body = ",\n".join(f"{inner}{_cjson_string(k)}:\t{cjson(v, formatted=True, depth=depth + 1)}"
                          for k, v in value.items())
        return "{\n" + body + "\n" + "\t" * depth + "}"
    raise TypeError(f"cannot print {type(value).__name__} as cJSON")


# ----- settings PATCH /api/system accepts ---------------------------------------------------------
@dataclass(frozen=True)
class Setting:
    """One REST-settable value: its REST name, C type and (current firmware) accepted range."""

    name: str
    kind: Literal["str", "u16", "i32", "float", "bool"]
    low: float = 0
    high: float = 65535


_STR_LIMIT = 3999
# v2.4.5 PATCH_update_settings, in its order; `fanspeed` is the manual fan speed there.
LEGACY_SETTINGS: tuple[Setting, ...] = (
    Setting("stratumURL", "str"), Setting("fallbackStratumURL", "str"), Setting("stratumUser", "str"),
    Setting("stratumPassword", "str"), Setting("fallbackStratumUser", "str"),
    Setting("fallbackStratumPassword", "str"), Setting("stratumPort", "u16"), Setting("fallbackStratumPort", "u16"),
    Setting("ssid", "str"), Setting("wifiPass", "str"), Setting("hostname", "str"), Setting("coreVoltage", "u16"),
    Setting("frequency", "u16"), Setting("flipscreen", "u16"), Setting("overheat_mode", "u16"),
    Setting("invertscreen", "u16"), Setting("invertfanpolarity", "u16"), Setting("autofanspeed", "u16"),
    Setting("fanspeed", "u16"),
)
# v2.14.2 nvs_config.c settings that have a REST name, with their ranges.
CURRENT_SETTINGS: tuple[Setting, ...] = (
    Setting("ssid", "str", 1, 32), Setting("wifiPass", "str", 0, 63), Setting("hostname", "str", 1, 32),
    Setting("stratumProtocol", "str", 3, 3), Setting("stratumURL", "str", 0, _STR_LIMIT),
    Setting("stratumPort", "u16", 0, 65535), Setting("stratumUser", "str", 0, _STR_LIMIT),
    Setting("stratumPassword", "str", 0, _STR_LIMIT), Setting("stratumSuggestedDifficulty", "u16", 0, 65535),
    Setting("stratumExtranonceSubscribe", "bool", 0, 1), Setting("stratumTLS", "u16", 0, 3),
    Setting("stratumCert", "str", 0, _STR_LIMIT), Setting("stratumV2ChannelType", "str", 8, 8),
    Setting("stratumV2AuthorityPubkey", "str", 0, 52), Setting("stratumDecodeCoinbase", "bool", 0, 1),
    Setting("fallbackStratumProtocol", "str", 3, 3), Setting("fallbackStratumURL", "str", 0, _STR_LIMIT),
    Setting("fallbackStratumPort", "u16", 0, 65535), Setting("fallbackStratumUser", "str", 0, _STR_LIMIT),
    Setting("fallbackStratumPassword", "str", 0, _STR_LIMIT),
    Setting("fallbackStratumSuggestedDifficulty", "u16", 0, 65535),
    Setting("fallbackStratumExtranonceSubscribe", "bool", 0, 1), Setting("fallbackStratumTLS", "u16", 0, 3),
    Setting("fallbackStratumCert", "str", 0, _STR_LIMIT), Setting("fallbackStratumV2ChannelType", "str", 8, 8),
    Setting("fallbackStratumV2AuthorityPubkey", "str", 0, 52),
    Setting("fallbackStratumDecodeCoinbase", "bool", 0, 1), Setting("useFallbackStratum", "bool", 0, 1),
    Setting("frequency", "float", 1, 65535), Setting("coreVoltage", "u16", 1, 65535),
    Setting("overclockEnabled", "bool", 0, 1), Setting("display", "str", 0, _STR_LIMIT),
    Setting("rotation", "u16", 0, 270), Setting("invertscreen", "bool", 0, 1), Setting("displayOffset", "u16", 0, 255),
    Setting("displayTimeout", "i32", -1, 65535), Setting("autofanspeed", "bool", 0, 1),
    Setting("manualFanSpeed", "u16", 0, 100), Setting("minFanSpeed", "u16", 0, 99),
    Setting("temptarget", "u16", 35, 66),
    Setting("overheat_mode", "bool", 0, 0), Setting("statsFrequency", "u16", 0, 65535),
)
_ONE_OF: dict[str, tuple[Any, ...]] = {
    "rotation": (0, 90, 180, 270), "stratumProtocol": ("SV1", "SV2"), "fallbackStratumProtocol": ("SV1", "SV2"),
    "stratumV2ChannelType": ("standard", "extended"), "fallbackStratumV2ChannelType": ("standard", "extended"),
}


def _get_item(body: dict[str, Any], name: str) -> tuple[bool, Any]:
    """cJSON_GetObjectItem: the first key equal to `name` ignoring case."""
    wanted = name.lower()
    for key, value in body.items():
        if key.lower() == wanted:
            return True, value
    return False, None


def _value_int(value: Any) -> int:
    """cJSON's `valueint`: the saturated int of a number, 0 for anything else (true included)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or math.isnan(value):
        return 0
    return int(max(-(2**31), min(2**31 - 1, value)))


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


_INDEX_HTML = """<!doctype html>
<html lang="en" data-critters-container>

<head>
  <meta charset="utf-8">
  <title>AxeOS</title>
  <base href="/">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/x-icon" href="favicon.ico">
<link rel="stylesheet" href="styles.4c8a1d2e7f3b9065.css" media="print" onload="this.media='all'">\
<noscript><link rel="stylesheet" href="styles.4c8a1d2e7f3b9065.css"></noscript></head>

<body>
  <app-root></app-root>
<script src="runtime.5e1f8c3a9d7b2046.js" type="module"></script>\
<script src="polyfills.8b3d6e1f0a2c4957.js" type="module"></script>\
<script src="main.1a7c9e3b5d8f2064.js" type="module"></script></body>

</html>
"""
_RECOVERY_HTML = "<!DOCTYPE html><html><head><title>AxeOS Recovery</title></head><body><h1>AxeOS Recovery</h1>" \
                 "<p>Upload www.bin to restore the web interface.</p></body></html>"


class BitaxeSim(SimMiner):
    """A Bitaxe: one ASIC, one fan, AxeOS on port 80."""

    family: ClassVar[str] = "bitaxe"
    make: ClassVar[str] = "Bitaxe"
    firmware: ClassVar[str] = "Stock"  # what pyasic ("Stock") and pyasic-rs ("Bitaxe Stock") call AxeOS
    models: ClassVar[tuple[str, ...]] = ("BM1366", "BM1368", "BM1370")
    services: ClassVar[tuple[Service, ...]] = (Service(80, "http"),)
    http_server_header: ClassVar[str | None] = None  # ESP-IDF's httpd names no server

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return model.make == cls.make and model.name in ASICS  # AxeOS reports the chip as its model

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return rng.choice((LEGACY_VERSION, CURRENT_VERSION))

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        miner = super().build(ip, model, rng)
        state = miner.state
        asic = ASICS[model.name]
        fallback = state.pools[0].pools[1] if len(state.pools[0].pools) > 1 else state.pools[0].pools[0]
        primary = state.pools[0].pools[0]
        state.board_temps = [round(rng.uniform(52.0, 66.0) * 8) / 8 for _ in state.board_temps]  # 0.125 °C steps
        state.extra.update(
            nvs={
                "hostname": state.hostname, "ssid": "farm-iot", "wifiPass": "not-shown",
                "stratumURL": primary.host, "stratumPort": primary.port, "stratumUser": primary.username,
                "stratumPassword": primary.password, "fallbackStratumURL": fallback.host,
                "fallbackStratumPort": fallback.port, "fallbackStratumUser": fallback.username,
                "fallbackStratumPassword": fallback.password, "stratumProtocol": "SV1",
                "fallbackStratumProtocol": "SV1", "stratumTLS": 0, "fallbackStratumTLS": 0, "stratumCert": "",
                "fallbackStratumCert": "", "stratumV2ChannelType": "extended",
                "fallbackStratumV2ChannelType": "extended", "stratumV2AuthorityPubkey": "",
                "fallbackStratumV2AuthorityPubkey": "", "stratumSuggestedDifficulty": 1000,
                "fallbackStratumSuggestedDifficulty": 1000, "stratumExtranonceSubscribe": False,
                "fallbackStratumExtranonceSubscribe": False, "stratumDecodeCoinbase": True,
                "fallbackStratumDecodeCoinbase": True, "useFallbackStratum": False,
                "frequency": asic.default_mhz, "coreVoltage": asic.default_mv, "overclockEnabled": False,
                "display": "SSD1306 (128x32)", "rotation": 0, "flipscreen": 1, "invertscreen": 0,
                "displayOffset": 32, "displayTimeout": -1, "invertfanpolarity": 1, "autofanspeed": 1,
                "manualFanSpeed": 100, "minFanSpeed": 25, "temptarget": 60, "overheat_mode": 0, "statsFrequency": 0,
            },
            hashrate_yield=rng.uniform(0.95, 1.03),  # measured / expected hash rate
            base_watts=state.wattage, base_mhz=float(asic.default_mhz),
            vr_offset=float(rng.randrange(8, 19)), input_mv=float(rng.randrange(5080, 5220, 5)),
            fan_max_rpm=rng.randrange(6200, 7400, 10), best_diff=rng.randrange(50_000, 90_000_000),
            best_session_diff=rng.randrange(1_000, 5_000_000), pool_difficulty=rng.choice((1000, 2048, 4096)),
            free_heap=rng.randrange(8_100_000, 8_500_000), rssi=rng.randrange(-72, -41),
            running_partition="factory", reset_reason="Reset due to power-on event", identify_until=0.0,
            log=[],
        )
        state.hashrate_ths = round(expected_ghs(asic, asic.default_mhz) / 1000 * state.extra["hashrate_yield"], 6)
        state.fan = _fan_config_of(state.extra["nvs"], generation_of(state.firmware_version))
        assert isinstance(miner, BitaxeSim)
        miner.log("I", "main", f"Welcome to the bitaxe - FOSS || Hack the planet! ({asic.family})")
        miner.log("I", "stratum_task", f"Connecting to: stratum+tcp://{primary.host}:{primary.port}")
        return miner

    # ----- small accessors ----------------------------------------------------------------------
    @property
    def nvs(self) -> dict[str, Any]:
        nvs: dict[str, Any] = self.state.extra["nvs"]
        return nvs

    @property
    def asic(self) -> AsicFacts:
        return ASICS[self.state.model.name]

    @property
    def generation(self) -> Generation:
        return generation_of(self.state.firmware_version)

    @property
    def identifying(self) -> bool:
        return time.time() < float(self.state.extra["identify_until"])

    def use_firmware(self, version: str) -> None:
        """Runs `version` from now on (as after an OTA update); the generation follows the version."""
        self.state.firmware_version = version
        self.state.fan = _fan_config_of(self.nvs, self.generation)

    def log(self, level: str, tag: str, text: str) -> None:
        """Appends an ESP-IDF style log line (kept for GET /api/system/logs)."""
        millis = int(max(0.0, time.time() - self.state.boot_time) * 1000)
        lines: list[str] = self.state.extra["log"]
        lines.append(f"{level} ({millis}) {tag}: {text}")
        del lines[:-200]

    def _sync_pools(self) -> None:
        """Mirrors the stored stratum settings into `state.pools` when they form valid pool URLs."""
        pools = []
        for prefix in ("stratum", "fallbackStratum"):
            host, port, user = (self.nvs[f"{prefix}URL"], self.nvs[f"{prefix}Port"], self.nvs[f"{prefix}User"])
            if not host:
                continue
            scheme = "stratum+ssl" if self.nvs.get(f"{prefix}TLS") else "stratum+tcp"
            try:
                pools.append(Pool(url=f"{scheme}://{host}:{port}", username=user or "-",
                                  password=self.nvs[f"{prefix}Password"]))
            except ValueError:
                return  # a setting no pool URL can express (as pyasic's full-URL stratumURL): keep the old view
        if pools:
            self.state.pools = [PoolGroup(name="default", quota=1, pools=pools)]

    def _apply_frequency(self, mhz: float) -> None:
        """The power-management task applies a new frequency live: hash rate and power follow it."""
        extra = self.state.extra
        self.state.hashrate_ths = round(expected_ghs(self.asic, mhz) / 1000 * extra["hashrate_yield"], 6)
        self.state.wattage = round(extra["base_watts"] * mhz / extra["base_mhz"], 1)

    # ----- live figures -------------------------------------------------------------------------
    def _chip_temp(self) -> float:
        return self.state.board_temps[0]

    def _fan_percent(self) -> float:
        nvs = self.nvs
        if not nvs["autofanspeed"]:
            return float(nvs["manualFanSpeed"])
        temp = self._chip_temp()
        if self.generation == "legacy":  # v2.4.5 automatic_fan_speed: linear 35 % at 45 °C .. 100 % at 75 °C
            return 35.0 if temp < 45 else 100.0 if temp >= 75 else (temp - 45) / 30 * 65 + 35
        # the current firmware's PID settles near the minimum while below target, rising above it
        return float(min(100.0, max(float(nvs["minFanSpeed"]), 40.0 + (temp - nvs["temptarget"]) * 6)))

    def _refresh(self) -> tuple[float, int]:
        """Fan duty and rpm as reported now; the rpm is written back to the state (what reads show)."""
        percent = self._fan_percent()
        rpm = int(self.state.extra["fan_max_rpm"] * percent / 100)
        self.state.fan_rpms = [rpm] * max(1, len(self.state.fan_rpms))
        self.state.fault_light = self.identifying
        return percent, rpm

    def _power_figures(self) -> tuple[float, float, float]:
        """(power W, input voltage mV, input current mA): an idle ASIC draws little when paused."""
        watts = self.state.wattage if self.state.mining else round(self.state.wattage * 0.22, 2)
        millivolts = float(self.state.extra["input_mv"])
        return watts, millivolts, watts / millivolts * 1_000_000

    def _hashrate_ghs(self) -> float:
        return self.state.live_hashrate_ths * 1000.0

    # ----- /api/system/info in both shapes ------------------------------------------------------
    def legacy_info(self) -> dict[str, Any]:
        """v2.4.5 GET_system_info, key for key and in its order (compare the captured fixture)."""
        s, nvs, extra, asic = self.state, self.nvs, self.state.extra, self.asic
        percent, rpm = self._refresh()
        watts, millivolts, milliamps = self._power_figures()
        return {
            "power": f32(watts), "voltage": f32(millivolts), "current": f32(milliamps), "temp": f32(self._chip_temp()),
            "vrTemp": f32(self._chip_temp() + extra["vr_offset"]), "hashRate": self._hashrate_ghs(),
            "bestDiff": _diff_string(extra["best_diff"]), "bestSessionDiff": _diff_string(extra["best_session_diff"]),
            "stratumDiff": extra["pool_difficulty"], "isUsingFallbackStratum": 0, "freeHeap": extra["free_heap"],
            "coreVoltage": nvs["coreVoltage"], "coreVoltageActual": nvs["coreVoltage"] + 6,
            "frequency": int(nvs["frequency"]), "ssid": nvs["ssid"], "macAddr": s.mac.upper(),
            "hostname": nvs["hostname"], "wifiStatus": "Connected!", "sharesAccepted": s.accepted,
            "sharesRejected": s.rejected, "uptimeSeconds": s.uptime, "asicCount": asic.asic_count,
            "smallCoreCount": asic.small_cores, "ASICModel": s.model.name, "stratumURL": nvs["stratumURL"],
            "fallbackStratumURL": nvs["fallbackStratumURL"], "stratumPort": nvs["stratumPort"],
            "fallbackStratumPort": nvs["fallbackStratumPort"], "stratumUser": nvs["stratumUser"],
            "fallbackStratumUser": nvs["fallbackStratumUser"], "version": s.firmware_version, "idfVersion": "v5.4",
            "boardVersion": asic.board_version, "runningPartition": extra["running_partition"],
            "flipscreen": nvs["flipscreen"], "overheat_mode": nvs["overheat_mode"], "invertscreen": nvs["invertscreen"],
            "invertfanpolarity": nvs["invertfanpolarity"], "autofanspeed": nvs["autofanspeed"],
            "fanspeed": f32(percent), "fanrpm": rpm,
        }

    def current_info(self) -> dict[str, Any]:
        """v2.14.2 system_api_get_full_json: telemetry, then configuration, then the hash rate monitor."""
        s, nvs, extra, asic = self.state, self.nvs, self.state.extra, self.asic
        percent, rpm = self._refresh()
        watts, millivolts, milliamps = self._power_figures()
        ghs = axe_float(self._hashrate_ghs())
        mhz = float(nvs["frequency"])
        info: dict[str, Any] = {
            "power": axe_float(watts), "voltage": axe_float(millivolts), "current": axe_float(milliamps),
            "temp": axe_float(self._chip_temp()), "temp2": -1,
            "vrTemp": axe_float(self._chip_temp() + extra["vr_offset"]),
            "coreVoltageActual": axe_float(nvs["coreVoltage"] + 4), "actualFrequency": axe_float(mhz),
            "expectedHashrate": axe_float(expected_ghs(asic, mhz)), "fanspeed": f32(percent), "fanrpm": rpm,
            "fan2rpm": 0, "hashRate": ghs, "hashRate_1m": ghs, "hashRate_10m": ghs, "hashRate_1h": ghs,
            "errorPercentage": axe_float(0.12 if s.mining else 0.0), "sharesAccepted": s.accepted,
            "sharesRejected": s.rejected, "bestDiff": extra["best_diff"], "bestSessionDiff": extra["best_session_diff"],
            "poolDifficulty": extra["pool_difficulty"], "responseTime": axe_float(38.5), "responseShareBatch": 1,
            "processTime": axe_float(2.25), "blockFound": 0, "showNewBlock": False, "freeHeap": extra["free_heap"],
            "freeHeapInternal": 61_240, "freeHeapSpiram": extra["free_heap"] - 61_240, "uptimeSeconds": s.uptime,
            "cpuUsage": axe_float(17.5), "miningPaused": not s.mining, "overheat_mode": nvs["overheat_mode"],
            "wifiStatus": "Connected!", "wifiRSSI": extra["rssi"],
            "version": s.firmware_version, "axeOSVersion": s.firmware_version, "idfVersion": "v5.5.1",
            "boardVersion": asic.board_version, "maxPower": asic.max_power, "nominalVoltage": 5,
            "smallCoreCount": asic.small_cores, "ASICModel": s.model.name, "isPSRAMAvailable": 1,
            "resetReason": extra["reset_reason"], "runningPartition": extra["running_partition"],
            "macAddr": s.mac.upper(), "hostname": nvs["hostname"], "ssid": nvs["ssid"], "ipv4": s.ip, "ipv6": "",
            "apEnabled": 0, "poolConnectionInfo": "IPv4 (TLS)" if nvs["stratumTLS"] else "IPv4",
            "isUsingFallbackStratum": 1 if nvs["useFallbackStratum"] else 0,
        }
        for prefix in ("stratum", "fallbackStratum"):
            info.update({
                f"{prefix}URL": nvs[f"{prefix}URL"], f"{prefix}Port": nvs[f"{prefix}Port"],
                f"{prefix}User": nvs[f"{prefix}User"],
                f"{prefix}SuggestedDifficulty": nvs[f"{prefix}SuggestedDifficulty"],
                f"{prefix}ExtranonceSubscribe": bool(nvs[f"{prefix}ExtranonceSubscribe"]),
                f"{prefix}TLS": nvs[f"{prefix}TLS"], f"{prefix}Cert": nvs[f"{prefix}Cert"],
                f"{prefix}DecodeCoinbase": bool(nvs[f"{prefix}DecodeCoinbase"]),
            })
        info.update({
            "stratumProtocol": nvs["stratumProtocol"], "stratumV2AuthorityPubkey": nvs["stratumV2AuthorityPubkey"],
            "stratumV2ChannelType": nvs["stratumV2ChannelType"],
            "fallbackStratumV2AuthorityPubkey": nvs["fallbackStratumV2AuthorityPubkey"],
            "fallbackStratumV2ChannelType": nvs["fallbackStratumV2ChannelType"],
            "fallbackStratumProtocol": nvs["fallbackStratumProtocol"],
            "overclockEnabled": 1 if nvs["overclockEnabled"] else 0, "display": nvs["display"],
            "rotation": nvs["rotation"], "invertscreen": 1 if nvs["invertscreen"] else 0,
            "displayTimeout": nvs["displayTimeout"], "autofanspeed": 1 if nvs["autofanspeed"] else 0,
            "manualFanSpeed": nvs["manualFanSpeed"], "minFanSpeed": nvs["minFanSpeed"], "temptarget": nvs["temptarget"],
            "coreVoltage": nvs["coreVoltage"], "frequency": axe_float(mhz), "statsFrequency": nvs["statsFrequency"],
            "statsLimit": 720,
        })
        per_chip = f32(self._hashrate_ghs() / asic.asic_count)
        info["hashrateMonitor"] = {"asics": [
            {"total": per_chip, "errorCount": 3 if s.mining else 0,
             "domains": [f32(per_chip / asic.hash_domains)] * asic.hash_domains}
            for _ in range(asic.asic_count)
        ]}
        info["sharesRejectedReasons"] = [{"message": "Above target", "count": s.rejected}] if s.rejected else []
        return info

    def asic_info(self) -> dict[str, Any]:
        asic = self.asic
        return {"ASICModel": self.state.model.name, "deviceModel": asic.family, "swarmColor": asic.swarm_color,
                "asicCount": asic.asic_count, "hashDomains": asic.hash_domains, "defaultFrequency": asic.default_mhz,
                "frequencyOptions": list(asic.frequency_options), "defaultVoltage": asic.default_mv,
                "voltageOptions": list(asic.voltage_options)}

    # ----- HTTP ---------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if self.generation == "legacy":
            return self._legacy_route(request)
        return self._current_route(request)

    def _legacy_route(self, request: HttpRequest) -> HttpResponse:
        routes: dict[tuple[str, str], Callable[[], HttpResponse]] = {
            ("GET", "/recovery"): lambda: HttpResponse.html(_RECOVERY_HTML),
            ("GET", "/api/system/info"): lambda: _json(self.legacy_info(), formatted=True),
            ("OPTIONS", "/api/swarm"): _options, ("OPTIONS", "/api/system/restart"): _options,
            ("OPTIONS", "/api/system"): _options,
            ("POST", "/api/system/restart"): lambda: self._restart(_html("System will restart shortly.")),
            ("PATCH", "/api/system"): lambda: self._patch_legacy(request.body),
            ("POST", "/api/system/OTA"): lambda: self._ota(request.body, legacy=True),
            ("POST", "/api/system/OTAWWW"): lambda: self._ota_www(request.body, legacy=True),
            ("GET", "/api/ws"): lambda: _error(400, "Bad Request"),
        }
        handler = routes.get((request.method, request.path))
        if handler is not None:
            return handler()
        if request.method == "GET":
            return _static_file(request.path)
        return _method_not_allowed()  # "/*" matched the URI, for GET only

    def _current_route(self, request: HttpRequest) -> HttpResponse:
        method, path = request.method, request.path
        api = path.startswith("/api/")
        if (api or path == "/recovery") and self.auth_refused():
            return _error(401, "Unauthorized")  # is_network_allowed() said no
        if method == "OPTIONS" and api:
            return _options()
        routes: dict[tuple[str, str], Callable[[], HttpResponse]] = {
            ("GET", "/recovery"): lambda: HttpResponse.html(_RECOVERY_HTML),
            ("GET", "/api/system/info"): lambda: _json(self.current_info()),
            ("GET", "/api/system/asic"): lambda: _json(self.asic_info()),
            ("GET", "/api/system/statistics"): self._statistics,
            ("GET", "/api/system/scoreboard"): lambda: _json([], formatted=True),
            ("GET", "/api/system/wifi/scan"): lambda: _json({"networks": [
                {"ssid": self.nvs["ssid"], "rssi": self.state.extra["rssi"], "authmode": 3}]}),
            ("GET", "/api/system/logs"): self._logs,
            ("POST", "/api/system/identify"): self._identify,
            ("POST", "/api/system/restart"): lambda: self._restart(_json({"message": "System will restart shortly."})),
            ("POST", "/api/system/pause"): lambda: self._set_paused(True),
            ("POST", "/api/system/resume"): lambda: self._set_paused(False),
            ("POST", "/api/system/blockFound/dismiss"): lambda: _json(
                {"blockFound": 0, "showNewBlock": False, "message": "Block found notification dismissed"}),
            ("PATCH", "/api/system"): lambda: self._patch_current(request.body),
            ("POST", "/api/system/OTA"): lambda: self._ota(request.body, legacy=False),
            ("POST", "/api/system/OTAWWW"): lambda: self._ota_www(request.body, legacy=False),
            ("GET", "/api/ws"): lambda: _error(400, "Bad Request"),
            ("GET", "/api/ws/live"): lambda: _error(400, "Bad Request"),
        }
        handler = routes.get((method, path))
        if handler is not None:
            return handler()
        if api:
            return HttpResponse(status=404, body=b'{"error":"unknown route"}', headers=dict(_CORS))
        if method == "GET":
            return _static_file(path)
        return _method_not_allowed()

    # ----- handlers -----------------------------------------------------------------------------
    def _restart(self, reply: HttpResponse) -> HttpResponse:
        self.log("I", "http_server", "Restarting System because of API Request")
        self._reboot()
        return reply

    def _reboot(self) -> None:
        """RAM state is lost in a reboot: mining resumes, identify stops, the uptime starts again."""
        self.state.mining = True
        self.state.extra["identify_until"] = 0.0
        self.state.extra["reset_reason"] = "Software reset via esp_restart"
        self.restart()
        self.state.extra["log"] = []
        self.log("I", "main", "Welcome to the bitaxe - FOSS || Hack the planet!")

    def _set_paused(self, paused: bool) -> HttpResponse:
        self.state.mining = not paused
        message = "Mining paused" if paused else "Mining resumed"
        self.log("I", "http_server", f"{message} by API request")
        return _json({"message": message})

    def _identify(self) -> HttpResponse:
        if self.identifying:
            self.state.extra["identify_until"] = 0.0
            message = 'The device no longer says "Hi!".'
        else:
            self.state.extra["identify_until"] = time.time() + _IDENTIFY_SECONDS
            message = 'The device says "Hi!" for 30 seconds.'
            self.log("I", "http_server", "Identify mode enabled for 30s")
        self.state.fault_light = self.identifying
        return _json({"message": message})

    def _logs(self) -> HttpResponse:
        text = "\n".join(self.state.extra["log"]) + "\n"
        return HttpResponse(status=200, body=text.encode(), content_type="text/plain",
                            headers={"Content-Disposition": 'attachment; filename="bitaxe-logs.txt"'})

    def _statistics(self) -> HttpResponse:
        labels = ["hashrate", "hashrate_1m", "hashrate_10m", "hashrate_1h", "errorPercentage", "asicTemp",
                  "asicTemp2", "vrTemp", "asicVoltage", "voltage", "power", "current", "fanSpeed", "fanRpm",
                  "fan2Rpm", "wifiRssi", "freeHeap", "responseTime", "timestamp"]
        millis = int(max(0.0, time.time() - self.state.boot_time) * 1000)
        return _json({"currentTimestamp": millis, "labels": labels, "statistics": []})  # statsFrequency 0: none kept

    def _patch_body(self, body: bytes) -> dict[str, Any] | HttpResponse:
        try:
            parsed = orjson.loads(body) if body.strip() else None
        except orjson.JSONDecodeError:
            parsed = None
        if not isinstance(parsed, dict):
            return _error(400, "Invalid JSON")
        return parsed

    def _patch_legacy(self, body: bytes) -> HttpResponse:
        parsed = self._patch_body(body)
        if isinstance(parsed, HttpResponse):
            return parsed
        for setting in LEGACY_SETTINGS:
            found, value = _get_item(parsed, setting.name)
            if not found:
                continue
            key = "manualFanSpeed" if setting.name == "fanspeed" else setting.name
            if setting.kind == "str":
                if isinstance(value, str):  # the firmware would store a NULL valuestring otherwise
                    self.nvs[key] = value
                continue
            number = _value_int(value) & 0xFFFF  # nvs_config_set_u16
            if setting.name in ("coreVoltage", "frequency") and _value_int(value) <= 0:
                continue
            self.nvs[key] = 0 if setting.name == "overheat_mode" else number
        self._after_settings()
        return _html("")

    def _patch_current(self, body: bytes) -> HttpResponse:
        parsed = self._patch_body(body)
        if isinstance(parsed, HttpResponse):
            return parsed
        accepted: dict[str, Any] = {}
        for setting in CURRENT_SETTINGS:
            found, value = _get_item(parsed, setting.name)
            if not found:
                continue
            ok, stored = _check_current(setting, value)
            if not ok:
                return _error(400, "Wrong API input")  # nothing is stored
            accepted[setting.name] = stored
        self.nvs.update(accepted)
        self._after_settings()
        return _html("")

    def _after_settings(self) -> None:
        self.state.hostname = self.nvs["hostname"]
        self._apply_frequency(float(self.nvs["frequency"]))
        self.state.fan = _fan_config_of(self.nvs, self.generation)
        self._sync_pools()

    def _ota(self, image: bytes, *, legacy: bool) -> HttpResponse:
        if not image or image[0] != _ESP_IMAGE_MAGIC:
            return _error(500, "Validation / Activation Error")
        version = _app_version(image)
        if version:
            self.use_firmware(version)
        partition = self.state.extra["running_partition"]
        self.state.extra["running_partition"] = "ota_1" if partition == "ota_0" else "ota_0"
        self.log("I", "http_server", "Restarting System because of Firmware update complete")
        self._reboot()
        text = "Firmware update complete, rebooting now!\n"
        return _html(text) if legacy else HttpResponse(status=200, body=text.encode(), content_type="text/plain")

    def _ota_www(self, image: bytes, *, legacy: bool) -> HttpResponse:
        if len(image) > _WWW_PARTITION_BYTES:
            return _error(400, "File provided is too large for device")
        text = "WWW update complete\n"
        return _html(text) if legacy else HttpResponse(status=200, body=text.encode(), content_type="text/plain")


# ----- helpers ------------------------------------------------------------------------------------
_CORS = (("Access-Control-Allow-Origin", "*"),
         ("Access-Control-Allow-Methods", "GET, POST, PUT, PATCH, DELETE, OPTIONS"),
         ("Access-Control-Allow-Headers", "Content-Type"))


def _json(value: Any, *, formatted: bool = False) -> HttpResponse:
    return HttpResponse(status=200, body=cjson(value, formatted=formatted).encode(), headers=dict(_CORS))


def _html(text: str) -> HttpResponse:
    """A reply without an explicit type: esp_http_server's default is text/html."""
    return HttpResponse(status=200, body=text.encode(), headers=dict(_CORS), content_type="text/html")


def _options() -> HttpResponse:
    return HttpResponse(status=200, headers=dict(_CORS), content_type="text/html")


def _error(status: int, message: str) -> HttpResponse:
    """httpd_resp_send_err: the status (h11 adds the standard reason phrase) and a short text/html message."""
    return HttpResponse(status=status, body=message.encode(), content_type="text/html")


def _method_not_allowed() -> HttpResponse:
    return _error(405, "Request method for this URI is not handled by server")


def _static_file(path: str) -> HttpResponse:
    """The SPIFFS file handler: index.html (stored gzipped), else a 302 to the captive portal root."""
    if path in ("/", "/index.html"):
        headers = {"Content-Encoding": "gzip"}
        if path != "/":
            headers["Cache-Control"] = "max-age=2592000"
        return HttpResponse(status=200, body=gzip.compress(_INDEX_HTML.encode(), mtime=0), headers=headers,
                            content_type="text/html")
    return HttpResponse(status=302, body=b"Redirect to the captive portal", headers={"Location": "/"},
                        content_type="text/plain")


def _check_current(setting: Setting, value: Any) -> tuple[bool, Any]:
    """check_settings_and_update (v2.14.2): type and range, then the value as NVS stores it."""
    if setting.kind == "str":
        if not isinstance(value, str) or not setting.low <= len(value) <= setting.high:
            return False, None
        if setting.name in _ONE_OF and value not in _ONE_OF[setting.name]:
            return False, None
        return True, value
    if setting.kind == "bool":
        if not (_is_number(value) or isinstance(value, bool)):
            return False, None
        if not setting.low <= _value_int(value) <= setting.high:
            return False, None
        return True, _value_int(value) != 0 or value is True
    if not _is_number(value):
        return False, None
    if setting.kind == "float":
        if not setting.low <= value <= setting.high:
            return False, None
        return True, f32(float(value))
    number = _value_int(value)
    if not setting.low <= number <= setting.high:
        return False, None
    if setting.name in _ONE_OF and number not in _ONE_OF[setting.name]:
        return False, None
    return True, number & 0xFFFF if setting.kind == "u16" else number


def _fan_config_of(nvs: dict[str, Any], generation: Generation) -> FanConfig:
    """The fan settings as FanConfig; the legacy automatic curve has no target or minimum to report."""
    if nvs["autofanspeed"]:
        if generation == "legacy":
            return FanConfig.auto()
        return FanConfig.auto(target_temp=nvs["temptarget"], idle_speed=nvs["minFanSpeed"])
    return FanConfig.manual(int(nvs["manualFanSpeed"]))


def _diff_string(value: int) -> str:
    """ESP-Miner's _suffix_string (v2.4.5): 483000 -> '483k', 12345678 -> '12.3M'."""
    for power, suffix in ((18, "E"), (15, "P"), (12, "T"), (9, "G"), (6, "M"), (3, "k")):
        if value >= 10**power:
            return f"{value // 10 ** (power - 3) / 1000:.3g}{suffix}"
    return str(int(value))


def _app_version(image: bytes) -> str | None:
    """The version string of an ESP32 app image (esp_app_desc_t right after the first segment header)."""
    if len(image) < 80 or struct.unpack_from("<I", image, 32)[0] != _APP_DESC_MAGIC:
        return None
    version = image[48:80].split(b"\x00", 1)[0].decode("ascii", errors="replace").strip()
    return version or None


__all__ = ["ASICS", "CURRENT_VERSION", "LEGACY_VERSION", "AsicFacts", "BitaxeSim", "cjson", "expected_ghs",
           "generation_of"]
