"""The miner handle: identity without awaiting, telemetry getters, capability checks and controls."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from asicfleet.backends import Backend, DataField
from asicfleet.config import FanConfig, PoolGroup, ScalingConfig, TemperatureConfig, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerMessage,
    PoolGroupData,
    TuningCapabilities,
    TuningTarget,
)
from asicfleet.data._miner_data import DeviceIdentity
from asicfleet.hardware import lookup_model

REVALIDATE_TIMEOUT = 10.0  # seconds for re-identifying one miner, as a scan's identification default


class Miner(DeviceIdentity):
    """One identified miner. Identity is known at construction; everything else is read on demand."""

    def __init__(self, backend: Backend) -> None:
        self._backend = backend
        self._ip = IPv4Address(backend.ip)

    def __repr__(self) -> str:
        return f"<Miner {self._ip} {self.make} {self.model} ({self.firmware})>"

    @property
    def backend(self) -> Backend:
        return self._backend

    # ----- identity ---------------------------------------------------------------------------
    @property
    def ip(self) -> IPv4Address:
        return self._ip

    @property
    def device_info(self) -> DeviceInfo:
        return self._backend.device

    @property
    def firmware_version(self) -> str | None:
        """The firmware version identification read (None where it reads none); capabilities follow it."""
        return self._backend.firmware_version

    # ----- what the model should have (the hardware catalogue), without awaiting ---------------
    @property
    def expected_hashboards(self) -> int | None:
        known = lookup_model(self.make, self.model)
        return known.boards if known is not None else self.hardware.board_count

    @property
    def expected_chips(self) -> int | None:
        """Chips over all hashboards."""
        known = lookup_model(self.make, self.model)
        if known is None:
            return self.hardware.total_chips
        if known.boards is None or known.chips_per_board is None:
            return None
        return known.boards * known.chips_per_board

    @property
    def expected_fans(self) -> int | None:
        known = lookup_model(self.make, self.model)
        return known.fans if known is not None else self.hardware.fans

    async def revalidate(self, timeout: float = REVALIDATE_TIMEOUT) -> bool:
        """Identifies the miner at this address again: True when it is still the same make, model and
        firmware family, and then this handle takes what identification learned now (after a firmware
        upgrade, the capabilities follow the new version). False when it is offline or has changed."""
        from asicfleet.discovery._identify import identify  # discovery builds handles: imported late

        found = (await identify(str(self._ip), self._backend.session, timeout=timeout)).miner
        if found is None or type(found.backend) is not type(self._backend):
            return False
        same = (found.make, found.model, found.firmware) == (self.make, self.model, self.firmware)
        if same:
            self._backend.adopt(found.backend)
        return same

    # ----- telemetry --------------------------------------------------------------------------
    async def get_data(self, exclude: list[DataField] | None = None, *,
                       include: list[DataField] | None = None) -> MinerData:
        """Every field (or `include` only, minus `exclude`), each command sent once."""
        return await self._backend.get_data(include, exclude or ())

    async def _field(self, name: DataField) -> Any:
        data = await self._backend.get_data([name])
        return getattr(data, name.value)

    async def get_mac(self) -> str | None:
        return await self._field(DataField.MAC)  # type: ignore[no-any-return]

    async def get_serial_number(self) -> str | None:
        return await self._field(DataField.SERIAL_NUMBER)  # type: ignore[no-any-return]

    async def get_hostname(self) -> str | None:
        return await self._field(DataField.HOSTNAME)  # type: ignore[no-any-return]

    async def get_firmware_version(self) -> str | None:
        return await self._field(DataField.FIRMWARE_VERSION)  # type: ignore[no-any-return]

    async def get_api_version(self) -> str | None:
        return await self._field(DataField.API_VERSION)  # type: ignore[no-any-return]

    async def get_control_board_version(self) -> str | None:
        return await self._field(DataField.CONTROL_BOARD_VERSION)  # type: ignore[no-any-return]

    async def get_hashboards(self) -> list[BoardData]:
        return await self._field(DataField.HASHBOARDS)  # type: ignore[no-any-return]

    async def get_hashrate(self) -> HashRate | None:
        return await self._field(DataField.HASHRATE)  # type: ignore[no-any-return]

    async def get_expected_hashrate(self) -> HashRate | None:
        return await self._field(DataField.EXPECTED_HASHRATE)  # type: ignore[no-any-return]

    async def get_fans(self) -> list[FanData]:
        return await self._field(DataField.FANS)  # type: ignore[no-any-return]

    async def get_psu_fans(self) -> list[FanData]:
        return await self._field(DataField.PSU_FANS)  # type: ignore[no-any-return]

    async def get_wattage(self) -> float | None:
        return await self._field(DataField.WATTAGE)  # type: ignore[no-any-return]

    async def get_wattage_limit(self) -> float | None:
        return await self._field(DataField.WATTAGE_LIMIT)  # type: ignore[no-any-return]

    async def get_uptime(self) -> timedelta | None:
        return await self._field(DataField.UPTIME)  # type: ignore[no-any-return]

    async def get_messages(self) -> list[MinerMessage]:
        return await self._field(DataField.MESSAGES)  # type: ignore[no-any-return]

    async def get_pools(self) -> list[PoolGroupData]:
        return await self._field(DataField.POOLS)  # type: ignore[no-any-return]

    async def get_is_mining(self) -> bool | None:
        return await self._field(DataField.IS_MINING)  # type: ignore[no-any-return]

    async def get_light_flashing(self) -> bool | None:
        return await self._field(DataField.LIGHT_FLASHING)  # type: ignore[no-any-return]

    async def get_tuning_target(self) -> TuningTarget | None:
        return await self._field(DataField.TUNING_TARGET)  # type: ignore[no-any-return]

    async def get_scaled_tuning_target(self) -> TuningTarget | None:
        return await self._field(DataField.SCALED_TUNING_TARGET)  # type: ignore[no-any-return]

    async def get_tuning_percent(self) -> int | None:
        return await self._field(DataField.TUNING_PERCENT)  # type: ignore[no-any-return]

    async def get_tuning_capabilities(self) -> TuningCapabilities | None:
        return await self._field(DataField.TUNING_CAPABILITIES)  # type: ignore[no-any-return]

    async def get_fluid_temperature(self) -> float | None:
        """Hydro models: the coolant's inlet temperature (None on air-cooled models)."""
        return await self._field(DataField.FLUID_TEMPERATURE)  # type: ignore[no-any-return]

    async def get_outlet_fluid_temperature(self) -> float | None:
        """Hydro models: the coolant's outlet temperature (None on air-cooled models)."""
        return await self._field(DataField.OUTLET_FLUID_TEMPERATURE)  # type: ignore[no-any-return]

    # ----- capabilities: true only when this miner, at its identified firmware version, can -----
    def _supports(self, *controls: str) -> bool:
        return all(self._backend.can(c) for c in controls)

    def _require(self, control: str) -> None:
        """Refuses, before anything is sent, a control the property says this miner cannot do."""
        if not self._backend.can(control):
            raise self._backend.refuse(control)

    @property
    def supports_restart(self) -> bool:
        return self._supports("restart")

    @property
    def supports_pause(self) -> bool:
        return self._supports("pause")

    @property
    def supports_resume(self) -> bool:
        return self._supports("resume")

    @property
    def supports_set_fault_light(self) -> bool:
        return self._supports("set_fault_light")

    @property
    def supports_set_power_limit(self) -> bool:
        return self._supports("set_power_limit")

    @property
    def supports_change_password(self) -> bool:
        return self._supports("change_password")

    @property
    def supports_read_logs(self) -> bool:
        return self._supports("read_logs")

    @property
    def supports_factory_reset(self) -> bool:
        return self._supports("factory_reset")

    @property
    def supports_upgrade_firmware(self) -> bool:
        return self._supports("upgrade_firmware")

    @property
    def supports_set_tuning_percent(self) -> bool:
        return self._supports("set_tuning_percent")

    @property
    def supports_temperature_config(self) -> bool:
        return self._supports("get_temperature_config")

    @property
    def supports_pools_config(self) -> bool:
        return self._supports("get_pools_config", "set_pools_config")

    @property
    def supports_fan_config(self) -> bool:
        return self._supports("get_fan_config", "set_fan_config")

    @property
    def supports_tuning_config(self) -> bool:
        return self._supports("get_tuning_config", "set_tuning_config")

    @property
    def supports_scaling_config(self) -> bool:
        return self._supports("get_scaling_config", "set_scaling_config")

    # ----- controls: each refuses up front what its supports_* property denies ------------------
    async def restart(self) -> bool:
        self._require("restart")
        return await self._backend.restart()

    async def pause(self) -> bool:
        self._require("pause")
        return await self._backend.pause()

    async def resume(self) -> bool:
        self._require("resume")
        return await self._backend.resume()

    async def set_fault_light(self, fault: bool) -> bool:
        self._require("set_fault_light")
        return await self._backend.set_fault_light(fault)

    async def set_power_limit(self, watts: float) -> bool:
        if not watts > 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        self._require("set_power_limit")
        return await self._backend.set_power_limit(float(watts))

    async def set_tuning_percent(self, percent: int) -> bool:
        """A manual throttle: `percent` of full power (100 = unthrottled)."""
        if isinstance(percent, bool) or not isinstance(percent, int) or not 0 <= percent <= 100:
            raise ValueError(f"a tuning percent is a whole number 0..100, got {percent!r}")
        self._require("set_tuning_percent")
        return await self._backend.set_tuning_percent(percent)

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("a new password must not be empty")
        self._require("change_password")
        return await self._backend.change_password(password)

    async def read_logs(self) -> str:
        self._require("read_logs")
        return await self._backend.read_logs()

    async def factory_reset(self) -> bool:
        self._require("factory_reset")
        return await self._backend.factory_reset()

    async def upgrade_firmware(self, path: str | Path) -> bool:
        """Sends a firmware image file to the miner (which then reboots into it)."""
        self._require("upgrade_firmware")
        image = Path(path)
        content = await asyncio.to_thread(image.read_bytes)  # images are tens of MB: keep the loop free
        return await self._backend.upgrade_firmware(content, image.name)

    async def get_pools_config(self) -> list[PoolGroup]:
        self._require("get_pools_config")
        return await self._backend.get_pools_config()

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        validated = [PoolGroup.model_validate(g) for g in groups]
        self._require("set_pools_config")
        return await self._backend.set_pools_config(validated)

    async def get_fan_config(self) -> FanConfig:
        self._require("get_fan_config")
        return await self._backend.get_fan_config()

    async def set_fan_config(self, config: FanConfig) -> bool:
        validated = FanConfig.model_validate(config)
        self._require("set_fan_config")
        return await self._backend.set_fan_config(validated)

    async def get_tuning_config(self) -> TuningConfig:
        self._require("get_tuning_config")
        return await self._backend.get_tuning_config()

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        validated = TuningConfig.model_validate(config)
        self._require("set_tuning_config")
        return await self._backend.set_tuning_config(validated)

    async def get_scaling_config(self) -> ScalingConfig:
        self._require("get_scaling_config")
        return await self._backend.get_scaling_config()

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        validated = ScalingConfig.model_validate(config)
        self._require("set_scaling_config")
        return await self._backend.set_scaling_config(validated)

    async def get_temperature_config(self) -> TemperatureConfig:
        self._require("get_temperature_config")
        return await self._backend.get_temperature_config()
