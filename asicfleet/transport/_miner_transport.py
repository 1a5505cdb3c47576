"""An httpx transport for miners: HTTP/1.1 with h11 straight on asyncio streams.

httpx's default transport goes through httpcore and anyio, whose per-request bookkeeping (cancel
scopes, task look-ups, a walk over the whole connection pool) cost more CPU than the miner's reply at a
thousand miners at once. Miners need little of it: plain HTTP/1.1, sometimes TLS with a self-signed
certificate, a few requests per read. This transport keeps httpx's client (auth flows, digest, request
building) and does the wire part itself, keeping at most one idle connection per miner.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass

import h11
import httpx

from asicfleet._errors import MinerError, MinerTimeoutError
from asicfleet.transport._connect import connect_socket, is_ipv4
from asicfleet.transport._rpc import STREAM_LIMIT

_READ = 16 * 1024
_IDEMPOTENT = {"GET", "HEAD", "OPTIONS", "PUT", "DELETE"}
# A request finding its miner's connection busy waits for it to be handed over, so a read's parallel requests
# share one kept-alive connection. A slow miner must not hold them back: when no exchange with it ends within
# STALL seconds (at most STALL_SHARE of the waiting request's read deadline, and at most the connect timeout,
# which its whole deadline includes beside the read deadline: a reply within the read deadline is still read),
# every waiting request opens a connection of its own, as without waiting; and none waits more than WAIT_SHARE
# of its read deadline in all (a long queue of quick exchanges still leaves each request the rest).
STALL = 1.0
STALL_SHARE = 0.2
WAIT_SHARE = 0.5
_Key = tuple[str, str, int]


_TLS: ssl.SSLContext | None = None


def miner_tls_context() -> ssl.SSLContext:
    """Miners serve self-signed certificates: encrypt, but do not verify (so no CA bundle is loaded)."""
    global _TLS
    if _TLS is None:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.check_hostname = False
        context.verify_mode = ssl.CERT_NONE
        _TLS = context
    return _TLS


@dataclass
class _Connection:
    reader: asyncio.StreamReader
    writer: asyncio.StreamWriter
    h11: h11.Connection
    idle_since: float = 0.0

    def close(self) -> None:
        self.writer.close()


class _ResponseStream(httpx.AsyncByteStream):
    def __init__(self, transport: MinerTransport, key: tuple[str, str, int], conn: _Connection,
                 first: bytes) -> None:
        self._transport = transport
        self._key = key
        self._conn = conn
        self._first = first
        self._done = False
        self._released = False

    async def __aiter__(self) -> AsyncIterator[bytes]:
        if self._first:
            yield self._first
        while not self._done:
            event = await _next_event(self._conn)
            if isinstance(event, h11.Data):
                yield bytes(event.data)
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                self._done = True

    async def aclose(self) -> None:
        if not self._released:  # released once: a second release would hand the connection out twice
            self._released = True
            self._transport._release(self._key, self._conn, reusable=self._done)


class MinerTransport(httpx.AsyncBaseTransport):
    def __init__(self, connect_timeout: float, *, keepalive_expiry: float = 5.0, max_idle: int = 256) -> None:
        self._connect_timeout = connect_timeout
        self._keepalive_expiry = keepalive_expiry
        self._max_idle = max_idle
        self._idle: dict[tuple[str, str, int], _Connection] = {}
        self._busy: dict[_Key, int] = {}  # connections in use per miner
        # requests waiting for a busy connection of their miner, first come first served, each with its stall
        # limit; and per miner the timer that sends them all off on connections of their own
        self._waiting: dict[_Key, deque[tuple[asyncio.Future[_Connection | None], float]]] = {}
        self._stall_timers: dict[_Key, asyncio.TimerHandle] = {}
        self._tls = miner_tls_context()

    async def _open(self, key: tuple[str, str, int]) -> _Connection:
        scheme, host, port = key
        tls = self._tls if scheme == "https" else None
        try:
            if is_ipv4(host):  # miners are addressed by IP: the kernel decides the connect (see _connect)
                sock = await connect_socket(host, port, self._connect_timeout)
                try:
                    async with asyncio.timeout(self._connect_timeout):  # the TLS handshake, if any
                        reader, writer = await asyncio.open_connection(
                            sock=sock, ssl=tls, server_hostname=host if tls else None, limit=STREAM_LIMIT)
                except BaseException:
                    sock.close()
                    raise
            else:
                async with asyncio.timeout(self._connect_timeout):
                    reader, writer = await asyncio.open_connection(host, port, ssl=tls, limit=STREAM_LIMIT)
        except (TimeoutError, MinerTimeoutError):
            raise httpx.ConnectTimeout(f"connect to {host}:{port} timed out") from None
        except (OSError, ssl.SSLError, MinerError) as exc:
            raise httpx.ConnectError(f"connect to {host}:{port} failed: {exc}") from None
        return _Connection(reader, writer, h11.Connection(h11.CLIENT, max_incomplete_event_size=64 * 1024))

    def _take_idle(self, key: tuple[str, str, int]) -> _Connection | None:
        conn = self._idle.pop(key, None)
        if conn is None:
            return None
        if time.monotonic() - conn.idle_since > self._keepalive_expiry or conn.reader.at_eof():
            conn.close()
            return None
        return conn

    async def _wait_for_handoff(self, key: _Key, request: httpx.Request) -> _Connection | None:
        """The connection a busy request to the same miner hands over when done; None when it is not kept
        alive, or the miner stalls, or this request has waited its share of its deadline (see STALL)."""
        read = request.extensions.get("timeout", {}).get("read")
        deadline = float(read) if isinstance(read, int | float) and read > 0 else None
        stall = min(STALL, self._connect_timeout, STALL_SHARE * deadline if deadline is not None else STALL)
        waiter: asyncio.Future[_Connection | None] = asyncio.get_running_loop().create_future()
        queue = self._waiting.setdefault(key, deque())
        queue.append((waiter, stall))
        if key not in self._stall_timers:
            self._arm_stall_timer(key)
        try:
            await asyncio.wait_for(asyncio.shield(waiter), WAIT_SHARE * deadline if deadline is not None else None)
        except TimeoutError:
            pass
        except BaseException:  # cancelled (the request's deadline): a connection handed over meanwhile goes on
            if waiter.done() and not waiter.cancelled() and (conn := waiter.result()) is not None:
                self._release(key, conn, reusable=True)
            waiter.cancel()
            raise
        finally:
            self._forget_waiter(key, waiter)
        if waiter.done() and not waiter.cancelled():
            return waiter.result()
        waiter.cancel()
        return None

    def _forget_waiter(self, key: _Key, waiter: asyncio.Future[_Connection | None]) -> None:
        queue = self._waiting.get(key)
        if queue is None:
            return
        for entry in queue:
            if entry[0] is waiter:
                queue.remove(entry)
                break
        if not queue:
            del self._waiting[key]
            timer = self._stall_timers.pop(key, None)
            if timer is not None:
                timer.cancel()

    def _arm_stall_timer(self, key: _Key) -> None:
        """(Re)starts the stall timer of a miner with waiting requests: an exchange just began or ended."""
        timer = self._stall_timers.pop(key, None)
        if timer is not None:
            timer.cancel()
        queue = self._waiting.get(key)
        if queue:
            self._stall_timers[key] = asyncio.get_running_loop().call_later(queue[0][1], self._stalled, key)

    def _stalled(self, key: _Key) -> None:
        """No exchange with the miner ended in time: its waiting requests open connections of their own."""
        self._stall_timers.pop(key, None)
        for waiter, _ in self._waiting.pop(key, ()):
            if not waiter.done():
                waiter.set_result(None)

    def _next_waiter(self, key: _Key) -> asyncio.Future[_Connection | None] | None:
        queue = self._waiting.get(key)
        while queue:
            waiter = queue.popleft()[0]
            if not waiter.done():
                return waiter
        return None

    def _release(self, key: _Key, conn: _Connection, *, reusable: bool) -> None:
        state = conn.h11
        kept = reusable and state.our_state is h11.DONE and state.their_state is h11.DONE
        waiter = self._next_waiter(key)
        if waiter is not None:
            if kept:  # the next request waiting for this miner takes the connection as it is (still busy)
                state.start_next_cycle()
                waiter.set_result(conn)
                self._arm_stall_timer(key)
                return
            waiter.set_result(None)  # not kept alive: the waiter opens its own at once
        self._arm_stall_timer(key)
        self._busy[key] = self._busy.get(key, 1) - 1
        if self._busy[key] <= 0:
            del self._busy[key]
        if kept and key not in self._idle and len(self._idle) < self._max_idle:
            state.start_next_cycle()
            conn.idle_since = time.monotonic()
            self._idle[key] = conn
        else:
            conn.close()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        key = (url.scheme, url.host, url.port or (443 if url.scheme == "https" else 80))
        body = await request.aread()
        conn = self._take_idle(key)
        handed = False
        if conn is None and key in self._busy:
            conn = await self._wait_for_handoff(key, request)
            handed = conn is not None  # a connection handed over is still counted busy
        if not handed:
            self._busy[key] = self._busy.get(key, 0) + 1
        reused = conn is not None
        try:
            if conn is None:
                conn = await self._open(key)
            try:
                return await self._exchange(key, conn, request, body)
            except (httpx.ReadError, httpx.RemoteProtocolError, httpx.WriteError):
                conn.close()
                if not reused or request.method not in _IDEMPOTENT:
                    raise  # a change (POST, PATCH) is never sent twice, even when a stale connection ate it
            # the miner closed the kept-alive connection meanwhile: once more on a fresh one
            conn = await self._open(key)
            return await self._exchange(key, conn, request, body)
        except BaseException:  # no response to release (cancelled too): the connection goes, its slot with it
            if conn is not None:
                conn.close()
            self._unbusy(key)
            raise

    def _unbusy(self, key: _Key) -> None:
        """A request ends without a response stream to release (it failed): its miner has one busy less,
        and the next waiter opens its own connection at once."""
        waiter = self._next_waiter(key)
        if waiter is not None:
            waiter.set_result(None)
        self._arm_stall_timer(key)
        self._busy[key] = self._busy.get(key, 1) - 1
        if self._busy[key] <= 0:
            del self._busy[key]

    async def _exchange(self, key: tuple[str, str, int], conn: _Connection, request: httpx.Request,
                        body: bytes) -> httpx.Response:
        headers = [(k, v) for k, v in request.headers.raw if k.lower() not in (b"content-length",
                                                                              b"transfer-encoding")]
        headers.append((b"Content-Length", str(len(body)).encode()))
        try:
            data = conn.h11.send(h11.Request(method=request.method.encode(), target=url_target(request.url),
                                             headers=headers))
            data += conn.h11.send(h11.Data(data=body)) if body else b""
            data += conn.h11.send(h11.EndOfMessage())
            conn.writer.write(data)
            await conn.writer.drain()
        except (OSError, RuntimeError) as exc:  # RuntimeError: uvloop, on a transport the peer closed
            raise httpx.WriteError(str(exc)) from None
        while True:
            event = await _next_event(conn)
            if isinstance(event, h11.InformationalResponse):
                continue
            if isinstance(event, h11.Response):
                stream = _ResponseStream(self, key, conn, b"")
                return httpx.Response(event.status_code, headers=event.headers, stream=stream,
                                      extensions={"http_version": b"HTTP/1.1", "reason_phrase": event.reason})
            if isinstance(event, h11.ConnectionClosed):
                raise httpx.RemoteProtocolError("the miner closed the connection without a reply")
            raise httpx.RemoteProtocolError(f"unexpected HTTP event before the reply: {event!r}")

    async def aclose(self) -> None:
        idle, self._idle = self._idle, {}
        for conn in idle.values():
            conn.close()


async def _next_event(conn: _Connection) -> object:
    """The next h11 event, reading from the socket as needed; errors in httpx's terms."""
    while True:
        try:
            event = conn.h11.next_event()
            if event is not h11.NEED_DATA:
                return event
            data = await conn.reader.read(_READ)
            conn.h11.receive_data(data)
        except h11.RemoteProtocolError as exc:  # a truncated or malformed reply
            raise httpx.RemoteProtocolError(str(exc)) from None
        except OSError as exc:
            raise httpx.ReadError(str(exc)) from None


def url_target(url: httpx.URL) -> bytes:
    return url.raw_path or b"/"
