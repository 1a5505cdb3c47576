"""The miner handle: identity without awaiting, telemetry getters, capability checks and controls."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

from asicfleet.backends import Backend, DataField
from asicfleet.config import FanConfig, PoolGroup, ScalingConfig, TuningConfig
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashRate,
    MinerData,
    MinerMessage,
    PoolGroupData,
    TuningTarget,
)
from asicfleet.data._miner_data import DeviceIdentity


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

    # ----- capabilities -----------------------------------------------------------------------
    def _supports(self, control: str) -> bool:
        return type(self._backend).supports(control)

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
    def supports_pools_config(self) -> bool:
        return self._supports("get_pools_config") and self._supports("set_pools_config")

    @property
    def supports_fan_config(self) -> bool:
        return self._supports("get_fan_config") and self._supports("set_fan_config")

    @property
    def supports_tuning_config(self) -> bool:
        return self._supports("get_tuning_config") and self._supports("set_tuning_config")

    @property
    def supports_scaling_config(self) -> bool:
        return self._supports("get_scaling_config") and self._supports("set_scaling_config")

    # ----- controls ---------------------------------------------------------------------------
    async def restart(self) -> bool:
        return await self._backend.restart()

    async def pause(self) -> bool:
        return await self._backend.pause()

    async def resume(self) -> bool:
        return await self._backend.resume()

    async def set_fault_light(self, fault: bool) -> bool:
        return await self._backend.set_fault_light(fault)

    async def set_power_limit(self, watts: float) -> bool:
        if not watts > 0:
            raise ValueError(f"a power limit must be > 0 W, got {watts}")
        return await self._backend.set_power_limit(float(watts))

    async def change_password(self, password: str) -> bool:
        if not password:
            raise ValueError("a new password must not be empty")
        return await self._backend.change_password(password)

    async def read_logs(self) -> str:
        return await self._backend.read_logs()

    async def factory_reset(self) -> bool:
        return await self._backend.factory_reset()

    async def upgrade_firmware(self, path: str | Path) -> bool:
        """Sends a firmware image file to the miner (which then reboots into it)."""
        if not self.supports_upgrade_firmware:
            raise self._backend._unsupported("upgrade_firmware")
        image = Path(path)
        content = await asyncio.to_thread(image.read_bytes)  # images are tens of MB: keep the loop free
        return await self._backend.upgrade_firmware(content, image.name)

    async def get_pools_config(self) -> list[PoolGroup]:
        return await self._backend.get_pools_config()

    async def set_pools_config(self, groups: list[PoolGroup]) -> bool:
        return await self._backend.set_pools_config([PoolGroup.model_validate(g) for g in groups])

    async def get_fan_config(self) -> FanConfig:
        return await self._backend.get_fan_config()

    async def set_fan_config(self, config: FanConfig) -> bool:
        return await self._backend.set_fan_config(FanConfig.model_validate(config))

    async def get_tuning_config(self) -> TuningConfig:
        return await self._backend.get_tuning_config()

    async def set_tuning_config(self, config: TuningConfig) -> bool:
        return await self._backend.set_tuning_config(TuningConfig.model_validate(config))

    async def get_scaling_config(self) -> ScalingConfig:
        return await self._backend.get_scaling_config()

    async def set_scaling_config(self, config: ScalingConfig) -> bool:
        return await self._backend.set_scaling_config(ScalingConfig.model_validate(config))
