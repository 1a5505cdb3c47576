"""gRPC for simulated firmwares: a `grpc.aio` server per miner, messages as protobuf (`protobuf`).

Messages: the firmware's own generated message classes (e.g. `asicfleet.sim.bos_api`), converted from /
to the plain dicts a family already builds for its JSON APIs, so both always agree. Dict rules: keys
that are not fields of the message are skipped, as are None values; a oneof's member may be nested
under the oneof's name (`{"strategy": {"quota": {...}}}`, as REST gateways render oneofs); a
google.protobuf.*Value wrapper field holds the bare value. Decoding gives the fields present (proto3:
a scalar holding its default is not on the wire unless the field has explicit presence), oneofs
flattened into their member, and refuses a known field sent with the wrong wire type.

Server: `GrpcServer` serves one miner's calls on its loopback address, on the running event loop,
through the miner's `handle_grpc(GrpcCall) -> GrpcReply`. The miner's faults apply to every call:
slow, malformed (an invalid message), truncated (the response headers, then the connection closes
without a message or status), oversized (one bytes field of `oversized_bytes`, then the connection
closes without a status), auth failure (the family's own), hung (the call is never answered) and reset
(the call's connection is reset). The connection-level faults act once a call arrives: grpc owns the
sockets, so the HTTP/2 handshake has happened by then.
"""

from __future__ import annotations

import asyncio
import errno
import functools
import os
import socket
import struct
from collections.abc import AsyncIterator, Iterator, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

import grpc
import grpc.aio
from google.protobuf import descriptor_pool, message_factory, wrappers_pb2
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from asicfleet.sim._core import Fault, SimMiner


class ProtobufError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


# ----- dicts <-> protobuf messages ------------------------------------------------------------------
_WRAPPERS = frozenset(f"google.protobuf.{name}" for name in (
    "DoubleValue", "FloatValue", "Int64Value", "UInt64Value", "Int32Value", "UInt32Value", "BoolValue",
    "StringValue", "BytesValue"))
_INTEGERS = frozenset({FieldDescriptor.CPPTYPE_INT32, FieldDescriptor.CPPTYPE_INT64, FieldDescriptor.CPPTYPE_UINT32,
                       FieldDescriptor.CPPTYPE_UINT64, FieldDescriptor.CPPTYPE_ENUM})
_Spec = Any  # a FieldDescriptor: protobuf's Python class or its upb twin, which the stubs tell apart
_FLOATS = frozenset({FieldDescriptor.CPPTYPE_DOUBLE, FieldDescriptor.CPPTYPE_FLOAT})


def method_messages(path: str) -> tuple[type[Message], type[Message]]:
    """The request and reply message classes of "/package.Service/Method" (its module imported)."""
    service, _, method = path.strip("/").partition("/")
    spec = descriptor_pool.Default().FindServiceByName(service).methods_by_name[method]
    return message_factory.GetMessageClass(spec.input_type), message_factory.GetMessageClass(spec.output_type)


def _is_wrapper(spec: _Spec) -> bool:
    return spec.message_type is not None and spec.message_type.full_name in _WRAPPERS


def _scalar(spec: _Spec, value: Any) -> Any:
    if spec.cpp_type in _INTEGERS:
        return int(value)
    if spec.cpp_type in _FLOATS:
        return float(value)
    if spec.cpp_type == FieldDescriptor.CPPTYPE_BOOL:
        return bool(value)
    return bytes(value) if spec.type == FieldDescriptor.TYPE_BYTES else value


def _fill_field(message: Message, spec: _Spec, value: Any) -> None:
    if spec.message_type is None:
        if spec.is_repeated:
            getattr(message, spec.name).extend(_scalar(spec, item) for item in value)
        else:
            setattr(message, spec.name, _scalar(spec, value))
        return
    items = value if spec.is_repeated else [value]
    for item in items:
        sub = getattr(message, spec.name).add() if spec.is_repeated else getattr(message, spec.name)
        sub.SetInParent()  # present even when empty
        if _is_wrapper(spec) and not isinstance(item, Mapping):
            sub.value = _scalar(sub.DESCRIPTOR.fields_by_name["value"], item)
        else:
            fill(sub, item)


def fill(message: Message, value: Mapping[str, Any]) -> Message:
    """Sets `message`'s fields from a dict keyed by field names (see the module's dict rules)."""
    descriptor = message.DESCRIPTOR
    for name, item in value.items():
        if item is None:
            continue
        spec = descriptor.fields_by_name.get(name)
        if spec is not None:
            _fill_field(message, spec, item)
            continue
        group = descriptor.oneofs_by_name.get(name)
        if group is not None and isinstance(item, Mapping):
            members = {f.name: f for f in group.fields}
            for member, member_value in item.items():
                if member in members and member_value is not None:
                    _fill_field(message, members[member], member_value)
    return message


def to_dict(message: Message) -> dict[str, Any]:
    """The fields set in `message`, keyed by name (oneofs flattened, wrappers as their bare values)."""
    out: dict[str, Any] = {}
    for spec, value in message.ListFields():
        if spec.message_type is None:
            out[spec.name] = list(value) if spec.is_repeated else value
            continue
        def convert(item: Any, spec: _Spec = spec) -> Any:
            return item.value if _is_wrapper(spec) else to_dict(item)
        out[spec.name] = [convert(item) for item in value] if spec.is_repeated else convert(value)
    return out


def _check_wire_types(message: Message) -> None:
    """protobuf keeps a known field sent with the wrong wire type as an unknown field; refuse it."""
    known = message.DESCRIPTOR.fields_by_number
    unknown_fields = UnknownFieldSet(message)
    for unknown in (unknown_fields[i] for i in range(len(unknown_fields))):
        if unknown.field_number in known:
            raise ProtobufError(f"wire type {unknown.wire_type} for field {known[unknown.field_number].name}")
    for spec, value in message.ListFields():
        if spec.message_type is not None:
            for item in value if spec.is_repeated else [value]:
                _check_wire_types(item)


def encode(kind: type[Message], value: Mapping[str, Any]) -> bytes:
    """The wire bytes of `value` (a dict keyed by field names) as a message of `kind`."""
    return fill(kind(), value).SerializeToString(deterministic=True)


def decode(kind: type[Message], data: bytes) -> dict[str, Any]:
    """The fields present in `data` as a dict keyed by field names (absent fields are left out;
    repeated fields are lists; unknown fields are skipped)."""
    try:
        message = kind.FromString(data)
    except DecodeError as exc:
        raise ProtobufError(str(exc)) from exc
    _check_wire_types(message)
    return to_dict(message)


# ----- gRPC -----------------------------------------------------------------------------------------
class GrpcStatus(IntEnum):
    OK = 0
    CANCELLED = 1
    UNKNOWN = 2
    INVALID_ARGUMENT = 3
    NOT_FOUND = 5
    PERMISSION_DENIED = 7
    FAILED_PRECONDITION = 9
    OUT_OF_RANGE = 11
    UNIMPLEMENTED = 12
    INTERNAL = 13
    UNAVAILABLE = 14
    UNAUTHENTICATED = 16

    @property
    def code(self) -> grpc.StatusCode:
        return grpc.StatusCode[self.name]


class GrpcError(Exception):
    """Ends a call with a non-OK status."""

    def __init__(self, status: GrpcStatus, message: str = "") -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message


@dataclass
class GrpcCall:
    path: str  # "/package.Service/Method"
    metadata: dict[str, str]  # the request's metadata, lower-cased names (binary values left out)
    message: bytes  # the request message
    port: int  # the service's port (as the miner's firmware numbers it)


@dataclass
class GrpcReply:
    message: bytes
    metadata: list[tuple[str, str]] = field(default_factory=list)  # sent with the response headers


_IDLE_MS = 30_000  # a connection without calls for this long is closed
_INVALID_MESSAGE = b"\x0f"  # field 1 with wire type 7, which does not exist: no decoder accepts it


def _sockets() -> Iterator[socket.socket]:
    """This process's TCP sockets, as duplicates (closed by the caller's `with`)."""
    fd_dir = "/proc/self/fd" if os.path.isdir("/proc/self/fd") else "/dev/fd"
    for name in os.listdir(fd_dir):
        try:
            fd = os.dup(int(name))
        except (OSError, ValueError):
            continue  # closed meanwhile (or the listing's own descriptor)
        try:
            sock = socket.socket(fileno=fd)
        except OSError:  # not a socket: the duplicate is still ours to close
            os.close(fd)
            continue
        if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
            yield sock
        else:
            sock.close()


def _drop_connection(host: str, port: int, peer: str, *, reset: bool = False) -> bool:
    """Closes the server side of the call's TCP connection under grpc (FIN, or RST with `reset`):
    grpc has no way to end a connection in the middle of a reply, a misbehaving miner does."""
    if not peer.startswith("ipv4:"):
        return False
    peer_host, _, peer_port = peer.removeprefix("ipv4:").rpartition(":")
    local, remote = (host, port), (peer_host, int(peer_port))

    def plain(address: Any) -> tuple[str, int]:
        return str(address[0]).removeprefix("::ffff:"), int(address[1])  # grpc listens dual-stack

    for sock in _sockets():
        with sock:
            try:
                if plain(sock.getsockname()) != local or plain(sock.getpeername()) != remote:
                    continue
                if reset:
                    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                sock.shutdown(socket.SHUT_RDWR)
                return True
            except OSError:
                continue
    return False


class _Methods(grpc.GenericRpcHandler):
    """Every path goes to the miner (which answers UNIMPLEMENTED for the ones it does not serve)."""

    def __init__(self, server: GrpcServer) -> None:
        self.server = server

    def service(self, handler_call_details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler[bytes, bytes]:
        # registered as server-streaming, whose wire form is a unary call's: a fault can then send
        # a message and end the connection before the status; the replies carry one message
        return grpc.unary_stream_rpc_method_handler(functools.partial(self.server.call, handler_call_details.method))


class GrpcServer:
    """One miner's gRPC service on `host:port`, served through `miner.handle_grpc`."""

    def __init__(self, miner: SimMiner, host: str, port: int, service_port: int) -> None:
        self.miner, self.host, self.port, self.service_port = miner, host, port, service_port
        self.server: grpc.aio.Server | None = None

    async def start(self) -> None:
        server = grpc.aio.server(options=[("grpc.so_reuseport", 0), ("grpc.max_connection_idle_ms", _IDLE_MS)])
        server.add_generic_rpc_handlers((_Methods(self),))
        try:
            server.add_insecure_port(f"{self.host}:{self.port}")
        except RuntimeError as exc:  # grpc reports a failed bind only so
            raise OSError(errno.EADDRINUSE, f"could not bind {self.host}:{self.port}: {exc}") from exc
        await server.start()
        self.server = server

    async def stop(self) -> None:
        """Stops listening and ends the open calls and connections (as a reboot does)."""
        server, self.server = self.server, None
        if server is not None:
            await server.stop(None)

    async def call(self, path: str, request: bytes, context: grpc.aio.ServicerContext[bytes, bytes]
                   ) -> AsyncIterator[bytes]:
        miner = self.miner
        def answered(_: grpc.aio.ServicerContext[bytes, bytes]) -> None:
            miner.restart_reply_left.set()  # the reply to a restart command (if this was one) has left

        context.add_done_callback(answered)  # type: ignore[arg-type]  # the stubs want their own class
        if miner.fault is Fault.RESET:
            _drop_connection(self.host, self.port, context.peer(), reset=True)
            return
        if miner.fault is Fault.HUNG:
            await asyncio.Event().wait()  # until the client gives up (grpc cancels the call)
        metadata = {key.lower(): value for key, value in context.invocation_metadata() or ()
                    if isinstance(value, str)}
        try:
            reply = await miner.handle_grpc(GrpcCall(path, metadata, request, self.service_port))
        except GrpcError as exc:
            await self._fail(context, exc.status, exc.message)
            return
        except Exception as exc:  # a failing handler ends its call, as gRPC servers do, not the connection
            await self._fail(context, GrpcStatus.UNKNOWN, f"{type(exc).__name__}: {exc}")
            return
        fault = miner.fault
        if fault is Fault.SLOW:
            await asyncio.sleep(miner.slow_seconds)
        await context.send_initial_metadata(reply.metadata)
        if fault is Fault.TRUNCATED:
            _drop_connection(self.host, self.port, context.peer())
            return
        if fault is Fault.OVERSIZED:
            yield wrappers_pb2.BytesValue(value=b"A" * miner.oversized_bytes).SerializeToString()
            _drop_connection(self.host, self.port, context.peer())
            return
        yield _INVALID_MESSAGE if fault is Fault.MALFORMED else reply.message

    async def _fail(self, context: grpc.aio.ServicerContext[bytes, bytes], status: GrpcStatus, message: str) -> None:
        """A trailers-only reply: the status in the only HEADERS frame."""
        if self.miner.fault is Fault.SLOW:
            await asyncio.sleep(self.miner.slow_seconds)
        await context.abort(status.code, message)
