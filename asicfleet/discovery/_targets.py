"""Scan targets: CIDRs, `a-b` ranges, octet patterns (`10.0.1-5.*`), single IPs and IP list files.

Everything is validated before a single packet is sent: malformed input, IPv6 (not yet scanned), and
addresses outside private/loopback space (unless explicitly allowed) raise InvalidTargetError.
"""

from __future__ import annotations

import ipaddress
import itertools
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from asicfleet._errors import InvalidTargetError

MAX_ADDRESSES = 1 << 24  # a /8; anything larger is almost certainly a typo
_ALLOWED = [ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "127.0.0.0/8",
                                               "100.64.0.0/10", "169.254.0.0/16")]


@dataclass(frozen=True)
class AddressBlock:
    """A contiguous run of IPv4 addresses, first..last inclusive."""

    first: int
    last: int

    def __len__(self) -> int:
        return self.last - self.first + 1

    def __iter__(self) -> Iterator[ipaddress.IPv4Address]:
        return (ipaddress.IPv4Address(n) for n in range(self.first, self.last + 1))

    def __str__(self) -> str:
        first, last = ipaddress.IPv4Address(self.first), ipaddress.IPv4Address(self.last)
        nets = list(ipaddress.summarize_address_range(first, last))
        return str(nets[0]) if len(nets) == 1 else f"{first}-{last}"


def _address(text: str, original: str) -> ipaddress.IPv4Address:
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        raise InvalidTargetError(f"{original!r}: {text.strip()!r} is not an IPv4 address") from None
    if not isinstance(address, ipaddress.IPv4Address):
        raise InvalidTargetError(f"{original!r}: IPv6 scanning is not supported")
    return address


def _octet_values(part: str, original: str) -> list[int]:
    part = part.strip()
    if part == "*":
        return list(range(256))
    values: list[int] = []
    for piece in part.split(","):
        low, sep, high = piece.partition("-")
        if not low.strip().isdigit() or (sep and not high.strip().isdigit()):
            raise InvalidTargetError(f"{original!r}: octet {piece!r} must be N, N-M or *")
        a, b = int(low), int(high) if sep else int(low)
        if not (0 <= a <= 255 and 0 <= b <= 255) or a > b:
            raise InvalidTargetError(f"{original!r}: octet range {piece!r} must be within 0-255 and ascending")
        values.extend(range(a, b + 1))
    return sorted(set(values))


def _octet_blocks(octets: list[list[int]]) -> list[AddressBlock]:
    """Octet patterns as blocks: the last octet's runs are contiguous, the rest multiply out."""
    runs: list[tuple[int, int]] = []
    for value in octets[3]:
        if runs and runs[-1][1] == value - 1:
            runs[-1] = (runs[-1][0], value)
        else:
            runs.append((value, value))
    blocks: list[AddressBlock] = []
    for a, b, c in itertools.product(*octets[:3]):
        base = (a << 24) | (b << 16) | (c << 8)
        blocks.extend(AddressBlock(base + lo, base + hi) for lo, hi in runs)
    return blocks


def parse_target(text: str, *, hosts_only: bool = True) -> list[AddressBlock]:
    """One target expression -> address blocks. Raises InvalidTargetError with the reason.

    A CIDR yields its host addresses (no network/broadcast) unless `hosts_only` is False.
    """
    original = text
    text = text.strip()
    if not text:
        raise InvalidTargetError("empty target")
    if "/" in text:
        try:
            network = ipaddress.ip_network(text, strict=False)
        except ValueError as exc:
            raise InvalidTargetError(f"{original!r} is not a valid CIDR: {exc}") from None
        if not isinstance(network, ipaddress.IPv4Network):
            raise InvalidTargetError(f"{original!r}: IPv6 scanning is not supported")
        written = text.split("/", 1)[0].strip()
        if ipaddress.IPv4Address(written) != network.network_address:
            # 10.1.2.0/8 silently meaning all of 10/8 is how a typo scans a whole site
            raise InvalidTargetError(f"{text} has host bits set; did you mean {network}? (or "
                                     f"{written}/32 for the one address)")
        if network.prefixlen >= 31 or not hosts_only:
            return [AddressBlock(int(network.network_address), int(network.broadcast_address))]
        # network and broadcast addresses are never miners
        return [AddressBlock(int(network.network_address) + 1, int(network.broadcast_address) - 1)]
    if _looks_like_ip_range(text):
        low, _, high = text.partition("-")
        first, last = _address(low, original), _address(high, original)
        if int(last) < int(first):
            raise InvalidTargetError(f"{original!r}: the range ends before it starts")
        return [AddressBlock(int(first), int(last))]
    parts = text.split(".")
    if len(parts) == 4 and any(c in text for c in "*,-"):
        return _octet_blocks([_octet_values(p, original) for p in parts])
    address = _address(text, original)
    return [AddressBlock(int(address), int(address))]


def _looks_like_ip_range(text: str) -> bool:
    """`10.0.0.1-10.0.0.9` (two full addresses) rather than an octet pattern like `10.0.1-5.*`."""
    low, sep, high = text.partition("-")
    return bool(sep) and low.count(".") == 3 and high.count(".") == 3


def read_target_file(path: str | Path) -> list[str]:
    """Targets from a file: one per line (or comma separated); `#` starts a comment."""
    try:
        content = Path(path).read_text()
    except OSError as exc:
        raise InvalidTargetError(f"cannot read target file {path}: {exc.strerror}") from None
    targets: list[str] = []
    for line in content.splitlines():
        line = line.split("#", 1)[0]
        targets.extend(t.strip() for t in line.split(",") if t.strip())
    if not targets:
        raise InvalidTargetError(f"target file {path} lists no targets")
    return targets


@dataclass
class TargetSet:
    """The addresses to scan, deduplicated and in ascending order, minus exclusions."""

    blocks: list[AddressBlock] = field(default_factory=list)
    allow_public: bool = False

    def add(self, targets: Iterable[str]) -> TargetSet:
        new = [block for t in targets for block in parse_target(t)]
        self._check_allowed(new)
        self.blocks = _merge([*self.blocks, *new])
        if len(self) > MAX_ADDRESSES:
            raise InvalidTargetError(f"{len(self)} addresses is more than the {MAX_ADDRESSES} allowed in one scan")
        return self

    def exclude(self, targets: Iterable[str]) -> TargetSet:
        removed = _merge([block for t in targets for block in parse_target(t, hosts_only=False)])
        kept: list[AddressBlock] = []
        for block in self.blocks:
            pieces = [block]
            for cut in removed:
                pieces = [p for piece in pieces for p in _subtract(piece, cut)]
            kept.extend(pieces)
        self.blocks = kept
        return self

    def _check_allowed(self, blocks: list[AddressBlock]) -> None:
        if self.allow_public:
            return
        for block in blocks:
            first, last = ipaddress.IPv4Address(block.first), ipaddress.IPv4Address(block.last)
            if not any(first in net and last in net for net in _ALLOWED):
                raise InvalidTargetError(
                    f"{block} is outside private and loopback address space; pass allow_public=True "
                    "(CLI: --allow-public) if you really mean to scan it")

    def __len__(self) -> int:
        return sum(len(b) for b in self.blocks)

    def __iter__(self) -> Iterator[ipaddress.IPv4Address]:
        return itertools.chain.from_iterable(self.blocks)

    def __str__(self) -> str:
        return ", ".join(str(b) for b in self.blocks)


def _merge(blocks: list[AddressBlock]) -> list[AddressBlock]:
    merged: list[AddressBlock] = []
    for block in sorted(blocks, key=lambda b: b.first):
        if merged and block.first <= merged[-1].last + 1:
            merged[-1] = AddressBlock(merged[-1].first, max(merged[-1].last, block.last))
        else:
            merged.append(block)
    return merged


def _subtract(block: AddressBlock, cut: AddressBlock) -> list[AddressBlock]:
    if cut.last < block.first or cut.first > block.last:
        return [block]
    out = []
    if cut.first > block.first:
        out.append(AddressBlock(block.first, cut.first - 1))
    if cut.last < block.last:
        out.append(AddressBlock(cut.last + 1, block.last))
    return out
