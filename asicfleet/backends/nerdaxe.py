"""NerdAxe / NerdQAxe boards (the NerdQAxe+ ESP-Miner fork) and LuckyMiner LV06/LV07/LV08: AxeOS relatives.

Both keep AxeOS's REST API on port 80 (`GET /api/system/info`, `PATCH /api/system`, `POST
/api/system/restart`, `POST /api/system/OTA`), so this backend is the Bitaxe backend with what differs:

- Identification. The web page names the relative: the NerdQAxe+ firmware's title is "Nerd*axe
  Dashboard" (pyasic-rs looks for "Nerd"), a LuckyMiner's page says "Lucky miner" (pyasic's signal).
  `system/info` then tells the make and the model: the NerdQAxe+ firmware reports the board as
  `deviceModel` ("NerdQAxe++", "NerdAxe", ...) beside the chip in `ASICModel`; a LuckyMiner reports
  `minerModel` ("LV08"). An answer with neither is a plain AxeOS board and left to the Bitaxe backend.
- The NerdQAxe+ firmware's own `system/info`: `asicCount` chips, `fanrpm`/`fanrpm2`, `shutdown` (no
  pause: the power manager shuts the ASICs down on overheating), `autofanspeed` is the temperature
  control mode (0 manual at `manualFanSpeed`, 2 PID towards `pidTargetTemp`; 1, the old automatic
  curve, is migrated to manual 100 % at boot), and `PATCH` takes whole-MHz frequencies only (it checks
  `is<uint16_t>`). It has no pause, resume, identify or log endpoint.
- A LuckyMiner runs an AxeOS build of its own and behaves as the Bitaxe of the same API generation.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

from asicfleet._errors import MinerResponseError, UnsupportedControlError
from asicfleet._session import Session
from asicfleet.backends._base import DataField, Probe, Source, at, to_float
from asicfleet.backends.bitaxe import (
    INFO,
    Bitaxe,
    frequency_for,
    has_current_api,
    json_object,
    page_text,
    parse_text,
    pool_settings,
)
from asicfleet.config import FanConfig, PoolGroup, TuningConfig
from asicfleet.data import DeviceInfo, FanData
from asicfleet.hardware import Make

NERD_MARKER = "Nerd"  # "Nerd*axe Dashboard"; pyasic-rs matches the same word
LUCKY_MARKER = "lucky miner"  # matched ignoring case
MANUAL, PID = 0, 2  # the NerdQAxe+ temperature control modes in `autofanspeed`
_NERD_LACKS = ("pause", "resume", "set_fault_light", "read_logs")


def which_make(info: Mapping[str, Any], page: str = "") -> str | None:
    """NerdAxe, LuckyMiner or None (a plain AxeOS board) from `system/info` and the page text."""
    device_model = str(info.get("deviceModel") or "")
    if parse_text(info.get("minerModel")) or LUCKY_MARKER in page.casefold():
        return Make.LUCKYMINER.value
    if device_model.casefold().startswith("nerd") or (NERD_MARKER in page and device_model):
        return Make.NERDAXE.value
    return None


def model_of(info: Mapping[str, Any], make: str) -> str | None:
    """The board's model as the firmware names it (the catalogue knows these names as aliases)."""
    if make == Make.LUCKYMINER.value:
        return parse_text(info.get("minerModel")) or parse_text(info.get("ASICModel"))
    return parse_text(info.get("deviceModel")) or parse_text(info.get("ASICModel"))


def parse_fans(info: Mapping[str, Any]) -> list[FanData]:
    """`fanrpm`, and `fanrpm2` (NerdQAxe+) or `fan2rpm` (AxeOS) when a second fan is fitted."""
    fans = []
    if (rpm := to_float(info.get("fanrpm"))) is not None:
        fans.append(FanData(position=0, rpm=rpm))
    count = to_float(info.get("fanCount"))
    second = to_float(info.get("fanrpm2", info.get("fan2rpm")))
    if second is not None and (second > 0 or (count is not None and count > 1)):
        fans.append(FanData(position=1, rpm=second))
    return fans


def parse_is_mining(info: Mapping[str, Any]) -> bool | None:
    """NerdQAxe+: mining unless the power manager shut the ASICs down; AxeOS: as the Bitaxe reads it."""
    if "shutdown" in info:
        return not info["shutdown"]
    if "overheat_mode" not in info and "miningPaused" not in info:
        return None
    return not info.get("miningPaused") and not to_float(info.get("overheat_mode"))


def nerd_fan_config(info: Mapping[str, Any]) -> FanConfig:
    """The NerdQAxe+ temperature control: PID towards a target, or a fixed speed."""
    mode = to_float(info.get("autofanspeed"))
    if mode == PID:
        target = to_float(info.get("pidTargetTemp"))
        return FanConfig.auto(target_temp=target if target is not None and target >= 0 else None)
    speed = to_float(info.get("manualFanSpeed"))
    return FanConfig.manual(round(speed) if speed is not None else 100)


def nerd_fan_settings(config: FanConfig) -> dict[str, Any]:
    if config.mode == "manual":
        return {"autofanspeed": MANUAL, "manualFanSpeed": config.fan_speed}
    if config.idle_speed is not None:
        raise UnsupportedControlError("the NerdQAxe+ PID fan control has no minimum speed setting")
    settings: dict[str, Any] = {"autofanspeed": PID}
    if config.target_temp is not None:
        settings["pidTargetTemp"] = round(config.target_temp)
    return settings


class NerdAxe(Bitaxe):
    family: ClassVar[str] = "nerdaxe"
    firmware: ClassVar[str] = "Stock"  # pyasic-rs: "Nerdaxe Stock"; pyasic (LuckyMiner): "Stock"
    PRIORITY: ClassVar[int] = 55  # before Bitaxe: a Nerd or Lucky page may also name AxeOS
    DATA: ClassVar[Mapping[DataField, Source | Sequence[Source]]] = {
        **Bitaxe.DATA,
        DataField.FANS: at(INFO, parse=parse_fans),
        DataField.IS_MINING: at(INFO, parse=parse_is_mining),
    }

    @property
    def is_nerd(self) -> bool:
        return self.device.make == Make.NERDAXE.value

    # ----- identification ---------------------------------------------------------------------
    @classmethod
    def matches(cls, probe: Probe) -> bool:
        if probe.web is None:
            return False
        page = page_text(probe.web)
        return NERD_MARKER in page or LUCKY_MARKER in page.casefold()

    @classmethod
    async def identify(cls, probe: Probe, session: Session) -> DeviceInfo | None:
        reply = await session.http.request("GET", probe.ip, "/api/system/info")
        page = page_text(probe.web) if probe.web is not None else ""
        if reply.status == 401:  # refuses this client: the page still names the make
            refused_make = Make.LUCKYMINER.value if LUCKY_MARKER in page.casefold() else Make.NERDAXE.value
            return cls.device_info(refused_make, "unknown", cls.firmware)
        info = json_object(reply, "GET /api/system/info")
        make = which_make(info, page)
        model = model_of(info, make) if make else None
        if make is None or model is None:
            return None  # a plain AxeOS board: the Bitaxe backend's
        if version := parse_text(info.get("version")):
            probe.learned["firmware_version"] = version
        probe.learned["current_api"] = make == Make.LUCKYMINER.value and has_current_api(info)
        return cls.device_info(make, model, cls.firmware)

    def unavailable(self) -> dict[str, str]:
        if self.is_nerd:
            return {c: "the NerdQAxe+ firmware has no such endpoint" for c in _NERD_LACKS}
        return super().unavailable()

    # ----- controls that differ on the NerdQAxe+ firmware ---------------------------------------
    async def get_fan_config(self) -> FanConfig:
        if not self.is_nerd:
            return await super().get_fan_config()
        return nerd_fan_config(await self._info())

    async def set_fan_config(self, config: FanConfig) -> bool:
        if not self.is_nerd:
            return await super().set_fan_config(config)
        return await self._patch(nerd_fan_settings(config))

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        """NerdQAxe+: host, port, user and password per pool, as the older AxeOS takes them."""
        if not self.is_nerd:
            return await super().set_pools_config(groups)
        return await self._patch(pool_settings(groups, current=False))

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        if not self.is_nerd:
            return await super().set_tuning_config(config)
        if config.target_hashrate is None:
            raise UnsupportedControlError("the NerdQAxe+ firmware tunes by ASIC frequency: give a hash rate target")
        info = await self._info()
        if to_float(info.get("asicCount")) in (None, 0):
            raise MinerResponseError(f"{self.ip}: system/info has no asicCount")
        return await self._patch({"frequency": int(frequency_for(info, config.target_hashrate, current=False))})


__all__ = ["NerdAxe", "model_of", "nerd_fan_config", "which_make"]
