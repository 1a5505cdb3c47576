"""MinerListener: hears the IP-report datagrams miners send when their IP-report button is pressed.

A stock Antminer (and Braiins OS on Antminer hardware) sends one UDP datagram, `ip,mac` in ASCII, to the
broadcast address on port 14235; a Whatsminer sends `IP:<ip>MAC:<mac>` (one trailing byte after the MAC)
to port 8888. asic-rs listens on both ports and takes the datagram's source address as the miner's;
pyasic reads the address and the MAC from the text and drops the `OK` acknowledgement some tools send.
We do both: the source address is where the miner answers (what `listen_ip_only` yields and `listen`
identifies), and the text's address and MAC come with each `IPReport`.

The ports are configurable (`ports={"antminer": 14235, "whatsminer": 8888}`; 0 picks a free port), and so
is the address bound (`host`, all interfaces by default): a real deployment may map the ports, a test binds
a loopback address of its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
from collections.abc import AsyncGenerator, Mapping
from dataclasses import dataclass
from ipaddress import IPv4Address, ip_address
from types import TracebackType
from typing import TYPE_CHECKING, Any

from asicfleet._errors import ListenerError
from asicfleet.discovery._factory import MinerFactory

if TYPE_CHECKING:
    from asicfleet._miner import Miner

log = logging.getLogger("asicfleet.listener")

ANTMINER_REPORT_PORT = 14235
WHATSMINER_REPORT_PORT = 8888
DEFAULT_PORTS: dict[str, int] = {"antminer": ANTMINER_REPORT_PORT, "whatsminer": WHATSMINER_REPORT_PORT}
_ACKNOWLEDGEMENT = b"OK" + b"\x00" * 8  # sent back by IP-report tools, not by miners
_MAX_QUEUED = 1024  # reports waiting for a reader; beyond that a burst is dropped (and logged), not hoarded
_MAC = re.compile(r"([0-9A-Fa-f]{2}[:-]){5}[0-9A-Fa-f]{2}")


@dataclass(frozen=True)
class IPReport:
    """One IP-report datagram: `ip` is its sender (where the miner answers); `reported_ip` and `mac` are what
    its text says, when it says it; `kind` is the report format its port stands for."""

    ip: IPv4Address
    kind: str
    port: int
    mac: str | None
    reported_ip: IPv4Address | None
    payload: bytes


def parse_ip_report(payload: bytes) -> tuple[IPv4Address | None, str | None] | None:
    """(the address, the MAC) an IP-report datagram names, each None when it names none; None for a
    datagram that is no report (the `OK` acknowledgement)."""
    if payload.startswith(b"OK") and payload.strip(b"\x00") == b"OK":
        return None
    text = payload.decode("ascii", errors="replace").strip("\x00\r\n\t ")
    if text.upper().startswith("IP:") and "MAC" in text.upper():  # Whatsminer: IP:<ip>MAC:<mac>
        head, _, tail = text[3:].partition("MAC")
        address_text, mac_text = head, tail.lstrip(":")
    else:  # Antminer: <ip>,<mac>, the address sometimes as [ip/prefix]
        address_text, _, mac_text = text.partition(",")
        address_text = address_text.strip("[] ").split("/", 1)[0]
    address: IPv4Address | None
    try:
        parsed = ip_address(address_text.strip())
        address = parsed if isinstance(parsed, IPv4Address) else None
    except ValueError:
        address = None
    found = _MAC.search(mac_text)
    mac = found.group(0).replace("-", ":").upper() if found else None
    return address, mac


class _Receiver(asyncio.DatagramProtocol):
    def __init__(self, kind: str, queue: asyncio.Queue[IPReport]) -> None:
        self.kind = kind
        self.queue = queue
        self.port = 0

    def datagram_received(self, data: bytes, addr: tuple[str | Any, int]) -> None:
        parsed = parse_ip_report(data)
        if parsed is None:
            return
        try:
            sender = ip_address(str(addr[0]))
        except ValueError:
            return
        if not isinstance(sender, IPv4Address):
            return
        report = IPReport(ip=sender, kind=self.kind, port=self.port, mac=parsed[1], reported_ip=parsed[0],
                          payload=bytes(data))
        try:
            self.queue.put_nowait(report)
        except asyncio.QueueFull:
            log.warning("IP report from %s dropped: %d reports wait unread", sender, _MAX_QUEUED)


class MinerListener:
    """Hears IP-report broadcasts. `listen()` yields the miner behind each report (identified with
    `factory`'s settings: port map, credentials, timeouts), `listen_ip_only()` its address, `reports()` the
    whole report. Each iterator runs until the caller stops iterating.

    `async with MinerListener(...) as listener:` opens the ports up front (`listener.ports` then gives the
    ones bound); an iterator used outside such a block opens them itself and closes them when it ends.
    """

    def __init__(self, factory: MinerFactory | None = None, *, host: str = "0.0.0.0",
                 ports: Mapping[str, int] | None = None) -> None:
        chosen = dict(DEFAULT_PORTS if ports is None else ports)
        unknown = sorted(set(chosen) - set(DEFAULT_PORTS))
        if unknown or not chosen:
            raise ValueError(f"IP reports come in the formats {sorted(DEFAULT_PORTS)}, not {unknown or chosen}")
        for kind, port in chosen.items():
            if isinstance(port, bool) or not isinstance(port, int) or not 0 <= port <= 65535:
                raise ValueError(f"the {kind} report port must be 0..65535, not {port!r}")
        try:
            bind = ip_address(host)
        except ValueError:
            raise ValueError(f"the listener binds an IPv4 address, not {host!r}") from None
        if not isinstance(bind, IPv4Address):
            raise ValueError(f"the listener binds an IPv4 address, not {host!r}")
        self.host = host
        self.requested_ports = chosen
        self._factory = factory
        self._transports: list[asyncio.DatagramTransport] = []
        self._queue: asyncio.Queue[IPReport] | None = None
        self._bound: dict[str, int] = {}

    @property
    def ports(self) -> dict[str, int]:
        """The ports listened on, by report format (after `start`; 0 resolved to the port picked)."""
        return dict(self._bound)

    @property
    def listening(self) -> bool:
        return bool(self._transports)

    async def start(self) -> None:
        """Opens every report port; on any failure none stays open, and the error names the port."""
        if self._transports:
            return
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[IPReport] = asyncio.Queue(maxsize=_MAX_QUEUED)
        transports: list[asyncio.DatagramTransport] = []
        bound: dict[str, int] = {}
        try:
            for kind, port in self.requested_ports.items():
                receiver = _Receiver(kind, queue)
                try:
                    transport, _ = await loop.create_datagram_endpoint(lambda r=receiver: r,  # type: ignore[misc]
                                                                       local_addr=(self.host, port))
                except OSError as exc:
                    hint = " (ports below 1024 need privileges: pass ports={...})" if port < 1024 else ""
                    raise ListenerError(exc.errno, f"cannot listen for {kind} IP reports on UDP "
                                                   f"{self.host}:{port}: {exc.strerror or exc}{hint}") from None
                transports.append(transport)
                receiver.port = int(transport.get_extra_info("sockname")[1])
                bound[kind] = receiver.port
        except BaseException:
            for transport in transports:
                transport.close()
            raise
        self._transports, self._queue, self._bound = transports, queue, bound

    async def close(self) -> None:
        for transport in self._transports:
            transport.close()
        self._transports = []
        self._queue = None
        await asyncio.sleep(0)

    async def __aenter__(self) -> MinerListener:
        await self.start()
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.close()

    async def reports(self) -> AsyncGenerator[IPReport, None]:
        """Every IP report as it arrives."""
        own = not self._transports
        if own:
            await self.start()
        assert self._queue is not None
        queue = self._queue
        try:
            while True:
                yield await queue.get()
        finally:
            if own:
                await self.close()

    async def listen_ip_only(self) -> AsyncGenerator[IPv4Address, None]:
        """The address of each miner that reports itself."""
        async with contextlib.aclosing(self.reports()) as reports:  # closing this closes the ports it opened
            async for report in reports:
                yield report.ip

    async def listen(self) -> AsyncGenerator[Miner, None]:
        """The miner behind each report, identified as a scan identifies it; a sender that turns out to be
        no miner we know is left out (logged), as asic-rs does."""
        factory = self._factory if self._factory is not None else MinerFactory()
        async with contextlib.aclosing(self.reports()) as reports:
            async for report in reports:
                miner = await factory.get_miner(report.ip)
                if miner is None:
                    log.info("IP report from %s (%s), but no miner we know answers there", report.ip, report.kind)
                    continue
                yield miner


__all__ = ["ANTMINER_REPORT_PORT", "DEFAULT_PORTS", "WHATSMINER_REPORT_PORT", "IPReport", "MinerListener",
           "parse_ip_report"]
