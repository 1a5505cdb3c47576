import datetime

from asicfleet.sim.bos_api.bos.v1 import common_pb2 as _common_pb2
from asicfleet.sim.bos_api.bos.v1 import constraints_pb2 as _constraints_pb2
from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class TunerMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TUNER_MODE_UNSPECIFIED: _ClassVar[TunerMode]
    TUNER_MODE_POWER_TARGET: _ClassVar[TunerMode]
    TUNER_MODE_HASHRATE_TARGET: _ClassVar[TunerMode]

class DPSMode(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DPS_MODE_UNSPECIFIED: _ClassVar[DPSMode]
    DPS_MODE_NORMAL: _ClassVar[DPSMode]
    DPS_MODE_BOOST: _ClassVar[DPSMode]

class TunerState(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    TUNER_STATE_UNSPECIFIED: _ClassVar[TunerState]
    TUNER_STATE_DISABLED: _ClassVar[TunerState]
    TUNER_STATE_STABLE: _ClassVar[TunerState]
    TUNER_STATE_TUNING: _ClassVar[TunerState]
    TUNER_STATE_ERROR: _ClassVar[TunerState]
    TUNER_STATE_CONTINUOUS: _ClassVar[TunerState]
    TUNER_STATE_PREHEAT: _ClassVar[TunerState]

class RelativeTargetReference(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    RELATIVE_TARGET_REFERENCE_UNSPECIFIED: _ClassVar[RelativeTargetReference]
    RELATIVE_TARGET_REFERENCE_NOMINAL: _ClassVar[RelativeTargetReference]
    RELATIVE_TARGET_REFERENCE_MIN: _ClassVar[RelativeTargetReference]
    RELATIVE_TARGET_REFERENCE_MAX: _ClassVar[RelativeTargetReference]
    RELATIVE_TARGET_REFERENCE_CURRENT: _ClassVar[RelativeTargetReference]
TUNER_MODE_UNSPECIFIED: TunerMode
TUNER_MODE_POWER_TARGET: TunerMode
TUNER_MODE_HASHRATE_TARGET: TunerMode
DPS_MODE_UNSPECIFIED: DPSMode
DPS_MODE_NORMAL: DPSMode
DPS_MODE_BOOST: DPSMode
TUNER_STATE_UNSPECIFIED: TunerState
TUNER_STATE_DISABLED: TunerState
TUNER_STATE_STABLE: TunerState
TUNER_STATE_TUNING: TunerState
TUNER_STATE_ERROR: TunerState
TUNER_STATE_CONTINUOUS: TunerState
TUNER_STATE_PREHEAT: TunerState
RELATIVE_TARGET_REFERENCE_UNSPECIFIED: RelativeTargetReference
RELATIVE_TARGET_REFERENCE_NOMINAL: RelativeTargetReference
RELATIVE_TARGET_REFERENCE_MIN: RelativeTargetReference
RELATIVE_TARGET_REFERENCE_MAX: RelativeTargetReference
RELATIVE_TARGET_REFERENCE_CURRENT: RelativeTargetReference

class TunerConfiguration(_message.Message):
    __slots__ = ("enabled", "tuner_mode", "power_target", "hashrate_target")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    TUNER_MODE_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    tuner_mode: TunerMode
    power_target: _units_pb2.Power
    hashrate_target: _units_pb2.TeraHashrate
    def __init__(self, enabled: _Optional[bool] = ..., tuner_mode: _Optional[_Union[TunerMode, str]] = ..., power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class TunerConstraints(_message.Message):
    __slots__ = ("power_target", "hashrate_target", "enabled", "default_mode")
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODE_FIELD_NUMBER: _ClassVar[int]
    power_target: _constraints_pb2.PowerConstraints
    hashrate_target: _constraints_pb2.HashrateConstraints
    enabled: _constraints_pb2.BooleanConstraint
    default_mode: TunerMode
    def __init__(self, power_target: _Optional[_Union[_constraints_pb2.PowerConstraints, _Mapping]] = ..., hashrate_target: _Optional[_Union[_constraints_pb2.HashrateConstraints, _Mapping]] = ..., enabled: _Optional[_Union[_constraints_pb2.BooleanConstraint, _Mapping]] = ..., default_mode: _Optional[_Union[TunerMode, str]] = ...) -> None: ...

class DPSConfiguration(_message.Message):
    __slots__ = ("enabled", "power_step", "hashrate_step", "min_power_target", "min_hashrate_target", "shutdown_enabled", "shutdown_duration", "mode", "on_start_target_percent")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    POWER_STEP_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    MIN_HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_DURATION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ON_START_TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    power_step: _units_pb2.Power
    hashrate_step: _units_pb2.TeraHashrate
    min_power_target: _units_pb2.Power
    min_hashrate_target: _units_pb2.TeraHashrate
    shutdown_enabled: bool
    shutdown_duration: _units_pb2.Hours
    mode: DPSMode
    on_start_target_percent: int
    def __init__(self, enabled: _Optional[bool] = ..., power_step: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., hashrate_step: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., min_power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., min_hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., shutdown_enabled: _Optional[bool] = ..., shutdown_duration: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ..., mode: _Optional[_Union[DPSMode, str]] = ..., on_start_target_percent: _Optional[int] = ...) -> None: ...

class HashboardPerformanceConfiguration(_message.Message):
    __slots__ = ("global_frequency", "global_voltage", "hashboards", "quick_ramping_time_up_s", "quick_ramping_time_down_s")
    GLOBAL_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    HASHBOARDS_FIELD_NUMBER: _ClassVar[int]
    QUICK_RAMPING_TIME_UP_S_FIELD_NUMBER: _ClassVar[int]
    QUICK_RAMPING_TIME_DOWN_S_FIELD_NUMBER: _ClassVar[int]
    global_frequency: _units_pb2.Frequency
    global_voltage: _units_pb2.Voltage
    hashboards: _containers.RepeatedCompositeFieldContainer[HashboardConfig]
    quick_ramping_time_up_s: int
    quick_ramping_time_down_s: int
    def __init__(self, global_frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., global_voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., hashboards: _Optional[_Iterable[_Union[HashboardConfig, _Mapping]]] = ..., quick_ramping_time_up_s: _Optional[int] = ..., quick_ramping_time_down_s: _Optional[int] = ...) -> None: ...

class DPSConstraints(_message.Message):
    __slots__ = ("power_step", "hashrate_step", "min_power_target", "min_hashrate_target", "shutdown_enabled", "shutdown_duration", "enabled", "mode", "on_start_target_percent")
    POWER_STEP_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    MIN_HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_DURATION_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ON_START_TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    power_step: _constraints_pb2.PowerConstraints
    hashrate_step: _constraints_pb2.HashrateConstraints
    min_power_target: _constraints_pb2.PowerConstraints
    min_hashrate_target: _constraints_pb2.HashrateConstraints
    shutdown_enabled: _constraints_pb2.BooleanConstraint
    shutdown_duration: _constraints_pb2.DurationConstraints
    enabled: _constraints_pb2.BooleanConstraint
    mode: DPSMode
    on_start_target_percent: _constraints_pb2.UInt32Constraints
    def __init__(self, power_step: _Optional[_Union[_constraints_pb2.PowerConstraints, _Mapping]] = ..., hashrate_step: _Optional[_Union[_constraints_pb2.HashrateConstraints, _Mapping]] = ..., min_power_target: _Optional[_Union[_constraints_pb2.PowerConstraints, _Mapping]] = ..., min_hashrate_target: _Optional[_Union[_constraints_pb2.HashrateConstraints, _Mapping]] = ..., shutdown_enabled: _Optional[_Union[_constraints_pb2.BooleanConstraint, _Mapping]] = ..., shutdown_duration: _Optional[_Union[_constraints_pb2.DurationConstraints, _Mapping]] = ..., enabled: _Optional[_Union[_constraints_pb2.BooleanConstraint, _Mapping]] = ..., mode: _Optional[_Union[DPSMode, str]] = ..., on_start_target_percent: _Optional[_Union[_constraints_pb2.UInt32Constraints, _Mapping]] = ...) -> None: ...

class HashboardConstraints(_message.Message):
    __slots__ = ("hashboard_ids", "enabled", "frequency", "voltage", "quick_ramping_time_s")
    HASHBOARD_IDS_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    QUICK_RAMPING_TIME_S_FIELD_NUMBER: _ClassVar[int]
    hashboard_ids: _containers.RepeatedScalarFieldContainer[str]
    enabled: _constraints_pb2.BooleanConstraint
    frequency: _constraints_pb2.FrequencyConstraints
    voltage: _constraints_pb2.VoltageConstraints
    quick_ramping_time_s: _constraints_pb2.UInt32Constraints
    def __init__(self, hashboard_ids: _Optional[_Iterable[str]] = ..., enabled: _Optional[_Union[_constraints_pb2.BooleanConstraint, _Mapping]] = ..., frequency: _Optional[_Union[_constraints_pb2.FrequencyConstraints, _Mapping]] = ..., voltage: _Optional[_Union[_constraints_pb2.VoltageConstraints, _Mapping]] = ..., quick_ramping_time_s: _Optional[_Union[_constraints_pb2.UInt32Constraints, _Mapping]] = ...) -> None: ...

class PowerTargetProfile(_message.Message):
    __slots__ = ("created", "target", "measured_hashrate", "estimated_power_consumption")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MEASURED_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_POWER_CONSUMPTION_FIELD_NUMBER: _ClassVar[int]
    created: _timestamp_pb2.Timestamp
    target: _units_pb2.Power
    measured_hashrate: _units_pb2.GigaHashrate
    estimated_power_consumption: _units_pb2.Power
    def __init__(self, created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., measured_hashrate: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., estimated_power_consumption: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class HashrateTargetProfile(_message.Message):
    __slots__ = ("created", "target", "measured_hashrate", "estimated_power_consumption")
    CREATED_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MEASURED_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    ESTIMATED_POWER_CONSUMPTION_FIELD_NUMBER: _ClassVar[int]
    created: _timestamp_pb2.Timestamp
    target: _units_pb2.TeraHashrate
    measured_hashrate: _units_pb2.GigaHashrate
    estimated_power_consumption: _units_pb2.Power
    def __init__(self, created: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., measured_hashrate: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., estimated_power_consumption: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class MinerEfficiencyPoint(_message.Message):
    __slots__ = ("quality", "power_target", "consumption", "fan_speed", "outlet_temp", "ambient_temp", "hashrate", "frequency", "voltage")
    QUALITY_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    CONSUMPTION_FIELD_NUMBER: _ClassVar[int]
    FAN_SPEED_FIELD_NUMBER: _ClassVar[int]
    OUTLET_TEMP_FIELD_NUMBER: _ClassVar[int]
    AMBIENT_TEMP_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    quality: int
    power_target: _units_pb2.Power
    consumption: _units_pb2.Power
    fan_speed: int
    outlet_temp: _units_pb2.Temperature
    ambient_temp: _units_pb2.Temperature
    hashrate: _units_pb2.TeraHashrate
    frequency: _units_pb2.Frequency
    voltage: _units_pb2.Voltage
    def __init__(self, quality: _Optional[int] = ..., power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., consumption: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., fan_speed: _Optional[int] = ..., outlet_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., ambient_temp: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., hashrate: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ...) -> None: ...

class GetMinerEfficiencyProfileRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMinerEfficiencyProfileResponse(_message.Message):
    __slots__ = ("points",)
    POINTS_FIELD_NUMBER: _ClassVar[int]
    points: _containers.RepeatedCompositeFieldContainer[MinerEfficiencyPoint]
    def __init__(self, points: _Optional[_Iterable[_Union[MinerEfficiencyPoint, _Mapping]]] = ...) -> None: ...

class GetTunerStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetTunerStateResponse(_message.Message):
    __slots__ = ("overall_tuner_state", "power_target_mode_state", "hashrate_target_mode_state")
    OVERALL_TUNER_STATE_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_MODE_STATE_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_MODE_STATE_FIELD_NUMBER: _ClassVar[int]
    overall_tuner_state: TunerState
    power_target_mode_state: PowerTargetModeState
    hashrate_target_mode_state: HashrateTargetModeState
    def __init__(self, overall_tuner_state: _Optional[_Union[TunerState, str]] = ..., power_target_mode_state: _Optional[_Union[PowerTargetModeState, _Mapping]] = ..., hashrate_target_mode_state: _Optional[_Union[HashrateTargetModeState, _Mapping]] = ...) -> None: ...

class PowerTargetModeState(_message.Message):
    __slots__ = ("profile", "current_target")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TARGET_FIELD_NUMBER: _ClassVar[int]
    profile: PowerTargetProfile
    current_target: _units_pb2.Power
    def __init__(self, profile: _Optional[_Union[PowerTargetProfile, _Mapping]] = ..., current_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class HashrateTargetModeState(_message.Message):
    __slots__ = ("profile", "current_target")
    PROFILE_FIELD_NUMBER: _ClassVar[int]
    CURRENT_TARGET_FIELD_NUMBER: _ClassVar[int]
    profile: HashrateTargetProfile
    current_target: _units_pb2.TeraHashrate
    def __init__(self, profile: _Optional[_Union[HashrateTargetProfile, _Mapping]] = ..., current_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class ListTargetProfilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ListTargetProfilesResponse(_message.Message):
    __slots__ = ("power_target_profiles", "hashrate_target_profiles")
    POWER_TARGET_PROFILES_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_PROFILES_FIELD_NUMBER: _ClassVar[int]
    power_target_profiles: _containers.RepeatedCompositeFieldContainer[PowerTargetProfile]
    hashrate_target_profiles: _containers.RepeatedCompositeFieldContainer[HashrateTargetProfile]
    def __init__(self, power_target_profiles: _Optional[_Iterable[_Union[PowerTargetProfile, _Mapping]]] = ..., hashrate_target_profiles: _Optional[_Iterable[_Union[HashrateTargetProfile, _Mapping]]] = ...) -> None: ...

class SetDefaultPowerTargetRequest(_message.Message):
    __slots__ = ("save_action",)
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ...) -> None: ...

class SetPowerTargetRequest(_message.Message):
    __slots__ = ("save_action", "power_target")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    power_target: _units_pb2.Power
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class IncrementPowerTargetRequest(_message.Message):
    __slots__ = ("save_action", "power_target_increment")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_INCREMENT_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    power_target_increment: _units_pb2.Power
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., power_target_increment: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class DecrementPowerTargetRequest(_message.Message):
    __slots__ = ("save_action", "power_target_decrement")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_DECREMENT_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    power_target_decrement: _units_pb2.Power
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., power_target_decrement: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class SetPowerTargetResponse(_message.Message):
    __slots__ = ("power_target",)
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    power_target: _units_pb2.Power
    def __init__(self, power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class SetRelativeTargetRequest(_message.Message):
    __slots__ = ("save_action", "percentage", "reference")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    PERCENTAGE_FIELD_NUMBER: _ClassVar[int]
    REFERENCE_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    percentage: float
    reference: RelativeTargetReference
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., percentage: _Optional[float] = ..., reference: _Optional[_Union[RelativeTargetReference, str]] = ...) -> None: ...

class SetDefaultHashrateTargetRequest(_message.Message):
    __slots__ = ("save_action",)
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ...) -> None: ...

class SetHashrateTargetRequest(_message.Message):
    __slots__ = ("save_action", "hashrate_target")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    hashrate_target: _units_pb2.TeraHashrate
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class IncrementHashrateTargetRequest(_message.Message):
    __slots__ = ("save_action", "hashrate_target_increment")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_INCREMENT_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    hashrate_target_increment: _units_pb2.TeraHashrate
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., hashrate_target_increment: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class DecrementHashrateTargetRequest(_message.Message):
    __slots__ = ("save_action", "hashrate_target_decrement")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_DECREMENT_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    hashrate_target_decrement: _units_pb2.TeraHashrate
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., hashrate_target_decrement: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class SetHashrateTargetResponse(_message.Message):
    __slots__ = ("hashrate_target",)
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    hashrate_target: _units_pb2.TeraHashrate
    def __init__(self, hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class DPSPowerTarget(_message.Message):
    __slots__ = ("power_step", "min_power_target")
    POWER_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    power_step: _units_pb2.Power
    min_power_target: _units_pb2.Power
    def __init__(self, power_step: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., min_power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class DPSHashrateTarget(_message.Message):
    __slots__ = ("hashrate_step", "min_hashrate_target")
    HASHRATE_STEP_FIELD_NUMBER: _ClassVar[int]
    MIN_HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    hashrate_step: _units_pb2.TeraHashrate
    min_hashrate_target: _units_pb2.TeraHashrate
    def __init__(self, hashrate_step: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., min_hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class DPSTarget(_message.Message):
    __slots__ = ("power_target", "hashrate_target")
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    power_target: DPSPowerTarget
    hashrate_target: DPSHashrateTarget
    def __init__(self, power_target: _Optional[_Union[DPSPowerTarget, _Mapping]] = ..., hashrate_target: _Optional[_Union[DPSHashrateTarget, _Mapping]] = ...) -> None: ...

class SetDPSRequest(_message.Message):
    __slots__ = ("save_action", "enable", "enable_shutdown", "shutdown_duration", "target", "mode", "on_start_target_percent")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    ENABLE_SHUTDOWN_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_DURATION_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ON_START_TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    enable: bool
    enable_shutdown: bool
    shutdown_duration: _units_pb2.Hours
    target: DPSTarget
    mode: DPSMode
    on_start_target_percent: int
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., enable: _Optional[bool] = ..., enable_shutdown: _Optional[bool] = ..., shutdown_duration: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ..., target: _Optional[_Union[DPSTarget, _Mapping]] = ..., mode: _Optional[_Union[DPSMode, str]] = ..., on_start_target_percent: _Optional[int] = ...) -> None: ...

class SetDPSResponse(_message.Message):
    __slots__ = ("enabled", "shutdown_enabled", "shutdown_duration", "power_target", "hashrate_target", "mode", "on_start_target_percent")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_ENABLED_FIELD_NUMBER: _ClassVar[int]
    SHUTDOWN_DURATION_FIELD_NUMBER: _ClassVar[int]
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    ON_START_TARGET_PERCENT_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    shutdown_enabled: bool
    shutdown_duration: _units_pb2.Hours
    power_target: DPSPowerTarget
    hashrate_target: DPSHashrateTarget
    mode: DPSMode
    on_start_target_percent: int
    def __init__(self, enabled: _Optional[bool] = ..., shutdown_enabled: _Optional[bool] = ..., shutdown_duration: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ..., power_target: _Optional[_Union[DPSPowerTarget, _Mapping]] = ..., hashrate_target: _Optional[_Union[DPSHashrateTarget, _Mapping]] = ..., mode: _Optional[_Union[DPSMode, str]] = ..., on_start_target_percent: _Optional[int] = ...) -> None: ...

class HashboardPerformanceSettings(_message.Message):
    __slots__ = ("id", "frequency", "voltage")
    ID_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    frequency: _units_pb2.Frequency
    voltage: _units_pb2.Voltage
    def __init__(self, id: _Optional[str] = ..., frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ...) -> None: ...

class HashboardConfig(_message.Message):
    __slots__ = ("id", "enabled", "frequency", "voltage")
    ID_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    id: str
    enabled: bool
    frequency: _units_pb2.Frequency
    voltage: _units_pb2.Voltage
    def __init__(self, id: _Optional[str] = ..., enabled: _Optional[bool] = ..., frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ...) -> None: ...

class ManualPerformanceMode(_message.Message):
    __slots__ = ("global_frequency", "global_voltage", "hashboards")
    GLOBAL_FREQUENCY_FIELD_NUMBER: _ClassVar[int]
    GLOBAL_VOLTAGE_FIELD_NUMBER: _ClassVar[int]
    HASHBOARDS_FIELD_NUMBER: _ClassVar[int]
    global_frequency: _units_pb2.Frequency
    global_voltage: _units_pb2.Voltage
    hashboards: _containers.RepeatedCompositeFieldContainer[HashboardPerformanceSettings]
    def __init__(self, global_frequency: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., global_voltage: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., hashboards: _Optional[_Iterable[_Union[HashboardPerformanceSettings, _Mapping]]] = ...) -> None: ...

class PowerTargetMode(_message.Message):
    __slots__ = ("power_target",)
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    power_target: _units_pb2.Power
    def __init__(self, power_target: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class HashrateTargetMode(_message.Message):
    __slots__ = ("hashrate_target",)
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    hashrate_target: _units_pb2.TeraHashrate
    def __init__(self, hashrate_target: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class TunerPerformanceMode(_message.Message):
    __slots__ = ("power_target", "hashrate_target")
    POWER_TARGET_FIELD_NUMBER: _ClassVar[int]
    HASHRATE_TARGET_FIELD_NUMBER: _ClassVar[int]
    power_target: PowerTargetMode
    hashrate_target: HashrateTargetMode
    def __init__(self, power_target: _Optional[_Union[PowerTargetMode, _Mapping]] = ..., hashrate_target: _Optional[_Union[HashrateTargetMode, _Mapping]] = ...) -> None: ...

class SetPerformanceModeRequest(_message.Message):
    __slots__ = ("save_action", "mode")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    MODE_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    mode: PerformanceMode
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., mode: _Optional[_Union[PerformanceMode, _Mapping]] = ...) -> None: ...

class PerformanceMode(_message.Message):
    __slots__ = ("manual_mode", "tuner_mode")
    MANUAL_MODE_FIELD_NUMBER: _ClassVar[int]
    TUNER_MODE_FIELD_NUMBER: _ClassVar[int]
    manual_mode: ManualPerformanceMode
    tuner_mode: TunerPerformanceMode
    def __init__(self, manual_mode: _Optional[_Union[ManualPerformanceMode, _Mapping]] = ..., tuner_mode: _Optional[_Union[TunerPerformanceMode, _Mapping]] = ...) -> None: ...

class GetPerformanceModeRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveTunedProfilesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RemoveTunedProfilesResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetQuickRampingRequest(_message.Message):
    __slots__ = ("save_action", "up_s", "down_s")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    UP_S_FIELD_NUMBER: _ClassVar[int]
    DOWN_S_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    up_s: int
    down_s: int
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., up_s: _Optional[int] = ..., down_s: _Optional[int] = ...) -> None: ...

class QuickRampingResponse(_message.Message):
    __slots__ = ("up_s", "down_s")
    UP_S_FIELD_NUMBER: _ClassVar[int]
    DOWN_S_FIELD_NUMBER: _ClassVar[int]
    up_s: int
    down_s: int
    def __init__(self, up_s: _Optional[int] = ..., down_s: _Optional[int] = ...) -> None: ...

class SetDefaultQuickRampingRequest(_message.Message):
    __slots__ = ("save_action",)
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ...) -> None: ...
