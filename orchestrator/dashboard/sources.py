"""Where the dashboard's figures come from: the fleet state in Redis, read-only.

`MonitorSource` reads what the recurring collection keeps (`fleet.monitor`): every known miner's state and
latest reading, and its history (one sample per collection, per board too). Before any collection has
run, `ScanSource` reads what distributed scans stored (`fleet.store`): each site's miners as its scans last
saw them, a miner missing from its site's latest finished scan offline, and each scan's reading of a miner
a point of its history. Reads are cached for a moment (`fresh_seconds`) so that a table paged by several
browsers costs Redis one read per moment, and a finished scan's rows are kept (they never change).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Protocol, TypeVar

import orjson
import redis

from fleet import monitor
from fleet.ledger import RolloutLedger, rollout_events_key, rollouts_key
from fleet.ledger import miner_key as rollout_miner_key
from fleet.rules import site_options
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions
from fleet.store import ScanInfo, ScanStatus, ScanStore, miners_key
from orchestrator.dashboard.rows import MinerRow, ip_key, row_from_data, terahashes

DEFAULT_SITE = "default"  # a scan planned without a site
T = TypeVar("T")


@dataclass
class HistorySeries:
    """A miner's history as the charts take it: unix seconds, and one list per figure (None: no value)."""

    times: list[float] = field(default_factory=list)
    hashrate: list[float | None] = field(default_factory=list)  # TH/s
    expected: list[float | None] = field(default_factory=list)
    power: list[float | None] = field(default_factory=list)  # W
    temperature: list[float | None] = field(default_factory=list)  # hottest board, °C
    boards: dict[int, dict[str, list[float | None]]] = field(default_factory=dict)  # slot -> hashrate/temp/chips

    def add(self, at: float, data: Mapping[str, Any]) -> None:
        """One reading (a stored `MinerData` dump); boards first seen later get None before it."""
        index = len(self.times)
        self.times.append(at)
        row = row_from_data(data, site="")
        self.hashrate.append(row.hashrate)
        self.expected.append(row.expected_hashrate)
        self.power.append(row.power)
        self.temperature.append(row.temperature)
        seen = set()
        for board in data.get("hashboards") or []:
            if not isinstance(board, Mapping) or not isinstance(board.get("position"), int):
                continue
            slot = board["position"]
            seen.add(slot)
            series = self.boards.setdefault(slot, {"hashrate": [None] * index, "temperature": [None] * index,
                                                   "chips": [None] * index})
            series["hashrate"].append(terahashes(board.get("hashrate")))
            temp = board.get("board_temperature")
            series["temperature"].append(float(temp) if isinstance(temp, int | float) else None)
            chips = board.get("working_chips")
            series["chips"].append(float(chips) if isinstance(chips, int) else None)
        for slot, series in self.boards.items():
            if slot not in seen:
                for values in series.values():
                    values.append(None)

    def to_json(self) -> dict[str, Any]:
        return {"times": self.times, "hashrate": self.hashrate, "expected": self.expected, "power": self.power,
                "temperature": self.temperature,
                "boards": [{"position": slot, **self.boards[slot]} for slot in sorted(self.boards)]}


@dataclass
class MinerDetail:
    row: MinerRow
    data: dict[str, Any]  # the latest stored MinerData dump
    options: DiscoveryOptions  # how to reach it (the port map and timeouts of the read that found it)
    site: str | None  # its site's queue for actions (None: the default queue)


class FleetSource(Protocol):
    """What the dashboard reads; every method may raise `redis.RedisError` (the page then says Redis is down)."""

    @property
    def name(self) -> str: ...

    def rows(self) -> list[MinerRow]: ...

    def miner(self, ip: str) -> MinerDetail | None: ...

    def history(self, ip: str, since: float) -> HistorySeries: ...

    def site_history(self, since: float) -> dict[str, dict[str, list[float | None]]]: ...


class _Moment:
    """A value computed at most once per `seconds`, shared by the threads serving requests."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self._lock = threading.RLock()  # rows() computes inside latest()'s moment
        self._values: dict[str, tuple[float, Any]] = {}

    def get(self, key: str, compute: Callable[[], T]) -> T:
        with self._lock:
            hit = self._values.get(key)
            if hit is not None and time.monotonic() - hit[0] < self.seconds:
                return hit[1]  # type: ignore[no-any-return]
            value = compute()
            self._values[key] = (time.monotonic(), value)
            return value


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ScanSource:
    """The fleet as distributed scans left it in Redis (the `asicfleet scan --distributed` results)."""

    name = "scans"

    def __init__(self, client: redis.Redis, *, scans: int = 30, fresh_seconds: float = 2.0) -> None:
        self.redis = client
        self.store = ScanStore(client, ttl_seconds=1)  # read-only here: the ttl is never applied
        self.scan_limit = scans
        self._moment = _Moment(fresh_seconds)
        self._finished: OrderedDict[str, dict[str, tuple[dict[str, Any], float]]] = OrderedDict()
        self._finished_lock = threading.Lock()

    def _scans(self) -> list[ScanInfo]:
        return self._moment.get("scans", lambda: self.store.recent_scans(self.scan_limit))

    def _readings(self, info: ScanInfo) -> dict[str, tuple[dict[str, Any], float]]:
        """ip -> (MinerData dump, read time) of one scan; a finished scan's are kept."""
        with self._finished_lock:
            kept = self._finished.get(info.scan_id)
        if kept is not None:
            return kept
        raw = self.redis.hgetall(miners_key(info.scan_id))
        out: dict[str, tuple[dict[str, Any], float]] = {}
        for ip, dump in raw.items():
            data = orjson.loads(dump)
            stamp = data.get("timestamp")
            out[_text(ip)] = (data, float(stamp) if isinstance(stamp, int | float) else info.created)
        if info.status is not ScanStatus.RUNNING:
            with self._finished_lock:
                self._finished[info.scan_id] = out
                while len(self._finished) > self.scan_limit:
                    self._finished.popitem(last=False)
        return out

    def _latest(self) -> dict[str, tuple[dict[str, Any], float, bool, ScanInfo]]:
        """ip -> (latest dump, read time, online, the scan that read it). Online: answered its site's latest
        finished scan, or read by a scan still running after it; offline: missing from that scan."""
        def compute() -> dict[str, tuple[dict[str, Any], float, bool, ScanInfo]]:
            by_site: dict[str, list[ScanInfo]] = defaultdict(list)
            for info in self._scans():
                by_site[info.site or DEFAULT_SITE].append(info)
            latest: dict[str, tuple[dict[str, Any], float, bool, ScanInfo]] = {}
            for infos in by_site.values():
                ordered = sorted(infos, key=lambda s: s.created)
                finished = [s for s in ordered if s.status is not ScanStatus.RUNNING]
                last = finished[-1] if finished else None
                answered = set(self._readings(last)) if last is not None else None
                for info in ordered:
                    for ip, (data, at) in self._readings(info).items():
                        online = answered is None or ip in answered or (last is not None
                                                                        and info.created > last.created)
                        latest[ip] = (data, at, online, info)
            return latest
        return self._moment.get("latest", compute)

    def rows(self) -> list[MinerRow]:
        def compute() -> list[MinerRow]:
            out = [row_from_data(data, site=info.site or DEFAULT_SITE, online=online, last_seen=at)
                   for data, at, online, info in self._latest().values()]
            out.sort(key=lambda r: ip_key(r.ip))
            return out
        return self._moment.get("rows", compute)

    def miner(self, ip: str) -> MinerDetail | None:
        found = self._latest().get(ip)
        if found is None:
            return None
        data, at, online, info = found
        row = row_from_data(data, site=info.site or DEFAULT_SITE, online=online, last_seen=at)
        return MinerDetail(row, data, DiscoveryOptions.model_validate(info.options), info.site)

    def history(self, ip: str, since: float) -> HistorySeries:
        series = HistorySeries()
        readings = []
        for info in self._scans():
            found = self._readings(info).get(ip)
            if found is not None and found[1] >= since:
                readings.append(found)
        for data, at in sorted(readings, key=lambda r: r[1]):
            series.add(at, data)
        return series

    def site_history(self, since: float) -> dict[str, dict[str, list[float | None]]]:
        """Per site, one point per finished scan: its miners' summed hash rate, expected rate and power."""
        out: dict[str, dict[str, list[float | None]]] = {}
        for info in sorted(self._scans(), key=lambda s: s.created):
            if info.status is ScanStatus.RUNNING or info.created < since:
                continue
            rows = [row_from_data(d, site="") for d, _ in self._readings(info).values()]
            site = out.setdefault(info.site or DEFAULT_SITE,
                                  {"times": [], "hashrate": [], "expected": [], "power": []})
            site["times"].append(info.finished or info.created)
            site["hashrate"].append(round(sum(r.hashrate or 0.0 for r in rows), 2))
            site["expected"].append(round(sum(r.expected_hashrate or 0.0 for r in rows), 2))
            site["power"].append(round(sum(r.power or 0.0 for r in rows), 1))
        return out


# ----- rollouts ----------------------------------------------------------------------------------
@dataclass
class RolloutSummary:
    rollout_id: str
    created: float
    status: str
    control: str
    site: str
    total: int
    batches: int
    counts: dict[str, int]
    parent: str = ""

    def to_json(self) -> dict[str, Any]:
        return self.__dict__.copy()


def _describe_control(raw: str) -> str:
    try:
        control = orjson.loads(raw)
    except orjson.JSONDecodeError:
        return raw
    if not isinstance(control, dict):
        return raw
    kind = str(control.pop("kind", "?"))
    rest = ", ".join(f"{k}={v}" for k, v in control.items() if not isinstance(v, list | dict))
    return kind.replace("_", " ") + (f" ({rest})" if rest else "")


class RolloutReader:
    """Rollouts as their ledger (`fleet.ledger`) records them, with each one's miners counted by step."""

    def __init__(self, client: redis.Redis) -> None:
        self.redis = client
        self.ledger = RolloutLedger(client, ttl_seconds=1)  # read-only here

    def recent(self, limit: int = 30, ip: str | None = None) -> list[RolloutSummary]:
        """The latest rollouts (those that include `ip`, when given)."""
        infos = self.ledger.recent(limit)
        if ip is not None:
            pipe = self.redis.pipeline(transaction=False)
            for info in infos:
                pipe.exists(rollout_miner_key(info["id"], ip))
            infos = [info for info, has in zip(infos, pipe.execute(), strict=True) if has]
        out = []
        for info in infos:
            counts: dict[str, int] = defaultdict(int)
            for miner in self.ledger.miners(info["id"]).values():
                counts[miner.get("state", "?")] += 1
            out.append(RolloutSummary(
                rollout_id=info["id"], created=float(info.get("created", 0)), status=info.get("status", ""),
                control=_describe_control(info.get("control", "")), site=info.get("site", ""),
                total=int(info.get("total", 0)), batches=int(info.get("batches", 0)), counts=dict(counts),
                parent=info.get("parent", "")))
        return out

    def steps(self, rollout_id: str, ip: str) -> list[dict[str, str]]:
        """A miner's steps in one rollout, oldest first (from the rollout's event stream)."""
        entries: list[tuple[str, dict[str, str]]] = self.redis.xrange(rollout_events_key(rollout_id))  # type: ignore[assignment]
        return [{"at": _text(eid).split("-")[0], **fields} for eid, fields in entries if fields.get("ip") == ip]

    def known(self) -> bool:
        return bool(self.redis.exists(rollouts_key()))


def summarize_counts(counts: Mapping[str, int], order: Sequence[str] = ("verified", "failed", "unverified", "pending",
                                                                        "skipped", "queued", "intent", "sent")
                     ) -> str:
    return ", ".join(f"{counts[s]} {s}" for s in order if counts.get(s))


# ----- the monitor's collection --------------------------------------------------------------------
_STATE_FIELDS = ("site", "online", "last_seen", "offline_since", "error", "make", "model", "firmware")


class MonitorSource:
    """The fleet as the recurring collection keeps it (`fleet.monitor`): the miner table from each miner's
    state, its history from the collection's samples.

    Between collection writes nothing is read but a version (each site's round and miner count); after one,
    the small state fields of every miner are read, and a miner's latest reading is parsed only when it
    changed (its `last_seen` moved): not all 10,000 readings on every refresh."""

    name = "monitor"
    FULL_SECONDS = 30.0

    def __init__(self, client: redis.Redis, settings: FleetSettings, *, fresh_seconds: float = 2.0) -> None:
        self.redis = client
        self.settings = settings
        self._moment = _Moment(fresh_seconds)
        self._parsed: dict[str, tuple[str, MinerRow]] = {}  # ip -> (last_seen as stored, row as read)
        self._lock = threading.Lock()
        self._seen_version: tuple[Any, ...] = ()
        self._read_at = 0.0
        self._last_rows: list[MinerRow] = []

    def has_miners(self) -> bool:
        return self._moment.get("sites", lambda: bool(monitor.sites_known(self.redis)))

    def rows(self) -> list[MinerRow]:
        return self._moment.get("rows", self._rows_if_changed)

    def _version(self) -> tuple[Any, ...]:
        """Changes whenever collection writes: each site's round and batches done, and its miner count."""
        sites = monitor.sites_known(self.redis)
        pipe = self.redis.pipeline(transaction=False)
        for site in sites:
            pipe.hmget(monitor.site_round_key(site), ["round_id", "batches_done", "finished"])
            pipe.scard(monitor.site_miners_key(site))
        return (tuple(sites), *(repr(v) for v in pipe.execute()))

    def _rows_if_changed(self) -> list[MinerRow]:
        """The last rows while no batch was written since (read in full at least every `FULL_SECONDS`: a
        scan's inventory ingested over known miners moves no round)."""
        version = self._version()
        now = time.monotonic()
        if version == self._seen_version and now - self._read_at < self.FULL_SECONDS:
            return self._last_rows
        rows = self._rows()
        self._seen_version, self._read_at, self._last_rows = version, now, rows
        return rows

    def _rows(self) -> list[MinerRow]:
        ips = [ip for site in monitor.sites_known(self.redis) for ip in monitor.site_ips(self.redis, site)]
        pipe = self.redis.pipeline(transaction=False)
        for ip in ips:
            pipe.hmget(monitor.miner_key(ip), list(_STATE_FIELDS))
        states = [dict(zip(_STATE_FIELDS, (None if v is None else _text(v) for v in raw), strict=True))
                  for raw in pipe.execute()]
        with self._lock:
            stale = [ip for ip, state in zip(ips, states, strict=True)
                     if ip not in self._parsed or self._parsed[ip][0] != (state["last_seen"] or "")]
            if stale:
                pipe = self.redis.pipeline(transaction=False)
                for ip in stale:
                    pipe.hget(monitor.miner_key(ip), "data")
                for ip, state, raw in zip(stale, (states[i] for i in _positions(ips, stale)), pipe.execute(),
                                          strict=True):
                    self._parsed[ip] = (state["last_seen"] or "", _row_of(ip, state, raw))
            known = set(ips)
            for ip in [ip for ip in self._parsed if ip not in known]:  # forgotten miners
                del self._parsed[ip]
            out = [_with_state(self._parsed[ip][1], state) for ip, state in zip(ips, states, strict=True)]
        out.sort(key=lambda r: ip_key(r.ip))
        return out

    def miner(self, ip: str) -> MinerDetail | None:
        state = monitor.miner_state(self.redis, ip)
        if state is None:
            return None
        data = state.data.model_dump(mode="json") if state.data is not None else \
            {"ip": ip, "device_info": {"make": state.make, "model": state.model, "firmware": state.firmware}}
        row = row_from_data(data, site=state.site, online=state.online, last_seen=state.last_seen)
        options = site_options(self.redis, self.settings, [state.site]).get(state.site, DiscoveryOptions())
        return MinerDetail(row, data, options, None if state.site == monitor.DEFAULT_SITE else state.site)

    def history(self, ip: str, since: float) -> HistorySeries:
        series = HistorySeries()
        samples = monitor.miner_history(self.redis, ip, since)
        slots = sorted({b.index for s in samples for b in s.boards})
        series.boards = {slot: {"hashrate": [], "temperature": [], "chips": []} for slot in slots}
        for sample in samples:
            series.times.append(sample.t)
            series.hashrate.append(sample.hashrate if sample.online else None)
            series.expected.append(sample.expected_hashrate)
            series.power.append(sample.wattage)
            series.temperature.append(sample.board_temperature)
            boards = {b.index: b for b in sample.boards}
            for slot, values in series.boards.items():
                board = boards.get(slot)
                values["hashrate"].append(board.hashrate if board else None)
                values["temperature"].append(board.board_temperature if board else None)
                values["chips"].append(float(board.working_chips) if board and board.working_chips is not None
                                       else None)
        return series

    def site_history(self, since: float) -> dict[str, dict[str, list[float | None]]]:
        out: dict[str, dict[str, list[float | None]]] = {}
        for site in monitor.sites_known(self.redis):
            samples = monitor.site_history(self.redis, site, since)
            out[site] = {"times": [s.t for s in samples], "hashrate": [s.hashrate for s in samples],
                         "expected": [s.expected_hashrate for s in samples], "power": [s.wattage for s in samples]}
        return out


def _positions(ips: Sequence[str], chosen: Sequence[str]) -> list[int]:
    index = {ip: n for n, ip in enumerate(ips)}
    return [index[ip] for ip in chosen]


def _row_of(ip: str, state: Mapping[str, str | None], raw: Any) -> MinerRow:
    site = state["site"] or monitor.DEFAULT_SITE
    if raw:
        return row_from_data(orjson.loads(raw), site=site, online=True,
                             last_seen=float(state["last_seen"]) if state["last_seen"] else None)
    return row_from_data({"ip": ip, "device_info": {"make": state["make"] or "", "model": state["model"] or "",
                                                    "firmware": state["firmware"] or ""}}, site=site, online=True)


def _with_state(row: MinerRow, state: Mapping[str, str | None]) -> MinerRow:
    """The parsed row with the state that changes without a new reading: offline, and since when."""
    online = state["online"] == "1"
    site = state["site"] or row.site
    if online and site == row.site:
        return row
    return replace(row, site=site, status=row.status if online else "offline")


class AutoSource:
    """The monitor's figures once it knows any miner, else the scans' (a fleet only scanned so far)."""

    def __init__(self, primary: MonitorSource, fallback: ScanSource) -> None:
        self.primary = primary
        self.fallback = fallback

    @property
    def _chosen(self) -> FleetSource:
        return self.primary if self.primary.has_miners() else self.fallback

    @property
    def name(self) -> str:
        return self._chosen.name

    def rows(self) -> list[MinerRow]:
        return self._chosen.rows()

    def miner(self, ip: str) -> MinerDetail | None:
        return self._chosen.miner(ip)

    def history(self, ip: str, since: float) -> HistorySeries:
        return self._chosen.history(ip, since)

    def site_history(self, since: float) -> dict[str, dict[str, list[float | None]]]:
        return self._chosen.site_history(since)


def default_source(client: redis.Redis, settings: FleetSettings) -> FleetSource:
    return AutoSource(MonitorSource(client, settings), ScanSource(client))
