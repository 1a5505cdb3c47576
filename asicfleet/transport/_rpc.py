"""CGMiner-style JSON RPC over TCP (port 4028): one request per connection, reply read until EOF or NUL."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import orjson

from asicfleet._errors import (
    MinerAPIError,
    MinerConnectionError,
    MinerResponseError,
    MinerTimeoutError,
)
from asicfleet.transport._budget import DEFAULT_BUDGET, ReplyBuffer
from asicfleet.transport._connect import connect_error, connect_socket
from asicfleet.transport._json import decode_json
from asicfleet.transport._settings import TransportSettings

RPC_PORT = 4028
_CHUNK = 16 * 1024
# what a stream buffers before it stops reading from the socket (asyncio pauses past twice this): small, since
# these bytes are outside the reply budget, for every connection at once
STREAM_LIMIT = 8 * 1024


async def open_tcp(ip: str, port: int, timeout: float) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """Opens a TCP connection, mapping every failure to MinerConnectionError/MinerTimeoutError (see
    `connect_socket`: the kernel, not our loop's speed, decides whether the peer answered)."""
    sock = await connect_socket(ip, port, timeout)
    try:
        return await asyncio.open_connection(sock=sock, limit=STREAM_LIMIT)
    except OSError as exc:
        sock.close()
        raise connect_error(ip, port, exc) from None


async def close_quietly(writer: asyncio.StreamWriter) -> None:
    writer.close()
    with contextlib.suppress(OSError, TimeoutError):
        await asyncio.wait_for(writer.wait_closed(), 0.5)


async def read_capped(reader: asyncio.StreamReader, limit: int, *, stop_at_nul: bool = True,
                      budget: int = DEFAULT_BUDGET) -> bytes:
    """Reads until EOF (or a NUL terminator), refusing to buffer more than `limit` bytes; what a reply holds
    past a small allowance is drawn from the event loop's reply budget of `budget` bytes (see _budget)."""
    async with ReplyBuffer(limit, budget) as buffer:
        while True:
            try:
                chunk = await reader.read(_CHUNK)
            except (ConnectionResetError, BrokenPipeError) as exc:
                raise MinerConnectionError(f"connection reset while reading ({exc.strerror or exc})") from None
            if not chunk:
                break
            await buffer.add(chunk)
            if stop_at_nul and chunk.endswith(b"\x00"):
                break
        return buffer.content()


async def read_exact_capped(reader: asyncio.StreamReader, length: int, limit: int, *, budget: int = DEFAULT_BUDGET,
                            what: str = "reply") -> bytes:
    """Reads a reply of an announced `length` (length-framed protocols): refused past `limit` before a byte is
    read, and drawn from the event loop's reply budget (see _budget) before it is read, so a thousand hosts
    announcing the cap do not hold a thousand caps at once. A stream that ends early raises IncompleteReadError."""
    async with ReplyBuffer(limit, budget, what) as buffer:
        await buffer.reserve(length)
        while buffer.size < length:
            chunk = await reader.read(min(_CHUNK, length - buffer.size))
            if not chunk:
                raise asyncio.IncompleteReadError(buffer.content(), length)
            await buffer.add(chunk)
        return buffer.content()


def encode_request(command: str, parameter: str | int | None = None) -> bytes:
    body: dict[str, Any] = {"command": command}
    if parameter is not None:
        body["parameter"] = parameter
    return orjson.dumps(body)


async def rpc_raw(ip: str, command: str, parameter: str | int | None = None, *,
                  settings: TransportSettings, port: int = RPC_PORT, payload: bytes | None = None) -> bytes:
    """Sends one RPC request and returns the raw reply bytes."""
    reader, writer = await open_tcp(ip, settings.ports(port), settings.connect_timeout)
    try:
        writer.write(payload if payload is not None else encode_request(command, parameter))
        await writer.drain()
        reading = read_capped(reader, settings.max_reply_bytes, budget=settings.reply_budget_bytes)
        return await asyncio.wait_for(reading, settings.read_timeout)
    except TimeoutError:
        raise MinerTimeoutError(f"{command}: no complete reply within {settings.read_timeout:g}s") from None
    except (OSError, RuntimeError) as exc:  # uvloop raises RuntimeError on a transport the peer closed
        raise MinerConnectionError(f"{command}: {getattr(exc, 'strerror', None) or exc}") from None
    finally:
        await close_quietly(writer)


def check_status(reply: Any, command: str) -> Any:
    """Raises MinerAPIError for a CGMiner error reply (STATUS 'E' or 'F'); returns the reply otherwise."""
    if not isinstance(reply, dict):
        raise MinerResponseError(f"{command}: expected a JSON object, got {type(reply).__name__}")
    status = reply.get("STATUS")
    if isinstance(status, list) and status and isinstance(status[0], dict):
        code = status[0].get("STATUS")
        if code in ("E", "F"):
            raise MinerAPIError(f"{command}: {status[0].get('Msg', 'error')} (code {status[0].get('Code')})")
    elif isinstance(status, str) and status in ("E", "F"):  # btminer's flat form
        raise MinerAPIError(f"{command}: {reply.get('Msg', 'error')} (code {reply.get('Code')})")
    return reply


async def rpc_call(ip: str, command: str, parameter: str | int | None = None, *,
                   settings: TransportSettings, port: int = RPC_PORT) -> dict[str, Any]:
    """One RPC command, decoded and checked for an error STATUS."""
    raw = await rpc_raw(ip, command, parameter, settings=settings, port=port)
    result: dict[str, Any] = check_status(decode_json(raw), command)
    return result


async def rpc_multi(ip: str, commands: list[str], *, settings: TransportSettings,
                    port: int = RPC_PORT) -> dict[str, dict[str, Any] | Exception]:
    """Sends `a+b+c` as one request; returns each command's own reply (or the error for that command).

    A joined reply maps each command to a one-element list holding that command's normal reply.
    """
    if len(commands) == 1:
        try:
            return {commands[0]: await rpc_call(ip, commands[0], settings=settings, port=port)}
        except (MinerAPIError, MinerResponseError) as exc:
            return {commands[0]: exc}
    joined = "+".join(commands)
    reply = decode_json(await rpc_raw(ip, joined, settings=settings, port=port))
    if not isinstance(reply, dict):
        raise MinerResponseError(f"{joined}: expected a JSON object, got {type(reply).__name__}")
    if not any(c in reply for c in commands):
        check_status(reply, joined)  # the whole batch was refused
        raise MinerResponseError(f"{joined}: reply holds none of the commands")
    out: dict[str, dict[str, Any] | Exception] = {}
    for command in commands:
        part = reply.get(command)
        if isinstance(part, list) and part and isinstance(part[0], dict):
            part = part[0]
        if not isinstance(part, dict):
            out[command] = MinerResponseError(f"{command}: missing from the joined reply")
            continue
        try:
            out[command] = check_status(part, command)
        except MinerAPIError as exc:
            out[command] = exc
    return out
