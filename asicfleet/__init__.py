"""asicfleet: find, read and control Bitcoin ASIC miners, from one rack to multi-site farms.

    factory = MinerFactory.from_subnet("10.0.0.0/24").with_concurrent_limit(1000)
    for miner in await factory.scan():
        data = await miner.get_data()
"""

from asicfleet._errors import (
    AsicFleetError,
    AuthenticationError,
    InvalidTargetError,
    ListenerError,
    LocalResourceError,
    MinerAPIError,
    MinerConnectionError,
    MinerError,
    MinerResponseError,
    MinerTimeoutError,
    ResponseTooLargeError,
    TooManyAddressesError,
    UnsupportedControlError,
)
from asicfleet._miner import Miner
from asicfleet.backends import DataField
from asicfleet.config import (
    FanConfig,
    Pool,
    PoolConfig,
    PoolGroup,
    PoolGroupConfig,
    ScalingConfig,
    TemperatureConfig,
    TuningConfig,
)
from asicfleet.data import (
    BoardData,
    DeviceInfo,
    FanData,
    HashAlgorithm,
    HashRate,
    HashRateUnit,
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
from asicfleet.discovery import IPReport, MinerFactory, MinerListener
from asicfleet.transport import PortMap

__version__ = "0.1.0"

__all__ = [
    "AsicFleetError",
    "AuthenticationError",
    "BoardData",
    "DataField",
    "DeviceInfo",
    "FanConfig",
    "FanData",
    "HashAlgorithm",
    "HashRate",
    "HashRateUnit",
    "IPReport",
    "InvalidTargetError",
    "ListenerError",
    "LocalResourceError",
    "MessageSeverity",
    "Miner",
    "MinerAPIError",
    "MinerConnectionError",
    "MinerData",
    "MinerError",
    "MinerFactory",
    "MinerHardware",
    "MinerListener",
    "MinerMessage",
    "MinerResponseError",
    "MinerTimeoutError",
    "Pool",
    "PoolConfig",
    "PoolData",
    "PoolGroup",
    "PoolGroupConfig",
    "PoolGroupData",
    "PortMap",
    "ResponseTooLargeError",
    "ScalingConfig",
    "TemperatureConfig",
    "TooManyAddressesError",
    "TuningCapabilities",
    "TuningConfig",
    "TuningRange",
    "TuningTarget",
    "UnsupportedControlError",
    "__version__",
]
