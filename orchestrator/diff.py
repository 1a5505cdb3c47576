"""Comparing two scans' inventories: what appeared, vanished, or changed."""

from __future__ import annotations

from dataclasses import dataclass, field
from ipaddress import IPv4Address

from asicfleet.data import MinerData


@dataclass
class Change:
    ip: str
    what: str  # firmware | pools | hashrate | model
    before: str
    after: str


@dataclass
class InventoryDiff:
    appeared: list[MinerData] = field(default_factory=list)
    vanished: list[MinerData] = field(default_factory=list)
    changed: list[Change] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not (self.appeared or self.vanished or self.changed)


def _pools(data: MinerData) -> str:
    return ", ".join(f"{p.url} {p.user}" for g in data.pools for p in g.pools) or "-"


def _ths(data: MinerData) -> float | None:
    return data.hashrate.into_unit("TH/s").value if data.hashrate is not None else None


def diff_inventories(before: list[MinerData], after: list[MinerData], *,
                     hashrate_threshold: float = 0.05) -> InventoryDiff:
    """`hashrate_threshold` is a fraction: 0.05 reports a miner whose hash rate moved by more than 5 %."""
    old = {str(m.ip): m for m in before}
    new = {str(m.ip): m for m in after}
    result = InventoryDiff(appeared=[new[ip] for ip in sorted(new.keys() - old.keys(), key=IPv4Address)],
                           vanished=[old[ip] for ip in sorted(old.keys() - new.keys(), key=IPv4Address)])
    for ip in sorted(old.keys() & new.keys(), key=IPv4Address):  # 10.0.0.9 before 10.0.0.10
        a, b = old[ip], new[ip]
        if (a.make, a.model) != (b.make, b.model):
            result.changed.append(Change(ip, "model", f"{a.make} {a.model}", f"{b.make} {b.model}"))
        fw_a = f"{a.firmware} {a.firmware_version or ''}".strip()
        fw_b = f"{b.firmware} {b.firmware_version or ''}".strip()
        if fw_a != fw_b:
            result.changed.append(Change(ip, "firmware", fw_a, fw_b))
        if _pools(a) != _pools(b):
            result.changed.append(Change(ip, "pools", _pools(a), _pools(b)))
        ha, hb = _ths(a), _ths(b)
        if ha is not None and hb is not None:
            moved = abs(hb - ha) / ha if ha > 0 else (1.0 if hb > 0 else 0.0)
            if moved > hashrate_threshold:
                result.changed.append(Change(ip, "hashrate", f"{ha:.2f} TH/s", f"{hb:.2f} TH/s"))
        elif (ha is None) != (hb is None):
            result.changed.append(Change(ip, "hashrate", f"{ha} TH/s", f"{hb} TH/s"))
    return result
