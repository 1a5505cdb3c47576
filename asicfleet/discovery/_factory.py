"""MinerFactory: the scan range and discovery tuning, and the scans themselves."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterable, Mapping
from ipaddress import IPv4Address, IPv4Network
from pathlib import Path
from types import TracebackType

from pydantic import SecretStr

from asicfleet._errors import InvalidTargetError
from asicfleet._limits import raise_fd_limit
from asicfleet._miner import Miner
from asicfleet._session import CredentialRule, Session
from asicfleet.discovery._identify import Identified, identify
from asicfleet.discovery._targets import TargetSet, read_target_file
from asicfleet.transport import PortMap, TransportSettings


class MinerFactory:
    """Finds miners. Build it with `from_subnet/from_range/from_octets/from_file`, tune it with the
    `with_*` methods (each returns the factory, so calls chain), then `await scan()`, iterate
    `scan_stream()`, or `await get_miner(ip)` for a known address."""

    def __init__(self) -> None:
        self.targets = TargetSet()
        self.concurrent_limit = 1000
        self.identification_timeout = 10.0
        self.connectivity_retries = 0
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

    def with_connectivity_timeout_secs(self, timeout_secs: float) -> MinerFactory:
        if timeout_secs <= 0:
            raise ValueError("the connectivity timeout must be > 0 s")
        return self._set(connect_timeout=float(timeout_secs))

    def with_connectivity_retries(self, retries: int) -> MinerFactory:
        self.connectivity_retries = max(0, int(retries))
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
                              retries=self.connectivity_retries)

    async def get_miner(self, ip: str | IPv4Address) -> Miner | None:
        """The miner at `ip`, or None when no miner answers there."""
        address = IPv4Address(str(ip).strip())
        return (await self.identify(address)).miner

    async def scan_results(self) -> AsyncIterator[Identified]:
        """Every target address with its outcome, as each finishes (not in address order)."""
        if len(self.targets) == 0:
            raise InvalidTargetError("nothing to scan: no targets were given")
        raise_fd_limit()  # a thousand probes at once need more than the usual 1024 descriptors
        addresses = iter(self.targets)
        results: asyncio.Queue[Identified | None] = asyncio.Queue(maxsize=self.concurrent_limit * 2)
        workers = min(self.concurrent_limit, len(self.targets))

        async def worker() -> None:
            try:
                for address in addresses:  # a shared iterator: each address taken once
                    await results.put(await self.identify(address))
            finally:
                await results.put(None)

        tasks = [asyncio.create_task(worker()) for _ in range(workers)]
        try:
            finished = 0
            while finished < workers:
                item = await results.get()
                if item is None:
                    finished += 1
                else:
                    yield item
            for task in tasks:
                task.result()  # surfaces a bug in a worker instead of hiding it
        finally:
            for task in tasks:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.gather(*tasks, return_exceptions=True)

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
