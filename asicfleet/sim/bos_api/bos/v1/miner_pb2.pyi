from asicfleet.sim.bos_api.bos.v1 import common_pb2 as _common_pb2
from asicfleet.sim.bos_api.bos.v1 import cooling_pb2 as _cooling_pb2
from asicfleet.sim.bos_api.bos.v1 import pool_pb2 as _pool_pb2
from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from asicfleet.sim.bos_api.bos.v1 import work_pb2 as _work_pb2
from google.protobuf import wrappers_pb2 as _wrappers_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Platform(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    PLATFORM_UNSPECIFIED: _ClassVar[Platform]
    PLATFORM_AM1_S9: _ClassVar[Platform]
    PLATFORM_AM2_S17: _ClassVar[Platform]
    PLATFORM_AM3_BBB: _ClassVar[Platform]
    PLATFORM_AM3_AML: _ClassVar[Platform]
    PLATFORM_STM32MP157C_II1_AM2: _ClassVar[Platform]
    PLATFORM_CVITEK_BM1_AM2: _ClassVar[Platform]
    PLATFORM_ZYNQ_BM3_AM2: _ClassVar[Platform]
    PLATFORM_STM32MP157C_II2_BMM1: _ClassVar[Platform]

class ControlBoardSocFamily(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    CONTROL_BOARD_SOC_FAMILY_UNSPECIFIED: _ClassVar[ControlBoardSocFamily]
    CONTROL_BOARD_SOC_FAMILY_CVITEK: _ClassVar[ControlBoardSocFamily]
    CONTROL_BOARD_SOC_FAMILY_BBB: _ClassVar[ControlBoardSocFamily]
    CONTROL_BOARD_SOC_FAMILY_AML: _ClassVar[ControlBoardSocFamily]
    CONTROL_BOARD_SOC_FAMILY_ZYNQ: _ClassVar[ControlBoardSocFamily]
    CONTROL_BOARD_SOC_FAMILY_BRAIINS: _ClassVar[ControlBoardSocFamily]

class BosMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    BOS_MODE_UNSPECIFIED: _ClassVar[BosMode]
    BOS_MODE_UPGRADE: _ClassVar[BosMode]
    BOS_MODE_RECOVERY: _ClassVar[BosMode]
    BOS_MODE_SD: _ClassVar[BosMode]
    BOS_MODE_NAND: _ClassVar[BosMode]
    BOS_MODE_EMMC: _ClassVar[BosMode]

class MinerBrand(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MINER_BRAND_UNSPECIFIED: _ClassVar[MinerBrand]
    MINER_BRAND_ANTMINER: _ClassVar[MinerBrand]
    MINER_BRAND_WHATSMINER: _ClassVar[MinerBrand]

class MinerModel(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MINER_MODEL_UNSPECIFIED: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S9: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_X17: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S17: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S17_PLUS: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S17_PRO: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S17E: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_T17: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_T17E: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_T17_PLUS: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_X19: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19_PRO: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19_PLUS: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19J: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19J_PRO: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19A: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19A_PRO: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19XP: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_T19: _ClassVar[MinerModel]
    MINER_MODEL_ANTMINER_S19J_PRO_PLUS: _ClassVar[MinerModel]

class MinerStatus(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    MINER_STATUS_UNSPECIFIED: _ClassVar[MinerStatus]
    MINER_STATUS_NOT_STARTED: _ClassVar[MinerStatus]
    MINER_STATUS_NORMAL: _ClassVar[MinerStatus]
    MINER_STATUS_PAUSED: _ClassVar[MinerStatus]
    MINER_STATUS_SUSPENDED: _ClassVar[MinerStatus]
    MINER_STATUS_RESTRICTED: _ClassVar[MinerStatus]

class SupportArchiveFormat(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SUPPORT_ARCHIVE_FORMAT_UNSPECIFIED: _ClassVar[SupportArchiveFormat]
    SUPPORT_ARCHIVE_FORMAT_ZIP: _ClassVar[SupportArchiveFormat]
    SUPPORT_ARCHIVE_FORMAT_BOS: _ClassVar[SupportArchiveFormat]
    SUPPORT_ARCHIVE_FORMAT_ZIP_ENCRYPTED: _ClassVar[SupportArchiveFormat]

class LogType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LOG_TYPE_UNSPECIFIED: _ClassVar[LogType]
    LOG_TYPE_ERRORS: _ClassVar[LogType]
    LOG_TYPE_BOSMINER: _ClassVar[LogType]
    LOG_TYPE_BOSER: _ClassVar[LogType]
    LOG_TYPE_MONITOR: _ClassVar[LogType]
    LOG_TYPE_SYSLOG: _ClassVar[LogType]
    LOG_TYPE_DMESG: _ClassVar[LogType]
PLATFORM_UNSPECIFIED: Platform
PLATFORM_AM1_S9: Platform
PLATFORM_AM2_S17: Platform
PLATFORM_AM3_BBB: Platform
PLATFORM_AM3_AML: Platform
PLATFORM_STM32MP157C_II1_AM2: Platform
PLATFORM_CVITEK_BM1_AM2: Platform
PLATFORM_ZYNQ_BM3_AM2: Platform
PLATFORM_STM32MP157C_II2_BMM1: Platform
CONTROL_BOARD_SOC_FAMILY_UNSPECIFIED: ControlBoardSocFamily
CONTROL_BOARD_SOC_FAMILY_CVITEK: ControlBoardSocFamily
CONTROL_BOARD_SOC_FAMILY_BBB: ControlBoardSocFamily
CONTROL_BOARD_SOC_FAMILY_AML: ControlBoardSocFamily
CONTROL_BOARD_SOC_FAMILY_ZYNQ: ControlBoardSocFamily
CONTROL_BOARD_SOC_FAMILY_BRAIINS: ControlBoardSocFamily
BOS_MODE_UNSPECIFIED: BosMode
BOS_MODE_UPGRADE: BosMode
BOS_MODE_RECOVERY: BosMode
BOS_MODE_SD: BosMode
BOS_MODE_NAND: BosMode
BOS_MODE_EMMC: BosMode
MINER_BRAND_UNSPECIFIED: MinerBrand
MINER_BRAND_ANTMINER: MinerBrand
MINER_BRAND_WHATSMINER: MinerBrand
MINER_MODEL_UNSPECIFIED: MinerModel
MINER_MODEL_ANTMINER_S9: MinerModel
MINER_MODEL_ANTMINER_X17: MinerModel
MINER_MODEL_ANTMINER_S17: MinerModel
MINER_MODEL_ANTMINER_S17_PLUS: MinerModel
MINER_MODEL_ANTMINER_S17_PRO: MinerModel
MINER_MODEL_ANTMINER_S17E: MinerModel
MINER_MODEL_ANTMINER_T17: MinerModel
MINER_MODEL_ANTMINER_T17E: MinerModel
MINER_MODEL_ANTMINER_T17_PLUS: MinerModel
MINER_MODEL_ANTMINER_X19: MinerModel
MINER_MODEL_ANTMINER_S19: MinerModel
MINER_MODEL_ANTMINER_S19_PRO: MinerModel
MINER_MODEL_ANTMINER_S19_PLUS: MinerModel
MINER_MODEL_ANTMINER_S19J: MinerModel
MINER_MODEL_ANTMINER_S19J_PRO: MinerModel
MINER_MODEL_ANTMINER_S19A: MinerModel
MINER_MODEL_ANTMINER_S19A_PRO: MinerModel
MINER_MODEL_ANTMINER_S19XP: MinerModel
MINER_MODEL_ANTMINER_T19: MinerModel
MINER_MODEL_ANTMINER_S19J_PRO_PLUS: MinerModel
MINER_STATUS_UNSPECIFIED: MinerStatus
MINER_STATUS_NOT_STARTED: MinerStatus
MINER_STATUS_NORMAL: MinerStatus
MINER_STATUS_PAUSED: MinerStatus
MINER_STATUS_SUSPENDED: MinerStatus
MINER_STATUS_RESTRICTED: MinerStatus
SUPPORT_ARCHIVE_FORMAT_UNSPECIFIED: SupportArchiveFormat
SUPPORT_ARCHIVE_FORMAT_ZIP: SupportArchiveFormat
SUPPORT_ARCHIVE_FORMAT_BOS: SupportArchiveFormat
SUPPORT_ARCHIVE_FORMAT_ZIP_ENCRYPTED: SupportArchiveFormat
LOG_TYPE_UNSPECIFIED: LogType
LOG_TYPE_ERRORS: LogType
LOG_TYPE_BOSMINER: LogType
LOG_TYPE_BOSER: LogType
LOG_TYPE_MONITOR: LogType
LOG_TYPE_SYSLOG: LogType
LOG_TYPE_DMESG: LogType

class MinerIdentity(_message.Message):
    __slots__ = ("brand", "model", "name", "miner_model")
    BRAND_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    MINER_MODEL_FIELD_NUMBER: _ClassVar[int]
    brand: MinerBrand
    model: MinerModel
    name: str
    miner_model: str
    def __init__(self, brand: _Optional[_Union[MinerBrand, str]] = ..., model: _Optional[_Union[MinerModel, str]] = ..., name: _Optional[str] = ..., miner_model: _Optional[str] = ...) -> None: ...

class BosVersion(_message.Message):
    __slots__ = ("current", "major", "bos_plus")
    CURRENT_FIELD_NUMBER: _ClassVar[int]
    MAJOR_FIELD_NUMBER: _ClassVar[int]
    BOS_PLUS_FIELD_NUMBER: _ClassVar[int]
    current: str
    major: str
    bos_plus: bool
    def __init__(self, current: _Optional[str] = ..., major: _Optional[str] = ..., bos_plus: _Optional[bool] = ...) -> None: ...

class ErrorCode(_message.Message):
    __slots__ = ("code", "reason", "hint")
    CODE_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    HINT_FIELD_NUMBER: _ClassVar[int]
    code: str
    reason: str
    hint: str
    def __init__(self, code: _Optional[str] = ..., reason: _Optional[str] = ..., hint: _Optional[str] = ...) -> None: ...

class Component(_message.Message):
    __slots__ = ("name", "index")
    NAME_FIELD_NUMBER: _ClassVar[int]
    INDEX_FIELD_NUMBER: _ClassVar[int]
    name: str
    index: int
    def __init__(self, name: _Optional[str] = ..., index: _Optional[int] = ...) -> None: ...

class MinerError(_message.Message):
    __slots__ = ("timestamp", "message", "error_codes", "components")
    TIMESTAMP_FIELD_NUMBER: _ClassVar[int]
    MESSAGE_FIELD_NUMBER: _ClassVar[int]
    ERROR_CODES_FIELD_NUMBER: _ClassVar[int]
    COMPONENTS_FIELD_NUMBER: _ClassVar[int]
    timestamp: str
    message: str
    error_codes: _containers.RepeatedCompositeFieldContainer[ErrorCode]
    components: _containers.RepeatedCompositeFieldContainer[Component]
    def __init__(self, timestamp: _Optional[str] = ..., message: _Optional[str] = ..., error_codes: _Optional[_Iterable[_Union[ErrorCode, _Mapping]]] = ..., components: _Optional[_Iterable[_Union[Component, _Mapping]]] = ...) -> None: ...

class GetMinerStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMinerStatusResponse(_message.Message):
    __slots__ = ("status",)
    STATUS_FIELD_NUMBER: _ClassVar[int]
    status: MinerStatus
    def __init__(self, status: _Optional[_Union[MinerStatus, str]] = ...) -> None: ...

class GetMinerDetailsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PsuInfo(_message.Message):
    __slots__ = ("version", "fw_version", "serial_number", "model_name", "min_voltage", "max_voltage")
    VERSION_FIELD_NUMBER: _ClassVar[int]
    FW_VERSION_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    MODEL_NAME_FIELD_NUMBER: _ClassVar[int]
    MIN_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    MAX_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    version: _wrappers_pb2.UInt32Value
    fw_version: _wrappers_pb2.UInt32Value
    serial_number: str
    model_name: str
    min_voltage: _units_pb2.Voltage
    max_voltage: _units_pb2.Voltage
    def __init__(self, version: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., fw_version: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., serial_number: _Optional[str] = ..., model_name: _Optional[str] = ..., min_voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., max_voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ...) -> None: ...

class GetMinerDetailsResponse(_message.Message):
    __slots__ = ("uid", "miner_identity", "platform", "bos_mode", "bos_version", "hostname", "mac_address", "system_uptime", "sticker_hashrate", "bosminer_uptime_s", "system_uptime_s", "status", "kernel_version", "psu_info", "control_board_soc_family", "serial_number")
    UID_FIELD_NUMBER: _ClassVar[int]
    MINER_IDENTITY_FIELD_NUMBER: _ClassVar[int]
    PLATFORM_FIELD_NUMBER: _ClassVar[int]
    BOS_MODE_FIELD_NUMBER: _ClassVar[int]
    BOS_VERSION_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_UPTIME_FIELD_NUMBER: _ClassVar[int]
    STICKER_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    BOSMINER_UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    SYSTEM_UPTIME_S_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    KERNEL_VERSION_FIELD_NUMBER: _ClassVar[int]
    PSU_INFO_FIELD_NUMBER: _ClassVar[int]
    CONTROL_BOARD_SOC_FAMILY_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    uid: str
    miner_identity: MinerIdentity
    platform: Platform
    bos_mode: BosMode
    bos_version: BosVersion
    hostname: str
    mac_address: str
    system_uptime: int
    sticker_hashrate: _units_pb2.GigaHashrate
    bosminer_uptime_s: int
    system_uptime_s: int
    status: MinerStatus
    kernel_version: str
    psu_info: PsuInfo
    control_board_soc_family: ControlBoardSocFamily
    serial_number: str
    def __init__(self, uid: _Optional[str] = ..., miner_identity: _Optional[_Union[MinerIdentity, _Mapping]] = ..., platform: _Optional[_Union[Platform, str]] = ..., bos_mode: _Optional[_Union[BosMode, str]] = ..., bos_version: _Optional[_Union[BosVersion, _Mapping]] = ..., hostname: _Optional[str] = ..., mac_address: _Optional[str] = ..., system_uptime: _Optional[int] = ..., sticker_hashrate: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., bosminer_uptime_s: _Optional[int] = ..., system_uptime_s: _Optional[int] = ..., status: _Optional[_Union[MinerStatus, str]] = ..., kernel_version: _Optional[str] = ..., psu_info: _Optional[_Union[PsuInfo, _Mapping]] = ..., control_board_soc_family: _Optional[_Union[ControlBoardSocFamily, str]] = ..., serial_number: _Optional[str] = ...) -> None: ...

class MinerPowerStats(_message.Message):
    __slots__ = ("approximated_consumption", "efficiency")
    APPROXIMATED_CONSUMPTION_FIELD_NUMBER: _ClassVar[int]
    EFFICIENCY_FIELD_NUMBER: _ClassVar[int]
    approximated_consumption: _units_pb2.Power
    efficiency: _units_pb2.PowerEfficiency
    def __init__(self, approximated_consumption: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., efficiency: _Optional[_Union[_units_pb2.PowerEfficiency, _Mapping]] = ...) -> None: ...

class GetMinerStatsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMinerStatsResponse(_message.Message):
    __slots__ = ("pool_stats", "miner_stats", "power_stats")
    POOL_STATS_FIELD_NUMBER: _ClassVar[int]
    MINER_STATS_FIELD_NUMBER: _ClassVar[int]
    POWER_STATS_FIELD_NUMBER: _ClassVar[int]
    pool_stats: _pool_pb2.PoolStats
    miner_stats: _work_pb2.WorkSolverStats
    power_stats: MinerPowerStats
    def __init__(self, pool_stats: _Optional[_Union[_pool_pb2.PoolStats, _Mapping]] = ..., miner_stats: _Optional[_Union[_work_pb2.WorkSolverStats, _Mapping]] = ..., power_stats: _Optional[_Union[MinerPowerStats, _Mapping]] = ...) -> None: ...

class GetErrorsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetErrorsResponse(_message.Message):
    __slots__ = ("errors",)
    ERRORS_FIELD_NUMBER: _ClassVar[int]
    errors: _containers.RepeatedCompositeFieldContainer[MinerError]
    def __init__(self, errors: _Optional[_Iterable[_Union[MinerError, _Mapping]]] = ...) -> None: ...

class Hashboard(_message.Message):
    __slots__ = ("id", "enabled", "chips_count", "current_voltage", "current_frequency", "highest_chip_temp", "board_temp", "stats", "model", "lowest_inlet_temp", "highest_outlet_temp", "serial_number", "board_name", "chip_type", "lowest_water_inlet_temp", "highest_water_outlet_temp")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    CHIPS_COUNT_FIELD_NUMBER: _ClassVar[int]
    CURRENT_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_CHIP_TEMP_FIELD_NUMBER: _ClassVar[int]
    BOARD_TEMP_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    LOWEST_INLET_TEMP_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_OUTLET_TEMP_FIELD_NUMBER: _ClassVar[int]
    SERIAL_NUMBER_FIELD_NUMBER: _ClassVar[int]
    BOARD_NAME_FIELD_NUMBER: _ClassVar[int]
    CHIP_TYPE_FIELD_NUMBER: _ClassVar[int]
    LOWEST_WATER_INLET_TEMP_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_WATER_OUTLET_TEMP_FIELD_NUMBER: _ClassVar[int]
    id: str
    enabled: bool
    chips_count: _wrappers_pb2.UInt32Value
    current_voltage: _units_pb2.Voltage
    current_frequency: _units_pb2.Frequency
    highest_chip_temp: _cooling_pb2.TemperatureSensor
    board_temp: _units_pb2.Temperature
    stats: _work_pb2.WorkSolverStats
    model: str
    lowest_inlet_temp: _units_pb2.Temperature
    highest_outlet_temp: _units_pb2.Temperature
    serial_number: str
    board_name: str
    chip_type: str
    lowest_water_inlet_temp: _units_pb2.Temperature
    highest_water_outlet_temp: _units_pb2.Temperature
    def __init__(self, id: _Optional[str] = ..., enabled: _Optional[bool] = ..., chips_count: _Optional[_Union[_wrappers_pb2.UInt32Value, _Mapping]] = ..., current_voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., current_frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., highest_chip_temp: _Optional[_Union[_cooling_pb2.TemperatureSensor, _Mapping]] = ..., board_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., stats: _Optional[_Union[_work_pb2.WorkSolverStats, _Mapping]] = ..., model: _Optional[str] = ..., lowest_inlet_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., highest_outlet_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., serial_number: _Optional[str] = ..., board_name: _Optional[str] = ..., chip_type: _Optional[str] = ..., lowest_water_inlet_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., highest_water_outlet_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ...) -> None: ...

class GetSupportArchiveRequest(_message.Message):
    __slots__ = ("format",)
    FORMAT_FIELD_NUMBER: _ClassVar[int]
    format: SupportArchiveFormat
    def __init__(self, format: _Optional[_Union[SupportArchiveFormat, str]] = ...) -> None: ...

class GetSupportArchiveResponse(_message.Message):
    __slots__ = ("chunk_data",)
    CHUNK_DATA_FIELD_NUMBER: _ClassVar[int]
    chunk_data: bytes
    def __init__(self, chunk_data: _Optional[bytes] = ...) -> None: ...

class GetLogRequest(_message.Message):
    __slots__ = ("log_type",)
    LOG_TYPE_FIELD_NUMBER: _ClassVar[int]
    log_type: LogType
    def __init__(self, log_type: _Optional[_Union[LogType, str]] = ...) -> None: ...

class GetLogResponse(_message.Message):
    __slots__ = ("chunk_data",)
    CHUNK_DATA_FIELD_NUMBER: _ClassVar[int]
    chunk_data: bytes
    def __init__(self, chunk_data: _Optional[bytes] = ...) -> None: ...

class GetHashboardsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetHashboardsResponse(_message.Message):
    __slots__ = ("hashboards",)
    HASHBOARDS_FIELD_NUMBER: _ClassVar[int]
    hashboards: _containers.RepeatedCompositeFieldContainer[Hashboard]
    def __init__(self, hashboards: _Optional[_Iterable[_Union[Hashboard, _Mapping]]] = ...) -> None: ...

class EnableHashboardsRequest(_message.Message):
    __slots__ = ("save_action", "hashboard_ids")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    HASHBOARD_IDS_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    hashboard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., hashboard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class EnableHashboardsResponse(_message.Message):
    __slots__ = ("hashboards",)
    HASHBOARDS_FIELD_NUMBER: _ClassVar[int]
    hashboards: _containers.RepeatedCompositeFieldContainer[HashboardEnableState]
    def __init__(self, hashboards: _Optional[_Iterable[_Union[HashboardEnableState, _Mapping]]] = ...) -> None: ...

class DisableHashboardsRequest(_message.Message):
    __slots__ = ("save_action", "hashboard_ids")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    HASHBOARD_IDS_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    hashboard_ids: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., hashboard_ids: _Optional[_Iterable[str]] = ...) -> None: ...

class DisableHashboardsResponse(_message.Message):
    __slots__ = ("hashboards",)
    HASHBOARDS_FIELD_NUMBER: _ClassVar[int]
    hashboards: _containers.RepeatedCompositeFieldContainer[HashboardEnableState]
    def __init__(self, hashboards: _Optional[_Iterable[_Union[HashboardEnableState, _Mapping]]] = ...) -> None: ...

class HashboardEnableState(_message.Message):
    __slots__ = ("id", "is_enabled")
    ID_FIELD_NUMBER: _ClassVar[int]
    IS_ENABLED_FIELD_NUMBER: _ClassVar[int]
    id: str
    is_enabled: bool
    def __init__(self, id: _Optional[str] = ..., is_enabled: _Optional[bool] = ...) -> None: ...
