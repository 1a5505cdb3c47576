"""Simulated AxeOS relatives: NerdAxe / NerdQAxe boards on the NerdQAxe+ firmware, and LuckyMiners.

Both serve HTTP on port 80 only (no RPC, no TLS), as a Bitaxe does, and reuse the Bitaxe simulator's
state (settings in `nvs`, the power manager's frequency -> hash rate and power):

- NerdAxe make (NerdQAxe+ firmware, versions v1.x): the page is titled "Nerd*axe Dashboard";
  `GET /api/system/info` in that firmware's shape (ArduinoJson, compact; `deviceModel`, `asicCount`,
  `fanrpm2`, `shutdown`, `pidTargetTemp`...), `GET /api/system/asic`, `PATCH /api/system` (each known
  setting applied when its JSON type fits: whole numbers for `frequency`, `coreVoltage`,
  `autofanspeed`...), `POST /api/system/restart`, `POST /api/system/OTA` and `OTAWWW`. Any other GET
  is the file handler's 302 to `/`; any other method a 405.
- LuckyMiner make (LV06/LV07/LV08, an AxeOS build of its own, v2.x): the page says "Lucky miner";
  otherwise the Bitaxe simulator's older generation, with `minerModel` added to `system/info`.
"""

from __future__ import annotations

import dataclasses
import gzip
import random
from collections.abc import Callable
from typing import Any, ClassVar

import orjson

from asicfleet.config import FanConfig
from asicfleet.hardware import Make
from asicfleet.hardware import SimulableModel as MinerModel
from asicfleet.sim._core import HttpRequest, HttpResponse, SimMiner
from asicfleet.sim.bitaxe import ASICS, AsicFacts, BitaxeSim, f32

NERD_VERSION = "v1.0.36"
LUCKY_VERSION = "v2.4.5"
PID_MODE = 2  # `autofanspeed`: the PID towards pidTargetTemp (0: manual)
# what the NerdQAxe+ firmware reports as deviceModel, per catalogued name (the catalogue keys some by chip)
DEVICE_MODELS: dict[str, str] = {
    "BM1366": "NerdAxeUltra", "BM1368": "NerdAxe", "BM1370": "NerdQAxe++", "NerdQAxe+": "NerdQAxe+",
    "NerdAxe Gamma": "NerdAxeGamma", "NerdOctaxe Gamma": "NerdOCTAXE-\u03b3",
}
LUCKY_MODELS: dict[str, str] = {"LuckyMiner LV06": "LV06", "LuckyMiner LV07": "LV07", "LuckyMiner LV08": "LV08"}
_NERD_BOARD_VERSIONS = {"BM1366": "204", "BM1368": "401", "BM1370": "601"}

_NERD_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Nerd*axe Dashboard</title>
  <base href="/">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/x-icon" href="favicon.ico">
<link rel="stylesheet" href="styles.7d2c41e9b0a35f86.css"></head>
<body>
  <app-root></app-root>
<script src="runtime.3b8e0c1f6a2d9457.js" type="module"></script>\
<script src="main.9f1a6c3e5b7d2048.js" type="module"></script></body>
</html>
"""
_LUCKY_PAGE = """<!doctype html>
<html lang="en">
<head>
  <meta charset="utf-8">
  <title>Lucky miner</title>
  <base href="/">
  <meta name="viewport" content="width=device-width, initial-scale=1">
  <link rel="icon" type="image/x-icon" href="favicon.ico">
</head>
<body>
  <app-root></app-root>
<script src="main.5c2e8a1d3f7b9064.js" type="module"></script></body>
</html>
"""
_CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Methods": "GET, POST, PUT, PATCH, DELETE, OPTIONS",
         "Access-Control-Allow-Headers": "Content-Type"}
# PATCH /api/system: the settings the NerdQAxe+ firmware reads, with the JSON type each must have
_NERD_STRINGS = ("ssid", "wifiPass", "hostname", "stratumURL", "stratumUser", "stratumPassword",
                 "fallbackStratumURL", "fallbackStratumUser", "fallbackStratumPassword")
_NERD_U16 = ("coreVoltage", "frequency", "overheat_temp", "autofanspeed", "manualFanSpeed", "pidTargetTemp",
             "stratumPort", "fallbackStratumPort")
_NERD_BOOLS = ("flipscreen", "invertscreen", "invertfanpolarity", "autoscreenoff")


def _is_u16(value: Any) -> bool:
    """ArduinoJson's is<uint16_t>: an integer (not a float, not a bool) within 0..65535."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 65535


class NerdAxeSim(BitaxeSim):
    """A NerdAxe / NerdQAxe (NerdQAxe+ firmware) or a LuckyMiner (its AxeOS build)."""

    family: ClassVar[str] = "nerdaxe"
    make: ClassVar[str] = Make.NERDAXE.value
    other_makes: ClassVar[tuple[str, ...]] = (Make.LUCKYMINER.value,)
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "Nerdaxe Stock"
    models: ClassVar[tuple[str, ...]] = ("BM1370", "NerdQAxe+", "BM1368", "LuckyMiner LV08", "LuckyMiner LV07")

    @classmethod
    def serves(cls, model: MinerModel) -> bool:
        return (model.name in DEVICE_MODELS or model.name in LUCKY_MODELS) and model.chip in ASICS

    @classmethod
    def build(cls, ip: str, model: MinerModel, rng: random.Random) -> SimMiner:
        # the Bitaxe simulator knows boards by chip: build as that chip, then become the real model
        miner = super().build(ip, model.model_copy(update={"name": model.chip}), rng)
        assert isinstance(miner, NerdAxeSim)
        state = miner.state
        state.model = model
        lucky = model.make == Make.LUCKYMINER.value
        state.firmware_version = LUCKY_VERSION if lucky else NERD_VERSION
        state.hostname = state.extra["nvs"]["hostname"] = f"{'luckyminer' if lucky else 'nerdqaxe'}-{ip.split('.')[-1]}"
        if not lucky:
            state.extra["nvs"].update(autofanspeed=PID_MODE, pidTargetTemp=55, overheat_temp=70)
            state.extra["shutdown"] = False
        state.extra["base_watts"] = state.wattage
        miner._apply_frequency(float(state.extra["nvs"]["frequency"]))
        state.wattage = state.extra["base_watts"]
        state.fan = miner.fan_config()
        return miner

    @classmethod
    def default_firmware_version(cls, rng: random.Random) -> str:
        return NERD_VERSION

    # ----- what differs from a Bitaxe ------------------------------------------------------------
    @property
    def lucky(self) -> bool:
        return self.state.model.make == Make.LUCKYMINER.value

    @property
    def asic(self) -> AsicFacts:
        chip = self.state.model.chip or "BM1370"
        count = self.state.model.boards * self.state.model.chips_per_board
        name = LUCKY_MODELS.get(self.state.model.name) or DEVICE_MODELS.get(self.state.model.name, chip)
        return dataclasses.replace(ASICS[chip], family=name, asic_count=count,
                                   board_version=_NERD_BOARD_VERSIONS.get(chip, ASICS[chip].board_version))

    @property
    def device_model(self) -> str:
        return self.asic.family

    @property
    def model_name(self) -> str:
        return self.device_model  # what the firmware reports: deviceModel / minerModel

    def inventory(self) -> dict[str, Any]:
        found = super().inventory()
        found["make"] = self.state.model.make.value  # the family runs on two makes
        return found

    def fan_config(self) -> FanConfig:
        nvs = self.nvs
        if self.lucky:
            return FanConfig.auto() if nvs["autofanspeed"] else FanConfig.manual(int(nvs["manualFanSpeed"]))
        if nvs["autofanspeed"] == PID_MODE:
            return FanConfig.auto(target_temp=nvs["pidTargetTemp"])
        return FanConfig.manual(int(nvs["manualFanSpeed"]))

    def _after_settings(self) -> None:
        super()._after_settings()
        self.state.fan = self.fan_config()

    def legacy_info(self) -> dict[str, Any]:
        info = super().legacy_info()
        if self.lucky:
            info["minerModel"] = self.device_model
            info["deviceModel"] = self.device_model
        return info

    def nerd_info(self) -> dict[str, Any]:
        """The NerdQAxe+ firmware's GET_system_info, in its order (a subset of its many fields)."""
        s, nvs, extra, asic = self.state, self.nvs, self.state.extra, self.asic
        percent, rpm = self._refresh()
        watts, millivolts, milliamps = self._power_figures()
        shutdown = bool(extra.get("shutdown")) or not s.mining
        ghs = 0.0 if shutdown else round(self._hashrate_ghs(), 6)
        chip_temp = self._chip_temp()
        return {
            "asicCount": asic.asic_count, "smallCoreCount": asic.small_cores, "deviceModel": asic.family,
            "hostip": s.ip, "macAddr": s.mac.upper(), "wifiRSSI": extra["rssi"],
            "power": f32(watts), "maxPower": asic.max_power, "minPower": 5, "maxVoltage": 13, "minVoltage": 11,
            "current": f32(milliamps), "currentA": f32(milliamps / 1000), "temp": f32(chip_temp),
            "vrTemp": f32(chip_temp + extra["vr_offset"]), "vrTempInt": int(chip_temp + extra["vr_offset"]),
            "hashRateTimestamp": s.uptime * 1000, "hashRate": ghs, "hashRate_1m": ghs, "hashRate_10m": ghs,
            "hashRate_1h": ghs, "hashRate_1d": ghs, "coreVoltage": nvs["coreVoltage"],
            "defaultCoreVoltage": asic.default_mv, "coreVoltageActual": nvs["coreVoltage"] - 3,
            "fanspeed": f32(percent), "manualFanSpeed": nvs["manualFanSpeed"], "fanrpm": rpm,
            "fanrpm2": rpm if s.model.fans > 1 else 0, "fanCount": s.model.fans, "lastpingrtt": f32(21.4),
            "recentpingloss": 0, "shutdown": shutdown, "duplicateHWNonces": 0,
            "stratum": {"poolMode": 0, "activePoolMode": 0, "pools": [
                {"connected": True, "poolDiffErr": False, "poolDifficulty": extra["pool_difficulty"],
                 "accepted": s.accepted, "rejected": s.rejected, "bestDiff": extra["best_diff"]}]},
            "poolDifficulty": extra["pool_difficulty"], "foundBlocks": 0, "totalFoundBlocks": 0,
            "sharesAccepted": s.accepted, "sharesRejected": s.rejected, "bestDiff": extra["best_diff"],
            "bestSessionDiff": extra["best_session_diff"],
            "asicTemps": [f32(chip_temp)] * asic.asic_count,
            "pidTargetTemp": nvs["pidTargetTemp"], "pidP": f32(6.0), "pidI": f32(0.1), "pidD": f32(10.0),
            "hostname": nvs["hostname"], "ssid": nvs["ssid"], "stratumURL": nvs["stratumURL"],
            "stratumPort": nvs["stratumPort"], "stratumUser": nvs["stratumUser"], "stratumEnonceSubscribe": False,
            "stratumTLS": False, "fallbackStratumURL": nvs["fallbackStratumURL"],
            "fallbackStratumPort": nvs["fallbackStratumPort"], "fallbackStratumUser": nvs["fallbackStratumUser"],
            "fallbackStratumEnonceSubscribe": False, "fallbackStratumTLS": False, "voltage": f32(millivolts),
            "frequency": int(nvs["frequency"]), "defaultFrequency": asic.default_mhz, "jobInterval": 1200,
            "stratumDifficulty": 1000, "overheat_temp": nvs["overheat_temp"], "flipscreen": nvs["flipscreen"],
            "invertscreen": 1 if nvs["invertscreen"] else 0, "autoscreenoff": 0,
            "invertfanpolarity": nvs["invertfanpolarity"], "autofanspeed": nvs["autofanspeed"], "stratum_keep": 0,
            "otp": False, "ASICModel": s.model.chip, "uptimeSeconds": s.uptime,
            "lastResetReason": extra["reset_reason"], "wifiStatus": "Connected!", "freeHeap": extra["free_heap"],
            "freeHeapInt": 61_240, "version": s.firmware_version, "runningPartition": extra["running_partition"],
            "defaultTheme": "cosmic",
        }

    # ----- HTTP ---------------------------------------------------------------------------------
    async def handle_http(self, request: HttpRequest) -> HttpResponse:
        if request.method == "GET" and request.path in ("/", "/index.html"):
            page = _LUCKY_PAGE if self.lucky else _NERD_PAGE
            return HttpResponse(status=200, body=gzip.compress(page.encode(), mtime=0),
                                headers={"Content-Encoding": "gzip", "Connection": "close"}, content_type="text/html")
        if self.lucky:
            return await super().handle_http(request)
        return self._nerd_route(request)

    def _nerd_route(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith("/api/") and self.auth_refused():
            return _text(401, "Unauthorized")  # is_network_allowed() said no
        routes: dict[tuple[str, str], Callable[[], HttpResponse]] = {
            ("GET", "/api/system/info"): lambda: _json(self.nerd_info()),
            ("GET", "/api/system/asic"): lambda: _json(self.asic_info()),
            ("PATCH", "/api/system"): lambda: self._nerd_patch(request.body),
            ("OPTIONS", "/api/system"): lambda: HttpResponse(status=200, headers=dict(_CORS), content_type="text/html"),
            ("POST", "/api/system/restart"): lambda: self._restart(_text(200, "System will restart shortly.")),
            ("POST", "/api/system/OTA"): lambda: self._ota(request.body, legacy=True),
            ("POST", "/api/system/OTAWWW"): lambda: self._ota_www(request.body, legacy=True),
        }
        handler = routes.get((request.method, request.path))
        if handler is not None:
            return handler()
        if request.method == "GET":
            return HttpResponse(status=302, body=b"Redirect to the captive portal", headers={"Location": "/"},
                                content_type="text/plain")
        return _text(405, "Request method for this URI is not handled by server")

    def _nerd_patch(self, body: bytes) -> HttpResponse:
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            return _text(400, "Invalid JSON")
        if not isinstance(parsed, dict):
            return _text(400, "Invalid JSON")
        nvs = self.nvs
        for key in _NERD_STRINGS:
            if isinstance(parsed.get(key), str):
                nvs[key] = parsed[key]
        for key in _NERD_U16:
            value = parsed.get(key)
            if isinstance(value, int) and _is_u16(value) and (value > 0 or key not in ("coreVoltage", "frequency")):
                nvs[key] = value
        for key in _NERD_BOOLS:
            if isinstance(parsed.get(key), bool):
                nvs[key] = 1 if parsed[key] else 0
        if nvs["autofanspeed"] == 1:  # the old automatic curve is no longer offered: manual 100 %
            nvs.update(autofanspeed=0, manualFanSpeed=100)
        self._after_settings()
        return HttpResponse(status=200, headers=dict(_CORS), content_type="text/html")



def _json(value: Any) -> HttpResponse:
    return HttpResponse(status=200, body=orjson.dumps(value), headers={**_CORS, "Connection": "close"})


def _text(status: int, message: str) -> HttpResponse:
    return HttpResponse(status=status, body=message.encode(), content_type="text/html")


__all__ = ["DEVICE_MODELS", "LUCKY_MODELS", "LUCKY_VERSION", "NERD_VERSION", "NerdAxeSim"]
