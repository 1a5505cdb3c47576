"""Celery tasks: scan one chunk, plan a scheduled site scan, re-queue the chunks of dead workers."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
import yaml
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from asicfleet import MinerFactory
from asicfleet.discovery import Identified, ScanRecord, scan_and_collect
from fleet.lease import CLAIM, FINISH_UNLESS_DONE, Claim, claim_result, holder
from fleet.messaging import REAP, SCAN_CHUNK, SCHEDULED_SCAN
from fleet.resilience import RedisUnavailable, aretry
from fleet.scans import Scans
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions, load_sites
from fleet.store import (
    EVENTS_MAXLEN,
    ChunkState,
    all_scan_keys,
    chunk_key,
    chunk_written_keys,
    errors_key,
    events_key,
    finished_key,
    miners_key,
    scan_key,
    ttl_refresh_seconds,
)
from fleet.task_results import chunk_result
from workers import metrics
from workers.app import app
from workers.leasing import LeaseKeeper
from workers.runtime import process_loop

_PROGRESS_EVERY = 0.5  # seconds between progress writes while a chunk runs
logger = logging.getLogger(__name__)


def apply_credentials(factory: MinerFactory, secrets_file: Path | None) -> MinerFactory:
    """Miner logins come from the worker's own secrets file, never from the task message."""
    if secrets_file is None:
        return factory
    rules = yaml.safe_load(Path(secrets_file).read_text()) or []
    for rule in rules:
        factory.with_credentials(rule.get("family"), rule.get("username", "root"), rule["passwords"],
                                 rule.get("network", "0.0.0.0/0"))
    return factory


def _span(first: str, last: str) -> int:
    return int(ipaddress.IPv4Address(last)) - int(ipaddress.IPv4Address(first)) + 1


def _close_scan(settings: FleetSettings, scan_id: str) -> None:
    """The worker that ends a scan's last chunk closes the scan: no watcher is needed for that."""
    status = Scans(settings, app).close_if_finished(scan_id)
    metrics.scan_closed(status.value if status is not None else None)


async def _write_records(client: aredis.Redis, scan_id: str, chunk: int, records: list[ScanRecord],
                         probed: int | None = None) -> None:
    """One pipeline for a few records (and the chunk's progress, when given); every write is keyed by IP, so a
    retried pipeline leaves the same data."""
    pipe = client.pipeline(transaction=False)
    for record in records:
        ip = str(record.ip)
        if record.data is not None:
            pipe.hset(miners_key(scan_id), ip, record.data.model_dump_json())
            pipe.hdel(errors_key(scan_id), ip)  # an earlier attempt's error is superseded
            pipe.hincrby(chunk_key(scan_id, chunk), "found", 1)
            pipe.xadd(events_key(scan_id), {"kind": "miner", "ip": ip, "chunk": chunk}, maxlen=EVENTS_MAXLEN,
                      approximate=True)
        else:
            pipe.hset(errors_key(scan_id), ip, record.error or "unknown error")
            pipe.hincrby(chunk_key(scan_id, chunk), "errors", 1)
            pipe.xadd(events_key(scan_id), {"kind": "error", "ip": ip, "chunk": chunk,
                                            "error": record.error or ""}, maxlen=EVENTS_MAXLEN, approximate=True)
    if probed is not None:
        pipe.hset(chunk_key(scan_id, chunk), "probed", probed)
    await pipe.execute()


class LeaseLost(Exception):
    """Another attempt took this chunk over (ours was taken for lost while we could not reach Redis)."""


class ChunkWriter:
    """Writes a chunk's records to Redis from a task of its own, so that a Redis outage holds up the writes,
    never the scan: records wait in memory and go out, in order, once Redis answers again. It also keeps
    the chunk's lease while the chunk runs."""

    _BATCH = 200

    def __init__(self, settings: FleetSettings, client: aredis.Redis, scan_id: str, chunk: int, holder: str,
                 hostname: str) -> None:
        self.settings = settings
        self.client = client
        self.scan_id = scan_id
        self.chunk = chunk
        self.key = chunk_key(scan_id, chunk)
        self.holder = holder
        self.hostname = hostname
        self.records: asyncio.Queue[ScanRecord | None] = asyncio.Queue()
        self.probed = 0
        self.failure: BaseException | None = None
        self.lease = LeaseKeeper(client, self.key, holder, hostname, settings.lease_seconds)
        self._tasks: list[asyncio.Task[None]] = []

    def start(self, owner: asyncio.Task[Any]) -> None:
        self._tasks = [asyncio.create_task(self._write())]
        self.lease.start(owner)

    @property
    def lost(self) -> bool:
        return self.lease.lost

    def _retry(self, fn: Any, what: str) -> Any:
        return aretry(fn, url=self.settings.redis_url, what=what, budget=self.settings.redis_retry_seconds)

    async def _write(self) -> None:
        last_flush = 0.0
        done = False
        while not done:
            batch: list[ScanRecord] = []
            item = await self.records.get()
            while True:
                if item is None:
                    done = True
                    break
                batch.append(item)
                if len(batch) >= self._BATCH or self.records.empty():
                    break
                item = self.records.get_nowait()
            try:
                # the progress goes out with the records (one round trip); the chunk's end writes it anyway
                progress = not done and time.monotonic() - last_flush > _PROGRESS_EVERY
                probed = self.probed if progress else None
                if batch or progress:
                    await self._retry(lambda b=batch, p=probed: _write_records(self.client, self.scan_id, self.chunk,
                                                                                b, p),
                                      f"writing chunk {self.chunk} of scan {self.scan_id}")
                if progress:
                    last_flush = time.monotonic()
            except Exception as exc:  # past the retry budget: the chunk cannot be recorded; the task fails
                self.failure = exc
                return

    async def finish(self) -> None:
        """Every record written (or the failure raised); the renewal stops."""
        await self.records.put(None)
        await asyncio.shield(self._tasks[0])
        self.stop()
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        self.lease.stop()
        for task in self._tasks:
            task.cancel()


async def scan_chunk_async(settings: FleetSettings, hostname: str, scan_id: str, chunk: int, first: str,
                           last: str, options: dict[str, Any], label: str = "", task_id: str = "",
                           client: aredis.Redis | None = None) -> dict[str, Any]:
    """Claims, scans and records one chunk. `client`: the pool process's Redis client (kept open); without
    one, a client of this call's own, closed at its end."""
    own_client = client is None
    if client is None:
        client = aredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    key = chunk_key(scan_id, chunk)
    url, budget = settings.redis_url, settings.redis_retry_seconds
    what = f"chunk {chunk} of scan {scan_id}"
    writer: ChunkWriter | None = None
    try:
        held_by = holder(task_id or f"attempt-{time.time()}", hostname)
        claimed = claim_result(await aretry(lambda: client.eval(
            CLAIM, 1, key, held_by, hostname, settings.lease_seconds, ChunkState.RUNNING.value,
            f"{ChunkState.DONE.value} {ChunkState.FAILED.value}"), url=url, what=f"taking {what}", budget=budget))
        if claimed is Claim.GONE:
            return {"skipped": "the scan is unknown or expired"}
        if claimed is Claim.FINISHED:
            return {"skipped": "chunk already ended"}  # a redelivered or re-queued duplicate
        if claimed is Claim.HELD:
            return {"skipped": "another live attempt runs this chunk"}

        async def record_started() -> None:
            start = client.pipeline(transaction=True)
            start.hset(key, mapping={"started": time.time(), "probed": 0, "found": 0, "errors": 0, "error": ""})
            start.hincrby(key, "attempts", 1)
            await start.execute()

        await aretry(record_started, url=url, what=f"starting {what}", budget=budget)
        discovery = DiscoveryOptions.model_validate(options)
        factory = (MinerFactory.from_targets([f"{first}-{last}"], allow_public=discovery.allow_public)
                   .with_concurrent_limit(discovery.concurrency)
                   .with_connectivity_timeout_secs(discovery.connect_timeout)
                   .with_read_timeout_secs(discovery.read_timeout)
                   .with_identification_timeout_secs(discovery.identify_timeout)
                   .with_port_map(discovery.ports)
                   .with_max_addresses(_span(first, last)))  # the planner already held the scan to its limit
        apply_credentials(factory, settings.secrets_file)
        writer = ChunkWriter(settings, client, scan_id, chunk, held_by, hostname)
        current = asyncio.current_task()
        assert current is not None
        writer.start(current)
        undecided = found = errors = 0
        started = identified = time.monotonic()

        def count(result: Identified) -> None:
            nonlocal undecided, identified
            assert writer is not None
            writer.probed += 1
            undecided += result.undecided
            identified = time.monotonic()  # the last address identified ends the identification

        try:
            async for record in scan_and_collect(factory, on_probed=count):
                found += record.data is not None
                errors += record.data is None
                writer.records.put_nowait(record)
                if writer.failure is not None:
                    raise writer.failure
        except asyncio.CancelledError:
            if writer.lost:
                return {"skipped": "another attempt took this chunk over"}
            raise
        finally:
            await factory.aclose()
        await writer.finish()
        probed = writer.probed

        async def record_done() -> int:
            ttl = settings.result_ttl_seconds
            look = client.pipeline(transaction=False)
            look.hget(scan_key(scan_id), "total_chunks")
            look.ttl(scan_key(scan_id))
            raw_total, scan_ttl = await look.execute()
            total = int(raw_total or 0)
            pipe = client.pipeline(transaction=True)
            pipe.hset(key, mapping={"state": ChunkState.DONE.value, "probed": probed, "undecided": undecided,
                                    "found": found, "errors": errors, "finished": time.time(), "lease_until": 0})
            pipe.xadd(events_key(scan_id), {"kind": "chunk", "chunk": chunk, "state": "done"},
                      maxlen=EVENTS_MAXLEN, approximate=True)
            # the keys this chunk wrote expire `ttl` after it; the scan's hash and every chunk's (queued ones
            # too) once the hash's TTL has run down by a refresh period: each chunk refreshing them all made a
            # scan's chunks cost the square of their count. The scan's closing refreshes them all anyway
            stale = int(scan_ttl) < ttl - ttl_refresh_seconds(ttl)
            for name in all_scan_keys(scan_id, total) if stale else chunk_written_keys(scan_id, chunk):
                pipe.expire(name, ttl)
            pipe.sadd(finished_key(scan_id), chunk)
            pipe.scard(finished_key(scan_id))
            return int((await pipe.execute())[-1]) - total

        if await aretry(record_done, url=url, what=f"recording {what} done", budget=budget) >= 0:
            _close_scan(settings, scan_id)
        # reads start as soon as a miner is identified: "collect" is the reading left after the last identification
        return chunk_result(scan_id=scan_id, chunk=chunk, label=label or f"{first}-{last}", probed=probed,
                            found=found, errors=errors, undecided=undecided, identify_seconds=identified - started,
                            collect_seconds=max(0.0, time.monotonic() - identified))
    except (Exception, SoftTimeLimitExceeded) as exc:
        if writer is not None:
            writer.stop()
        if isinstance(exc, RedisUnavailable):
            raise  # nothing can be recorded: the lease runs out and the reaper re-queues the chunk
        reason = f"{type(exc).__name__}: {exc}"

        async def record_failed() -> int:
            await client.eval(FINISH_UNLESS_DONE, 1, key, ChunkState.FAILED.value, "error", reason,
                              "finished", str(time.time()), "lease_until", "0")
            await client.sadd(finished_key(scan_id), chunk)
            total = int(await client.hget(scan_key(scan_id), "total_chunks") or 0)
            return int(await client.scard(finished_key(scan_id))) - total

        try:
            if await aretry(record_failed, url=url, what=f"recording {what} failed", budget=budget) >= 0:
                _close_scan(settings, scan_id)
        except RedisUnavailable as unavailable:
            logger.error("%s; the chunk's lease runs out and the reaper re-queues it", unavailable)
        raise
    finally:
        if writer is not None:
            writer.stop()
        if own_client:
            await client.aclose()


@app.task(bind=True, name=SCAN_CHUNK, acks_late=True, reject_on_worker_lost=True)
def scan_chunk(self: Task, scan_id: str, chunk: int, first: str, last: str, label: str,
               site: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scans addresses first..last (the chunk `label` of scan `scan_id`), writing each miner as it is read.
    It runs on the pool process's own loop, with its Redis client (`workers.runtime`), kept between chunks."""
    hostname = self.request.hostname or "unknown"
    settings = get_settings()

    async def run() -> dict[str, Any]:
        return await scan_chunk_async(settings, hostname, scan_id, chunk, first, last, options or {}, label,
                                      task_id=self.request.id or "", client=process_loop.redis(settings.redis_url))

    return process_loop.run(run())


@app.task(name=SCHEDULED_SCAN, acks_late=True)
def scheduled_scan(site: str) -> str:
    """Plans and queues a site's recurring scan (from Celery beat); returns the scan id."""
    settings = get_settings()
    if settings.sites_file is None:
        raise RuntimeError("ASICFLEET_SITES_FILE is not set")
    config = load_sites(settings.sites_file).sites[site]
    return Scans(settings, app).start_scan(config.ranges, exclude=config.exclude, site=site,
                                           chunk_prefix=config.prefix, options=config.discovery)


@app.task(name=REAP, acks_late=True)
def reap_scans() -> dict[str, list[int]]:
    """Re-queues chunks held by dead workers and closes finished scans, for scans nobody watches (every
    worker also reaps from a thread of its own, so this beat task is a second line, not the only one)."""
    return Scans(get_settings(), app).reap_all()
