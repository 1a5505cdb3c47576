from asicfleet.sim.bos_api.bos.v1 import common_pb2 as _common_pb2
from asicfleet.sim.bos_api.bos.v1 import constraints_pb2 as _constraints_pb2
from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class CoolingMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    COOLING_MODE_UNSPECIFIED: _ClassVar[CoolingMode]
    COOLING_MODE_AUTO: _ClassVar[CoolingMode]
    COOLING_MODE_MANUAL: _ClassVar[CoolingMode]
    COOLING_MODE_DISABLED: _ClassVar[CoolingMode]
    COOLING_MODE_IMMERSION: _ClassVar[CoolingMode]
    COOLING_MODE_HYDRO: _ClassVar[CoolingMode]

class FanPauseMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAN_PAUSE_MODE_UNSPECIFIED: _ClassVar[FanPauseMode]
    FAN_PAUSE_MODE_AUTO: _ClassVar[FanPauseMode]
    FAN_PAUSE_MODE_MANUAL: _ClassVar[FanPauseMode]

class FanPauseRuntime(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    FAN_PAUSE_RUNTIME_UNSPECIFIED: _ClassVar[FanPauseRuntime]
    FAN_PAUSE_RUNTIME_LIMITED: _ClassVar[FanPauseRuntime]
    FAN_PAUSE_RUNTIME_INDEFINITE: _ClassVar[FanPauseRuntime]

class SensorLocation(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    SENSOR_LOCATION_UNSPECIFIED: _ClassVar[SensorLocation]
    SENSOR_LOCATION_CHIP: _ClassVar[SensorLocation]
    SENSOR_LOCATION_PCB: _ClassVar[SensorLocation]
COOLING_MODE_UNSPECIFIED: CoolingMode
COOLING_MODE_AUTO: CoolingMode
COOLING_MODE_MANUAL: CoolingMode
COOLING_MODE_DISABLED: CoolingMode
COOLING_MODE_IMMERSION: CoolingMode
COOLING_MODE_HYDRO: CoolingMode
FAN_PAUSE_MODE_UNSPECIFIED: FanPauseMode
FAN_PAUSE_MODE_AUTO: FanPauseMode
FAN_PAUSE_MODE_MANUAL: FanPauseMode
FAN_PAUSE_RUNTIME_UNSPECIFIED: FanPauseRuntime
FAN_PAUSE_RUNTIME_LIMITED: FanPauseRuntime
FAN_PAUSE_RUNTIME_INDEFINITE: FanPauseRuntime
SENSOR_LOCATION_UNSPECIFIED: SensorLocation
SENSOR_LOCATION_CHIP: SensorLocation
SENSOR_LOCATION_PCB: SensorLocation

class PauseMode(_message.Message):
    __slots__ = ("auto", "manual")
    AUTO_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    auto: AutoPauseMode
    manual: ManualPauseMode
    def __init__(self, auto: _Optional[_Union[AutoPauseMode, _Mapping]] = ..., manual: _Optional[_Union[ManualPauseMode, _Mapping]] = ...) -> None: ...

class AutoPauseMode(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ManualPauseMode(_message.Message):
    __slots__ = ("pause_cooldown_fan_speed_ratio", "fan_pause_runtime")
    PAUSE_COOLDOWN_FAN_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    FAN_PAUSE_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    pause_cooldown_fan_speed_ratio: float
    fan_pause_runtime: FanPauseRuntime
    def __init__(self, pause_cooldown_fan_speed_ratio: _Optional[float] = ..., fan_pause_runtime: _Optional[_Union[FanPauseRuntime, str]] = ...) -> None: ...

class CoolingAutoMode(_message.Message):
    __slots__ = ("target_temperature", "hot_temperature", "dangerous_temperature", "min_fan_speed", "max_fan_speed", "minimum_required_fans", "pause_mode")
    TARGET_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    HOT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MIN_FAN_SPEED_FIELD_NUMBER: _ClassVar[int]
    MAX_FAN_SPEED_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_REQUIRED_FANS_FIELD_NUMBER: _ClassVar[int]
    PAUSE_MODE_FIELD_NUMBER: _ClassVar[int]
    target_temperature: _units_pb2.Temperature
    hot_temperature: _units_pb2.Temperature
    dangerous_temperature: _units_pb2.Temperature
    min_fan_speed: int
    max_fan_speed: int
    minimum_required_fans: int
    pause_mode: PauseMode
    def __init__(self, target_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., hot_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., dangerous_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., min_fan_speed: _Optional[int] = ..., max_fan_speed: _Optional[int] = ..., minimum_required_fans: _Optional[int] = ..., pause_mode: _Optional[_Union[PauseMode, _Mapping]] = ...) -> None: ...

class CoolingManualMode(_message.Message):
    __slots__ = ("fan_speed_ratio", "hot_temperature", "dangerous_temperature", "target_temperature", "minimum_required_fans", "pause_mode")
    FAN_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    HOT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_REQUIRED_FANS_FIELD_NUMBER: _ClassVar[int]
    PAUSE_MODE_FIELD_NUMBER: _ClassVar[int]
    fan_speed_ratio: float
    hot_temperature: _units_pb2.Temperature
    dangerous_temperature: _units_pb2.Temperature
    target_temperature: _units_pb2.Temperature
    minimum_required_fans: int
    pause_mode: PauseMode
    def __init__(self, fan_speed_ratio: _Optional[float] = ..., hot_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., dangerous_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., target_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., minimum_required_fans: _Optional[int] = ..., pause_mode: _Optional[_Union[PauseMode, _Mapping]] = ...) -> None: ...

class CoolingDisabledMode(_message.Message):
    __slots__ = ("fan_speed_ratio",)
    FAN_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    fan_speed_ratio: float
    def __init__(self, fan_speed_ratio: _Optional[float] = ...) -> None: ...

class CoolingImmersionMode(_message.Message):
    __slots__ = ("hot_temperature", "dangerous_temperature", "target_temperature")
    HOT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    hot_temperature: _units_pb2.Temperature
    dangerous_temperature: _units_pb2.Temperature
    target_temperature: _units_pb2.Temperature
    def __init__(self, hot_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., dangerous_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., target_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ...) -> None: ...

class CoolingHydroMode(_message.Message):
    __slots__ = ("hot_temperature", "dangerous_temperature", "target_temperature")
    HOT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    hot_temperature: _units_pb2.Temperature
    dangerous_temperature: _units_pb2.Temperature
    target_temperature: _units_pb2.Temperature
    def __init__(self, hot_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., dangerous_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., target_temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ...) -> None: ...

class CoolingConfiguration(_message.Message):
    __slots__ = ("minimum_required_fans", "auto", "manual", "disabled", "immersion", "hydro")
    MINIMUM_REQUIRED_FANS_FIELD_NUMBER: _ClassVar[int]
    AUTO_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    DISABLED_FIELD_NUMBER: _ClassVar[int]
    IMMERSION_FIELD_NUMBER: _ClassVar[int]
    HYDRO_FIELD_NUMBER: _ClassVar[int]
    minimum_required_fans: int
    auto: CoolingAutoMode
    manual: CoolingManualMode
    disabled: CoolingDisabledMode
    immersion: CoolingImmersionMode
    hydro: CoolingHydroMode
    def __init__(self, minimum_required_fans: _Optional[int] = ..., auto: _Optional[_Union[CoolingAutoMode, _Mapping]] = ..., manual: _Optional[_Union[CoolingManualMode, _Mapping]] = ..., disabled: _Optional[_Union[CoolingDisabledMode, _Mapping]] = ..., immersion: _Optional[_Union[CoolingImmersionMode, _Mapping]] = ..., hydro: _Optional[_Union[CoolingHydroMode, _Mapping]] = ...) -> None: ...

class CoolingConstraints(_message.Message):
    __slots__ = ("default_cooling_mode", "target_temperature", "hot_temperature", "dangerous_temperature", "fan_speed_ratio", "minimum_required_fans", "min_fan_speed", "max_fan_speed", "pause_cooldown_fan_speed_ratio", "default_fan_pause_mode", "default_fan_pause_runtime", "fan_pause_runtime_limited_duration_s")
    DEFAULT_COOLING_MODE_FIELD_NUMBER: _ClassVar[int]
    TARGET_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    HOT_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    DANGEROUS_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    FAN_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    MINIMUM_REQUIRED_FANS_FIELD_NUMBER: _ClassVar[int]
    MIN_FAN_SPEED_FIELD_NUMBER: _ClassVar[int]
    MAX_FAN_SPEED_FIELD_NUMBER: _ClassVar[int]
    PAUSE_COOLDOWN_FAN_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FAN_PAUSE_MODE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FAN_PAUSE_RUNTIME_FIELD_NUMBER: _ClassVar[int]
    FAN_PAUSE_RUNTIME_LIMITED_DURATION_S_FIELD_NUMBER: _ClassVar[int]
    default_cooling_mode: CoolingMode
    target_temperature: _constraints_pb2.TemperatureConstraints
    hot_temperature: _constraints_pb2.TemperatureConstraints
    dangerous_temperature: _constraints_pb2.TemperatureConstraints
    fan_speed_ratio: _constraints_pb2.DoubleConstraints
    minimum_required_fans: _constraints_pb2.UInt32Constraints
    min_fan_speed: _constraints_pb2.UInt32Constraints
    max_fan_speed: _constraints_pb2.UInt32Constraints
    pause_cooldown_fan_speed_ratio: _constraints_pb2.DoubleConstraints
    default_fan_pause_mode: FanPauseMode
    default_fan_pause_runtime: FanPauseRuntime
    fan_pause_runtime_limited_duration_s: int
    def __init__(self, default_cooling_mode: _Optional[_Union[CoolingMode, str]] = ..., target_temperature: _Optional[_Union[_constraints_pb2.TemperatureConstraints, _Mapping]] = ..., hot_temperature: _Optional[_Union[_constraints_pb2.TemperatureConstraints, _Mapping]] = ..., dangerous_temperature: _Optional[_Union[_constraints_pb2.TemperatureConstraints, _Mapping]] = ..., fan_speed_ratio: _Optional[_Union[_constraints_pb2.DoubleConstraints, _Mapping]] = ..., minimum_required_fans: _Optional[_Union[_constraints_pb2.UInt32Constraints, _Mapping]] = ..., min_fan_speed: _Optional[_Union[_constraints_pb2.UInt32Constraints, _Mapping]] = ..., max_fan_speed: _Optional[_Union[_constraints_pb2.UInt32Constraints, _Mapping]] = ..., pause_cooldown_fan_speed_ratio: _Optional[_Union[_constraints_pb2.DoubleConstraints, _Mapping]] = ..., default_fan_pause_mode: _Optional[_Union[FanPauseMode, str]] = ..., default_fan_pause_runtime: _Optional[_Union[FanPauseRuntime, str]] = ..., fan_pause_runtime_limited_duration_s: _Optional[int] = ...) -> None: ...

class FanState(_message.Message):
    __slots__ = ("position", "rpm", "target_speed_ratio")
    POSITION_FIELD_NUMBER: _ClassVar[int]
    RPM_FIELD_NUMBER: _ClassVar[int]
    TARGET_SPEED_RATIO_FIELD_NUMBER: _ClassVar[int]
    position: int
    rpm: int
    target_speed_ratio: float
    def __init__(self, position: _Optional[int] = ..., rpm: _Optional[int] = ..., target_speed_ratio: _Optional[float] = ...) -> None: ...

class TemperatureSensor(_message.Message):
    __slots__ = ("id", "location", "temperature")
    ID_FIELD_NUMBER: _ClassVar[int]
    LOCATION_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    id: int
    location: SensorLocation
    temperature: _units_pb2.Temperature
    def __init__(self, id: _Optional[int] = ..., location: _Optional[_Union[SensorLocation, str]] = ..., temperature: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ...) -> None: ...

class GetCoolingStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetCoolingStateResponse(_message.Message):
    __slots__ = ("fans", "highest_temperature")
    FANS_FIELD_NUMBER: _ClassVar[int]
    HIGHEST_TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    fans: _containers.RepeatedCompositeFieldContainer[FanState]
    highest_temperature: TemperatureSensor
    def __init__(self, fans: _Optional[_Iterable[_Union[FanState, _Mapping]]] = ..., highest_temperature: _Optional[_Union[TemperatureSensor, _Mapping]] = ...) -> None: ...

class SetImmersionModeRequest(_message.Message):
    __slots__ = ("save_action", "enable_immersion_mode")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    ENABLE_IMMERSION_MODE_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    enable_immersion_mode: bool
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., enable_immersion_mode: _Optional[bool] = ...) -> None: ...

class SetImmersionModeResponse(_message.Message):
    __slots__ = ("immersion_mode",)
    IMMERSION_MODE_FIELD_NUMBER: _ClassVar[int]
    immersion_mode: bool
    def __init__(self, immersion_mode: _Optional[bool] = ...) -> None: ...

class SetCoolingModeRequest(_message.Message):
    __slots__ = ("save_action", "auto", "manual", "immersion", "hydro")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    AUTO_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    IMMERSION_FIELD_NUMBER: _ClassVar[int]
    HYDRO_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    auto: CoolingAutoMode
    manual: CoolingManualMode
    immersion: CoolingImmersionMode
    hydro: CoolingHydroMode
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., auto: _Optional[_Union[CoolingAutoMode, _Mapping]] = ..., manual: _Optional[_Union[CoolingManualMode, _Mapping]] = ..., immersion: _Optional[_Union[CoolingImmersionMode, _Mapping]] = ..., hydro: _Optional[_Union[CoolingHydroMode, _Mapping]] = ...) -> None: ...

class SetCoolingModeResponse(_message.Message):
    __slots__ = ("auto", "manual", "immersion", "hydro")
    AUTO_FIELD_NUMBER: _ClassVar[int]
    MANUAL_FIELD_NUMBER: _ClassVar[int]
    IMMERSION_FIELD_NUMBER: _ClassVar[int]
    HYDRO_FIELD_NUMBER: _ClassVar[int]
    auto: CoolingAutoMode
    manual: CoolingManualMode
    immersion: CoolingImmersionMode
    hydro: CoolingHydroMode
    def __init__(self, auto: _Optional[_Union[CoolingAutoMode, _Mapping]] = ..., manual: _Optional[_Union[CoolingManualMode, _Mapping]] = ..., immersion: _Optional[_Union[CoolingImmersionMode, _Mapping]] = ..., hydro: _Optional[_Union[CoolingHydroMode, _Mapping]] = ...) -> None: ...
