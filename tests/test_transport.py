"""Transports against real loopback sockets: joined commands, quirks, error replies, caps, timeouts."""

from __future__ import annotations

import asyncio
import contextlib
import select
import socket
import struct
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest

from asicfleet import (
    MinerAPIError,
    MinerConnectionError,
    MinerResponseError,
    MinerTimeoutError,
    ResponseTooLargeError,
)
from asicfleet.transport import HttpClient, PortMap, TransportSettings, decode_json, rpc_call, rpc_multi
from asicfleet.transport._connect import _settled
from tests.conftest import lo

HOST = lo("127.86.0.1")
Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


@pytest.fixture
async def server() -> AsyncIterator[Callable[[Handler, int], Awaitable[TransportSettings]]]:
    """Serves one handler on HOST:port; returns settings with short timeouts pointing there."""
    servers: list[asyncio.Server] = []

    async def start(handler: Handler, port: int = 4028) -> TransportSettings:
        srv = await asyncio.start_server(handler, HOST, 0)
        servers.append(srv)
        actual = srv.sockets[0].getsockname()[1]
        return TransportSettings(connect_timeout=0.5, read_timeout=0.5, max_reply_bytes=64 * 1024,
                                 ports=PortMap({port: actual}))

    yield start
    for srv in servers:
        srv.close()


def replying(body: bytes) -> Handler:
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(body)
        await writer.drain()
        writer.close()

    return handler


async def test_single_command_with_nul_terminator(server) -> None:  # type: ignore[no-untyped-def]
    seen: list[bytes] = []

    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        seen.append(await reader.read(4096))
        writer.write(b'{"STATUS":[{"STATUS":"S","Msg":"Summary"}],"SUMMARY":[{"MHS 5s":1.5}],"id":1}\x00')
        await writer.drain()
        await asyncio.sleep(5)  # a firmware that keeps the socket open after the NUL

    settings = await server(handler)
    reply = await rpc_call(HOST, "summary", settings=settings)
    assert reply["SUMMARY"][0]["MHS 5s"] == 1.5
    assert seen == [b'{"command":"summary"}']


async def test_joined_commands_are_split(server) -> None:  # type: ignore[no-untyped-def]
    body = (b'{"summary":[{"STATUS":[{"STATUS":"S"}],"SUMMARY":[{"Elapsed":5}]}],'
            b'"pools":[{"STATUS":[{"STATUS":"E","Code":7,"Msg":"No pools"}]}]}')
    settings = await server(replying(body))
    replies = await rpc_multi(HOST, ["summary", "pools", "devs"], settings=settings)
    assert replies["summary"]["SUMMARY"][0]["Elapsed"] == 5  # type: ignore[index]
    assert isinstance(replies["pools"], MinerAPIError) and "No pools" in str(replies["pools"])
    assert isinstance(replies["devs"], MinerResponseError)


async def test_error_status_raises(server) -> None:  # type: ignore[no-untyped-def]
    settings = await server(replying(b'{"STATUS":[{"STATUS":"E","Code":14,"Msg":"Invalid command"}],"id":1}'))
    with pytest.raises(MinerAPIError, match="Invalid command"):
        await rpc_call(HOST, "bogus", settings=settings)


@pytest.mark.parametrize("quirky", [
    b'{"STATUS":[{"STATUS":"S"}],"STATS":[{"a":1}{"b":2}],"id":1}\x00',  # missing comma between objects
    b'{"STATUS":[{"STATUS":"S"}],"STATS":[{"temp":inf}],"id":1}',  # bare inf
    b'{"STATUS":[{"STATUS":"S"}],"STATS":[{"a":"x\x01y"}],"id":1}',  # raw control character
])
def test_known_firmware_json_quirks_are_repaired(quirky: bytes) -> None:
    assert "STATS" in decode_json(quirky)


@pytest.mark.parametrize("broken", [b"", b"\x00", b'{"STATUS":[{"STATUS"="S"', b"<html>nope</html>"])
def test_unrepairable_json_is_a_clear_error(broken: bytes) -> None:
    with pytest.raises(MinerResponseError):
        decode_json(broken)


async def test_reply_cap(server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        with contextlib.suppress(OSError):
            for _ in range(100):  # 6.4 MB, far over the 64 KiB cap
                writer.write(b"A" * 65536)
                await writer.drain()

    settings = await server(handler)
    with pytest.raises(ResponseTooLargeError):
        await rpc_call(HOST, "stats", settings=settings)


async def test_hung_reply_times_out(server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await asyncio.sleep(10)

    settings = await server(handler)
    loop = asyncio.get_running_loop()
    start = loop.time()
    with pytest.raises(MinerTimeoutError):
        await rpc_call(HOST, "summary", settings=settings)
    assert loop.time() - start < 2.0


async def test_reset_and_refused(server) -> None:  # type: ignore[no-untyped-def]
    async def handler(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        sock = writer.get_extra_info("socket")
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        writer.transport.abort()

    settings = await server(handler)
    with pytest.raises((MinerConnectionError, MinerResponseError)):
        await rpc_call(HOST, "summary", settings=settings)
    with pytest.raises(MinerConnectionError, match="failed"):
        await rpc_call(lo("127.86.0.2"), "summary", settings=settings)  # nothing listens there


async def test_http_cap_timeout_and_digest(server) -> None:  # type: ignore[no-untyped-def]
    async def huge(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10000000\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(200):
                writer.write(b"B" * 65536)
                await writer.drain()

    settings = await server(huge, 80)
    client = HttpClient(settings)
    with pytest.raises(ResponseTooLargeError):
        await client.request("GET", HOST, "/")

    async def dripping(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(4096)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
        with contextlib.suppress(OSError):
            for _ in range(1000):  # one byte every 0.2 s: each read is quick, the whole is not
                writer.write(b"x")
                await writer.drain()
                await asyncio.sleep(0.2)

    client = HttpClient(await server(dripping, 80))
    with pytest.raises(MinerTimeoutError):
        await client.request("GET", HOST, "/")
    await client.aclose()


def test_port_map_parsing() -> None:
    ports = PortMap.parse("80=10080, 443=10443")
    assert ports(80) == 10080 and ports(4028) == 4028 and str(ports) == "80=10080,443=10443"
    for bad in ("80", "80=x", "80=70000"):
        with pytest.raises(ValueError):
            PortMap.parse(bad)


async def test_miner_transport_reuses_a_connection_and_retries_a_stale_one(server) -> None:  # type: ignore[no-untyped-def]
    """Keep-alive: two requests share one connection; when the miner dropped the idle connection
    meanwhile, the request goes again on a fresh one instead of failing."""
    connections: list[int] = []

    async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connections.append(1)
        served = 0
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head:
                return
            served += 1
            writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
            await writer.drain()
            if len(connections) == 1 and served == 2:
                writer.close()  # the miner drops the connection after two requests
                return

    client = HttpClient(await server(keep_alive, 80))
    for _ in range(3):
        reply = await client.request("GET", HOST, "/")
        assert (reply.status, reply.body) == (200, b"ok")
    assert len(connections) == 2  # requests 1-2 on the first connection, 3 retried on a new one
    await client.aclose()


async def test_miner_transport_posts_bodies_and_speaks_tls() -> None:
    from asicfleet.sim._servers import tls_context

    seen: list[bytes] = []

    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await reader.readuntil(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in head.split(b"\r\n") if line.lower().startswith(
            b"content-length")))
        seen.append(await reader.readexactly(length))
        writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: 4\r\nConnection: close\r\n\r\ndone")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(echo, HOST, 0, ssl=tls_context())
    port = srv.sockets[0].getsockname()[1]
    client = HttpClient(TransportSettings(ports=PortMap({443: port}), read_timeout=2))
    reply = await client.request("POST", HOST, "/api", port=443, tls=True, json={"pools": [1, 2]})
    assert reply.status == 201 and reply.body == b"done" and seen == [b'{"pools":[1,2]}']
    await client.aclose()
    srv.close()


def test_a_refusal_whose_error_the_loop_already_read_is_not_taken_for_a_connection() -> None:
    """Under load the loop's connect callback can read (and so clear) SO_ERROR in the pass where the deadline
    fires; the socket then polls writable with no error although it never connected (seen: 361 empty
    addresses of a /16 reported as 'web port gave no HTTP reply' at concurrency 10,000 under a CPU hog)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setblocking(False)
        assert sock.connect_ex((lo("127.86.250.1"), 9)) in (0, 115)  # EINPROGRESS, or refused at once
        select.select([], [sock], [], 5)  # the kernel has answered: refused
        assert sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) != 0  # what the loop's callback reads
        with pytest.raises(ConnectionRefusedError):
            _settled(sock)
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server, \
            socket.socket(socket.AF_INET, socket.SOCK_STREAM) as client:
        server.bind((lo("127.86.250.2"), 0))
        server.listen()
        client.setblocking(False)
        client.connect_ex(server.getsockname())
        select.select([], [client], [], 5)
        assert _settled(client)  # a real connection still counts as one
