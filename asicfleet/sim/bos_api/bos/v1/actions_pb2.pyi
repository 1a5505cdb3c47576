from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor

class StartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StartResponse(_message.Message):
    __slots__ = ("already_running",)
    ALREADY_RUNNING_FIELD_NUMBER: _ClassVar[int]
    already_running: bool
    def __init__(self, already_running: _Optional[bool] = ...) -> None: ...

class RestartRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RestartResponse(_message.Message):
    __slots__ = ("already_running",)
    ALREADY_RUNNING_FIELD_NUMBER: _ClassVar[int]
    already_running: bool
    def __init__(self, already_running: _Optional[bool] = ...) -> None: ...

class RebootRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class RebootResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StopRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class StopResponse(_message.Message):
    __slots__ = ("already_stopped",)
    ALREADY_STOPPED_FIELD_NUMBER: _ClassVar[int]
    already_stopped: bool
    def __init__(self, already_stopped: _Optional[bool] = ...) -> None: ...

class FactoryResetRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class FactoryResetResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseMiningRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class PauseMiningResponse(_message.Message):
    __slots__ = ("already_paused",)
    ALREADY_PAUSED_FIELD_NUMBER: _ClassVar[int]
    already_paused: bool
    def __init__(self, already_paused: _Optional[bool] = ...) -> None: ...

class ResumeMiningRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ResumeMiningResponse(_message.Message):
    __slots__ = ("already_mining",)
    ALREADY_MINING_FIELD_NUMBER: _ClassVar[int]
    already_mining: bool
    def __init__(self, already_mining: _Optional[bool] = ...) -> None: ...

class SetLocateDeviceStatusRequest(_message.Message):
    __slots__ = ("enable",)
    ENABLE_FIELD_NUMBER: _ClassVar[int]
    enable: bool
    def __init__(self, enable: _Optional[bool] = ...) -> None: ...

class LocateDeviceStatusResponse(_message.Message):
    __slots__ = ("enabled",)
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    enabled: bool
    def __init__(self, enabled: _Optional[bool] = ...) -> None: ...

class GetLocateDeviceStatusRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...
