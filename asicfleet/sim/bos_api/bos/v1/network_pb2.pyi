from google.protobuf.internal import containers as _containers
from google.protobuf.internal import enum_type_wrapper as _enum_type_wrapper
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class NetworkProtocol(int, metaclass=_enum_type_wrapper.EnumTypeWrapper):
    __slots__ = ()
    NETWORK_PROTOCOL_UNSPECIFIED: _ClassVar[NetworkProtocol]
    NETWORK_PROTOCOL_DHCP: _ClassVar[NetworkProtocol]
    NETWORK_PROTOCOL_STATIC: _ClassVar[NetworkProtocol]
NETWORK_PROTOCOL_UNSPECIFIED: NetworkProtocol
NETWORK_PROTOCOL_DHCP: NetworkProtocol
NETWORK_PROTOCOL_STATIC: NetworkProtocol

class GetNetworkConfigurationRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNetworkConfigurationResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: NetworkConfiguration
    def __init__(self, network: _Optional[_Union[NetworkConfiguration, _Mapping]] = ...) -> None: ...

class SetNetworkConfigurationRequest(_message.Message):
    __slots__ = ("dhcp", "static", "hostname")
    DHCP_FIELD_NUMBER: _ClassVar[int]
    STATIC_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    dhcp: Dhcp
    static: Static
    hostname: str
    def __init__(self, dhcp: _Optional[_Union[Dhcp, _Mapping]] = ..., static: _Optional[_Union[Static, _Mapping]] = ..., hostname: _Optional[str] = ...) -> None: ...

class SetNetworkConfigurationResponse(_message.Message):
    __slots__ = ("network",)
    NETWORK_FIELD_NUMBER: _ClassVar[int]
    network: NetworkConfiguration
    def __init__(self, network: _Optional[_Union[NetworkConfiguration, _Mapping]] = ...) -> None: ...

class NetworkConfiguration(_message.Message):
    __slots__ = ("dhcp", "static", "hostname")
    DHCP_FIELD_NUMBER: _ClassVar[int]
    STATIC_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    dhcp: Dhcp
    static: Static
    hostname: str
    def __init__(self, dhcp: _Optional[_Union[Dhcp, _Mapping]] = ..., static: _Optional[_Union[Static, _Mapping]] = ..., hostname: _Optional[str] = ...) -> None: ...

class Dhcp(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class Static(_message.Message):
    __slots__ = ("address", "netmask", "gateway", "dns_servers")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NETMASK_FIELD_NUMBER: _ClassVar[int]
    GATEWAY_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVERS_FIELD_NUMBER: _ClassVar[int]
    address: str
    netmask: str
    gateway: str
    dns_servers: _containers.RepeatedScalarFieldContainer[str]
    def __init__(self, address: _Optional[str] = ..., netmask: _Optional[str] = ..., gateway: _Optional[str] = ..., dns_servers: _Optional[_Iterable[str]] = ...) -> None: ...

class GetNetworkInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class GetNetworkInfoResponse(_message.Message):
    __slots__ = ("name", "mac_address", "hostname", "protocol", "dns_servers", "networks", "default_gateway")
    NAME_FIELD_NUMBER: _ClassVar[int]
    MAC_ADDRESS_FIELD_NUMBER: _ClassVar[int]
    HOSTNAME_FIELD_NUMBER: _ClassVar[int]
    PROTOCOL_FIELD_NUMBER: _ClassVar[int]
    DNS_SERVERS_FIELD_NUMBER: _ClassVar[int]
    NETWORKS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_GATEWAY_FIELD_NUMBER: _ClassVar[int]
    name: str
    mac_address: str
    hostname: str
    protocol: NetworkProtocol
    dns_servers: _containers.RepeatedScalarFieldContainer[str]
    networks: _containers.RepeatedCompositeFieldContainer[IpNetwork]
    default_gateway: str
    def __init__(self, name: _Optional[str] = ..., mac_address: _Optional[str] = ..., hostname: _Optional[str] = ..., protocol: _Optional[_Union[NetworkProtocol, str]] = ..., dns_servers: _Optional[_Iterable[str]] = ..., networks: _Optional[_Iterable[_Union[IpNetwork, _Mapping]]] = ..., default_gateway: _Optional[str] = ...) -> None: ...

class IpNetwork(_message.Message):
    __slots__ = ("address", "netmask")
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    NETMASK_FIELD_NUMBER: _ClassVar[int]
    address: str
    netmask: str
    def __init__(self, address: _Optional[str] = ..., netmask: _Optional[str] = ...) -> None: ...
