"""Temperature thresholds a firmware acts on (pyasic-rs's TemperatureConfig)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class TemperatureConfig(BaseModel):
    """`hot`: the miner throttles or runs its fans flat out; `danger`: it shuts down; `minimum`: below it the
    miner will not start hashing. Degrees Celsius; None where the firmware has no such threshold."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    hot: float | None = Field(default=None, description="degrees Celsius")
    danger: float | None = Field(default=None, description="degrees Celsius")
    minimum: float | None = Field(default=None, description="degrees Celsius")
