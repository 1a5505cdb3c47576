"""gRPC for simulated firmwares: a small protobuf codec and an HTTP/2 (cleartext) server for calls
with one reply message (unary calls; a server-streaming method answered this way sends one update).

Protobuf: messages are described by `MessageType`s (field name -> number and kind, as in a .proto
file) and encoded from / decoded to plain dicts, so a family can reuse the dicts it already builds
for its JSON APIs. Proto3 rules: a scalar holding its default value is left off the wire unless the
field is `optional` (explicit presence); fields are written in field-number order; unknown fields
are skipped when decoding. A pseudo-field of kind "oneof" lets a dict nest a oneof's member under
the oneof's name (`{"strategy": {"quota": {...}}}`, as REST gateways render oneofs); it is written
as its member, flattened into the enclosing message.

gRPC: each call is an HTTP/2 stream; the request and reply bodies are length-prefixed messages
(1 byte compressed flag + 4 bytes big-endian length); the status goes in trailers (`grpc-status`,
`grpc-message`), or alone in a trailers-only reply for a failed call. The HTTP/2 framing is `h2`'s.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any, Literal

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions

from asicfleet.sim._core import Fault, SimMiner

# ----- protobuf -------------------------------------------------------------------------------------
Kind = Literal["uint32", "uint64", "int32", "int64", "bool", "enum", "double", "float", "string", "bytes",
               "message", "oneof"]

_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
_WIRE_TYPES: dict[str, int] = {"uint32": _VARINT, "uint64": _VARINT, "int32": _VARINT, "int64": _VARINT,
                               "bool": _VARINT, "enum": _VARINT, "double": _I64, "float": _I32,
                               "string": _LEN, "bytes": _LEN, "message": _LEN}
_DEFAULTS: dict[str, Any] = {"uint32": 0, "uint64": 0, "int32": 0, "int64": 0, "bool": False, "enum": 0,
                             "double": 0.0, "float": 0.0, "string": "", "bytes": b""}


class ProtobufError(ValueError):
    """Bytes that are not a valid encoding of the expected message."""


@dataclass(frozen=True)
class Field:
    number: int
    kind: Kind
    message: MessageType | None = None  # for kind "message" (and the members of a "oneof")
    repeated: bool = False
    optional: bool = False  # explicit presence: written even when it holds the default value
    wraps: bool = False  # a google.protobuf.*Value wrapper: the dict holds the bare value
    members: tuple[str, ...] = ()  # for kind "oneof": the names of its member fields


@dataclass(frozen=True)
class MessageType:
    name: str
    fields: Mapping[str, Field]

    def by_number(self) -> dict[int, tuple[str, Field]]:
        return {f.number: (name, f) for name, f in self.fields.items() if f.kind != "oneof"}


def scalar(number: int, kind: Kind, *, repeated: bool = False, optional: bool = False) -> Field:
    return Field(number, kind, repeated=repeated, optional=optional)


def nested(number: int, message: MessageType, *, repeated: bool = False, wraps: bool = False) -> Field:
    return Field(number, "message", message=message, repeated=repeated, wraps=wraps)


def oneof(*members: str) -> Field:
    return Field(0, "oneof", members=members)


def wrapper(kind: Kind) -> MessageType:
    """google.protobuf.<Kind>Value: a message whose only field (1) holds the value."""
    return MessageType(f"google.protobuf.{kind.capitalize()}Value", {"value": scalar(1, kind)})


def encode_varint(value: int) -> bytes:
    if value < 0:
        value += 1 << 64  # negative int32/int64: ten bytes of two's complement
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def decode_varint(data: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(data):
            raise ProtobufError("truncated varint")
        byte = data[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result, pos
        shift += 7
        if shift >= 70:
            raise ProtobufError("varint too long")


def _tag(number: int, wire_type: int) -> bytes:
    return encode_varint(number << 3 | wire_type)


def _encode_scalar(kind: str, value: Any) -> bytes:
    if kind in ("uint32", "uint64", "int32", "int64", "enum"):
        return encode_varint(int(value))
    if kind == "bool":
        return b"\x01" if value else b"\x00"
    if kind == "double":
        return struct.pack("<d", float(value))
    if kind == "float":
        return struct.pack("<f", float(value))
    raw = value.encode() if kind == "string" else bytes(value)
    return encode_varint(len(raw)) + raw


def _encode_value(spec: Field, value: Any) -> bytes:
    if spec.kind == "message":
        assert spec.message is not None
        body = encode(spec.message, {"value": value} if spec.wraps else value)
        return _tag(spec.number, _LEN) + encode_varint(len(body)) + body
    return _tag(spec.number, _WIRE_TYPES[spec.kind]) + _encode_scalar(spec.kind, value)


def _present(message: MessageType, value: Mapping[str, Any]) -> Iterable[tuple[Field, Any]]:
    """(field, value) for every field the dict sets, oneof containers flattened into their member."""
    for name, item in value.items():
        spec = message.fields.get(name)
        if spec is None or item is None:
            continue  # not part of the gRPC message (or unset)
        if spec.kind == "oneof":
            for member, member_value in item.items():
                if member in spec.members and member_value is not None:
                    yield message.fields[member], member_value
        else:
            yield spec, item


def encode(message: MessageType, value: Mapping[str, Any]) -> bytes:
    """The wire bytes of `value` (a dict keyed by field names) as a `message`."""
    out = bytearray()
    for spec, item in sorted(_present(message, value), key=lambda pair: pair[0].number):
        if spec.repeated:
            for element in item:
                out += _encode_value(spec, element)
        elif spec.kind == "message" or spec.optional or item != _DEFAULTS[spec.kind]:
            out += _encode_value(spec, item)
    return bytes(out)


def decode_fields(data: bytes) -> list[tuple[int, int, Any]]:
    """(field number, wire type, raw value) of every field on the wire, without a schema."""
    fields: list[tuple[int, int, Any]] = []
    pos = 0
    while pos < len(data):
        key, pos = decode_varint(data, pos)
        number, wire_type = key >> 3, key & 7
        if number == 0:
            raise ProtobufError("field number 0")
        raw: Any
        if wire_type == _VARINT:
            raw, pos = decode_varint(data, pos)
        elif wire_type == _I64:
            raw, pos = data[pos:pos + 8], pos + 8
        elif wire_type == _I32:
            raw, pos = data[pos:pos + 4], pos + 4
        elif wire_type == _LEN:
            length, pos = decode_varint(data, pos)
            raw, pos = data[pos:pos + length], pos + length
        else:
            raise ProtobufError(f"unsupported wire type {wire_type}")
        if pos > len(data):
            raise ProtobufError("truncated field")
        fields.append((number, wire_type, raw))
    return fields


def _signed(value: int, bits: int) -> int:
    value &= (1 << bits) - 1
    return value - (1 << bits) if value >> (bits - 1) else value


def _decode_scalar(kind: str, wire_type: int, raw: Any) -> Any:
    if wire_type != _WIRE_TYPES[kind]:
        raise ProtobufError(f"wire type {wire_type} for a {kind} field")
    if kind in ("uint32", "uint64", "enum"):
        return raw & ((1 << 32) - 1) if kind == "uint32" else raw
    if kind in ("int32", "int64"):
        return _signed(raw, 32 if kind == "int32" else 64)
    if kind == "bool":
        return bool(raw)
    if kind == "double":
        return struct.unpack("<d", raw)[0]
    if kind == "float":
        return struct.unpack("<f", raw)[0]
    if kind == "string":
        try:
            return bytes(raw).decode()
        except UnicodeDecodeError as exc:
            raise ProtobufError("string field is not UTF-8") from exc
    return bytes(raw)


def _packed(kind: str, raw: bytes) -> list[Any]:
    """The elements of a packed repeated numeric field."""
    values: list[Any] = []
    pos = 0
    while pos < len(raw):
        if _WIRE_TYPES[kind] == _VARINT:
            item, pos = decode_varint(raw, pos)
            values.append(_decode_scalar(kind, _VARINT, item))
        else:
            size = 8 if _WIRE_TYPES[kind] == _I64 else 4
            if pos + size > len(raw):
                raise ProtobufError("truncated packed field")
            values.append(_decode_scalar(kind, _WIRE_TYPES[kind], raw[pos:pos + size]))
            pos += size
    return values


def decode(message: MessageType, data: bytes) -> dict[str, Any]:
    """The fields present in `data` as a dict keyed by field names (absent fields are left out;
    repeated fields are lists; unknown fields are skipped)."""
    known = message.by_number()
    out: dict[str, Any] = {}
    for number, wire_type, raw in decode_fields(data):
        if number not in known:
            continue
        name, spec = known[number]
        if spec.kind == "message":
            if wire_type != _LEN:
                raise ProtobufError(f"wire type {wire_type} for message field {name}")
            assert spec.message is not None
            decoded = decode(spec.message, raw)
            value: Any = decoded.get("value", _DEFAULTS[spec.message.fields["value"].kind]) if spec.wraps else decoded
        elif spec.repeated and wire_type == _LEN and spec.kind not in ("string", "bytes"):
            out.setdefault(name, []).extend(_packed(spec.kind, raw))
            continue
        else:
            value = _decode_scalar(spec.kind, wire_type, raw)
        if spec.repeated:
            out.setdefault(name, []).append(value)
        else:
            out[name] = value  # the last one wins, as protobuf merges
    return out


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


class GrpcError(Exception):
    """Ends a call with a non-OK status."""

    def __init__(self, status: GrpcStatus, message: str = "") -> None:
        super().__init__(f"{status.name}: {message}")
        self.status = status
        self.message = message


@dataclass
class GrpcCall:
    path: str  # "/package.Service/Method"
    metadata: dict[str, str]  # request headers, lower-cased names (pseudo-headers left out)
    messages: list[bytes]  # the request messages (one for a unary call)
    port: int

    @property
    def message(self) -> bytes:
        if len(self.messages) != 1:
            raise GrpcError(GrpcStatus.INTERNAL, f"expected one request message, got {len(self.messages)}")
        return self.messages[0]


@dataclass
class GrpcReply:
    message: bytes
    metadata: list[tuple[str, str]] = field(default_factory=list)  # sent with the response headers


GrpcHandler = Callable[[GrpcCall], Awaitable[GrpcReply]]

GRPC_CONTENT_TYPE = "application/grpc"
_IDLE = 30.0  # seconds a connection may stay quiet
_READ = 64 * 1024
_MAX_REQUEST = 4 * 1024 * 1024  # gRPC's usual default receive limit
_INVALID_MESSAGE = b"\x0f"  # field 1 with wire type 7, which does not exist: no decoder accepts it


def frame(message: bytes, compressed: bool = False) -> bytes:
    """One length-prefixed gRPC message."""
    return struct.pack(">BI", int(compressed), len(message)) + message


def unframe(body: bytes) -> list[bytes]:
    """The messages of a gRPC request body (uncompressed only: we never offer an encoding)."""
    messages: list[bytes] = []
    pos = 0
    while pos < len(body):
        if pos + 5 > len(body):
            raise GrpcError(GrpcStatus.INTERNAL, "truncated message prefix")
        compressed, length = struct.unpack_from(">BI", body, pos)
        if compressed:
            raise GrpcError(GrpcStatus.UNIMPLEMENTED, "compressed messages are not supported")
        pos += 5
        if pos + length > len(body):
            raise GrpcError(GrpcStatus.INTERNAL, "truncated message")
        messages.append(body[pos:pos + length])
        pos += length
    return messages


def _percent_encode(text: str) -> str:
    """grpc-message encoding: printable ASCII except '%' as is, every other byte as %XX."""
    return "".join(chr(b) if 0x20 <= b <= 0x7E and b != 0x25 else f"%{b:02X}" for b in text.encode())


@dataclass
class _Request:
    headers: dict[str, str]
    body: bytearray = field(default_factory=bytearray)


class _Connection:
    """One HTTP/2 connection: reads frames, runs each finished request stream as its own task."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: GrpcHandler,
                 miner: SimMiner, port: int) -> None:
        self.reader, self.writer, self.handler, self.miner, self.port = reader, writer, handler, miner, port
        self.h2 = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding="utf-8"))
        self.requests: dict[int, _Request] = {}
        self.tasks: set[asyncio.Task[None]] = set()
        self.window_opened = asyncio.Event()
        self.closing = False

    async def run(self) -> None:
        self.h2.initiate_connection()
        await self.flush()
        try:
            while not self.closing:
                data = await asyncio.wait_for(self.reader.read(_READ), _IDLE)
                if not data:
                    return
                try:
                    for event in self.h2.receive_data(data):
                        self.on_event(event)
                except h2.exceptions.ProtocolError:
                    await self.flush()  # h2 queued a GOAWAY
                    return
                await self.flush()
        finally:
            for task in self.tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*self.tasks, return_exceptions=True)

    def on_event(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            headers = {str(k): str(v) for k, v in event.headers or []}
            self.requests[event.stream_id] = _Request(headers)
        elif isinstance(event, h2.events.DataReceived):
            request = self.requests.get(event.stream_id)
            if request is not None and event.data:
                request.body += event.data
            if event.flow_controlled_length:
                self.h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            if request is not None and len(request.body) > _MAX_REQUEST:
                self.requests.pop(event.stream_id, None)
                self.h2.reset_stream(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
        elif isinstance(event, h2.events.StreamEnded):
            request = self.requests.pop(event.stream_id, None)
            if request is not None:
                task = asyncio.create_task(self.answer(event.stream_id, request))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
        elif isinstance(event, h2.events.StreamReset):
            self.requests.pop(event.stream_id, None)
            self.window_opened.set()  # a sender waiting on that stream finds it closed
        elif isinstance(event, h2.events.WindowUpdated | h2.events.RemoteSettingsChanged):
            self.window_opened.set()
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.closing = True

    async def flush(self) -> None:
        data = self.h2.data_to_send()
        if data:
            self.writer.write(data)
            await self.writer.drain()

    async def answer(self, stream_id: int, request: _Request) -> None:
        # the client may give up on this call (or the connection, or stop reading) before the reply is out
        with contextlib.suppress(h2.exceptions.ProtocolError, OSError, TimeoutError):
            await self.respond(stream_id, request)

    async def respond(self, stream_id: int, request: _Request) -> None:
        headers = request.headers
        if headers.get(":method") != "POST" or not headers.get("content-type", "").startswith(GRPC_CONTENT_TYPE):
            self.h2.send_headers(stream_id, [(":status", "415"), ("content-type", "text/plain")], end_stream=True)
            await self.flush()
            return
        metadata = {k.lower(): v for k, v in headers.items() if not k.startswith(":")}
        try:
            call = GrpcCall(path=headers.get(":path", ""), metadata=metadata, messages=unframe(bytes(request.body)),
                            port=self.port)
            reply = await self.handler(call)
        except GrpcError as exc:
            await self.fail(stream_id, exc.status, exc.message)
            return
        except Exception as exc:  # a failing handler ends its call, as gRPC servers do, not the connection
            await self.fail(stream_id, GrpcStatus.UNKNOWN, f"{type(exc).__name__}: {exc}")
            return
        await self.reply(stream_id, reply)

    async def fail(self, stream_id: int, status: GrpcStatus, message: str) -> None:
        """A trailers-only reply: the status in the only HEADERS frame."""
        if self.miner.fault is Fault.SLOW:
            await asyncio.sleep(self.miner.slow_seconds)
        headers = [(":status", "200"), ("content-type", GRPC_CONTENT_TYPE), ("grpc-status", str(int(status)))]
        if message:
            headers.append(("grpc-message", _percent_encode(message)))
        self.h2.send_headers(stream_id, headers, end_stream=True)
        await self.flush()

    async def reply(self, stream_id: int, reply: GrpcReply) -> None:
        fault = self.miner.fault
        if fault is Fault.SLOW:
            await asyncio.sleep(self.miner.slow_seconds)
        self.h2.send_headers(stream_id, [(":status", "200"), ("content-type", GRPC_CONTENT_TYPE), *reply.metadata])
        body = frame(reply.message)
        if fault is Fault.MALFORMED:
            body = frame(_INVALID_MESSAGE)
        elif fault is Fault.TRUNCATED:
            # the prefix promises the whole message; half of it comes, then the connection closes
            await self.send_data(stream_id, body[: max(6, len(body) // 2)], end_stream=False)
            self.close()
            return
        elif fault is Fault.OVERSIZED:
            # one bytes field of `oversized_bytes`, streamed in chunks, then the connection closes
            size = self.miner.oversized_bytes
            head = _tag(1, _LEN) + encode_varint(size)
            await self.send_data(stream_id, struct.pack(">BI", 0, len(head) + size) + head, end_stream=False)
            filler = b"A" * _READ
            for _ in range(size // _READ):
                await self.send_data(stream_id, filler, end_stream=False)
            self.close()
            return
        await self.send_data(stream_id, body, end_stream=False)
        self.h2.send_headers(stream_id, [("grpc-status", "0")], end_stream=True)
        await self.flush()

    async def send_data(self, stream_id: int, data: bytes, *, end_stream: bool) -> None:
        """Sends within the peer's flow-control windows, waiting for WINDOW_UPDATEs as needed."""
        view = memoryview(data)
        while True:
            room = min(self.h2.local_flow_control_window(stream_id), self.h2.max_outbound_frame_size)
            if room <= 0 and view:
                self.window_opened.clear()
                await asyncio.wait_for(self.window_opened.wait(), _IDLE)
                continue
            chunk, view = view[:room], view[room:]
            self.h2.send_data(stream_id, bytes(chunk), end_stream=end_stream and not view)
            await self.flush()
            if not view:
                return

    def close(self) -> None:
        self.closing = True
        self.writer.close()


async def serve_grpc(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, handler: GrpcHandler,
                     miner: SimMiner, port: int) -> None:
    """Serves gRPC calls on one connection until the client closes it (or stays quiet too long);
    the miner's reply faults (slow, malformed, truncated, oversized) are applied to every reply."""
    await _Connection(reader, writer, handler, miner, port).run()
