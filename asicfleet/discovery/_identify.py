"""Identification: decide from what a host answers which firmware backend speaks to it.

An address costs one connection attempt (to the web port) when nothing listens there. When the
web port answers, `GET /` goes over that same connection while the RPC `version` request runs in
parallel; the backends' `matches()` then read those signals, and the chosen one's `identify()`
reads the model. One deadline covers the whole identification of a host.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass

from asicfleet._errors import MinerConnectionError, MinerError, MinerTimeoutError
from asicfleet._miner import Miner
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, Probe
from asicfleet.transport import close_quietly, open_tcp, probe_http, rpc_call

log = logging.getLogger("asicfleet.discovery")
WEB_PORT = 80
PROBE_RPC_COMMANDS = ("version",)


@dataclass
class Identified:
    """The outcome for one address: a miner, nothing (no miner there), or the error that stopped us."""

    ip: str
    miner: Miner | None = None
    error: str | None = None


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(ip: str, session: Session, retries: int) -> Connection | None:
    """The one connection attempt an address costs (bounded by the connect timeout); None: nobody there."""
    settings = session.settings
    for attempt in range(retries + 1):
        try:
            return await open_tcp(ip, settings.ports(WEB_PORT), settings.connect_timeout)
        except MinerTimeoutError:
            if attempt == retries:
                return None  # silent: nothing there (or a firewall); not a miner we can reach
        except MinerConnectionError as exc:
            if exc.nothing_listens:
                return None  # refused or unreachable: nothing listens
            raise  # accepted, then reset: something is there and misbehaves
    return None


async def _probe(ip: str, session: Session, connection: Connection) -> Probe:
    settings = session.settings
    reader, writer = connection
    probe = Probe(ip=ip)

    async def web() -> None:
        try:
            probe.web = await asyncio.wait_for(probe_http(reader, writer, ip), settings.read_timeout)
        finally:
            await close_quietly(writer)

    async def rpc(command: str) -> None:
        try:
            probe.rpc[command] = await rpc_call(ip, command, settings=settings)
        except MinerError as exc:
            probe.rpc[command] = exc

    results = await asyncio.gather(web(), *(rpc(c) for c in PROBE_RPC_COMMANDS), return_exceptions=True)
    web_error = results[0]
    if isinstance(web_error, BaseException) and not isinstance(web_error, MinerError | TimeoutError | OSError):
        raise web_error
    return probe


async def identify(ip: str, session: Session, *, timeout: float, retries: int = 0) -> Identified:
    """Identifies the miner at `ip`: connecting is bounded by the connect timeout, and everything after
    it by `timeout` seconds; never raises for a misbehaving host."""
    try:
        connection = await _connect(ip, session, retries)
    except MinerError as exc:
        return Identified(ip, error=f"identification failed: {exc}")
    if connection is None:
        return Identified(ip)  # the common case in a scan: no timer beyond the connect's own
    try:
        async with asyncio.timeout(timeout):
            probe = await _probe(ip, session, connection)
            for backend in BACKENDS:
                if backend.matches(probe):
                    device = await backend.identify(probe, session)
                    if device is not None:
                        return Identified(ip, Miner(backend(ip, device, session)))
    except TimeoutError:
        return Identified(ip, error=f"identification timed out after {timeout:g}s")
    except MinerError as exc:
        return Identified(ip, error=f"identification failed: {exc}")
    except Exception as exc:  # a bug in one backend must cost one address, not the scan
        log.exception("identifying %s failed", ip)
        return Identified(ip, error=f"identification failed: {type(exc).__name__}: {exc}")
    failures = [f"{c}: {e}" for c, e in probe.rpc.items() if isinstance(e, MinerError)
                and not isinstance(e, MinerConnectionError)]
    if probe.web is None or failures:
        # something listens but answered badly: worth reporting, it may be a sick miner
        return Identified(ip, error="unrecognised: " + ("; ".join(failures) or "web port gave no HTTP reply"))
    return Identified(ip)  # a host, but not a miner we know (a switch, a camera...)
