"""Settings every transport shares: timeouts, the reply size cap and the port map."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from asicfleet.transport._budget import DEFAULT_BUDGET


@dataclass(frozen=True)
class PortMap:
    """Where each standard miner port is actually served.

    Real miners listen on 80, 443, 4028, 4433. A simulator run by a normal user cannot bind ports
    below 1024 and a farm behind NAT forwards ports, so the scanner is told where each one lives.
    """

    overrides: Mapping[int, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for logical, actual in self.overrides.items():
            if not (0 < int(logical) < 65536 and 0 < int(actual) < 65536):
                raise ValueError(f"invalid port mapping {logical}->{actual}: ports are 1..65535")
        object.__setattr__(self, "overrides", MappingProxyType({int(k): int(v) for k, v in self.overrides.items()}))

    def __call__(self, port: int) -> int:
        return self.overrides.get(port, port)

    @classmethod
    def parse(cls, text: str) -> PortMap:
        """`80=8080,443=8443` -> PortMap({80: 8080, 443: 8443}); an empty string is the identity."""
        pairs: dict[int, int] = {}
        for item in filter(None, (p.strip() for p in text.split(","))):
            logical, sep, actual = item.partition("=")
            if not sep or not logical.strip().isdigit() or not actual.strip().isdigit():
                raise ValueError(f"invalid port mapping {item!r}: expected STANDARD=ACTUAL such as 80=8080")
            pairs[int(logical)] = int(actual)
        return cls(pairs)

    def __str__(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.overrides.items()))


@dataclass(frozen=True)
class TransportSettings:
    connect_timeout: float = 1.0  # seconds to open a TCP connection
    read_timeout: float = 5.0  # seconds for a whole reply once connected
    max_reply_bytes: int = 4 * 1024 * 1024  # a larger reply is cut off and marked as an error
    # replies past 64 KiB draw on this many bytes per event loop while they are read (bounds a scan's memory)
    reply_budget_bytes: int = DEFAULT_BUDGET
    ports: PortMap = field(default_factory=PortMap)
