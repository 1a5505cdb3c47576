"""MinerFactory: the scan range and discovery tuning, and the scans themselves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
from collections.abc import AsyncIterator, Iterable, Iterator, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from asicfleet._errors import InvalidTargetError, TooManyAddressesError
from asicfleet._limits import raise_fd_limit
from asicfleet._miner import Miner
from asicfleet._session import CredentialRule, Session
from asicfleet.discovery._identify import Identified, identify
from asicfleet.discovery._pace import AdaptiveLimit
from asicfleet.discovery._targets import TargetSet, read_target_file
from asicfleet.hardware import lookup_model
from asicfleet.transport import PortMap, TransportSettings

DEFAULT_MAX_ADDRESSES = 65_536  # a /16: more in one process is likely a typo, or work for --distributed
_RETRY_CEILINGS = (256, 64, 16)  # in-flight ceilings of the rounds that ask undecided addresses again
_RETRY_PAUSE = 0.5
log = logging.getLogger(__name__)


@dataclasses.dataclass
class ScanSummary:
    """What a finished scan knows about itself. `undecided`: addresses still spoiled by our own overload
    after every retry round (reported with an error, never as absent); 0 unless the machine is starved."""

    addresses: int
    retried: int = 0
    rounds: int = 0
    undecided: int = 0
    peak_in_flight: int = 0
    lowest_in_flight: int = 0
    worst_stall: float = 0.0
    refused: int = 0  # addresses that refused the connection or were unreachable: nothing listens
    silent: int = 0  # addresses that gave no answer within the connect timeout
    listening: int = 0  # addresses where something accepted the connection (a miner or not)
    miners: int = 0

    def count(self, result: Identified) -> None:
        """Adds one reported outcome to the counts."""
        if result.absent == "refused":
            self.refused += 1
        elif result.absent == "silent":
            self.silent += 1
        elif not result.undecided:
            self.listening += 1
            self.miners += result.miner is not None

    # (make, model string) -> miners reporting it, for strings the catalogue does not know: kept raw, never guessed
    unknown_models: dict[tuple[str, str], int] = dataclasses.field(default_factory=dict)

    def note_model(self, result: Identified) -> None:
        """Counts a miner whose model string is not catalogued; the first one of each string is logged."""
        if result.miner is None:
            return
        device = result.miner.device_info
        if not device.model or lookup_model(device.make or "", device.model) is not None:
            return
        key = (str(device.make), device.model)
        if key not in self.unknown_models:
            log.warning("unknown model %r (make %s) at %s: no expected hash rate or chips", device.model,
                        device.make, result.ip)
        self.unknown_models[key] = self.unknown_models.get(key, 0) + 1


class MinerFactory:
    """Finds miners. Build it with `from_subnet/from_range/from_octets/from_file`, tune it with the
    `with_*` methods (each returns the factory, so calls chain), then `await scan()`, iterate
    `scan_stream()`, or `await get_miner(ip)` for a known address."""

    def __init__(self) -> None:
        self.targets = TargetSet()
        self.concurrent_limit = 1000
        self.identification_timeout = 10.0
        self.connectivity_retries = 0
        self.port_check = True
        self.max_addresses = DEFAULT_MAX_ADDRESSES
        self.last_scan: ScanSummary | None = None
        self.settings = TransportSettings()
        self._rules: list[CredentialRule] = []
        self._session: Session | None = None

    # ----- construction -----------------------------------------------------------------------
    @classmethod
    def from_subnet(cls, subnet: str) -> MinerFactory:
        return cls().with_subnet(subnet)

    @classmethod
    def from_range(cls, range: str) -> MinerFactory:
        return cls().with_range(range)

    @classmethod
    def from_octets(cls, octet1: str | int, octet2: str | int, octet3: str | int, octet4: str | int) -> MinerFactory:
        return cls().with_octets(octet1, octet2, octet3, octet4)

    @classmethod
    def from_targets(cls, targets: Iterable[str], *, allow_public: bool = False) -> MinerFactory:
        """Any mix of CIDRs, `a-b` ranges, octet patterns and single IPs."""
        factory = cls().with_allow_public(allow_public)
        factory.targets.add(targets)
        return factory

    @classmethod
    def from_file(cls, path: str | Path, *, allow_public: bool = False) -> MinerFactory:
        """Targets from a file, one per line; `#` comments."""
        return cls.from_targets(read_target_file(path), allow_public=allow_public)

    def with_subnet(self, subnet: str) -> MinerFactory:
        if "/" not in subnet:
            raise InvalidTargetError(f"{subnet!r} is not a subnet in CIDR form such as 10.0.0.0/24")
        self.targets.add([subnet])
        return self

    def with_range(self, range: str) -> MinerFactory:
        self.targets.add([range])
        return self

    def with_octets(self, octet1: str | int, octet2: str | int, octet3: str | int, octet4: str | int
                    ) -> MinerFactory:
        self.targets.add([".".join(str(o) for o in (octet1, octet2, octet3, octet4))])
        return self

    def with_exclusions(self, targets: Iterable[str]) -> MinerFactory:
        self.targets.exclude(targets)
        return self

    def with_allow_public(self, allowed: bool = True) -> MinerFactory:
        """Allows targets outside private and loopback space (off by default: a typo should not scan the internet)."""
        self.targets.allow_public = allowed
        return self

    # ----- tuning -----------------------------------------------------------------------------
    def _set(self, **changes: object) -> MinerFactory:
        self.settings = dataclasses.replace(self.settings, **changes)  # type: ignore[arg-type]
        self._session = None
        return self

    def with_concurrent_limit(self, limit: int) -> MinerFactory:
        if limit < 1:
            raise ValueError("the concurrent limit must be at least 1")
        self.concurrent_limit = int(limit)
        return self

    def with_max_addresses(self, limit: int) -> MinerFactory:
        """How many addresses one scan may probe (default a /16); a larger target set is refused unscanned."""
        if limit < 1:
            raise ValueError("the address limit must be at least 1")
        self.max_addresses = int(limit)
        return self

    def check_size(self) -> None:
        """Refuses, before anything is sent, a target set larger than `max_addresses`."""
        count = len(self.targets)
        if count > self.max_addresses:
            raise TooManyAddressesError(
                f"{count:,} addresses is more than this scan's limit of {self.max_addresses:,}: check the "
                "range (a /8 for a /16?), raise the limit (with_max_addresses / --max-addresses N), or "
                "spread it over workers (--distributed)")

    def with_connectivity_timeout_secs(self, timeout_secs: float) -> MinerFactory:
        if timeout_secs <= 0:
            raise ValueError("the connectivity timeout must be > 0 s")
        return self._set(connect_timeout=float(timeout_secs))

    def with_connectivity_retries(self, retries: int) -> MinerFactory:
        self.connectivity_retries = max(0, int(retries))
        return self

    def with_port_check(self, enabled: bool) -> MinerFactory:
        """On (the default): an address whose web port does not accept a connection is no miner, which
        costs one attempt per empty address. Off: every address is identified over the RPC ports too, so
        a miner with its web interface switched off is found, at the price of slower scans."""
        self.port_check = bool(enabled)
        return self

    def with_identification_timeout_secs(self, timeout_secs: float) -> MinerFactory:
        if timeout_secs <= 0:
            raise ValueError("the identification timeout must be > 0 s")
        self.identification_timeout = float(timeout_secs)
        return self

    def with_read_timeout_secs(self, timeout_secs: float) -> MinerFactory:
        if timeout_secs <= 0:
            raise ValueError("the read timeout must be > 0 s")
        return self._set(read_timeout=float(timeout_secs))

    def with_max_reply_bytes(self, limit: int) -> MinerFactory:
        if limit < 1024:
            raise ValueError("the reply size cap must be at least 1024 bytes")
        return self._set(max_reply_bytes=int(limit))

    def with_reply_budget_bytes(self, budget: int) -> MinerFactory:
        """Bytes that replies past 64 KiB may hold at once while they are read (the scan's memory bound)."""
        if budget < 1024 * 1024:
            raise ValueError("the reply budget must be at least 1 MiB")
        return self._set(reply_budget_bytes=int(budget))

    def with_port_map(self, ports: PortMap | Mapping[int, int] | str) -> MinerFactory:
        """Where the standard ports are served, e.g. `{80: 10080, 443: 10443}` or `"80=10080,443=10443"`."""
        port_map = ports if isinstance(ports, PortMap) else PortMap.parse(ports) if isinstance(ports, str) \
            else PortMap(dict(ports))
        return self._set(ports=port_map)

    def with_credentials(self, family: str | None, username: str, passwords: str | Iterable[str],
                         network: str = "0.0.0.0/0") -> MinerFactory:
        """Logins to try, in order, for `family` (None: any) inside `network`, before the firmware's defaults."""
        words = [passwords] if isinstance(passwords, str) else list(passwords)
        self._rules.append(CredentialRule(network=IPv4Network(network, strict=False), family=family,
                                          username=username, passwords=[SecretStr(p) for p in words]))
        self._session = None
        return self

    def with_firmware_discovery_auth(self, firmware_name: str, username: str, password: str) -> MinerFactory:
        return self.with_credentials(firmware_name.lower(), username, password)

    # ----- session ----------------------------------------------------------------------------
    @property
    def session(self) -> Session:
        """The transport state the miners found by this factory share (one HTTP client)."""
        if self._session is None:
            self._session = Session(settings=self.settings)
            for rule in self._rules:
                self._session.credentials.add(rule)
        return self._session

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.aclose()

    async def __aenter__(self) -> MinerFactory:
        return self

    async def __aexit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                        tb: TracebackType | None) -> None:
        await self.aclose()

    # ----- discovery --------------------------------------------------------------------------
    async def identify(self, ip: str | IPv4Address) -> Identified:
        return await identify(str(ip), self.session, timeout=self.identification_timeout,
                              retries=self.connectivity_retries, port_check=self.port_check)

    async def get_miner(self, ip: str | IPv4Address) -> Miner | None:
        """The miner at `ip`, or None when no miner answers there."""
        address = IPv4Address(str(ip).strip())
        return (await self.identify(address)).miner

    async def scan_results(self, *, limit: AdaptiveLimit | None = None) -> AsyncIterator[Identified]:
        """Every target address with its outcome, as each finishes (not in address order).

        In-flight probes follow what the event loop can serve, up to the concurrent limit; an address
        whose outcome our own overload spoiled is asked again, more gently, before it is reported (see
        `last_scan` for the counts). `limit` lets a caller share the in-flight budget with its own work.
        """
        if len(self.targets) == 0:
            raise InvalidTargetError("nothing to scan: no targets were given")
        self.check_size()
        raise_fd_limit()  # a thousand probes at once need more than the usual 1024 descriptors
        own_limit = limit is None
        pace = limit if limit is not None else AdaptiveLimit(self.concurrent_limit)
        summary = ScanSummary(addresses=len(self.targets))
        self.last_scan = summary
        results: asyncio.Queue[Identified | None] = asyncio.Queue(maxsize=1024)
        try:
            pending: list[IPv4Address] = []
            async for result in self._probe_all(iter(self.targets), pace, results):
                if result.undecided:
                    pending.append(IPv4Address(result.ip))
                else:
                    summary.count(result)
                    summary.note_model(result)
                    yield result
            summary.retried = len(pending)
            for gentler in _RETRY_CEILINGS:
                if not pending:
                    break
                summary.rounds += 1
                pace.cap(gentler)
                await asyncio.sleep(_RETRY_PAUSE)  # let the load that spoiled them drain
                again, pending = pending, []
                async for result in self._probe_all(iter(again), pace, results):
                    if result.undecided and gentler != _RETRY_CEILINGS[-1]:
                        pending.append(IPv4Address(result.ip))
                    else:
                        summary.undecided += result.undecided
                        summary.count(result)
                        summary.note_model(result)
                        yield result
        finally:
            summary.peak_in_flight, summary.lowest_in_flight = pace.peak, pace.lowest
            summary.worst_stall = pace.monitor.worst
            if own_limit:
                pace.close()

    async def _probe_all(self, addresses: Iterator[IPv4Address], pace: AdaptiveLimit,
                         results: asyncio.Queue[Identified | None]) -> AsyncIterator[Identified]:
        """Identifies each address under `pace`, yielding outcomes as they finish."""
        running: set[asyncio.Task[None]] = set()
        failures: list[BaseException] = []

        async def one(address: IPv4Address) -> None:
            try:
                result = await identify(str(address), self.session, timeout=self.identification_timeout,
                                        retries=self.connectivity_retries, monitor=pace.monitor,
                                        port_check=self.port_check)
                if result.undecided and result.local:
                    pace.overloaded()
                await results.put(result)  # the slot is held until the outcome is handed on: bounded memory
            except Exception as exc:
                failures.append(exc)
            finally:
                pace.release()

        async def dispatch() -> None:
            try:
                for address in addresses:
                    await pace.acquire()
                    task = asyncio.create_task(one(address))
                    running.add(task)
                    task.add_done_callback(running.discard)
                while running:
                    await asyncio.wait(set(running))
            except Exception as exc:
                failures.append(exc)
            await results.put(None)

        dispatcher = asyncio.create_task(dispatch())
        try:
            while (result := await results.get()) is not None:
                yield result
            if failures:
                raise failures[0]  # a bug in the scanner itself: never hidden as a quiet address
        finally:
            dispatcher.cancel()
            for task in list(running):
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(dispatcher, *running, return_exceptions=True)

    async def scan_stream_with_ip(self) -> AsyncIterator[tuple[IPv4Address, Miner | None]]:
        async for result in self.scan_results():
            yield IPv4Address(result.ip), result.miner

    async def scan_stream(self) -> AsyncIterator[Miner]:
        async for result in self.scan_results():
            if result.miner is not None:
                yield result.miner

    async def scan(self) -> list[Miner]:
        """Every miner found, in address order."""
        found = [m async for m in self.scan_stream()]
        return sorted(found, key=lambda m: m.ip)
