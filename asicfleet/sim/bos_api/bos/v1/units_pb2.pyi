from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class DayOfWeek(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    DAY_OF_WEEK_UNSPECIFIED: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_MONDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_TUESDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_WEDNESDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_THURSDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_FRIDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_SATURDAY: _ClassVar[DayOfWeek]
    DAY_OF_WEEK_SUNDAY: _ClassVar[DayOfWeek]
DAY_OF_WEEK_UNSPECIFIED: DayOfWeek
DAY_OF_WEEK_MONDAY: DayOfWeek
DAY_OF_WEEK_TUESDAY: DayOfWeek
DAY_OF_WEEK_WEDNESDAY: DayOfWeek
DAY_OF_WEEK_THURSDAY: DayOfWeek
DAY_OF_WEEK_FRIDAY: DayOfWeek
DAY_OF_WEEK_SATURDAY: DayOfWeek
DAY_OF_WEEK_SUNDAY: DayOfWeek

class MegaHashrate(_message.Message):
    __slots__ = ("megahash_per_second",)
    MEGAHASH_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    megahash_per_second: float
    def __init__(self, megahash_per_second: _Optional[float] = ...) -> None: ...

class GigaHashrate(_message.Message):
    __slots__ = ("gigahash_per_second",)
    GIGAHASH_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    gigahash_per_second: float
    def __init__(self, gigahash_per_second: _Optional[float] = ...) -> None: ...

class TeraHashrate(_message.Message):
    __slots__ = ("terahash_per_second",)
    TERAHASH_PER_SECOND_FIELD_NUMBER: _ClassVar[int]
    terahash_per_second: float
    def __init__(self, terahash_per_second: _Optional[float] = ...) -> None: ...

class Frequency(_message.Message):
    __slots__ = ("hertz",)
    HERTZ_FIELD_NUMBER: _ClassVar[int]
    hertz: float
    def __init__(self, hertz: _Optional[float] = ...) -> None: ...

class Voltage(_message.Message):
    __slots__ = ("volt",)
    VOLT_FIELD_NUMBER: _ClassVar[int]
    volt: float
    def __init__(self, volt: _Optional[float] = ...) -> None: ...

class Power(_message.Message):
    __slots__ = ("watt",)
    WATT_FIELD_NUMBER: _ClassVar[int]
    watt: int
    def __init__(self, watt: _Optional[int] = ...) -> None: ...

class PowerEfficiency(_message.Message):
    __slots__ = ("joule_per_terahash",)
    JOULE_PER_TERAHASH_FIELD_NUMBER: _ClassVar[int]
    joule_per_terahash: float
    def __init__(self, joule_per_terahash: _Optional[float] = ...) -> None: ...

class Temperature(_message.Message):
    __slots__ = ("degree_c",)
    DEGREE_C_FIELD_NUMBER: _ClassVar[int]
    degree_c: float
    def __init__(self, degree_c: _Optional[float] = ...) -> None: ...

class BasesPoints(_message.Message):
    __slots__ = ("bsp",)
    BSP_FIELD_NUMBER: _ClassVar[int]
    bsp: int
    def __init__(self, bsp: _Optional[int] = ...) -> None: ...

class Hours(_message.Message):
    __slots__ = ("hours",)
    HOURS_FIELD_NUMBER: _ClassVar[int]
    hours: int
    def __init__(self, hours: _Optional[int] = ...) -> None: ...
