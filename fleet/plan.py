"""Splitting targets into chunks: each chunk is one Celery task.

Chunks follow the boundaries of aligned blocks of the chosen prefix (default /24), so a chunk is a
VLAN-sized piece a farm operator recognises. A chunk is sent as its exact first-last range (its
label is the aligned CIDR), so the distributed scan covers exactly the addresses an in-process scan
of the same targets does.
"""

from __future__ import annotations

import ipaddress
import itertools
from dataclasses import dataclass

from asicfleet import InvalidTargetError, TooManyAddressesError
from asicfleet.discovery import AddressBlock, TargetSet, parse_target

DISTRIBUTED_MAX_ADDRESSES = 1 << 20  # a /12: more in one scan is likely a typo (10.0.0.0/8 for a /16)


@dataclass(frozen=True)
class Chunk:
    label: str  # the aligned CIDR this chunk lies in, for people and Flower
    first: str
    last: str
    addresses: int

    @property
    def range(self) -> str:
        return f"{self.first}-{self.last}"


def check_no_overlap(targets: list[str]) -> None:
    """Overlapping targets are refused: a farm's site list with overlaps is a mistake worth hearing about."""
    blocks = sorted(((b, t) for t in targets for b in parse_target(t)), key=lambda bt: bt[0].first)
    for (a, ta), (b, tb) in itertools.pairwise(blocks):
        if b.first <= a.last:
            raise InvalidTargetError(f"targets {ta!r} and {tb!r} overlap; give each address once")


def plan_chunks(targets: list[str], *, exclude: list[str] | None = None, prefix: int = 24,
                allow_public: bool = False, max_addresses: int = DISTRIBUTED_MAX_ADDRESSES) -> list[Chunk]:
    """Validates the targets (before anything is queued) and cuts them into chunks."""
    if not 8 <= prefix <= 32:
        raise InvalidTargetError(f"chunk prefix /{prefix} must be between /8 and /32")
    if not targets:
        raise InvalidTargetError("nothing to scan: no targets were given")
    check_no_overlap(targets)
    target_set = TargetSet(allow_public=allow_public).add(targets).exclude(exclude or [])
    if len(target_set) == 0:
        raise InvalidTargetError("the exclusions remove every target address")
    if len(target_set) > max_addresses:
        raise TooManyAddressesError(f"{len(target_set):,} addresses is more than a distributed scan's limit of "
                                    f"{max_addresses:,}: check the range, or raise it with --max-addresses N")
    size = 1 << (32 - prefix)
    chunks: list[Chunk] = []
    for block in target_set.blocks:
        start = block.first
        while start <= block.last:
            window_end = (start // size) * size + size - 1
            end = min(window_end, block.last)
            window = ipaddress.IPv4Network((start // size * size, prefix))
            piece = AddressBlock(start, end)
            chunks.append(Chunk(label=str(window), first=str(ipaddress.IPv4Address(piece.first)),
                                last=str(ipaddress.IPv4Address(piece.last)), addresses=len(piece)))
            start = end + 1
    return chunks
