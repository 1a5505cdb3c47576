"""Fan control settings."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class FanConfig(BaseModel):
    """`FanConfig.manual(80)` holds fans at 80 %; `FanConfig.auto(target_temp=...)` lets the miner regulate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    mode: Literal["auto", "manual"]
    fan_speed: int | None = Field(default=None, ge=0, le=100, description="percent, manual mode")
    target_temp: float | None = Field(default=None, gt=0, le=120, description="degrees Celsius, auto mode")
    idle_speed: int | None = Field(default=None, ge=0, le=100, description="percent, auto mode")

    @model_validator(mode="after")
    def _consistent(self) -> FanConfig:
        if self.mode == "manual" and self.fan_speed is None:
            raise ValueError("a manual fan config needs fan_speed (0..100 %)")
        if self.mode == "auto" and self.fan_speed is not None:
            raise ValueError("fan_speed applies to manual mode only")
        return self

    @classmethod
    def manual(cls, fan_speed: int) -> FanConfig:
        return cls(mode="manual", fan_speed=fan_speed)

    @classmethod
    def auto(cls, target_temp: float | None = None, idle_speed: int | None = None) -> FanConfig:
        return cls(mode="auto", target_temp=target_temp, idle_speed=idle_speed)
