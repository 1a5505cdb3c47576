from asicfleet.sim.bos_api.bos.v1 import units_pb2 as _units_pb2
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class LicenseType(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    LICENSE_TYPE_UNSPECIFIED: _ClassVar[LicenseType]
    LICENSE_TYPE_STANDARD: _ClassVar[LicenseType]
    LICENSE_TYPE_CUSTOM: _ClassVar[LicenseType]
LICENSE_TYPE_UNSPECIFIED: LicenseType
LICENSE_TYPE_STANDARD: LicenseType
LICENSE_TYPE_CUSTOM: LicenseType

class NoneLicense(_message.Message):
    __slots__ = ("time_to_restricted",)
    TIME_TO_RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    time_to_restricted: int
    def __init__(self, time_to_restricted: _Optional[int] = ...) -> None: ...

class LimitedLicense(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ValidLicense(_message.Message):
    __slots__ = ("type", "contract_name", "time_to_restricted", "dev_fee")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_NAME_FIELD_NUMBER: _ClassVar[int]
    TIME_TO_RESTRICTED_FIELD_NUMBER: _ClassVar[int]
    DEV_FEE_FIELD_NUMBER: _ClassVar[int]
    type: LicenseType
    contract_name: str
    time_to_restricted: int
    dev_fee: _units_pb2.BasesPoints
    def __init__(self, type: _Optional[_Union[LicenseType, str]] = ..., contract_name: _Optional[str] = ..., time_to_restricted: _Optional[int] = ..., dev_fee: _Optional[_Union[_units_pb2.BasesPoints, _Mapping]] = ...) -> None: ...

class ExpiredLicense(_message.Message):
    __slots__ = ("type", "contract_name", "dev_fee")
    TYPE_FIELD_NUMBER: _ClassVar[int]
    CONTRACT_NAME_FIELD_NUMBER: _ClassVar[int]
    DEV_FEE_FIELD_NUMBER: _ClassVar[int]
    type: LicenseType
    contract_name: str
    dev_fee: _units_pb2.BasesPoints
    def __init__(self, type: _Optional[_Union[LicenseType, str]] = ..., contract_name: _Optional[str] = ..., dev_fee: _Optional[_Union[_units_pb2.BasesPoints, _Mapping]] = ...) -> None: ...

class GetLicenseStateRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetLicenseStateResponse(_message.Message):
    __slots__ = ("none", "limited", "valid", "expired")
    NONE_FIELD_NUMBER: _ClassVar[int]
    LIMITED_FIELD_NUMBER: _ClassVar[int]
    VALID_FIELD_NUMBER: _ClassVar[int]
    EXPIRED_FIELD_NUMBER: _ClassVar[int]
    none: NoneLicense
    limited: LimitedLicense
    valid: ValidLicense
    expired: ExpiredLicense
    def __init__(self, none: _Optional[_Union[NoneLicense, _Mapping]] = ..., limited: _Optional[_Union[LimitedLicense, _Mapping]] = ..., valid: _Optional[_Union[ValidLicense, _Mapping]] = ..., expired: _Optional[_Union[ExpiredLicense, _Mapping]] = ...) -> None: ...

class ApplyContractKeyRequest(_message.Message):
    __slots__ = ("contract_key",)
    CONTRACT_KEY_FIELD_NUMBER: _ClassVar[int]
    contract_key: str
    def __init__(self, contract_key: _Optional[str] = ...) -> None: ...

class ApplyContractKeyResponse(_message.Message):
    __slots__ = ("successful",)
    SUCCESSFUL_FIELD_NUMBER: _ClassVar[int]
    successful: bool
    def __init__(self, successful: _Optional[bool] = ...) -> None: ...
