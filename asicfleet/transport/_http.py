"""HTTP(S) to miners through one shared `httpx.AsyncClient`, with an overall deadline and a size cap.

Miners serve self-signed certificates, so TLS is not verified; digest and bearer auth are per request.
`probe_http` speaks HTTP over an already-open socket so that identification costs one connection.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import h11
import httpx

from asicfleet._errors import (
    MinerConnectionError,
    MinerResponseError,
    MinerTimeoutError,
)
from asicfleet.transport._budget import ReplyBuffer
from asicfleet.transport._json import decode_json
from asicfleet.transport._miner_transport import MinerTransport
from asicfleet.transport._settings import TransportSettings


@dataclass
class HttpReply:
    status: int
    headers: dict[str, str]  # lower-cased names
    body: bytes
    url: str = ""

    def json(self) -> Any:
        return decode_json(self.body)

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")


@dataclass
class HttpClient:
    """Owns the one `httpx.AsyncClient` a scan or a set of miner handles share (over MinerTransport)."""

    settings: TransportSettings
    _client: httpx.AsyncClient | None = field(default=None, init=False, repr=False)
    _loop: asyncio.AbstractEventLoop | None = field(default=None, init=False, repr=False)

    def _get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        if self._client is None or self._loop is not loop or self._client.is_closed:
            # a client is bound to the loop it was first used on; asyncio.run() per call needs a new one
            self._client = httpx.AsyncClient(
                transport=MinerTransport(self.settings.connect_timeout),
                follow_redirects=False,
                timeout=httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout),
                trust_env=False,
            )
            self._loop = loop
        return self._client

    async def aclose(self) -> None:
        if self._client is not None and not self._client.is_closed:
            await self._client.aclose()
        self._client = None

    def url(self, ip: str, port: int, path: str, *, tls: bool = False) -> str:
        scheme = "https" if tls else "http"
        return f"{scheme}://{ip}:{self.settings.ports(port)}{path}"

    async def request(self, method: str, ip: str, path: str, *, port: int = 80, tls: bool = False,
                      auth: httpx.Auth | None = None, json: Any = None, content: bytes | None = None,
                      data: dict[str, Any] | None = None, files: dict[str, Any] | None = None,
                      headers: dict[str, str] | None = None, params: dict[str, Any] | None = None,
                      timeout: float | None = None) -> HttpReply:
        """One request; the whole exchange (auth round trips included) must end within `timeout`
        seconds (default: the read timeout), since a slow-dripping miner never trips a per-read timeout.
        A few firmware calls legitimately take long (a config write that restarts the miner)."""
        url = self.url(ip, port, path, tls=tls)
        client = self._get()
        limit = self.settings.max_reply_bytes
        deadline = timeout if timeout is not None else self.settings.read_timeout
        per_read = httpx.Timeout(deadline, connect=self.settings.connect_timeout)
        try:
            async with asyncio.timeout(deadline + self.settings.connect_timeout):
                async with client.stream(method, url, auth=auth, json=json, content=content, data=data,
                                         files=files, headers=headers, params=params,
                                         timeout=per_read) as response, \
                        ReplyBuffer(limit, self.settings.reply_budget_bytes, f"{method} {path}: reply") as buffer:
                    announced = response.headers.get("content-length", "")
                    if announced.isdigit():  # refused or drawn whole before a byte of the body is read
                        await buffer.reserve(int(announced))
                    async for chunk in response.aiter_raw():
                        await buffer.add(chunk)
                    return HttpReply(response.status_code, {k.lower(): v for k, v in response.headers.items()},
                                     buffer.content(), str(response.url))
        except TimeoutError:
            raise MinerTimeoutError(f"{method} {path}: no complete reply in time") from None
        except httpx.TimeoutException:
            raise MinerTimeoutError(f"{method} {path}: timed out") from None
        except (httpx.ConnectError, httpx.NetworkError) as exc:
            raise MinerConnectionError(f"{method} {path}: {exc or type(exc).__name__}") from None
        except (httpx.RemoteProtocolError, httpx.DecodingError) as exc:
            raise MinerResponseError(f"{method} {path}: broken HTTP reply ({exc})") from None


async def probe_http(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str, *,
                     path: str = "/", limit: int = 256 * 1024) -> HttpReply:
    """GET `path` on an open connection and read the reply (headers and up to `limit` bytes of body)."""
    conn = h11.Connection(our_role=h11.CLIENT, max_incomplete_event_size=64 * 1024)
    request = h11.Request(method="GET", target=path, headers=[("Host", host), ("User-Agent", "asicfleet"),
                                                              ("Accept", "*/*"), ("Connection", "close")])
    try:
        writer.write(conn.send(request) + conn.send(h11.EndOfMessage()))
        await writer.drain()
    except (OSError, RuntimeError) as exc:  # uvloop raises RuntimeError on a transport the peer closed
        raise MinerConnectionError(f"GET {path}: the connection closed before the request went out ({exc})") \
            from None
    status = 0
    headers: dict[str, str] = {}
    body = bytearray()
    try:
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await reader.read(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.Response):
                status = event.status_code
                headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in event.headers}
            elif isinstance(event, h11.Data):
                body += event.data
                if len(body) >= limit:
                    break  # enough to identify; a page bigger than this is not worth reading whole
            elif isinstance(event, h11.EndOfMessage | h11.ConnectionClosed):
                break
    except h11.RemoteProtocolError as exc:
        if not status:
            raise MinerResponseError(f"GET {path}: not an HTTP reply ({exc})") from None
    except (ConnectionResetError, BrokenPipeError) as exc:
        raise MinerConnectionError(f"GET {path}: connection reset ({exc})") from None
    if not status:
        raise MinerConnectionError(f"GET {path}: the connection closed without a reply")
    return HttpReply(status, headers, bytes(body[:limit]))


class MinerDigestAuth(httpx.DigestAuth):
    """Digest auth that can start from a challenge seen elsewhere (an identification probe's 401), so the
    first request answers it at once; a stale challenge is answered 401 again and retried as usual."""

    def learn(self, www_authenticate: str) -> bool:
        """Takes a `WWW-Authenticate: Digest ...` header as the last challenge; False when it is not one."""
        if not www_authenticate.lower().startswith("digest "):
            return False
        try:
            # httpx keeps the challenge it answers in `_last_challenge` (httpx 0.28): parsed the same way here;
            # should a later httpx name these otherwise, the first request earns its 401 as before
            self._last_challenge = self._parse_challenge(httpx.Request("GET", "http://miner/"), httpx.Response(401),
                                                         www_authenticate)
        except (httpx.ProtocolError, AttributeError, TypeError):
            return False
        self._nonce_count = 1
        return True
