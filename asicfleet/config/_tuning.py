"""Tuning (power / hash rate targets) and power scaling settings."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator

from asicfleet.data import HashRate


class TuningConfig(BaseModel):
    """Exactly one target: `TuningConfig.power(3200.0)`, `TuningConfig.hashrate(...)`, `TuningConfig.mode("low")`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    target_watts: float | None = Field(default=None, gt=0, le=100_000, description="power target, watts")
    target_hashrate: HashRate | None = Field(default=None, description="hash rate target")
    target_mode: str | None = Field(default=None, min_length=1, description="named mode: low/normal/high")

    @model_validator(mode="after")
    def _exactly_one(self) -> TuningConfig:
        given = [x for x in (self.target_watts, self.target_hashrate, self.target_mode) if x is not None]
        if len(given) != 1:
            raise ValueError("a tuning config needs exactly one of target_watts, target_hashrate, target_mode")
        if self.target_hashrate is not None and self.target_hashrate.value <= 0:
            raise ValueError("a hash rate target must be > 0")
        return self

    @classmethod
    def power(cls, watts: float) -> TuningConfig:
        return cls(target_watts=watts)

    @classmethod
    def hashrate(cls, hashrate: HashRate | dict[str, object]) -> TuningConfig:
        return cls(target_hashrate=HashRate.model_validate(hashrate))

    @classmethod
    def mode(cls, mode: str) -> TuningConfig:
        return cls(target_mode=mode)


class ScalingConfig(BaseModel):
    """Dynamic power scaling: step down by `step` % to at least `minimum` % when the miner overheats."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    step: int = Field(gt=0, le=100, description="percent per step")
    minimum: int = Field(ge=0, le=100, description="lowest power, percent of nominal")
    shutdown: bool | None = None
    shutdown_duration: float | None = Field(default=None, ge=0, description="hours")
