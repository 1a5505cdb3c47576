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

from asicfleet._errors import LocalResourceError, MinerConnectionError, MinerError, MinerTimeoutError
from asicfleet._miner import Miner
from asicfleet._session import Session
from asicfleet.backends import BACKENDS, Probe
from asicfleet.discovery._pace import LoopMonitor
from asicfleet.transport import close_quietly, open_tcp, probe_http, rpc_call

log = logging.getLogger("asicfleet.discovery")
WEB_PORT = 80
PROBE_RPC_COMMANDS = ("version",)


@dataclass
class Identified:
    """The outcome for one address: a miner, nothing (no miner there), or the error that stopped us.

    `undecided` marks an outcome our own process spoiled (a deadline expired while the event loop was
    stalled, or this machine ran out of descriptors or ports): the scan asks again before it reports one.
    """

    ip: str
    miner: Miner | None = None
    error: str | None = None
    undecided: bool = False
    local: bool = False  # undecided because this machine ran out of descriptors or ports
    absent: str | None = None  # no miner because nothing listens: "refused" (or unreachable) or "silent"


Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


async def _connect(ip: str, session: Session, retries: int) -> Connection | str:
    """The one connection attempt an address costs (bounded by the connect timeout); when nobody is
    there, why: "silent" (no answer in time) or "refused" (refused or unreachable)."""
    settings = session.settings
    for attempt in range(retries + 1):
        try:
            return await open_tcp(ip, settings.ports(WEB_PORT), settings.connect_timeout)
        except MinerTimeoutError:
            if attempt == retries:
                return "silent"  # nothing there (or a firewall); not a miner we can reach
        except MinerConnectionError as exc:
            if exc.nothing_listens:
                return "refused"  # refused or unreachable: nothing listens
            raise  # accepted, then reset: something is there and misbehaves
    return "silent"


async def _probe(ip: str, session: Session, connection: Connection | None) -> tuple[Probe, bool]:
    """The identification signals, and whether any of them ended in a timeout (no web signal without a
    web connection)."""
    settings = session.settings
    probe = Probe(ip=ip)
    timed_out = False

    async def web() -> None:
        nonlocal timed_out
        if connection is None:
            return
        reader, writer = connection
        try:
            probe.web = await asyncio.wait_for(probe_http(reader, writer, ip), settings.read_timeout)
        except TimeoutError:
            timed_out = True
            raise
        finally:
            await close_quietly(writer)

    async def rpc(command: str) -> None:
        nonlocal timed_out
        try:
            probe.rpc[command] = await rpc_call(ip, command, settings=settings)
        except LocalResourceError:
            raise
        except MinerError as exc:
            timed_out = timed_out or isinstance(exc, MinerTimeoutError)
            probe.rpc[command] = exc

    results = await asyncio.gather(web(), *(rpc(c) for c in PROBE_RPC_COMMANDS), return_exceptions=True)
    for result in results:
        if isinstance(result, LocalResourceError):
            raise result
    web_error = results[0]
    if isinstance(web_error, BaseException) and not isinstance(web_error, MinerError | TimeoutError | OSError):
        raise web_error
    return probe, timed_out


async def identify(ip: str, session: Session, *, timeout: float, retries: int = 0,
                   monitor: LoopMonitor | None = None, port_check: bool = True) -> Identified:
    """Identifies the miner at `ip`: connecting is bounded by the connect timeout, and everything after
    it by `timeout` seconds; never raises for a misbehaving host.

    With `port_check` (the default) an address whose web port does not accept is no miner, at the cost
    of that one attempt; without it, identification goes on over the other ports (RPC) all the same.
    With a `monitor`, a timeout during which the loop stalled for more than a tenth of the deadline that
    expired is returned as undecided rather than as the host's fault.
    """
    connection: Connection | str | None
    try:
        connection = await _connect(ip, session, retries)
    except LocalResourceError as exc:
        return Identified(ip, error=f"undecided: {exc}", undecided=True, local=True)
    except MinerError as exc:
        if port_check:
            return Identified(ip, error=f"identification failed: {exc}")
        connection = None  # the web port misbehaves: the RPC may still tell
    if isinstance(connection, str):
        if port_check:
            return Identified(ip, absent=connection)  # the common case in a scan: no timer beyond the connect's own
        connection = None  # no web port: identification goes on over the RPC
    stalled_before = monitor.stalled() if monitor is not None else 0.0
    outcome, timed_out = await _identify_connected(ip, session, connection, timeout)
    if outcome.undecided:
        return outcome
    if timed_out and outcome.miner is None and monitor is not None:
        stall = monitor.stalled() - stalled_before
        if stall > 0.1 * min(timeout, session.settings.read_timeout):
            what = outcome.error or "no miner recognised"
            return Identified(ip, error=f"undecided: {what} while this scanner was overloaded "
                                        f"(its event loop stalled {stall:.1f}s)", undecided=True)
    return outcome


async def _identify_connected(ip: str, session: Session, connection: Connection | None, timeout: float
                              ) -> tuple[Identified, bool]:
    """Identification once the web port accepted; the flag tells whether a timeout shaped the outcome."""
    try:
        async with asyncio.timeout(timeout):
            probe, timed_out = await _probe(ip, session, connection)
            for backend in BACKENDS:
                if backend.matches(probe):
                    device = await backend.identify(probe, session)
                    if device is not None:
                        handle = backend.from_identification(ip, device, session, probe.learned)
                        return Identified(ip, Miner(handle)), False
    except TimeoutError:
        return Identified(ip, error=f"identification timed out after {timeout:g}s"), True
    except LocalResourceError as exc:
        return Identified(ip, error=f"undecided: {exc}", undecided=True, local=True), True
    except MinerError as exc:
        return Identified(ip, error=f"identification failed: {exc}"), isinstance(exc, MinerTimeoutError)
    except Exception as exc:  # a bug in one backend must cost one address, not the scan
        log.exception("identifying %s failed", ip)
        return Identified(ip, error=f"identification failed: {type(exc).__name__}: {exc}"), False
    failures = [f"{c}: {e}" for c, e in probe.rpc.items() if isinstance(e, MinerError)
                and not isinstance(e, MinerConnectionError)]
    if connection is None:
        # no port check, and the web port did not accept: only an RPC that answered badly says anything
        failures = [f"{c}: {e}" for c, e in probe.rpc.items() if isinstance(e, MinerError)
                    and not isinstance(e, MinerConnectionError | MinerTimeoutError)]
        if not failures:
            return Identified(ip), timed_out
    if probe.web is None or failures:
        # something listens but answered badly: worth reporting, it may be a sick miner
        error = "unrecognised: " + ("; ".join(failures) or "web port gave no HTTP reply")
        return Identified(ip, error=error), timed_out
    return Identified(ip), timed_out  # a host, but not a miner we know (a switch, a camera...)
