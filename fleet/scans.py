"""Starting, reaping, resuming and reading distributed scans: the chunks are sent by task name, so both
the orchestrator (which also watches a scan to its end) and the workers' scheduled scans use this."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass
from datetime import UTC, datetime

from celery import Celery

from asicfleet.data import MinerData
from fleet.messaging import SCAN_CHUNK, chunk_display_name, create_app
from fleet.plan import DISTRIBUTED_MAX_ADDRESSES, plan_chunks
from fleet.settings import FleetSettings
from fleet.sites import DiscoveryOptions, check_site_name, site_queue
from fleet.store import ChunkInfo, ChunkState, ScanInfo, ScanStatus, ScanStore, scan_key


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


def new_scan_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + secrets.token_hex(3)


class Scans:
    """Distributed scans in Redis, their chunks queued to the workers by task name."""

    def __init__(self, settings: FleetSettings, app: Celery | None = None) -> None:
        self.settings = settings
        self.store = ScanStore.from_url(settings.redis_url, settings.result_ttl_seconds)
        self.app = app or create_app(settings)

    # ----- starting ---------------------------------------------------------------------------
    def start_scan(self, targets: list[str], *, exclude: list[str] | None = None, site: str | None = None,
                   chunk_prefix: int = 24, options: DiscoveryOptions | None = None) -> str:
        """Validates and plans (refusing bad input before anything is queued), records, then queues."""
        options = options or DiscoveryOptions()
        if site is not None:
            check_site_name(site)
        chunks = plan_chunks(targets, exclude=exclude, prefix=chunk_prefix, allow_public=options.allow_public,
                             max_addresses=options.max_addresses or DISTRIBUTED_MAX_ADDRESSES)
        scan_id = new_scan_id()
        self.store.create_scan(scan_id, targets=targets, site=site, chunk_prefix=chunk_prefix,
                               chunks=[(c.label, c.first, c.last, c.addresses) for c in chunks],
                               options=options.model_dump())
        info = self.store.scan(scan_id)
        assert info is not None
        queued = self.store.chunks(scan_id, info.total_chunks)
        for sent, chunk in enumerate(queued):
            try:
                self._send(info, chunk)
            except Exception as exc:  # the broker is down or refuses: say so, and close the scan's record
                reason = f"{type(exc).__name__}: {exc}"
                self.store.fail_scan(scan_id, f"chunk {chunk.index} could not be queued ({reason})")
                raise ScanQueueError(f"scan {scan_id}: the broker did not take chunk {chunk.index} ({reason}); "
                                     f"{sent} of {len(queued)} chunks were queued, the scan is marked failed; "
                                     f"`asicfleet scan --resume {scan_id}` queues the rest once the broker "
                                     "answers") from None
        return scan_id

    def _send(self, info: ScanInfo, chunk: ChunkInfo) -> None:
        options = DiscoveryOptions.model_validate(info.options)
        soft, hard = options.chunk_time_limits(chunk.addresses)
        kwargs = {"scan_id": info.scan_id, "chunk": chunk.index, "first": chunk.first, "last": chunk.last,
                  "label": chunk.label, "site": info.site, "options": info.options}
        # Flower and the worker's log show the shadow name and the kwargs repr: what the chunk is, without
        # the discovery options blob (the same for every chunk of a scan; it stays in the message)
        shown = {k: v for k, v in kwargs.items() if k != "options"}
        self.app.send_task(
            SCAN_CHUNK, queue=site_queue(info.site), soft_time_limit=soft, time_limit=hard, kwargs=kwargs,
            shadow=chunk_display_name(info.scan_id, chunk.index, info.total_chunks, chunk.label, info.site),
            kwargsrepr=repr(shown))

    # ----- watching ---------------------------------------------------------------------------
    def progress(self, scan_id: str, requeued: int = 0) -> ScanProgress:
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

    def reap(self, scan_id: str) -> list[int]:
        """Re-queues the unfinished chunks held by workers that stopped beating (killed, crashed, lost)."""
        info = self._scan(scan_id)
        chunks = self.store.chunks(scan_id, info.total_chunks)
        held = [c for c in chunks if c.state in (ChunkState.RESERVED, ChunkState.RUNNING) and c.worker]
        alive = self.store.live_workers(c.worker for c in held if c.worker)
        lost = [c for c in held if c.worker not in alive]
        for chunk in lost:
            self.store.mark_requeued(scan_id, chunk.index)
            self._send(info, chunk)
        return [c.index for c in lost]

    def close_if_finished(self, scan_id: str) -> ScanStatus | None:
        progress = self.progress(scan_id)
        if not progress.finished:
            return None
        status = ScanStatus.FAILED if progress.chunks_failed else ScanStatus.DONE
        self.store.finish_scan(scan_id, status)
        return status

    def reap_all(self) -> dict[str, list[int]]:
        """For the beat task (`asicfleet.reap_scans`): every running scan gets reaped and, when finished, closed."""
        out: dict[str, list[int]] = {}
        for info in self.store.recent_scans(limit=200):
            if info.status is ScanStatus.RUNNING:
                out[info.scan_id] = self.reap(info.scan_id)
                self.close_if_finished(info.scan_id)
        return out

    def resume(self, scan_id: str) -> list[int]:
        """Re-queues every chunk that has not finished (done chunks are never re-run)."""
        info = self._scan(scan_id)
        pending = [c for c in self.store.chunks(scan_id, info.total_chunks) if c.state is not ChunkState.DONE]
        self.store.redis.hset(scan_key(scan_id), "status", ScanStatus.RUNNING.value)
        for chunk in pending:
            self.store.mark_requeued(scan_id, chunk.index)
            self._send(info, chunk)
        return [c.index for c in pending]

    # ----- reading ----------------------------------------------------------------------------
    def _scan(self, scan_id: str) -> ScanInfo:
        info = self.store.scan(scan_id)
        if info is None:
            raise KeyError(f"no scan {scan_id!r} in Redis (never started, or expired)")
        return info

    def inventory(self, scan_id: str) -> list[MinerData]:
        self._scan(scan_id)
        return sorted((MinerData.model_validate_json(v) for v in self.store.miners(scan_id).values()),
                      key=lambda m: m.ip)

    def errors(self, scan_id: str) -> dict[str, str]:
        return self.store.errors(scan_id)

    def scans(self, limit: int = 20) -> list[ScanInfo]:
        return self.store.recent_scans(limit)
