from asicfleet.sim.bos_api.bos.v1 import cooling_pb2 as _cooling_pb2
from asicfleet.sim.bos_api.bos.v1 import performance_pb2 as _performance_pb2
from asicfleet.sim.bos_api.bos.v1 import pool_pb2 as _pool_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class GetMinerConfigurationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetMinerConfigurationResponse(_message.Message):
    __slots__ = ("pool_groups", "temperature", "tuner", "dps", "hashboard_config")
    POOL_GROUPS_FIELD_NUMBER: _ClassVar[int]
    TEMPERATURE_FIELD_NUMBER: _ClassVar[int]
    TUNER_FIELD_NUMBER: _ClassVar[int]
    DPS_FIELD_NUMBER: _ClassVar[int]
    HASHBOARD_CONFIG_FIELD_NUMBER: _ClassVar[int]
    pool_groups: _containers.RepeatedCompositeFieldContainer[_pool_pb2.PoolGroupConfiguration]
    temperature: _cooling_pb2.CoolingConfiguration
    tuner: _performance_pb2.TunerConfiguration
    dps: _performance_pb2.DPSConfiguration
    hashboard_config: _performance_pb2.HashboardPerformanceConfiguration
    def __init__(self, pool_groups: _Optional[_Iterable[_Union[_pool_pb2.PoolGroupConfiguration, _Mapping]]] = ..., temperature: _Optional[_Union[_cooling_pb2.CoolingConfiguration, _Mapping]] = ..., tuner: _Optional[_Union[_performance_pb2.TunerConfiguration, _Mapping]] = ..., dps: _Optional[_Union[_performance_pb2.DPSConfiguration, _Mapping]] = ..., hashboard_config: _Optional[_Union[_performance_pb2.HashboardPerformanceConfiguration, _Mapping]] = ...) -> None: ...

class GetConstraintsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetConstraintsResponse(_message.Message):
    __slots__ = ("tuner_constraints", "cooling_constraints", "dps_constraints", "hashboards_constraints")
    TUNER_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    COOLING_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    DPS_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    HASHBOARDS_CONSTRAINTS_FIELD_NUMBER: _ClassVar[int]
    tuner_constraints: _performance_pb2.TunerConstraints
    cooling_constraints: _cooling_pb2.CoolingConstraints
    dps_constraints: _performance_pb2.DPSConstraints
    hashboards_constraints: _performance_pb2.HashboardConstraints
    def __init__(self, tuner_constraints: _Optional[_Union[_performance_pb2.TunerConstraints, _Mapping]] = ..., cooling_constraints: _Optional[_Union[_cooling_pb2.CoolingConstraints, _Mapping]] = ..., dps_constraints: _Optional[_Union[_performance_pb2.DPSConstraints, _Mapping]] = ..., hashboards_constraints: _Optional[_Union[_performance_pb2.HashboardConstraints, _Mapping]] = ...) -> None: ...
