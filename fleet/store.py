"""The shape of scans in Redis: one place that names every key, read by the orchestrator and the
workers, and documented for other tools (see README, "Results in Redis").

    asicfleet:scans                          zset   scan id -> created (unix seconds)
    asicfleet:scan:{id}                      hash   the plan: targets, chunk prefix, site, options, totals, status
    asicfleet:scan:{id}:chunk:{n}            hash   one chunk: range, label, state, worker, attempts, counters
    asicfleet:scan:{id}:miners               hash   ip -> MinerData JSON (written as each miner is read)
    asicfleet:scan:{id}:errors               hash   ip -> error text for hosts that answered badly
    asicfleet:scan:{id}:events               stream {kind: miner|error|chunk, ip|chunk, ...} for live consumers
    asicfleet:scan:{id}:finished             set    indexes of the chunks that ended (done or failed)
    asicfleet:worker:{hostname}              string a live worker's heartbeat: the queues it consumes, space
                                                    separated (expires when it dies)
    asicfleet:workers                        set    hostnames that sent a heartbeat (readers drop expired ones)

Every scan key expires `result_ttl` after the scan's last write. Writes are keyed by scan id and IP
(or chunk), so running a chunk twice leaves the same data: delivery is at-least-once, duplicates
are harmless.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import redis

from fleet.lease import REQUEUE

PREFIX = "asicfleet"
EVENTS_MAXLEN = 200_000


class ChunkState(StrEnum):
    QUEUED = "queued"  # sent to the broker, no worker has it yet
    RESERVED = "reserved"  # a worker took the message
    RUNNING = "running"  # a worker is scanning it
    DONE = "done"
    FAILED = "failed"


class ScanStatus(StrEnum):
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"  # finished, with chunks that failed


def scans_key() -> str:
    return f"{PREFIX}:scans"


def scan_key(scan_id: str) -> str:
    return f"{PREFIX}:scan:{scan_id}"


def chunk_key(scan_id: str, chunk: int) -> str:
    return f"{PREFIX}:scan:{scan_id}:chunk:{chunk}"


def miners_key(scan_id: str) -> str:
    return f"{PREFIX}:scan:{scan_id}:miners"


def errors_key(scan_id: str) -> str:
    return f"{PREFIX}:scan:{scan_id}:errors"


def events_key(scan_id: str) -> str:
    return f"{PREFIX}:scan:{scan_id}:events"


def finished_key(scan_id: str) -> str:
    return f"{PREFIX}:scan:{scan_id}:finished"


def worker_key(hostname: str) -> str:
    return f"{PREFIX}:worker:{hostname}"


def workers_key() -> str:
    return f"{PREFIX}:workers"


def all_scan_keys(scan_id: str, chunks: int) -> list[str]:
    return [scan_key(scan_id), miners_key(scan_id), errors_key(scan_id), events_key(scan_id), finished_key(scan_id),
            *(chunk_key(scan_id, n) for n in range(chunks))]


def chunk_written_keys(scan_id: str, chunk: int) -> list[str]:
    """The keys a chunk's attempt writes: its own hash and the scan's shared results (not the scan's hash)."""
    return [miners_key(scan_id), errors_key(scan_id), events_key(scan_id), finished_key(scan_id),
            chunk_key(scan_id, chunk)]


def ttl_refresh_seconds(ttl: int) -> int:
    """How far the scan hash's TTL may run down before a finishing chunk refreshes every key of the scan (its
    queued chunks' too). Each chunk refreshes the keys it wrote; only these rounds touch them all, and the
    scan hash is refreshed by them alone, so its TTL tells when the last round was."""
    return min(ttl // 2, max(60, ttl // 100))


@dataclass
class ChunkInfo:
    index: int
    label: str
    first: str
    last: str
    addresses: int
    state: ChunkState
    worker: str | None
    attempts: int
    probed: int
    found: int
    errors: int
    started: float | None
    finished: float | None
    undecided: int = 0  # addresses this chunk's worker was too loaded to decide, after its retries
    lease: str = ""  # the attempt holding it (`fleet.lease`): task id @ worker
    lease_until: float = 0.0  # Redis server time the hold runs out unless renewed
    error: str = ""
    sent_at: float = 0.0  # when its message was last handed to the broker (0: never, as far as Redis knows)
    task_id: str = ""  # the id of its latest message (older deliveries of it are stale)
    missing_since: float = 0.0  # Redis time a reaper first saw it queued with its message gone from the queue


@dataclass
class ScanInfo:
    scan_id: str
    created: float
    targets: list[str]
    site: str | None
    chunk_prefix: int
    total_chunks: int
    total_addresses: int
    status: ScanStatus
    options: dict[str, Any]
    finished: float | None


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


class ScanStore:
    """Synchronous access to scans in Redis (the orchestrator's side)."""

    def __init__(self, client: redis.Redis, ttl_seconds: int) -> None:
        self.redis = client
        self.ttl = ttl_seconds

    @classmethod
    def from_url(cls, url: str, ttl_seconds: int) -> ScanStore:
        return cls(redis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30), ttl_seconds)

    # ----- writing ----------------------------------------------------------------------------
    def create_scan(self, scan_id: str, *, targets: list[str], site: str | None, chunk_prefix: int,
                    chunks: list[tuple[str, str, str, int]], options: dict[str, Any]) -> None:
        """Records the plan and every chunk as queued, atomically, before any task is sent."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=True)
        pipe.hset(scan_key(scan_id), mapping={
            "id": scan_id, "created": now, "targets": json.dumps(targets), "site": site or "",
            "chunk_prefix": chunk_prefix, "total_chunks": len(chunks),
            "total_addresses": sum(c[3] for c in chunks), "status": ScanStatus.RUNNING.value,
            "options": json.dumps(options),
        })
        for index, (label, first, last, size) in enumerate(chunks):
            pipe.hset(chunk_key(scan_id, index), mapping={
                "label": label, "first": first, "last": last, "addresses": size,
                "state": ChunkState.QUEUED.value, "attempts": 0, "probed": 0, "found": 0, "errors": 0})
        pipe.zadd(scans_key(), {scan_id: now})
        for key in all_scan_keys(scan_id, len(chunks)):
            pipe.expire(key, self.ttl)
        pipe.execute()

    def mark_requeued(self, scan_id: str, chunk: int) -> None:
        """Queued again (by a resume): no attempt holds it, and it has not ended."""
        pipe = self.redis.pipeline()
        pipe.hset(chunk_key(scan_id, chunk), mapping={"state": ChunkState.QUEUED.value, "worker": "", "lease": "",
                                                      "lease_until": 0, "error": "", "missing_since": 0})
        pipe.hincrby(chunk_key(scan_id, chunk), "requeues", 1)
        pipe.srem(finished_key(scan_id), chunk)
        pipe.execute()

    def requeue_lost(self, scan_id: str, chunk: ChunkInfo) -> bool:
        """Queued again because its attempt was lost: only if the attempt the caller saw still holds it (two
        reapers never both re-send it)."""
        return bool(self.redis.eval(REQUEUE, 1, chunk_key(scan_id, chunk.index), chunk.lease))

    def mark_sent(self, scan_id: str, task_ids: Mapping[int, str]) -> None:
        """Records that these chunks' messages (chunk -> task id) reached the broker (a chunk never marked is
        re-sent by the reaper)."""
        now = time.time()
        pipe = self.redis.pipeline(transaction=False)
        for chunk, task_id in task_ids.items():
            pipe.hset(chunk_key(scan_id, chunk), mapping={"sent_at": now, "task_id": task_id, "missing_since": 0})
        pipe.execute()

    def mark_missing(self, scan_id: str, chunk: int, since: float) -> None:
        """A reaper saw the chunk queued while its message was in no queue (`since`: Redis time; 0 clears)."""
        self.redis.hset(chunk_key(scan_id, chunk), "missing_since", since)

    def fail_scan(self, scan_id: str, error: str) -> None:
        """Closes a scan that could not go on (its chunks could not be queued): never left `running`."""
        self.redis.hset(scan_key(scan_id), mapping={"status": ScanStatus.FAILED.value, "finished": time.time(),
                                                    "error": error})

    def finish_scan(self, scan_id: str, status: ScanStatus) -> None:
        info = self.scan(scan_id)
        pipe = self.redis.pipeline()
        pipe.hset(scan_key(scan_id), mapping={"status": status.value, "finished": time.time()})
        for key in all_scan_keys(scan_id, info.total_chunks if info else 0):
            pipe.expire(key, self.ttl)
        pipe.execute()

    # ----- reading ----------------------------------------------------------------------------
    def scan(self, scan_id: str) -> ScanInfo | None:
        raw = {_text(k): _text(v) for k, v in self.redis.hgetall(scan_key(scan_id)).items()}
        if not raw:
            return None
        return ScanInfo(
            scan_id=raw["id"], created=float(raw["created"]), targets=json.loads(raw["targets"]),
            site=raw.get("site") or None, chunk_prefix=int(raw["chunk_prefix"]),
            total_chunks=int(raw["total_chunks"]), total_addresses=int(raw["total_addresses"]),
            status=ScanStatus(raw["status"]), options=json.loads(raw["options"]),
            finished=float(raw["finished"]) if raw.get("finished") else None)

    def chunks(self, scan_id: str, total: int) -> list[ChunkInfo]:
        pipe = self.redis.pipeline(transaction=False)
        for index in range(total):
            pipe.hgetall(chunk_key(scan_id, index))
        out = []
        for index, raw_bytes in enumerate(pipe.execute()):
            raw = {_text(k): _text(v) for k, v in raw_bytes.items()}
            if not raw:
                continue
            out.append(ChunkInfo(
                index=index, label=raw["label"], first=raw["first"], last=raw["last"],
                addresses=int(raw["addresses"]), state=ChunkState(raw["state"]), worker=raw.get("worker") or None,
                attempts=int(raw.get("attempts", 0)), probed=int(raw.get("probed", 0)),
                found=int(raw.get("found", 0)), errors=int(raw.get("errors", 0)),
                started=float(raw["started"]) if raw.get("started") else None,
                finished=float(raw["finished"]) if raw.get("finished") else None,
                undecided=int(raw.get("undecided", 0)), lease=raw.get("lease", ""),
                lease_until=float(raw.get("lease_until") or 0), error=raw.get("error", ""),
                sent_at=float(raw.get("sent_at") or 0), task_id=raw.get("task_id", ""),
                missing_since=float(raw.get("missing_since") or 0)))
        return out

    def server_time(self) -> float:
        seconds, micros = self.redis.time()
        return float(seconds) + micros / 1e6

    def uptime(self) -> float:
        """Seconds since Redis started: heartbeats and leases are not judged right after a restart."""
        return float(self.redis.info("server").get("uptime_in_seconds", 1e9))

    def miner_count(self, scan_id: str) -> int:
        return int(self.redis.hlen(miners_key(scan_id)))

    def error_count(self, scan_id: str) -> int:
        return int(self.redis.hlen(errors_key(scan_id)))

    def miners(self, scan_id: str) -> dict[str, str]:
        """ip -> MinerData JSON."""
        return {_text(k): _text(v) for k, v in self.redis.hgetall(miners_key(scan_id)).items()}

    def errors(self, scan_id: str) -> dict[str, str]:
        return {_text(k): _text(v) for k, v in self.redis.hgetall(errors_key(scan_id)).items()}

    def recent_scans(self, limit: int = 20) -> list[ScanInfo]:
        ids = [_text(i) for i in self.redis.zrevrange(scans_key(), 0, limit - 1)]
        found = [self.scan(i) for i in ids]
        stale = [i for i, s in zip(ids, found, strict=True) if s is None]
        if stale:
            self.redis.zrem(scans_key(), *stale)  # expired scans leave the index too
        return [s for s in found if s is not None]

    def workers_on(self, queue: str) -> list[str]:
        """The live workers that consume `queue`, by their heartbeats (a heartbeat without queues, from an older
        worker, counts as consuming every queue). Workers whose heartbeat expired leave the index."""
        names = sorted(_text(n) for n in self.redis.smembers(workers_key()))
        if not names:
            return []
        beats = self.redis.mget([worker_key(n) for n in names])
        gone = [n for n, beat in zip(names, beats, strict=True) if beat is None]
        if gone:
            self.redis.srem(workers_key(), *gone)
        return [n for n, beat in zip(names, beats, strict=True)
                if beat is not None and (_text(beat) == "alive" or queue in _text(beat).split())]

    def live_workers(self, hostnames: Iterable[str]) -> set[str]:
        names = sorted(set(hostnames))
        if not names:
            return set()
        alive = self.redis.mget([worker_key(n) for n in names])
        return {n for n, v in zip(names, alive, strict=True) if v is not None}
