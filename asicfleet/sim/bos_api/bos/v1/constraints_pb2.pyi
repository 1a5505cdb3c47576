from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UInt32Constraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: int
    min: int
    max: int
    def __init__(self, default: _Optional[int] = ..., min: _Optional[int] = ..., max: _Optional[int] = ...) -> None: ...

class DoubleConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: float
    min: float
    max: float
    def __init__(self, default: _Optional[float] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class PowerConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.Power
    min: _units_pb2.Power
    max: _units_pb2.Power
    def __init__(self, default: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.Power, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.Power, _Mapping]] = ...) -> None: ...

class HashrateConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.TeraHashrate
    min: _units_pb2.TeraHashrate
    max: _units_pb2.TeraHashrate
    def __init__(self, default: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.TeraHashrate, _Mapping]] = ...) -> None: ...

class TemperatureConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.Temperature
    min: _units_pb2.Temperature
    max: _units_pb2.Temperature
    def __init__(self, default: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.Temperature, _Mapping]] = ...) -> None: ...

class BooleanConstraint(_message.Message):
    __slots__ = ("default",)
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    default: bool
    def __init__(self, default: _Optional[bool] = ...) -> None: ...

class DurationConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.Hours
    min: _units_pb2.Hours
    max: _units_pb2.Hours
    def __init__(self, default: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.Hours, _Mapping]] = ...) -> None: ...

class FrequencyConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.Frequency
    min: _units_pb2.Frequency
    max: _units_pb2.Frequency
    def __init__(self, default: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.Frequency, _Mapping]] = ...) -> None: ...

class VoltageConstraints(_message.Message):
    __slots__ = ("default", "min", "max")
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    default: _units_pb2.Voltage
    min: _units_pb2.Voltage
    max: _units_pb2.Voltage
    def __init__(self, default: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., min: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ..., max: _Optional[_Union[_units_pb2.Voltage, _Mapping]] = ...) -> None: ...
