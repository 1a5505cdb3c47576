import datetime

from asicfleet.sim.bos_api.bos.v1 import common_pb2 as _common_pb2
from google.protobuf import timestamp_pb2 as _timestamp_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Quota(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: int
    def __init__(self, value: _Optional[int] = ...) -> None: ...

class FixedShareRatio(_message.Message):
    __slots__ = ("value",)
    VALUE_FIELD_NUMBER: _ClassVar[int]
    value: float
    def __init__(self, value: _Optional[float] = ...) -> None: ...

class PoolGroupConfiguration(_message.Message):
    __slots__ = ("uid", "name", "quota", "fixed_share_ratio", "pools")
    UID_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    FIXED_SHARE_RATIO_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    uid: str
    name: str
    quota: Quota
    fixed_share_ratio: FixedShareRatio
    pools: _containers.RepeatedCompositeFieldContainer[PoolConfiguration]
    def __init__(self, uid: _Optional[str] = ..., name: _Optional[str] = ..., quota: _Optional[_Union[Quota, _Mapping]] = ..., fixed_share_ratio: _Optional[_Union[FixedShareRatio, _Mapping]] = ..., pools: _Optional[_Iterable[_Union[PoolConfiguration, _Mapping]]] = ...) -> None: ...

class PoolConfiguration(_message.Message):
    __slots__ = ("uid", "url", "user", "password", "enabled")
    UID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    PASSWORD_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    uid: str
    url: str
    user: str
    password: str
    enabled: bool
    def __init__(self, uid: _Optional[str] = ..., url: _Optional[str] = ..., user: _Optional[str] = ..., password: _Optional[str] = ..., enabled: _Optional[bool] = ...) -> None: ...

class PoolGroup(_message.Message):
    __slots__ = ("name", "quota", "fixed_share_ratio", "pools", "uid")
    NAME_FIELD_NUMBER: _ClassVar[int]
    QUOTA_FIELD_NUMBER: _ClassVar[int]
    FIXED_SHARE_RATIO_FIELD_NUMBER: _ClassVar[int]
    POOLS_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    name: str
    quota: Quota
    fixed_share_ratio: FixedShareRatio
    pools: _containers.RepeatedCompositeFieldContainer[Pool]
    uid: str
    def __init__(self, name: _Optional[str] = ..., quota: _Optional[_Union[Quota, _Mapping]] = ..., fixed_share_ratio: _Optional[_Union[FixedShareRatio, _Mapping]] = ..., pools: _Optional[_Iterable[_Union[Pool, _Mapping]]] = ..., uid: _Optional[str] = ...) -> None: ...

class Pool(_message.Message):
    __slots__ = ("uid", "url", "user", "enabled", "alive", "active", "stats")
    UID_FIELD_NUMBER: _ClassVar[int]
    URL_FIELD_NUMBER: _ClassVar[int]
    USER_FIELD_NUMBER: _ClassVar[int]
    ENABLED_FIELD_NUMBER: _ClassVar[int]
    ALIVE_FIELD_NUMBER: _ClassVar[int]
    ACTIVE_FIELD_NUMBER: _ClassVar[int]
    STATS_FIELD_NUMBER: _ClassVar[int]
    uid: str
    url: str
    user: str
    enabled: bool
    alive: bool
    active: bool
    stats: PoolStats
    def __init__(self, uid: _Optional[str] = ..., url: _Optional[str] = ..., user: _Optional[str] = ..., enabled: _Optional[bool] = ..., alive: _Optional[bool] = ..., active: _Optional[bool] = ..., stats: _Optional[_Union[PoolStats, _Mapping]] = ...) -> None: ...

class PoolStats(_message.Message):
    __slots__ = ("accepted_shares", "rejected_shares", "stale_shares", "last_difficulty", "best_share", "generated_work", "last_share_time", "best_share_str")
    ACCEPTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    REJECTED_SHARES_FIELD_NUMBER: _ClassVar[int]
    STALE_SHARES_FIELD_NUMBER: _ClassVar[int]
    LAST_DIFFICULTY_FIELD_NUMBER: _ClassVar[int]
    BEST_SHARE_FIELD_NUMBER: _ClassVar[int]
    GENERATED_WORK_FIELD_NUMBER: _ClassVar[int]
    LAST_SHARE_TIME_FIELD_NUMBER: _ClassVar[int]
    BEST_SHARE_STR_FIELD_NUMBER: _ClassVar[int]
    accepted_shares: int
    rejected_shares: int
    stale_shares: int
    last_difficulty: int
    best_share: int
    generated_work: int
    last_share_time: _timestamp_pb2.Timestamp
    best_share_str: str
    def __init__(self, accepted_shares: _Optional[int] = ..., rejected_shares: _Optional[int] = ..., stale_shares: _Optional[int] = ..., last_difficulty: _Optional[int] = ..., best_share: _Optional[int] = ..., generated_work: _Optional[int] = ..., last_share_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., best_share_str: _Optional[str] = ...) -> None: ...

class GetPoolGroupsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetPoolGroupsResponse(_message.Message):
    __slots__ = ("pool_groups",)
    POOL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    pool_groups: _containers.RepeatedCompositeFieldContainer[PoolGroup]
    def __init__(self, pool_groups: _Optional[_Iterable[_Union[PoolGroup, _Mapping]]] = ...) -> None: ...

class CreatePoolGroupRequest(_message.Message):
    __slots__ = ("save_action", "group")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    group: PoolGroupConfiguration
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., group: _Optional[_Union[PoolGroupConfiguration, _Mapping]] = ...) -> None: ...

class CreatePoolGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: PoolGroupConfiguration
    def __init__(self, group: _Optional[_Union[PoolGroupConfiguration, _Mapping]] = ...) -> None: ...

class UpdatePoolGroupRequest(_message.Message):
    __slots__ = ("save_action", "group")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    GROUP_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    group: PoolGroupConfiguration
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., group: _Optional[_Union[PoolGroupConfiguration, _Mapping]] = ...) -> None: ...

class UpdatePoolGroupResponse(_message.Message):
    __slots__ = ("group",)
    GROUP_FIELD_NUMBER: _ClassVar[int]
    group: PoolGroupConfiguration
    def __init__(self, group: _Optional[_Union[PoolGroupConfiguration, _Mapping]] = ...) -> None: ...

class RemovePoolGroupRequest(_message.Message):
    __slots__ = ("save_action", "uid")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    UID_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    uid: str
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., uid: _Optional[str] = ...) -> None: ...

class RemovePoolGroupResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SetPoolGroupsRequest(_message.Message):
    __slots__ = ("save_action", "pool_groups")
    SAVE_ACTION_FIELD_NUMBER: _ClassVar[int]
    POOL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    save_action: _common_pb2.SaveAction
    pool_groups: _containers.RepeatedCompositeFieldContainer[PoolGroupConfiguration]
    def __init__(self, save_action: _Optional[_Union[_common_pb2.SaveAction, str]] = ..., pool_groups: _Optional[_Iterable[_Union[PoolGroupConfiguration, _Mapping]]] = ...) -> None: ...

class SetPoolGroupsResponse(_message.Message):
    __slots__ = ("pool_groups",)
    POOL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    pool_groups: _containers.RepeatedCompositeFieldContainer[PoolGroupConfiguration]
    def __init__(self, pool_groups: _Optional[_Iterable[_Union[PoolGroupConfiguration, _Mapping]]] = ...) -> None: ...
