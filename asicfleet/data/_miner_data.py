"""The telemetry snapshot of one miner (`MinerData`) and its parts."""

from __future__ import annotations

import time
from datetime import timedelta
from enum import StrEnum
from ipaddress import IPv4Address
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from asicfleet.data._hashrate import HashAlgorithm, HashRate


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class _WithDerived(_Model):
    """A model with computed fields. They appear in dumps; reading a dump back must accept (and
    recompute) them. Only these models pay for the check: a read builds hundreds of chip models."""

    @model_validator(mode="before")
    @classmethod
    def _drop_computed(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v for k, v in value.items() if k not in cls.__pydantic_computed_fields__}
        return value


class MinerHardware(_WithDerived):
    """The physical shape of a model: how many boards, chips per board and fans it has."""

    board_count: int | None = None
    chips_per_board: int | None = None
    fans: int | None = None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_chips(self) -> int | None:
        if self.board_count is None or self.chips_per_board is None:
            return None
        return self.board_count * self.chips_per_board


class DeviceInfo(_Model):
    make: str
    model: str
    firmware: str
    algo: HashAlgorithm = HashAlgorithm.SHA256
    hardware: MinerHardware = Field(default_factory=MinerHardware)


class ChipData(_Model):
    position: int
    hashrate: HashRate | None = None
    temperature: float | None = Field(default=None, description="degrees Celsius")
    voltage: float | None = Field(default=None, description="volts")
    frequency: float | None = Field(default=None, description="MHz")
    working: bool | None = None


class BoardData(_Model):
    position: int = Field(description="0-based slot of the hashboard")
    hashrate: HashRate | None = None
    expected_hashrate: HashRate | None = None
    board_temperature: float | None = Field(default=None, description="degrees Celsius")
    intake_temperature: float | None = Field(default=None, description="chip inlet side, degrees Celsius")
    outlet_temperature: float | None = Field(default=None, description="chip outlet side, degrees Celsius")
    expected_chips: int | None = None
    working_chips: int | None = None
    serial_number: str | None = None
    chips: list[ChipData] = Field(default_factory=list)
    voltage: float | None = Field(default=None, description="volts")
    frequency: float | None = Field(default=None, description="MHz")
    tuned: bool | None = None
    active: bool | None = None


class FanData(_Model):
    position: int
    rpm: float | None = Field(default=None, description="revolutions per minute")


class PoolData(_Model):
    position: int | None = None
    url: str | None = None
    user: str | None = None
    accepted_shares: int | None = None
    rejected_shares: int | None = None
    active: bool | None = None
    alive: bool | None = None


class PoolGroupData(_Model):
    name: str = "default"
    quota: int = 1
    pools: list[PoolData] = Field(default_factory=list)


class MessageSeverity(StrEnum):
    ERROR = "error"
    WARNING = "warning"
    INFO = "info"
    # pyasic-rs's spellings, as aliases of the same members (values and dumps stay lower case)
    Error = "error"
    Warning = "warning"
    Info = "info"


class MinerMessage(_Model):
    """A fault or notice the miner itself reports."""

    code: int = 0
    message: str
    severity: MessageSeverity = MessageSeverity.ERROR
    timestamp: int | None = Field(default=None, description="unix seconds, when the miner gives it")


class TuningTarget(_Model):
    """What the miner is tuned for: a power (watts), a hash rate, or a named mode/preset."""

    target_watts: float | None = None
    target_hashrate: HashRate | None = None
    target_mode: str | None = None


class TuningRange(_Model):
    """The targets a firmware accepts along one axis (power or hash rate): its default and its bounds."""

    default: TuningTarget | None = None
    minimum: TuningTarget | None = None
    maximum: TuningTarget | None = None


class TuningCapabilities(_Model):
    """What the tuner of the miner at hand accepts, as the firmware reports it."""

    power: TuningRange | None = None
    hashrate: TuningRange | None = None
    presets: list[TuningTarget] | None = None


class DeviceIdentity:
    """`make`, `model`, `firmware`, `algo`, `hardware` of anything that has a `device_info`."""

    if TYPE_CHECKING:
        @property
        def device_info(self) -> DeviceInfo: ...

    @property
    def make(self) -> str:
        return self.device_info.make

    @property
    def model(self) -> str:
        return self.device_info.model

    @property
    def firmware(self) -> str:
        return self.device_info.firmware

    @property
    def algo(self) -> HashAlgorithm:
        return self.device_info.algo

    @property
    def hardware(self) -> MinerHardware:
        return self.device_info.hardware


class MinerData(DeviceIdentity, _WithDerived):
    """Everything one `get_data()` call read from a miner.

    A field is None when the firmware does not report it or the read failed; `errors` says which
    reads failed and why, so a missing value is never silently mistaken for a real one.
    """

    schema_version: str = "1"
    timestamp: int = Field(default_factory=lambda: int(time.time()), description="unix seconds of the read")
    ip: IPv4Address
    mac: str | None = None
    serial_number: str | None = None
    hostname: str | None = None
    device_info: DeviceInfo
    firmware_version: str | None = None
    api_version: str | None = None
    control_board_version: str | None = None
    hashrate: HashRate | None = None
    expected_hashrate: HashRate | None = None
    hashboards: list[BoardData] = Field(default_factory=list)
    fans: list[FanData] = Field(default_factory=list)
    psu_fans: list[FanData] = Field(default_factory=list)
    wattage: float | None = Field(default=None, description="watts drawn")
    wattage_limit: float | None = Field(default=None, description="configured power limit, watts")
    uptime: timedelta | None = None
    pools: list[PoolGroupData] = Field(default_factory=list)
    messages: list[MinerMessage] = Field(default_factory=list)
    is_mining: bool | None = None
    light_flashing: bool | None = Field(default=None, description="fault/locate light on")
    tuning_target: TuningTarget | None = None
    scaled_tuning_target: TuningTarget | None = Field(
        default=None, description="the target in force after power scaling (DPS) stepped it down")
    tuning_percent: int | None = Field(default=None, description="manual throttle, percent of full power")
    tuning_capabilities: TuningCapabilities | None = None
    fluid_temperature: float | None = Field(default=None, description="hydro models: coolant inlet, degrees Celsius")
    outlet_fluid_temperature: float | None = Field(default=None,
                                                   description="hydro models: coolant outlet, degrees Celsius")
    errors: list[str] = Field(default_factory=list, description="reads that failed, as 'command: reason'")

    @computed_field  # type: ignore[prop-decorator]
    @property
    def efficiency(self) -> float | None:
        """Joules per terahash (W / TH/s)."""
        if self.wattage is None or self.hashrate is None:
            return None
        ths = self.hashrate.into_unit("TH/s").value
        return round(self.wattage / ths, 3) if ths > 0 else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_chips(self) -> int | None:
        counts = [b.working_chips for b in self.hashboards if b.working_chips is not None]
        return sum(counts) if counts else None

    @computed_field  # type: ignore[prop-decorator]
    @property
    def expected_chips(self) -> int | None:
        return self.device_info.hardware.total_chips

    @computed_field  # type: ignore[prop-decorator]
    @property
    def average_temperature(self) -> float | None:
        """Mean of the boards' temperatures, degrees Celsius."""
        temps = [b.board_temperature for b in self.hashboards if b.board_temperature is not None]
        return round(sum(temps) / len(temps), 2) if temps else None
