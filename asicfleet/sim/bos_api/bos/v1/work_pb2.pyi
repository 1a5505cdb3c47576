from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class RealHashrate(_message.Message):
    __slots__ = ("last_5s", "last_15s", "last_30s", "last_1m", "last_5m", "last_15m", "last_30m", "last_1h", "last_24h", "since_restart")
    LAST_5S_FIELD_NUMBER: _ClassVar[int]
    LAST_15S_FIELD_NUMBER: _ClassVar[int]
    LAST_30S_FIELD_NUMBER: _ClassVar[int]
    LAST_1M_FIELD_NUMBER: _ClassVar[int]
    LAST_5M_FIELD_NUMBER: _ClassVar[int]
    LAST_15M_FIELD_NUMBER: _ClassVar[int]
    LAST_30M_FIELD_NUMBER: _ClassVar[int]
    LAST_1H_FIELD_NUMBER: _ClassVar[int]
    LAST_24H_FIELD_NUMBER: _ClassVar[int]
    SINCE_RESTART_FIELD_NUMBER: _ClassVar[int]
    last_5s: _units_pb2.GigaHashrate
    last_15s: _units_pb2.GigaHashrate
    last_30s: _units_pb2.GigaHashrate
    last_1m: _units_pb2.GigaHashrate
    last_5m: _units_pb2.GigaHashrate
    last_15m: _units_pb2.GigaHashrate
    last_30m: _units_pb2.GigaHashrate
    last_1h: _units_pb2.GigaHashrate
    last_24h: _units_pb2.GigaHashrate
    since_restart: _units_pb2.GigaHashrate
    def __init__(self, last_5s: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_15s: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_30s: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_1m: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_5m: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_15m: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_30m: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_1h: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., last_24h: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., since_restart: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ...) -> None: ...

class WorkSolverStats(_message.Message):
    __slots__ = ("real_hashrate", "nominal_hashrate", "error_hashrate", "found_blocks", "best_share", "best_share_str")
    REAL_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    NOMINAL_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    ERROR_HASHRATE_FIELD_NUMBER: _ClassVar[int]
    FOUND_BLOCKS_FIELD_NUMBER: _ClassVar[int]
    BEST_SHARE_FIELD_NUMBER: _ClassVar[int]
    BEST_SHARE_STR_FIELD_NUMBER: _ClassVar[int]
    real_hashrate: RealHashrate
    nominal_hashrate: _units_pb2.GigaHashrate
    error_hashrate: _units_pb2.MegaHashrate
    found_blocks: int
    best_share: int
    best_share_str: str
    def __init__(self, real_hashrate: _Optional[_Union[RealHashrate, _Mapping]] = ..., nominal_hashrate: _Optional[_Union[_units_pb2.GigaHashrate, _Mapping]] = ..., error_hashrate: _Optional[_Union[_units_pb2.MegaHashrate, _Mapping]] = ..., found_blocks: _Optional[int] = ..., best_share: _Optional[int] = ..., best_share_str: _Optional[str] = ...) -> None: ...
