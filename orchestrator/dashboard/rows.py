"""The dashboard's view of a fleet: one flat row per miner (what the table shows), the query that filters,
sorts and pages those rows on the server, and the totals per site.

Rows are built from stored `MinerData` JSON without validating it into models: a page of a 10,000-miner
fleet is sorted from plain tuples in a few milliseconds, where building 10,000 `MinerData` would take
seconds (every chip is a model)."""

from __future__ import annotations

import ipaddress
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from asicfleet.data import HashRateUnit

DEGRADED_BELOW = 0.9  # a miner under 90 % of its expected hash rate is shown as degraded
_UNIT_MULTIPLIER = {unit.value: unit.multiplier for unit in HashRateUnit}
_TERA = HashRateUnit.TH.multiplier
Status = Literal["online", "degraded", "offline"]


def terahashes(value: Any) -> float | None:
    """A stored HashRate (`{"value": 95.1, "unit": "TH/s", ...}`) in TH/s; None when absent or unreadable."""
    if not isinstance(value, Mapping):
        return None
    number, unit = value.get("value"), value.get("unit", "TH/s")
    if not isinstance(number, int | float) or unit not in _UNIT_MULTIPLIER:
        return None
    return float(number) * _UNIT_MULTIPLIER[unit] / _TERA


def rate_text(value: Any) -> str:
    """A stored HashRate in the largest unit that keeps it at 1 or more: `510 MH/s`, `11.42 TH/s`."""
    if not isinstance(value, Mapping) or not isinstance(value.get("value"), int | float) \
            or value.get("unit", "TH/s") not in _UNIT_MULTIPLIER:
        return ""
    hashes = float(value["value"]) * _UNIT_MULTIPLIER[value.get("unit", "TH/s")]
    unit = next((u for u in reversed(HashRateUnit) if hashes >= u.multiplier), HashRateUnit.H)
    shown = hashes / unit.multiplier
    return f"{shown:,.{0 if shown >= 100 else 2}f} {unit.value}"


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _active_pool(pools: Any) -> str:
    """The pool in use: the first one marked active, else the first configured."""
    flat = [p for g in pools or [] if isinstance(g, Mapping) for p in g.get("pools") or [] if isinstance(p, Mapping)]
    chosen = next((p for p in flat if p.get("active")), flat[0] if flat else None)
    return str(chosen.get("url") or "") if chosen else ""


@dataclass(slots=True)
class MinerRow:
    """One miner as the table shows it (figures in TH/s, W, J/TH, °C)."""

    ip: str
    site: str
    make: str
    model: str
    firmware: str
    status: Status
    last_seen: float | None  # unix seconds of the last successful read
    hashrate: float | None
    expected_hashrate: float | None
    power: float | None
    efficiency: float | None
    temperature: float | None  # hottest board
    chips_working: int | None
    chips_expected: int | None
    boards: int
    boards_down: int  # boards with no hash rate or missing chips
    fan_min_rpm: float | None
    pool: str
    errors: int  # the reads that failed, and the miner's own error messages
    light: bool | None
    mining: bool | None
    hostname: str = ""
    firmware_version: str = ""
    algo: str = "SHA256"  # totals add hash rates of SHA-256 miners only (a scrypt MH/s is not a TH/s)
    hashrate_text: str = ""  # the rate in the unit the reading gave, e.g. "510 MH/s" for a scrypt miner

    @property
    def ratio(self) -> float | None:
        """Hash rate over expected (1.0: as nominal)."""
        if self.hashrate is None or not self.expected_hashrate:
            return None
        return self.hashrate / self.expected_hashrate

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["ratio"] = None if self.ratio is None else round(self.ratio, 4)
        return out


def row_from_data(data: Mapping[str, Any], *, site: str, online: bool = True,
                  last_seen: float | None = None) -> MinerRow:
    """The row of one stored `MinerData` dump (as workers write it: `model_dump(mode="json")`)."""
    device = data.get("device_info") or {}
    boards = [b for b in data.get("hashboards") or [] if isinstance(b, Mapping)]
    working = [int(b["working_chips"]) for b in boards if isinstance(b.get("working_chips"), int)]
    hardware = device.get("hardware") or {}
    expected_chips = hardware.get("total_chips")
    if not isinstance(expected_chips, int):
        per_board = [int(b["expected_chips"]) for b in boards if isinstance(b.get("expected_chips"), int)]
        expected_chips = sum(per_board) if per_board else None
    temps = [t for b in boards for t in (_number(b.get("board_temperature")), _number(b.get("outlet_temperature")))
             if t is not None]
    rpms = [r for f in data.get("fans") or [] if isinstance(f, Mapping) and (r := _number(f.get("rpm"))) is not None]
    hashrate = terahashes(data.get("hashrate"))
    expected = terahashes(data.get("expected_hashrate"))
    power = _number(data.get("wattage"))
    algo = str(device.get("algo") or "SHA256")
    efficiency = _number(data.get("efficiency")) if algo == "SHA256" else None  # J/TH: SHA-256 only
    if efficiency is None and algo == "SHA256" and power is not None and hashrate:
        efficiency = round(power / hashrate, 3)
    down = sum(1 for b in boards if (terahashes(b.get("hashrate")) or 0.0) <= 0.0
               or (isinstance(b.get("working_chips"), int) and isinstance(b.get("expected_chips"), int)
                   and b["working_chips"] < b["expected_chips"]))
    status: Status = "offline"
    if online:
        status = "degraded" if (hashrate is not None and expected and hashrate < DEGRADED_BELOW * expected) or down \
            else "online"
    seen = last_seen if last_seen is not None else _number(data.get("timestamp"))
    return MinerRow(
        ip=str(data.get("ip", "")), site=site, make=str(device.get("make", "")), model=str(device.get("model", "")),
        firmware=str(device.get("firmware", "")), status=status, last_seen=seen,
        hashrate=hashrate, expected_hashrate=expected, power=power, efficiency=efficiency,
        temperature=max(temps) if temps else None, chips_working=sum(working) if working else None,
        chips_expected=expected_chips, boards=len(boards), boards_down=down,
        fan_min_rpm=min(rpms) if rpms else None, pool=_active_pool(data.get("pools")),
        errors=len(data.get("errors") or []) + sum(1 for m in data.get("messages") or []
                                                   if isinstance(m, Mapping) and m.get("severity") == "error"),
        light=data.get("light_flashing") if isinstance(data.get("light_flashing"), bool) else None,
        mining=data.get("is_mining") if isinstance(data.get("is_mining"), bool) else None,
        hostname=str(data.get("hostname") or ""), firmware_version=str(data.get("firmware_version") or ""),
        algo=algo, hashrate_text=rate_text(data.get("hashrate")))


# ----- the table query ---------------------------------------------------------------------------
SORT_KEYS = ("ip", "site", "make", "model", "firmware", "status", "last_seen", "hashrate", "expected_hashrate",
             "ratio", "power", "efficiency", "temperature", "chips_working", "boards_down", "fan_min_rpm", "pool",
             "errors")
_STATUS_ORDER = {"offline": 0, "degraded": 1, "online": 2}
MAX_PAGE_SIZE = 500


def ip_key(ip: str) -> tuple[int, int]:
    """Addresses in numeric order (10.0.0.9 before 10.0.0.10); anything else after them."""
    try:
        return (0, int(ipaddress.IPv4Address(ip)))
    except ValueError:
        return (1, 0)


class TableQuery(BaseModel):
    """`?q=s19&site=east&status=degraded&sort=-hashrate&page=2&per_page=100`: what the table asks for.

    `q` matches IP, hostname, make, model, firmware, site and pool (case-insensitive, every word must
    match); `status`, `site`, `make`, `model` and `firmware` take one value each; `sort` is a column, `-` in
    front for descending. Missing figures sort last either way."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    q: str = ""
    site: str = ""
    status: Literal["", "online", "degraded", "offline", "up"] = ""  # up: online or degraded
    make: str = ""
    model: str = ""
    firmware: str = ""
    sort: str = "ip"
    page: int = Field(default=1, ge=1)
    per_page: int = Field(default=50, ge=1, le=MAX_PAGE_SIZE)

    @field_validator("sort")
    @classmethod
    def _known_sort(cls, value: str) -> str:
        if value.lstrip("-") not in SORT_KEYS:
            raise ValueError(f"sort must be one of {', '.join(SORT_KEYS)} (a leading - for descending)")
        return value


@dataclass
class TablePage:
    rows: list[MinerRow]
    total: int  # every miner known
    matched: int  # those the filters let through
    page: int
    pages: int
    per_page: int
    sort: str

    def to_json(self) -> dict[str, Any]:
        return {"rows": [r.to_json() for r in self.rows], "total": self.total, "matched": self.matched,
                "page": self.page, "pages": self.pages, "per_page": self.per_page, "sort": self.sort}


def _matches(row: MinerRow, query: TableQuery, words: Sequence[str]) -> bool:
    if query.status == "up":
        if row.status == "offline":
            return False
    elif query.status and row.status != query.status:
        return False
    for wanted, value in ((query.site, row.site), (query.make, row.make), (query.model, row.model),
                          (query.firmware, row.firmware)):
        if wanted and wanted.lower() != value.lower():
            return False
    if words:
        haystack = " ".join((row.ip, row.hostname, row.make, row.model, row.firmware, row.site, row.pool)).lower()
        return all(w in haystack for w in words)
    return True


def _sort_value(row: MinerRow, key: str) -> Any:
    if key == "ip":
        return ip_key(row.ip)
    if key == "status":
        return _STATUS_ORDER[row.status]
    if key == "ratio":
        return row.ratio
    value = getattr(row, key)
    return value.lower() if isinstance(value, str) else value


def query_table(rows: Sequence[MinerRow], query: TableQuery) -> TablePage:
    words = query.q.lower().split()
    chosen = [r for r in rows if _matches(r, query, words)]
    key = query.sort.lstrip("-")
    descending = query.sort.startswith("-")
    present = [r for r in chosen if _sort_value(r, key) is not None]
    missing = [r for r in chosen if _sort_value(r, key) is None]
    present.sort(key=lambda r: ip_key(r.ip))  # ties in IP order, whichever way the column goes
    present.sort(key=lambda r: _sort_value(r, key), reverse=descending)
    ordered = present + sorted(missing, key=lambda r: ip_key(r.ip))
    pages = max(1, math.ceil(len(ordered) / query.per_page))
    page = min(query.page, pages)
    start = (page - 1) * query.per_page
    return TablePage(ordered[start:start + query.per_page], len(rows), len(ordered), page, pages, query.per_page,
                     query.sort)


# ----- totals ------------------------------------------------------------------------------------
@dataclass
class SiteTotals:
    site: str
    miners: int = 0
    online: int = 0  # answering (degraded ones included)
    degraded: int = 0
    offline: int = 0
    hashrate: float = 0.0  # TH/s of the miners answering
    expected_hashrate: float = 0.0  # TH/s of the miners answering
    expected_all: float = 0.0  # TH/s the whole site would make with every miner up
    power: float = 0.0  # W, every answering miner
    sha256_power: float = 0.0  # W of the SHA-256 miners, for the efficiency
    other_algos: int = 0  # miners of other algorithms: in the counts and the power, not in the hash rates
    makes: dict[str, int] = field(default_factory=dict)

    @property
    def efficiency(self) -> float | None:
        return round(self.sha256_power / self.hashrate, 2) if self.hashrate > 0 and self.sha256_power > 0 else None

    @property
    def ratio(self) -> float | None:
        return round(self.hashrate / self.expected_all, 4) if self.expected_all > 0 else None

    def add(self, row: MinerRow) -> None:
        self.miners += 1
        self.makes[row.make] = self.makes.get(row.make, 0) + 1
        sha256 = row.algo == "SHA256"
        self.other_algos += not sha256
        self.expected_all += (row.expected_hashrate or 0.0) if sha256 else 0.0
        if row.status == "offline":
            self.offline += 1
            return
        self.online += 1
        self.degraded += row.status == "degraded"
        self.power += row.power or 0.0
        if sha256:
            self.hashrate += row.hashrate or 0.0
            self.expected_hashrate += row.expected_hashrate or 0.0
            self.sha256_power += row.power or 0.0

    def to_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(hashrate=round(self.hashrate, 2), expected_hashrate=round(self.expected_hashrate, 2),
                   expected_all=round(self.expected_all, 2), power=round(self.power, 1),
                   sha256_power=round(self.sha256_power, 1),
                   efficiency=self.efficiency, ratio=self.ratio)
        return out


def site_totals(rows: Iterable[MinerRow]) -> list[SiteTotals]:
    """Totals per site (sorted by name), and `all` first when there is more than one site."""
    sites: dict[str, SiteTotals] = {}
    everything = SiteTotals("all")
    for row in rows:
        sites.setdefault(row.site, SiteTotals(row.site)).add(row)
        everything.add(row)
    ordered = [sites[name] for name in sorted(sites)]
    return ([everything] if len(ordered) > 1 else []) + ordered
