"""Starting, reaping, resuming and reading distributed scans: the chunks are sent by task name, so both
the orchestrator (which also watches a scan to its end) and the workers' scheduled scans use this."""

from __future__ import annotations

import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

from celery import Celery

from asicfleet.data import MinerData
from fleet import monitor
from fleet.messaging import SCAN_CHUNK, BrokerQueue, chunk_display_name, create_app
from fleet.plan import DISTRIBUTED_MAX_ADDRESSES, plan_chunks
from fleet.resilience import OutageClock, RedisUnavailable, mask_secrets, mask_url, retry
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, check_site_name, site_queue
from fleet.store import ChunkInfo, ChunkState, ScanInfo, ScanStatus, ScanStore, scan_key

T = TypeVar("T")


@dataclass
class ScanProgress:
    scan_id: str
    chunks_total: int
    chunks_done: int
    chunks_failed: int
    addresses_total: int
    addresses_probed: int
    miners: int
    errors: int
    elapsed: float
    requeued: int = 0
    undecided: int = 0  # addresses no worker could decide (reported as errors); 0 unless workers starve

    @property
    def rate(self) -> float:
        """Addresses probed per second so far."""
        return self.addresses_probed / self.elapsed if self.elapsed > 0 else 0.0

    @property
    def finished(self) -> bool:
        return self.chunks_done + self.chunks_failed >= self.chunks_total


class ScanQueueError(RuntimeError):
    """Chunks could not be handed to the broker; the message says how many were and what to do."""


AUTO_CHUNKS_PER_WORKER = 16  # a late chunk then holds up the scan's end by a sixteenth of a worker's share
AUTO_PREFIXES = range(16, 25)  # never a chunk past a /16, nor one smaller than the default /24


def auto_chunk_prefix(targets: list[str], *, exclude: list[str] | None = None, allow_public: bool = False,
                      max_addresses: int = DISTRIBUTED_MAX_ADDRESSES, workers: int = 1) -> int:
    """The largest chunks (shortest prefix, /16 to /24) that still give each live worker (at least one assumed)
    `AUTO_CHUNKS_PER_WORKER` of them; /24 when even that gives fewer. Each chunk costs its worker a task's
    dispatch, a claim and its records' start and end (milliseconds): a /16 in /24s is 256 of them."""
    wanted = AUTO_CHUNKS_PER_WORKER * max(1, workers)
    for prefix in AUTO_PREFIXES:
        chunks = plan_chunks(targets, exclude=exclude, prefix=prefix, allow_public=allow_public,
                             max_addresses=max_addresses)
        if len(chunks) >= wanted:
            return prefix
    return AUTO_PREFIXES[-1]


def new_scan_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Scans:
    """Distributed scans in Redis, their chunks queued to the workers by task name."""

    def __init__(self, settings: FleetSettings, app: Celery | None = None) -> None:
        self.settings = settings
        self.store = ScanStore.from_url(settings.redis_url, settings.result_ttl_seconds)
        self.app = app or create_app(settings)
        self.clock = OutageClock()
        self.broker_queue = BrokerQueue(settings.broker)

    def _retry(self, fn: Callable[[], T], what: str) -> T:
        """Rides out a Redis (or broker) outage of up to `redis_retry_seconds`; then RedisUnavailable."""
        return retry(fn, url=self.settings.redis_url, what=what, budget=self.settings.redis_retry_seconds,
                     clock=self.clock)

    # ----- starting ---------------------------------------------------------------------------
    def start_scan(self, targets: list[str], *, exclude: list[str] | None = None, site: str | None = None,
                   chunk_prefix: int | None = 24, options: DiscoveryOptions | None = None) -> str:
        """Validates and plans (refusing bad input before anything is queued), records, then queues.
        `chunk_prefix` None: chosen from the range and the live workers of the scan's queue
        (`auto_chunk_prefix`)."""
        options = options or DiscoveryOptions()
        if site is not None:
            check_site_name(site)
        limit = options.max_addresses or DISTRIBUTED_MAX_ADDRESSES
        if chunk_prefix is None:
            workers = len(self._retry(lambda: self.store.workers_on(site_queue(site)), "reading the live workers"))
            chunk_prefix = auto_chunk_prefix(targets, exclude=exclude, allow_public=options.allow_public,
                                             max_addresses=limit, workers=workers)
        chunks = plan_chunks(targets, exclude=exclude, prefix=chunk_prefix, allow_public=options.allow_public,
                             max_addresses=limit)
        scan_id = new_scan_id()
        self._retry(lambda: self.store.create_scan(scan_id, targets=targets, site=site, chunk_prefix=chunk_prefix,
                                                   chunks=[(c.label, c.first, c.last, c.addresses) for c in chunks],
                                                   options=options.model_dump()), "recording the scan")
        info = self._scan(scan_id)
        queued = self._retry(lambda: self.store.chunks(scan_id, info.total_chunks), "reading the chunks")
        task_ids: dict[int, str] = {}
        for sent, chunk in enumerate(queued):
            if task_ids and sent % 100 == 0:  # a long scan's sent chunks are on record while the rest go out
                self._retry(partial(self.store.mark_sent, scan_id, dict(task_ids)), "recording chunks sent")
                task_ids.clear()
            try:
                task_ids[chunk.index] = self._send(info, chunk)
            except Exception as exc:  # the broker is down or refuses: say so, and close the scan's record
                reason = str(exc) if isinstance(exc, RedisUnavailable) else mask_secrets(f"{type(exc).__name__}: {exc}")
                error = f"chunk {chunk.index} could not be queued ({reason})"
                try:
                    self._retry(partial(self.store.fail_scan, scan_id, error), "marking the scan failed")
                    marked = "the scan is marked failed"
                except RedisUnavailable as down:
                    marked = f"it could not be marked failed either ({down}), so it shows running until resumed"
                raise ScanQueueError(f"scan {scan_id}: the broker did not take chunk {chunk.index} ({reason}); "
                                     f"{sent} of {len(queued)} chunks were queued, {marked}; "
                                     f"`asicfleet scan --resume {scan_id}` queues the rest once the broker "
                                     "answers") from None
        try:
            self._retry(partial(self.store.mark_sent, scan_id, task_ids), "recording the chunks sent")
        except RedisUnavailable as exc:  # every chunk is queued; only their record is missing (reapers re-send)
            raise ScanQueueError(f"scan {scan_id}: all {len(queued)} chunks were queued, but {exc}; the workers "
                                 f"carry on, `asicfleet scans` shows it once Redis answers") from None
        return scan_id

    def _send(self, info: ScanInfo, chunk: ChunkInfo) -> str:
        """Queues the chunk's task; returns its task id (to be recorded with `mark_sent`)."""
        task_id = str(uuid.uuid4())
        options = DiscoveryOptions.model_validate(info.options)
        soft, hard = options.chunk_time_limits(chunk.addresses)
        kwargs = {"scan_id": info.scan_id, "chunk": chunk.index, "first": chunk.first, "last": chunk.last,
                  "label": chunk.label, "site": info.site, "options": info.options}
        # Flower and the worker's log show the shadow name and the kwargs repr: what the chunk is, without
        # the discovery options blob (the same for every chunk of a scan; it stays in the message)
        shown = {k: v for k, v in kwargs.items() if k != "options"}
        self._retry(lambda: self.app.send_task(
            SCAN_CHUNK, task_id=task_id, queue=site_queue(info.site), soft_time_limit=soft, time_limit=hard,
            kwargs=kwargs,
            shadow=chunk_display_name(info.scan_id, chunk.index, info.total_chunks, chunk.label, info.site),
            kwargsrepr=repr(shown)),
            f"queueing chunk {chunk.index} of scan {info.scan_id} (broker {mask_url(self.settings.broker)})")
        return task_id

    # ----- watching ---------------------------------------------------------------------------
    def progress(self, scan_id: str, requeued: int = 0) -> ScanProgress:
        return self._retry(lambda: self._progress(scan_id, requeued), f"reading scan {scan_id}")

    def _progress(self, scan_id: str, requeued: int) -> ScanProgress:
        info = self._scan(scan_id)
        chunks = self.store.chunks(scan_id, info.total_chunks)
        done = [c for c in chunks if c.state is ChunkState.DONE]
        end = info.finished or time.time()
        return ScanProgress(
            scan_id=scan_id, chunks_total=info.total_chunks, chunks_done=len(done),
            chunks_failed=sum(c.state is ChunkState.FAILED for c in chunks), addresses_total=info.total_addresses,
            addresses_probed=sum(c.addresses if c.state is ChunkState.DONE else c.probed for c in chunks),
            miners=self.store.miner_count(scan_id), errors=self.store.error_count(scan_id),
            elapsed=end - info.created, requeued=requeued, undecided=sum(c.undecided for c in chunks))

    def judging_allowed(self) -> bool:
        """Heartbeats and leases lapse while nobody reaches Redis: right after Redis restarted, or after this
        process could not reach it, they are given one lease period to be renewed before anyone is judged."""
        grace = self.settings.lease_seconds + self.settings.worker_liveness_seconds
        return self.clock.quiet_for() > grace and self._retry(self.store.uptime, "reading Redis uptime") > grace

    def reap(self, scan_id: str) -> list[int]:
        """Re-queues the unfinished chunks whose attempt is lost: its worker stopped beating (killed, crashed,
        cut off), or its lease ran out (the worker lives but no longer runs it)."""
        if not self.judging_allowed():
            return []
        info = self._scan(scan_id)

        def lost_chunks() -> tuple[list[ChunkInfo], list[ChunkInfo]]:
            chunks = self.store.chunks(scan_id, info.total_chunks)
            held = [c for c in chunks if c.state in (ChunkState.RESERVED, ChunkState.RUNNING)]
            alive = self.store.live_workers(c.worker for c in held if c.worker)
            now = self.store.server_time()
            return chunks, [c for c in held if c.worker not in alive or (c.lease_until and c.lease_until < now)]

        requeued = []
        chunks, lost = self._retry(lost_chunks, f"reaping scan {scan_id}")
        for chunk in lost:
            if self._retry(partial(self.store.requeue_lost, scan_id, chunk), f"re-queueing chunk {chunk.index}"):
                task_id = self._send(info, chunk)
                self._retry(partial(self.store.mark_sent, scan_id, {chunk.index: task_id}), "recording a chunk sent")
                requeued.append(chunk.index)
        if lost:  # read again after re-queueing; otherwise the first read stands (every reaper round reads a
            # scan's chunks, and a /16 in /24s has 256; what follows judges only with a lease period's grace)
            chunks = self._retry(lambda: self.store.chunks(scan_id, info.total_chunks), f"reading scan {scan_id}")
        # chunks whose message never reached the broker (whoever started the scan lost Redis or the broker
        # while sending, past its budget): sent now; a duplicate of one that did arrive finds it held or done
        if time.time() - info.created > 2 * self.settings.lease_seconds:
            unsent = [c for c in chunks if c.state is ChunkState.QUEUED and not c.sent_at]
            if unsent:
                task_ids = {c.index: self._send(info, c) for c in unsent}
                self._retry(partial(self.store.mark_sent, scan_id, task_ids), "recording chunks sent")
                requeued += list(task_ids)
        requeued += self._resend_vanished(info, [c for c in chunks if c.state is ChunkState.QUEUED and c.sent_at])
        return requeued

    def _resend_vanished(self, info: ScanInfo, sent: list[ChunkInfo]) -> list[int]:
        """Chunks queued and sent whose message no longer waits in the broker's queue while no attempt took
        them (a worker took the message and dropped it when its broker connection broke, before the task
        started): after a lease period of that, sent again. A message just taken by a worker that will claim
        the chunk in a moment is not judged; if judged all the same, its duplicate finds the chunk held."""
        if not sent:
            return []
        waiting = self._retry(lambda: self.broker_queue.waiting_task_ids(site_queue(info.site), len(sent)),
                              f"reading the queue of scan {info.scan_id}")
        if waiting is None:
            return []
        grace = self.settings.lease_seconds + self.settings.worker_liveness_seconds
        now = self._retry(self.store.server_time, "reading Redis time")
        resent: dict[int, str] = {}
        for chunk in sent:
            if chunk.task_id in waiting or not chunk.task_id:
                if chunk.missing_since:
                    self._retry(partial(self.store.mark_missing, info.scan_id, chunk.index, 0), "clearing a mark")
            elif not chunk.missing_since:
                self._retry(partial(self.store.mark_missing, info.scan_id, chunk.index, now), "marking a chunk")
            elif now - chunk.missing_since > grace:
                self._retry(partial(self.store.mark_requeued, info.scan_id, chunk.index), "re-queueing a chunk")
                resent[chunk.index] = self._send(info, chunk)
        if resent:
            self._retry(partial(self.store.mark_sent, info.scan_id, resent), "recording chunks sent")
        return list(resent)

    def close_if_finished(self, scan_id: str) -> ScanStatus | None:
        progress = self.progress(scan_id)
        if not progress.finished:
            return None
        status = ScanStatus.FAILED if progress.chunks_failed else ScanStatus.DONE
        before = self._scan(scan_id).status
        self._retry(lambda: self.store.finish_scan(scan_id, status), f"closing scan {scan_id}")
        if before is ScanStatus.RUNNING:  # the first closer hands the miners found to the monitor
            self._retry(lambda: self._ingest(scan_id), f"adding scan {scan_id}'s miners to the monitor")
        return status

    def _ingest(self, scan_id: str) -> None:
        info = self._scan(scan_id)
        miners = [MinerData.model_validate_json(raw) for raw in self.store.miners(scan_id).values()]
        monitor.ingest_inventory(self.store.redis, info.site or monitor.DEFAULT_SITE, miners,
                                 DiscoveryOptions.model_validate(info.options).model_dump_json())

    def reap_all(self) -> dict[str, list[int]]:
        """For the beat task (`asicfleet.reap_scans`): every running scan gets reaped and, when finished, closed."""
        out: dict[str, list[int]] = {}
        for info in self._retry(lambda: self.store.recent_scans(limit=200), "listing scans"):
            if info.status is ScanStatus.RUNNING:
                out[info.scan_id] = self.reap(info.scan_id)
                self.close_if_finished(info.scan_id)
        return out

    def resume(self, scan_id: str) -> list[int]:
        """Re-queues every chunk that has not finished (done chunks are never re-run)."""
        info = self._scan(scan_id)
        chunks = self._retry(lambda: self.store.chunks(scan_id, info.total_chunks), f"reading scan {scan_id}")
        pending = [c for c in chunks if c.state is not ChunkState.DONE]
        self._retry(lambda: self.store.redis.hset(scan_key(scan_id), "status", ScanStatus.RUNNING.value),
                    f"reopening scan {scan_id}")
        task_ids: dict[int, str] = {}
        for chunk in pending:
            self._retry(partial(self.store.mark_requeued, scan_id, chunk.index), f"re-queueing chunk {chunk.index}")
            task_ids[chunk.index] = self._send(info, chunk)
        self._retry(partial(self.store.mark_sent, scan_id, task_ids), "recording the chunks sent")
        return [c.index for c in pending]

    # ----- reading ----------------------------------------------------------------------------
    def _scan(self, scan_id: str) -> ScanInfo:
        info = self._retry(lambda: self.store.scan(scan_id), f"reading scan {scan_id}")
        if info is None:
            raise KeyError(f"no scan {scan_id!r} in Redis (never started, or expired)")
        return info

    def inventory(self, scan_id: str) -> list[MinerData]:
        self._scan(scan_id)
        stored = self._retry(lambda: self.store.miners(scan_id), f"reading the inventory of scan {scan_id}")
        return sorted((MinerData.model_validate_json(v) for v in stored.values()), key=lambda m: m.ip)

    def errors(self, scan_id: str) -> dict[str, str]:
        return self._retry(lambda: self.store.errors(scan_id), f"reading the errors of scan {scan_id}")

    def scans(self, limit: int = 20) -> list[ScanInfo]:
        return self._retry(lambda: self.store.recent_scans(limit), "listing scans")
