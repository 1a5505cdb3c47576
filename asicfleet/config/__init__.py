"""Configuration models: what asicfleet can set on miners."""

from asicfleet.config._fan import FanConfig
from asicfleet.config._pools import Credentials, Pool, PoolGroup
from asicfleet.config._temperature import TemperatureConfig
from asicfleet.config._tuning import ScalingConfig, TuningConfig

PoolConfig = Pool
PoolGroupConfig = PoolGroup

__all__ = [
    "Credentials",
    "FanConfig",
    "Pool",
    "PoolConfig",
    "PoolGroup",
    "PoolGroupConfig",
    "ScalingConfig",
    "TemperatureConfig",
    "TuningConfig",
]
