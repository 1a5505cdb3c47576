"""The servers behind simulated miners: CGMiner RPC, HTTP(S) and framed streams, with faults applied
(gRPC services have their own server, `_grpc.GrpcServer`).

Each (address, port) of a miner gets its own listening socket on its loopback address, so an
address where no miner lives refuses connections exactly as an empty address of a real network.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import socket
import ssl
import struct
import tempfile
from pathlib import Path

import h11
import orjson

from asicfleet.sim._core import Fault, HttpRequest, HttpResponse, Service, SimMiner

_MAX_REQUEST = 256 * 1024 * 1024  # firmware images are uploaded over HTTP
_IDLE = 30.0  # seconds a kept-alive connection may stay quiet
_CHUNK = 64 * 1024


def _corrupt(body: bytes) -> bytes:
    """Invalid JSON that no lenient parser can repair: '=' instead of ':' and no closing brace."""
    return body.replace(b":", b"=", 3).rstrip(b"}\x00")


async def _stall(reader: asyncio.StreamReader) -> None:
    """Holds the connection open without answering until the client gives up."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        while await reader.read(_CHUNK):
            pass


def _reset(writer: asyncio.StreamWriter) -> None:
    sock = writer.get_extra_info("socket")
    if sock is not None:
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    writer.transport.abort()


async def _connection_faults(miner: SimMiner, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> bool:
    """Applies the faults that act on the connection itself; True when the connection is done."""
    if miner.fault is Fault.RESET:
        _reset(writer)
        return True
    if miner.fault is Fault.HUNG:
        await _stall(reader)
        return True
    return False


async def _write_reply(miner: SimMiner, writer: asyncio.StreamWriter, body: bytes, *, is_json: bool) -> bool:
    """Writes a whole reply with the miner's fault applied; False when the connection must close."""
    if miner.fault is Fault.SLOW:
        await asyncio.sleep(miner.slow_seconds)
    if miner.fault is Fault.MALFORMED and is_json:
        body = _corrupt(body)
    if miner.fault is Fault.TRUNCATED:
        writer.write(body[: max(1, len(body) // 2)])
        await writer.drain()
        return False
    if miner.fault is Fault.OVERSIZED:
        writer.write(b'{"STATUS":[{"STATUS":"S","Msg":"')
        filler = b"A" * _CHUNK
        for _ in range(miner.oversized_bytes // _CHUNK):
            writer.write(filler)
            await writer.drain()
        writer.write(b'"}]}')
        await writer.drain()
        return False
    writer.write(body)
    await writer.drain()
    miner.restart_reply_left.set()  # the reply to a restart command (if this was one) has left
    return True


async def _read_json_request(reader: asyncio.StreamReader) -> bytes:
    """Reads an RPC request: complete once it parses as JSON, at EOF, or at a NUL/newline."""
    data = b""
    while len(data) < 64 * 1024:
        chunk = await reader.read(4096)
        if not chunk:
            break
        data += chunk
        if data.endswith((b"\x00", b"\n")):
            break
        try:
            orjson.loads(data)
            break
        except orjson.JSONDecodeError:
            continue
    return data


async def serve_rpc(miner: SimMiner, service: Service, reader: asyncio.StreamReader,
                    writer: asyncio.StreamWriter) -> None:
    if await _connection_faults(miner, reader, writer):
        return
    request = await asyncio.wait_for(_read_json_request(reader), _IDLE)
    if not request:
        return
    reply = miner.rpc_reply(request, service.port)
    if not reply:
        return  # some firmwares answer certain commands by closing without a byte
    await _write_reply(miner, writer, reply + getattr(miner, "rpc_terminator", b"\x00"), is_json=True)


async def serve_stream(miner: SimMiner, service: Service, reader: asyncio.StreamReader,
                       writer: asyncio.StreamWriter) -> None:
    if await _connection_faults(miner, reader, writer):
        return
    while True:
        request = await asyncio.wait_for(miner.read_stream_request(reader, service.port), _IDLE)
        if request is None:
            return
        reply = await miner.handle_stream(request, service.port)
        if not await _write_reply(miner, writer, reply, is_json=True):
            return


async def serve_http(miner: SimMiner, service: Service, reader: asyncio.StreamReader,
                     writer: asyncio.StreamWriter) -> None:
    if await _connection_faults(miner, reader, writer):
        return
    conn = h11.Connection(h11.SERVER, max_incomplete_event_size=64 * 1024)
    peer = writer.get_extra_info("peername")
    client = str(peer[0]) if isinstance(peer, tuple) and peer else ""
    if miner.http_rejects_non_http:
        first = await asyncio.wait_for(reader.read(_CHUNK), _IDLE)
        if first and not _can_start_request(first):
            miner.count(f"{service.port}:not http")
            await _write_reply(miner, writer, _BAD_REQUEST, is_json=False)  # a slow miner is slow to refuse too
            return
        conn.receive_data(first)
    while True:
        request = await _next_request(conn, reader)
        if request is None:
            return
        # a miner that hangs or resets since this connection was accepted does so on it too (a kept-alive
        # connection from before the fault gets no answer either)
        if await _connection_faults(miner, reader, writer):
            return
        method, target, headers, body = request
        path, _, query = target.partition("?")
        miner.count(f"{service.port}:{method} {path}")
        req = HttpRequest(method=method, path=path, query=query, headers=headers, body=body, port=service.port,
                          client=client)
        response = await miner.handle_http(req)
        if not await _send_response(miner, conn, writer, response):
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


_BAD_REQUEST = b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
_TOKEN = frozenset(b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def _can_start_request(data: bytes) -> bool:
    """Whether `data` can begin an HTTP request line: a method token, then a space (a byte-by-byte parser
    such as httparse refuses the first byte that cannot)."""
    method = data.split(b" ", 1)[0]
    return all(byte in _TOKEN for byte in method) and bool(method or b" " not in data)


async def _next_request(conn: h11.Connection, reader: asyncio.StreamReader
                        ) -> tuple[str, str, dict[str, str], bytes] | None:
    head: h11.Request | None = None
    body = bytearray()
    while True:
        try:
            event = conn.next_event()
        except h11.RemoteProtocolError:
            return None
        if event is h11.NEED_DATA:
            data = await asyncio.wait_for(reader.read(_CHUNK), _IDLE)
            conn.receive_data(data)
            continue
        if isinstance(event, h11.Request):
            head = event
        elif isinstance(event, h11.Data):
            body += event.data
            if len(body) > _MAX_REQUEST:
                return None
        elif isinstance(event, h11.EndOfMessage) and head is not None:
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in head.headers}
            return head.method.decode(), head.target.decode("latin-1"), headers, bytes(body)
        else:  # ConnectionClosed, PAUSED
            return None


async def _send_response(miner: SimMiner, conn: h11.Connection, writer: asyncio.StreamWriter,
                         response: HttpResponse) -> bool:
    body = response.body
    if miner.fault is Fault.MALFORMED and response.is_json:
        body = _corrupt(body)
    headers = [("Content-Type", response.content_type), *response.headers.items()]
    if miner.http_server_header and not any(name.lower() == "server" for name in response.headers):
        headers.append(("Server", miner.http_server_header))
    if miner.fault is Fault.SLOW:
        await asyncio.sleep(miner.slow_seconds)
    if miner.fault is Fault.OVERSIZED and response.is_json:
        writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
        for _ in range(miner.oversized_bytes // _CHUNK):
            writer.write(conn.send(h11.Data(data=b"A" * _CHUNK)))
            await writer.drain()
        writer.write(conn.send(h11.EndOfMessage()))
        await writer.drain()
        return False
    headers.append(("Content-Length", str(len(body))))
    writer.write(conn.send(h11.Response(status_code=response.status, headers=headers)))
    if miner.fault is Fault.TRUNCATED:
        writer.write(body[: len(body) // 2])
        await writer.drain()
        return False
    writer.write(conn.send(h11.Data(data=body)) + conn.send(h11.EndOfMessage()))
    await writer.drain()
    miner.restart_reply_left.set()  # the reply to a restart command (if this was one) has left
    return True


_SERVERS = {"rpc": serve_rpc, "http": serve_http, "https": serve_http, "stream": serve_stream}


def connection_handler(miner: SimMiner, service: Service):  # type: ignore[no-untyped-def]
    serve = _SERVERS[service.kind]

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        miner.connections.add(writer)
        try:
            await serve(miner, service, reader, writer)
        except (OSError, TimeoutError, asyncio.IncompleteReadError, h11.LocalProtocolError):
            pass  # a client that went away is no concern of the miner's
        except asyncio.CancelledError:
            pass  # the fleet is stopping (or the miner restarting) while a client keeps a connection open
        finally:
            miner.connections.discard(writer)
            miner.restart_reply_left.set()  # whatever this connection answered has left
            writer.close()
            with contextlib.suppress(OSError, TimeoutError, asyncio.CancelledError):
                await asyncio.wait_for(writer.wait_closed(), 1.0)

    return handle


_TLS: ssl.SSLContext | None = None


def tls_context() -> ssl.SSLContext:
    """A server context with a self-signed certificate, made once per process (as miners ship)."""
    global _TLS
    if _TLS is None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "asicfleet-sim")])
        now = datetime.datetime.now(datetime.UTC)
        cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
                .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(days=1))
                .not_valid_after(now + datetime.timedelta(days=3650)).sign(key, hashes.SHA256()))
        with tempfile.TemporaryDirectory() as tmp:
            cert_file, key_file = Path(tmp, "cert.pem"), Path(tmp, "key.pem")
            cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_file.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                                   serialization.NoEncryption()))
            context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            context.load_cert_chain(cert_file, key_file)
        _TLS = context
    return _TLS
