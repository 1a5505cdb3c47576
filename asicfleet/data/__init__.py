"""Data models: what asicfleet reads from miners."""

from asicfleet.data._hashrate import HashAlgorithm, HashRate, HashRateUnit
from asicfleet.data._miner_data import (
    BoardData,
    ChipData,
    DeviceInfo,
    FanData,
    MessageSeverity,
    MinerData,
    MinerHardware,
    MinerMessage,
    PoolData,
    PoolGroupData,
    TuningCapabilities,
    TuningRange,
    TuningTarget,
)

__all__ = [
    "BoardData",
    "ChipData",
    "DeviceInfo",
    "FanData",
    "HashAlgorithm",
    "HashRate",
    "HashRateUnit",
    "MessageSeverity",
    "MinerData",
    "MinerHardware",
    "MinerMessage",
    "PoolData",
    "PoolGroupData",
    "TuningCapabilities",
    "TuningRange",
    "TuningTarget",
]
