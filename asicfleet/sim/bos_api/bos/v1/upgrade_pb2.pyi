import datetime

from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class UpgradeTime(_message.Message):
    __slots__ = ("hours", "minutes", "seconds")
    HOURS_FIELD_NUMBER: _ClassVar[int]
    MINUTES_FIELD_NUMBER: _ClassVar[int]
    SECONDS_FIELD_NUMBER: _ClassVar[int]
    hours: int
    minutes: int
    seconds: int
    def __init__(self, hours: _Optional[int] = ..., minutes: _Optional[int] = ..., seconds: _Optional[int] = ...) -> None: ...

class DailySchedule(_message.Message):
    __slots__ = ("time",)
    TIME_FIELD_NUMBER: _ClassVar[int]
    time: UpgradeTime
    def __init__(self, time: _Optional[_Union[UpgradeTime, _Mapping]] = ...) -> None: ...

class WeeklySchedule(_message.Message):
    __slots__ = ("day_of_week", "time")
    DAY_OF_WEEK_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    day_of_week: _units_pb2.DayOfWeek
    time: UpgradeTime
    def __init__(self, day_of_week: _Optional[_Union[_units_pb2.DayOfWeek, str]] = ..., time: _Optional[_Union[UpgradeTime, _Mapping]] = ...) -> None: ...

class MonthlySchedule(_message.Message):
    __slots__ = ("day_of_month", "time")
    DAY_OF_MONTH_FIELD_NUMBER: _ClassVar[int]
    TIME_FIELD_NUMBER: _ClassVar[int]
    day_of_month: int
    time: UpgradeTime
    def __init__(self, day_of_month: _Optional[int] = ..., time: _Optional[_Union[UpgradeTime, _Mapping]] = ...) -> None: ...

class AutoUpgradeSchedule(_message.Message):
    __slots__ = ("daily", "weekly", "monthly")
    DAILY_FIELD_NUMBER: _ClassVar[int]
    WEEKLY_FIELD_NUMBER: _ClassVar[int]
    MONTHLY_FIELD_NUMBER: _ClassVar[int]
    daily: DailySchedule
    weekly: WeeklySchedule
    monthly: MonthlySchedule
    def __init__(self, daily: _Optional[_Union[DailySchedule, _Mapping]] = ..., weekly: _Optional[_Union[WeeklySchedule, _Mapping]] = ..., monthly: _Optional[_Union[MonthlySchedule, _Mapping]] = ...) -> None: ...

class UpdateAutoUpgradeConfigRequest(_message.Message):
    __slots__ = ("enabled", "schedule")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    schedule: AutoUpgradeSchedule
    def __init__(self, enabled: _Optional[bool] = ..., schedule: _Optional[_Union[AutoUpgradeSchedule, _Mapping]] = ...) -> None: ...

class UpdateAutoUpgradeConfigResponse(_message.Message):
    __slots__ = ("enabled", "next_execution")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    next_execution: _timestamp_pb2.Timestamp
    def __init__(self, enabled: _Optional[bool] = ..., next_execution: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class GetAutoUpgradeStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetAutoUpgradeStatusResponse(_message.Message):
    __slots__ = ("enabled", "schedule", "next_execution", "last_execution")
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    SCHEDULE_FIELD_NUMBER: _ClassVar[int]
    NEXT_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    LAST_EXECUTION_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    schedule: AutoUpgradeSchedule
    next_execution: _timestamp_pb2.Timestamp
    last_execution: _timestamp_pb2.Timestamp
    def __init__(self, enabled: _Optional[bool] = ..., schedule: _Optional[_Union[AutoUpgradeSchedule, _Mapping]] = ..., next_execution: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_execution: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ...) -> None: ...

class SystemUpgradeMetadata(_message.Message):
    __slots__ = ("size", "hash", "discard_settings", "disable_cleanup")
    SIZE_FIELD_NUMBER: _ClassVar[int]
    HASH_FIELD_NUMBER: _ClassVar[int]
    DISCARD_SETTINGS_FIELD_NUMBER: _ClassVar[int]
    DISABLE_CLEANUP_FIELD_NUMBER: _ClassVar[int]
    size: int
    hash: str
    discard_settings: bool
    disable_cleanup: bool
    def __init__(self, size: _Optional[int] = ..., hash: _Optional[str] = ..., discard_settings: _Optional[bool] = ..., disable_cleanup: _Optional[bool] = ...) -> None: ...

class SystemUpgradeRequest(_message.Message):
    __slots__ = ("metadata", "data")
    METADATA_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    metadata: SystemUpgradeMetadata
    data: bytes
    def __init__(self, metadata: _Optional[_Union[SystemUpgradeMetadata, _Mapping]] = ..., data: _Optional[bytes] = ...) -> None: ...

class SystemUpgradeResponse(_message.Message):
    __slots__ = ("successful",)
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    successful: bool
    def __init__(self, successful: _Optional[bool] = ...) -> None: ...

class RestoreStockRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RestoreStockResponse(_message.Message):
    __slots__ = ("successful",)
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    successful: bool
    def __init__(self, successful: _Optional[bool] = ...) -> None: ...
