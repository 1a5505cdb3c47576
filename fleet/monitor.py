"""Continuous monitoring in Redis: each site's known miners, their latest reading and state, and their history.

The read API (for the dashboard, the rules engine, the Prometheus exporter) is the functions of the section
"reading" below; the workers write through the functions of "writing". Every key, in one place:

    asicfleet:mon:sites                      set    site names that have a known inventory
    asicfleet:mon:site:{site}:miners         set    IPs of the site's known miners (from scans and collections)
    asicfleet:mon:site:{site}:options        string DiscoveryOptions JSON of the site's latest ingested scan
                                                    (used to read the site when the sites file gives none)
    asicfleet:mon:site:{site}:round          hash   the latest collection round: id, started, finished, batches,
                                                    batches_done, miners, online, seconds
    asicfleet:mon:site:{site}:lock           string held while a round runs, so rounds never pile up behind a slow
                                                    one; it expires (and the round is given up) when no batch
                                                    finishes for 1.5 intervals plus a batch's time limit
    asicfleet:mon:site:{site}:h:{hour}       list   site samples of that UTC hour (hour = unix seconds // 3600),
                                                    one per round; expires after `RECENT_SECONDS` + 1 h
    asicfleet:mon:site:{site}:d:{day}        list   downsampled site samples (means of `SITE_BUCKET_SECONDS`) of that
                                                    UTC day (day = unix seconds // 86400); expires after
                                                    `SITE_RETENTION_SECONDS` + 1 day
    asicfleet:mon:site:{site}:rolled         string start (unix seconds) of the last bucket rolled up into :d:
    asicfleet:mon:miner:{ip}                 hash   the miner's state: site, make, model, firmware, online (1/0),
                                                    first_seen, last_seen, offline_since, last_polled, error,
                                                    hashrate, expected_hashrate (TH/s), wattage, efficiency (J/TH),
                                                    temperature (hottest board), data (latest MinerData JSON)
    asicfleet:mon:miner:{ip}:h:{hour}        list   the miner's samples of that UTC hour, one per collection (compact
                                                    JSON arrays, see `MinerSample.encode`); expires after
                                                    `RECENT_SECONDS` + 1 h
    asicfleet:mon:miner:{ip}:z:{hour}        string a closed hour's samples, compacted: zlib of the samples joined by
                                                    newlines (the :h: list is then deleted); same expiry
    asicfleet:mon:rounds                     stream {site, round, finished, miners, online, offline, seconds}: one
                                                    entry per finished round, for live consumers (capped)

Writes are keyed by IP and time: a batch delivered twice writes the same state and at most a duplicate sample.
A miner stays known until it is forgotten (`forget_miner`); one that stops answering is marked offline
(`online` 0, `offline_since` the first failed read, `last_seen` kept from its last good read).

After each round the worker that finished the round's last batch calls every function in `after_collection`
with a Redis client, the site and the site's miners (`MinerState`, with their latest data): the rules engine
appends its evaluation there (from a module the worker app includes, see `workers.app`).
"""

from __future__ import annotations

import contextlib
import time
import zlib
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import orjson
import redis
from pydantic import BaseModel, ConfigDict, Field

from asicfleet.data import BoardData, MinerData
from fleet.store import PREFIX

MON = f"{PREFIX}:mon"
DEFAULT_SITE = "default"  # scans without a site are known under this name
RECENT_SECONDS = 24 * 3600  # per-miner and per-site samples at full (per-round) resolution
SITE_BUCKET_SECONDS = 900  # site history beyond the recent day: 15-minute means
SITE_RETENTION_SECONDS = 30 * 86400
ROUNDS_MAXLEN = 10_000
_HOUR = 3600
_DAY = 86400


# ----- keys --------------------------------------------------------------------------------------
def sites_key() -> str:
    return f"{MON}:sites"


def site_miners_key(site: str) -> str:
    return f"{MON}:site:{site}:miners"


def site_options_key(site: str) -> str:
    return f"{MON}:site:{site}:options"


def site_round_key(site: str) -> str:
    return f"{MON}:site:{site}:round"


def site_lock_key(site: str) -> str:
    return f"{MON}:site:{site}:lock"


def site_recent_key(site: str, hour: int) -> str:
    return f"{MON}:site:{site}:h:{hour}"


def site_daily_key(site: str, day: int) -> str:
    return f"{MON}:site:{site}:d:{day}"


def site_rolled_key(site: str) -> str:
    return f"{MON}:site:{site}:rolled"


def miner_key(ip: str) -> str:
    return f"{MON}:miner:{ip}"


def miner_history_key(ip: str, hour: int) -> str:
    return f"{MON}:miner:{ip}:h:{hour}"


def miner_compact_key(ip: str, hour: int) -> str:
    return f"{MON}:miner:{ip}:z:{hour}"


def rounds_key() -> str:
    return f"{MON}:rounds"


# ----- models ------------------------------------------------------------------------------------
class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _r(value: float | None, digits: int = 2) -> float | None:
    return None if value is None else round(float(value), digits)


def _ths(rate: Any) -> float | None:
    return None if rate is None else float(rate.into_unit("TH/s").value)


class BoardSample(_Model):
    """One hashboard at one collection."""

    index: int
    hashrate: float | None = Field(default=None, description="TH/s")
    expected_hashrate: float | None = Field(default=None, description="TH/s")
    board_temperature: float | None = Field(default=None, description="degrees Celsius")
    chip_temperature: float | None = Field(default=None, description="hottest chip or chip-side sensor, °C")
    working_chips: int | None = None
    expected_chips: int | None = None

    @classmethod
    def of(cls, board: BoardData, chips_per_board: int | None) -> BoardSample:
        chip_temps = [c.temperature for c in board.chips if c.temperature is not None]
        chip_temps += [t for t in (board.outlet_temperature, board.intake_temperature) if t is not None]
        return cls(index=board.position, hashrate=_r(_ths(board.hashrate), 3),
                   expected_hashrate=_r(_ths(board.expected_hashrate), 3),
                   board_temperature=_r(board.board_temperature, 1),
                   chip_temperature=_r(max(chip_temps), 1) if chip_temps else None,
                   working_chips=board.working_chips,
                   expected_chips=board.expected_chips if board.expected_chips is not None else chips_per_board)

    def encode(self) -> list[Any]:
        return [self.index, self.hashrate, self.expected_hashrate, self.board_temperature, self.chip_temperature,
                self.working_chips, self.expected_chips]

    @classmethod
    def decode(cls, row: Sequence[Any]) -> BoardSample:
        return cls(index=row[0], hashrate=row[1], expected_hashrate=row[2], board_temperature=row[3],
                   chip_temperature=row[4], working_chips=row[5], expected_chips=row[6])


class MinerSample(_Model):
    """One miner at one collection (`online` False: it did not answer; the values are then None)."""

    t: float = Field(description="unix seconds of the collection")
    online: bool
    hashrate: float | None = Field(default=None, description="TH/s")
    expected_hashrate: float | None = Field(default=None, description="TH/s")
    wattage: float | None = Field(default=None, description="watts")
    efficiency: float | None = Field(default=None, description="J/TH")
    board_temperature: float | None = Field(default=None, description="hottest board, °C")
    chip_temperature: float | None = Field(default=None, description="hottest chip, °C")
    working_chips: int | None = None
    expected_chips: int | None = None
    fans: list[float | None] = Field(default_factory=list, description="rpm per fan, by position")
    active_pool: int | None = Field(default=None, description="position of the pool in use; None: no active pool")
    errors: int = Field(default=0, description="reads that failed plus error messages the miner reported")
    boards: list[BoardSample] = Field(default_factory=list)

    @classmethod
    def of(cls, data: MinerData, t: float) -> MinerSample:
        per_board = data.device_info.hardware.chips_per_board
        boards = [BoardSample.of(b, per_board) for b in data.hashboards]
        board_temps = [b.board_temperature for b in boards if b.board_temperature is not None]
        chip_temps = [b.chip_temperature for b in boards if b.chip_temperature is not None]
        expected = data.expected_chips
        if expected is None:
            counts = [b.expected_chips for b in boards if b.expected_chips is not None]
            expected = sum(counts) if counts else None
        return cls(t=round(t, 1), online=True, hashrate=_r(_ths(data.hashrate), 3),
                   expected_hashrate=_r(_ths(data.expected_hashrate), 3), wattage=_r(data.wattage, 1),
                   efficiency=_r(data.efficiency, 2), board_temperature=max(board_temps) if board_temps else None,
                   chip_temperature=max(chip_temps) if chip_temps else None, working_chips=data.total_chips,
                   expected_chips=expected, fans=[_r(f.rpm, 0) for f in data.fans], active_pool=active_pool(data),
                   errors=len(data.errors) + sum(1 for m in data.messages if m.severity.value == "error"),
                   boards=boards)

    def encode(self) -> bytes:
        """A positional JSON array (field names cost more than the values): about 150 bytes for 3 boards."""
        return orjson.dumps([self.t, int(self.online), self.hashrate, self.expected_hashrate, self.wattage,
                             self.efficiency, self.board_temperature, self.chip_temperature, self.working_chips,
                             self.expected_chips, self.fans, self.active_pool, self.errors,
                             [b.encode() for b in self.boards]])

    @classmethod
    def decode(cls, raw: bytes | str) -> MinerSample:
        row = orjson.loads(raw)
        return cls(t=row[0], online=bool(row[1]), hashrate=row[2], expected_hashrate=row[3], wattage=row[4],
                   efficiency=row[5], board_temperature=row[6], chip_temperature=row[7], working_chips=row[8],
                   expected_chips=row[9], fans=row[10], active_pool=row[11], errors=row[12],
                   boards=[BoardSample.decode(b) for b in row[13]])


class SiteSample(_Model):
    """A site at one round (or, downsampled, the mean over a bucket starting at `t`)."""

    t: float
    miners: int
    online: int
    offline: int
    hashrate: float = Field(description="TH/s, online miners")
    expected_hashrate: float = Field(description="TH/s, every known miner that reports one")
    wattage: float = Field(description="watts")
    efficiency: float | None = Field(default=None, description="J/TH")

    def encode(self) -> bytes:
        return orjson.dumps([self.t, self.miners, self.online, self.offline, self.hashrate, self.expected_hashrate,
                             self.wattage, self.efficiency])

    @classmethod
    def decode(cls, raw: bytes | str) -> SiteSample:
        row = orjson.loads(raw)
        return cls(t=row[0], miners=row[1], online=row[2], offline=row[3], hashrate=row[4],
                   expected_hashrate=row[5], wattage=row[6], efficiency=row[7])


class SiteTotals(_Model):
    """A site's (or, with site None, the whole fleet's) totals from the miners' current state."""

    site: str | None
    miners: int = 0
    online: int = 0
    offline: int = 0
    hashrate: float = Field(default=0.0, description="TH/s of the online miners")
    expected_hashrate: float = Field(default=0.0, description="TH/s")
    wattage: float = Field(default=0.0, description="watts")
    efficiency: float | None = Field(default=None, description="J/TH (wattage / hash rate)")
    last_round: float | None = Field(default=None, description="when the latest round finished (unix seconds)")

    @property
    def hashrate_ratio(self) -> float | None:
        """Hash rate as a fraction of expected (None when nothing is expected)."""
        return self.hashrate / self.expected_hashrate if self.expected_hashrate > 0 else None

    def sample(self, t: float) -> SiteSample:
        return SiteSample(t=round(t, 1), miners=self.miners, online=self.online, offline=self.offline,
                          hashrate=round(self.hashrate, 3), expected_hashrate=round(self.expected_hashrate, 3),
                          wattage=round(self.wattage, 1), efficiency=self.efficiency)


class MinerState(_Model):
    """What is known of one miner now. `data` is its latest full reading (hashboards, chips, fans, pools...);
    while offline it stays the last good one, and `last_seen` says when that was."""

    ip: str
    site: str
    make: str = ""
    model: str = ""
    firmware: str = ""
    online: bool
    first_seen: float | None = None
    last_seen: float | None = Field(default=None, description="unix seconds of the latest good read")
    offline_since: float | None = Field(default=None, description="first failed read since the last good one")
    last_polled: float | None = Field(default=None, description="latest collection attempt")
    error: str | None = Field(default=None, description="why the latest attempt failed")
    hashrate: float | None = Field(default=None, description="TH/s, latest good read")
    expected_hashrate: float | None = Field(default=None, description="TH/s")
    wattage: float | None = None
    efficiency: float | None = None
    temperature: float | None = Field(default=None, description="hottest board, °C")
    data: MinerData | None = None


class RoundInfo(_Model):
    """A site's latest collection round."""

    round_id: str
    site: str
    started: float
    finished: float | None = None
    batches: int = 0
    batches_done: int = 0
    miners: int = 0
    online: int | None = None
    seconds: float | None = None


AfterCollection = Callable[[redis.Redis, str, list[MinerState]], None]
after_collection: list[AfterCollection] = []
"""Called (in order, in the worker that finished the round) after every round of a site; an exception in one
is logged and does not stop the others."""


# ----- helpers -----------------------------------------------------------------------------------
def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _float(value: Any) -> float | None:
    if value is None or value == b"" or value == "":
        return None
    return float(_text(value))


def active_pool(data: MinerData) -> int | None:
    """Position of the pool the miner works on: the first active (or, where the firmware gives no flag, alive)
    pool; None when it has none."""
    pools = [p for group in data.pools for p in group.pools]
    for flag in ("active", "alive"):
        for index, pool in enumerate(pools):
            if getattr(pool, flag):
                return pool.position if pool.position is not None else index
    return None


def _hottest_board(data: MinerData) -> float | None:
    temps = [b.board_temperature for b in data.hashboards if b.board_temperature is not None]
    return max(temps) if temps else None


def _hours(since: float, until: float) -> range:
    return range(int(since // _HOUR), int(until // _HOUR) + 1)


# ----- writing (workers) ---------------------------------------------------------------------------
# The pipeline may be a sync or an asyncio one: both queue commands synchronously.
Pipeline = Any


def queue_known(pipe: Pipeline, site: str, ip: str) -> None:
    pipe.sadd(sites_key(), site)
    pipe.sadd(site_miners_key(site), ip)


def queue_reading(pipe: Pipeline, site: str, data: MinerData, now: float) -> MinerSample:
    """A good read: state (online, last_seen, data) and a sample of the current hour."""
    ip = str(data.ip)
    sample = MinerSample.of(data, now)
    queue_known(pipe, site, ip)
    key = miner_key(ip)
    pipe.hsetnx(key, "first_seen", now)
    pipe.hset(key, mapping={
        "site": site, "make": data.make, "model": data.model, "firmware": data.firmware, "online": 1,
        "last_seen": now, "last_polled": now, "error": "", "hashrate": _num(sample.hashrate),
        "expected_hashrate": _num(sample.expected_hashrate), "wattage": _num(sample.wattage),
        "efficiency": _num(sample.efficiency), "temperature": _num(_hottest_board(data)),
        "data": data.model_dump_json()})
    pipe.hdel(key, "offline_since")
    queue_sample(pipe, ip, sample)
    return sample


def queue_offline(pipe: Pipeline, site: str, ip: str, now: float, error: str) -> MinerSample:
    """A failed read: offline since the first failure, last_seen and data kept."""
    sample = MinerSample(t=round(now, 1), online=False)
    queue_known(pipe, site, ip)
    key = miner_key(ip)
    pipe.hsetnx(key, "offline_since", now)
    pipe.hset(key, mapping={"site": site, "online": 0, "last_polled": now, "error": error[:500]})
    queue_sample(pipe, ip, sample)
    return sample


def _num(value: float | None) -> str | float:
    return "" if value is None else value


def queue_sample(pipe: Pipeline, ip: str, sample: MinerSample) -> None:
    hour = int(sample.t // _HOUR)
    key = miner_history_key(ip, hour)
    pipe.rpush(key, sample.encode())
    pipe.expireat(key, (hour + 1) * _HOUR + RECENT_SECONDS)


def compact_history(client: redis.Redis, ips: Sequence[str], hour: int) -> int:
    """Compacts the given miners' samples of a closed `hour` into one zlib string each (about a third of the
    list's memory); returns how many lists were compacted. Safe to repeat: a list compacted earlier is merged."""
    pipe = client.pipeline(transaction=False)
    for ip in ips:
        pipe.exists(miner_history_key(ip, hour))
    pending = [ip for ip, exists in zip(ips, pipe.execute(), strict=True) if exists]
    if not pending:
        return 0
    pipe = client.pipeline(transaction=False)
    for ip in pending:
        pipe.lrange(miner_history_key(ip, hour), 0, -1)
        pipe.get(miner_compact_key(ip, hour))
    replies = pipe.execute()
    pipe = client.pipeline(transaction=True)
    expires = (hour + 1) * _HOUR + RECENT_SECONDS
    for index, ip in enumerate(pending):
        rows: list[bytes] = list(replies[2 * index])
        earlier = replies[2 * index + 1]
        if earlier:
            rows = zlib.decompress(earlier).split(b"\n") + rows
        pipe.set(miner_compact_key(ip, hour), zlib.compress(b"\n".join(rows), 6))
        pipe.expireat(miner_compact_key(ip, hour), expires)
        pipe.delete(miner_history_key(ip, hour))
    pipe.execute()
    return len(pending)


def ingest_inventory(client: redis.Redis, site: str, miners: Iterable[MinerData], options_json: str | None = None
                     ) -> int:
    """Adds a finished scan's miners to the site's known inventory (a miner the monitor read more recently
    keeps its own state); returns how many were new to the monitor."""
    miners = list(miners)
    pipe = client.pipeline(transaction=False)
    for data in miners:
        pipe.hget(miner_key(str(data.ip)), "last_polled")
    polled = pipe.execute()
    pipe = client.pipeline(transaction=False)
    new = 0
    if options_json is not None:
        pipe.set(site_options_key(site), options_json)
    for data, last in zip(miners, polled, strict=True):
        ip = str(data.ip)
        queue_known(pipe, site, ip)
        if last is not None and float(last) >= data.timestamp:
            continue
        new += last is None
        key = miner_key(ip)
        pipe.hsetnx(key, "first_seen", data.timestamp)
        pipe.hset(key, mapping={
            "site": site, "make": data.make, "model": data.model, "firmware": data.firmware, "online": 1,
            "last_seen": data.timestamp, "last_polled": data.timestamp, "error": "",
            "hashrate": _num(_r(_ths(data.hashrate), 3)),
            "expected_hashrate": _num(_r(_ths(data.expected_hashrate), 3)),
            "wattage": _num(data.wattage), "efficiency": _num(data.efficiency),
            "temperature": _num(_hottest_board(data)), "data": data.model_dump_json()})
        pipe.hdel(key, "offline_since")
    pipe.execute()
    return new


def forget_miner(client: redis.Redis, ip: str) -> None:
    """Drops a miner from the monitor (its history expires on its own)."""
    site = client.hget(miner_key(ip), "site")
    pipe = client.pipeline()
    if site is not None:
        pipe.srem(site_miners_key(_text(site)), ip)
    pipe.delete(miner_key(ip))
    pipe.execute()


def record_site_sample(client: redis.Redis, site: str, sample: SiteSample) -> None:
    """Appends a round's site sample, and rolls finished buckets up into the 30-day history."""
    hour = int(sample.t // _HOUR)
    pipe = client.pipeline(transaction=False)
    pipe.rpush(site_recent_key(site, hour), sample.encode())
    pipe.expireat(site_recent_key(site, hour), (hour + 1) * _HOUR + RECENT_SECONDS)
    pipe.execute()
    _roll_up(client, site, sample.t)


def _roll_up(client: redis.Redis, site: str, now: float) -> None:
    current = int(now // SITE_BUCKET_SECONDS) * SITE_BUCKET_SECONDS
    rolled_raw = client.get(site_rolled_key(site))
    if rolled_raw is None:  # the first round: nothing before it to roll
        client.set(site_rolled_key(site), current)
        return
    start = int(float(rolled_raw))
    if start >= current:
        return
    # only one closer rolls a bucket up (two rounds of a site never finish in the same instant, but be sure)
    if not client.set(f"{site_rolled_key(site)}:lock", 1, nx=True, ex=60):
        return
    try:
        start = max(start, current - SITE_RETENTION_SECONDS)
        samples = _site_recent(client, site, start, current - 1e-6)
        pipe = client.pipeline(transaction=False)
        for bucket in range(start, current, SITE_BUCKET_SECONDS):
            inside = [s for s in samples if bucket <= s.t < bucket + SITE_BUCKET_SECONDS]
            if not inside:
                continue
            mean = _mean(bucket, inside)
            day = bucket // _DAY
            pipe.rpush(site_daily_key(site, day), mean.encode())
            pipe.expireat(site_daily_key(site, day), (day + 1) * _DAY + SITE_RETENTION_SECONDS)
        pipe.set(site_rolled_key(site), current)
        pipe.execute()
    finally:
        client.delete(f"{site_rolled_key(site)}:lock")


def _mean(t: float, samples: list[SiteSample]) -> SiteSample:
    n = len(samples)
    effs = [s.efficiency for s in samples if s.efficiency is not None]
    return SiteSample(t=t, miners=round(sum(s.miners for s in samples) / n),
                      online=round(sum(s.online for s in samples) / n),
                      offline=round(sum(s.offline for s in samples) / n),
                      hashrate=round(sum(s.hashrate for s in samples) / n, 3),
                      expected_hashrate=round(sum(s.expected_hashrate for s in samples) / n, 3),
                      wattage=round(sum(s.wattage for s in samples) / n, 1),
                      efficiency=round(sum(effs) / len(effs), 2) if effs else None)


# ----- reading ----------------------------------------------------------------------------------
def sites_known(client: redis.Redis) -> list[str]:
    """Sites with a known inventory, sorted."""
    return sorted(_text(s) for s in client.smembers(sites_key()))


def site_ips(client: redis.Redis, site: str) -> list[str]:
    """The site's known miners' IPs, in address order."""
    return sorted((_text(ip) for ip in client.smembers(site_miners_key(site))),
                  key=lambda ip: tuple(int(part) for part in ip.split(".")))


def _state(ip: str, raw: dict[Any, Any], with_data: bool) -> MinerState | None:
    fields = {_text(k): v for k, v in raw.items()}
    if not fields:
        return None
    data = None
    if with_data and fields.get("data"):
        data = MinerData.model_validate_json(fields["data"])
    return MinerState(
        ip=ip, site=_text(fields.get("site", DEFAULT_SITE)), make=_text(fields.get("make", "")),
        model=_text(fields.get("model", "")), firmware=_text(fields.get("firmware", "")),
        online=_text(fields.get("online", "0")) == "1", first_seen=_float(fields.get("first_seen")),
        last_seen=_float(fields.get("last_seen")), offline_since=_float(fields.get("offline_since")),
        last_polled=_float(fields.get("last_polled")),
        error=_text(fields["error"]) if fields.get("error") else None, hashrate=_float(fields.get("hashrate")),
        expected_hashrate=_float(fields.get("expected_hashrate")), wattage=_float(fields.get("wattage")),
        efficiency=_float(fields.get("efficiency")), temperature=_float(fields.get("temperature")), data=data)


_SUMMARY = ("site", "make", "model", "firmware", "online", "first_seen", "last_seen", "offline_since",
            "last_polled", "error", "hashrate", "expected_hashrate", "wattage", "efficiency", "temperature")


def miner_states(client: redis.Redis, ips: Sequence[str], *, with_data: bool = True) -> list[MinerState]:
    """The state of each IP that is known (in the order given); `with_data=False` skips parsing the latest
    reading (cheap for thousands of rows: `data` is then None)."""
    pipe = client.pipeline(transaction=False)
    for ip in ips:
        if with_data:
            pipe.hgetall(miner_key(ip))
        else:
            pipe.hmget(miner_key(ip), list(_SUMMARY))
    out = []
    for ip, raw in zip(ips, pipe.execute(), strict=True):
        if not with_data:
            raw = {k: v for k, v in zip(_SUMMARY, raw, strict=True) if v is not None}
        state = _state(ip, raw, with_data)
        if state is not None:
            out.append(state)
    return out


def known_miners(client: redis.Redis, site: str | None = None, *, with_data: bool = True) -> list[MinerState]:
    """Every known miner of `site` (None: of every site), sorted by site then address."""
    sites = [site] if site is not None else sites_known(client)
    return [state for name in sites for state in miner_states(client, site_ips(client, name), with_data=with_data)]


def miner_state(client: redis.Redis, ip: str) -> MinerState | None:
    """One miner's state with its latest reading; None when the monitor does not know it."""
    return _state(ip, client.hgetall(miner_key(ip)), True)


def miner_history(client: redis.Redis, ip: str, since: float, until: float | None = None) -> list[MinerSample]:
    """The miner's samples with since <= t <= until (until None: now), oldest first (kept `RECENT_SECONDS`)."""
    until = time.time() if until is None else until
    pipe = client.pipeline(transaction=False)
    for hour in _hours(since, until):
        pipe.get(miner_compact_key(ip, hour))
        pipe.lrange(miner_history_key(ip, hour), 0, -1)
    raws: list[bytes] = []
    for reply in pipe.execute():
        if isinstance(reply, bytes):
            raws += zlib.decompress(reply).split(b"\n")
        elif reply:
            raws += reply
    # a reader may catch a compaction between its two writes: the same sample then comes twice
    samples = {s.t: s for s in map(MinerSample.decode, raws) if since <= s.t <= until}
    return [samples[t] for t in sorted(samples)]


def _site_recent(client: redis.Redis, site: str, since: float, until: float) -> list[SiteSample]:
    pipe = client.pipeline(transaction=False)
    for hour in _hours(since, until):
        pipe.lrange(site_recent_key(site, hour), 0, -1)
    samples = [SiteSample.decode(raw) for rows in pipe.execute() for raw in rows]
    return sorted((s for s in samples if since <= s.t <= until), key=lambda s: s.t)


def site_history(client: redis.Redis, site: str, since: float, until: float | None = None) -> list[SiteSample]:
    """The site's samples with since <= t <= until, oldest first: one per round for the last `RECENT_SECONDS`,
    and before that one per `SITE_BUCKET_SECONDS` (means; kept 30 days)."""
    now = time.time()
    until = now if until is None else until
    recent_from = max(since, now - RECENT_SECONDS)
    rolled_raw = client.get(site_rolled_key(site))
    # downsampled buckets cover up to the last roll-up; recent samples the rest (no overlap, no gap)
    rolled = float(rolled_raw) if rolled_raw is not None else 0.0
    out: list[SiteSample] = []
    if since < recent_from:
        old_until = min(until, rolled - 1e-6)
        pipe = client.pipeline(transaction=False)
        for day in range(int(since // _DAY), int(old_until // _DAY) + 1):
            pipe.lrange(site_daily_key(site, day), 0, -1)
        out = [s for rows in pipe.execute() for s in map(SiteSample.decode, rows) if since <= s.t <= old_until]
        recent_from = max(recent_from, rolled)
    if until >= recent_from:
        out += _site_recent(client, site, recent_from, until)
    return sorted(out, key=lambda s: s.t)


def totals_of(site: str | None, states: Iterable[MinerState], last_round: float | None = None) -> SiteTotals:
    totals = SiteTotals(site=site, last_round=last_round)
    for state in states:
        totals.miners += 1
        if state.expected_hashrate is not None:
            totals.expected_hashrate += state.expected_hashrate
        if not state.online:
            totals.offline += 1
            continue
        totals.online += 1
        totals.hashrate += state.hashrate or 0.0
        totals.wattage += state.wattage or 0.0
    totals.hashrate = round(totals.hashrate, 3)
    totals.expected_hashrate = round(totals.expected_hashrate, 3)
    totals.wattage = round(totals.wattage, 1)
    totals.efficiency = round(totals.wattage / totals.hashrate, 2) if totals.hashrate > 0 else None
    return totals


def site_totals(client: redis.Redis, site: str | None = None) -> SiteTotals:
    """Online/offline counts, hash rate vs expected, power and efficiency of a site (None: every site)."""
    last = None
    for name in [site] if site is not None else sites_known(client):
        info = last_round(client, name)
        if info is not None and info.finished is not None:
            last = max(last or 0.0, info.finished)
    return totals_of(site, known_miners(client, site, with_data=False), last)


def last_round(client: redis.Redis, site: str) -> RoundInfo | None:
    """The site's latest collection round (running or finished); None before the first."""
    raw = {_text(k): _text(v) for k, v in client.hgetall(site_round_key(site)).items()}
    if not raw.get("round_id"):
        return None
    with contextlib.suppress(KeyError, ValueError):
        return RoundInfo(round_id=raw["round_id"], site=site, started=float(raw["started"]),
                         finished=_float(raw.get("finished")), batches=int(raw.get("batches", 0)),
                         batches_done=int(raw.get("batches_done", 0)), miners=int(raw.get("miners", 0)),
                         online=int(raw["online"]) if raw.get("online") else None,
                         seconds=_float(raw.get("seconds")))
    return None


# ----- rounds (workers) ----------------------------------------------------------------------------
# A batch counts itself done only in the round it belongs to; the one that completes the round closes it.
_FINISH_BATCH = """
if redis.call('HGET', KEYS[1], 'round_id') ~= ARGV[1] then return -1 end
local done = redis.call('HINCRBY', KEYS[1], 'batches_done', 1)
local total = tonumber(redis.call('HGET', KEYS[1], 'batches') or '0')
if done == total then return 1 end
return 0
"""


def try_lock_round(client: redis.Redis, site: str, round_id: str, seconds: float) -> bool:
    """Takes the site's round lock for `seconds` (False: the previous round still runs)."""
    return bool(client.set(site_lock_key(site), round_id, nx=True, px=max(1000, int(seconds * 1000))))


_REFRESH_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
return 0
"""


def refresh_round_lock(client: redis.Redis, site: str, round_id: str, seconds: float) -> bool:
    """Extends the round lock while the round makes progress (only if this round still holds it)."""
    return bool(client.eval(_REFRESH_LOCK, 1, site_lock_key(site), round_id, max(1000, int(seconds * 1000))))


def is_current_round(client: redis.Redis, site: str, round_id: str) -> bool:
    """False for a batch of a round that was given up (a newer round started): it then reads nothing."""
    current = client.hget(site_round_key(site), "round_id")
    return current is not None and _text(current) == round_id


def start_round(client: redis.Redis, site: str, round_id: str, batches: int, miners: int, started: float) -> None:
    client.delete(site_round_key(site))
    client.hset(site_round_key(site), mapping={"round_id": round_id, "started": started, "batches": batches,
                                               "batches_done": 0, "miners": miners})


def finish_batch(client: redis.Redis, site: str, round_id: str) -> bool:
    """Counts a batch of the round done; True for the batch that completes the round (it closes it)."""
    return int(client.eval(_FINISH_BATCH, 1, site_round_key(site), round_id)) == 1


def close_round(client: redis.Redis, site: str, round_id: str, now: float) -> tuple[SiteTotals, list[MinerState]]:
    """Records the site's totals (a site sample, the round's end, an entry in the rounds stream), releases the
    round lock, and returns the totals with the site's miners (with data) for the `after_collection` hooks."""
    states = known_miners(client, site)
    totals = totals_of(site, states, now)
    record_site_sample(client, site, totals.sample(now))
    started = _float(client.hget(site_round_key(site), "started")) or now
    pipe = client.pipeline(transaction=False)
    pipe.hset(site_round_key(site), mapping={"finished": now, "online": totals.online,
                                             "seconds": round(now - started, 3)})
    pipe.xadd(rounds_key(), {"site": site, "round": round_id, "finished": now, "miners": totals.miners,
                             "online": totals.online, "offline": totals.offline, "seconds": round(now - started, 3)},
              maxlen=ROUNDS_MAXLEN, approximate=True)
    pipe.execute()
    if client.get(site_lock_key(site)) in (round_id, round_id.encode()):
        client.delete(site_lock_key(site))
    return totals, states
