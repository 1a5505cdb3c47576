"""Celery tasks: scan one chunk, plan a scheduled site scan, re-queue the chunks of dead workers."""

from __future__ import annotations

import ipaddress
import time
from pathlib import Path
from typing import Any

import redis.asyncio as aredis
import yaml
from celery import Task
from celery.exceptions import SoftTimeLimitExceeded

from asicfleet import MinerFactory
from asicfleet.discovery import Identified, ScanRecord, scan_and_collect
from fleet.loop import run_async
from fleet.messaging import REAP, SCAN_CHUNK, SCHEDULED_SCAN
from fleet.scans import Scans
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions, load_sites
from fleet.store import (
    EVENTS_MAXLEN,
    ChunkState,
    all_scan_keys,
    chunk_key,
    errors_key,
    events_key,
    finished_key,
    miners_key,
    scan_key,
)
from fleet.task_results import chunk_result
from workers.app import app

_PROGRESS_EVERY = 0.5  # seconds between progress writes while a chunk runs


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
    Scans(settings, app).close_if_finished(scan_id)


async def _write_record(client: aredis.Redis, scan_id: str, chunk: int, record: ScanRecord) -> None:
    ip = str(record.ip)
    pipe = client.pipeline(transaction=False)
    if record.data is not None:
        pipe.hset(miners_key(scan_id), ip, record.data.model_dump_json())
        pipe.hdel(errors_key(scan_id), ip)  # an earlier attempt's error is superseded
        pipe.hincrby(chunk_key(scan_id, chunk), "found", 1)
        pipe.xadd(events_key(scan_id), {"kind": "miner", "ip": ip, "chunk": chunk}, maxlen=EVENTS_MAXLEN,
                  approximate=True)
    else:
        pipe.hset(errors_key(scan_id), ip, record.error or "unknown error")
        pipe.hincrby(chunk_key(scan_id, chunk), "errors", 1)
        pipe.xadd(events_key(scan_id), {"kind": "error", "ip": ip, "chunk": chunk, "error": record.error or ""},
                  maxlen=EVENTS_MAXLEN, approximate=True)
    await pipe.execute()


async def scan_chunk_async(settings: FleetSettings, hostname: str, scan_id: str, chunk: int, first: str,
                           last: str, options: dict[str, Any], label: str = "") -> dict[str, Any]:
    client = aredis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)
    key = chunk_key(scan_id, chunk)
    try:
        if not await client.exists(scan_key(scan_id)):
            return {"skipped": "the scan is unknown or expired"}
        if (await client.hget(key, "state")) == ChunkState.DONE.value.encode():
            return {"skipped": "chunk already done"}  # a redelivered or re-queued duplicate
        await client.hset(key, mapping={"state": ChunkState.RUNNING.value, "worker": hostname,
                                        "started": time.time(), "probed": 0, "found": 0, "errors": 0})
        await client.hincrby(key, "attempts", 1)
        discovery = DiscoveryOptions.model_validate(options)
        factory = (MinerFactory.from_targets([f"{first}-{last}"], allow_public=discovery.allow_public)
                   .with_concurrent_limit(discovery.concurrency)
                   .with_connectivity_timeout_secs(discovery.connect_timeout)
                   .with_read_timeout_secs(discovery.read_timeout)
                   .with_identification_timeout_secs(discovery.identify_timeout)
                   .with_port_map(discovery.ports)
                   .with_max_addresses(_span(first, last)))  # the planner already held the scan to its limit
        apply_credentials(factory, settings.secrets_file)
        probed = undecided = found = errors = 0
        started = identified = last_flush = time.monotonic()

        def count(result: Identified) -> None:
            nonlocal probed, undecided, identified
            probed += 1
            undecided += result.undecided
            identified = time.monotonic()  # the last address identified ends the identification

        try:
            async for record in scan_and_collect(factory, on_probed=count):
                await _write_record(client, scan_id, chunk, record)
                found += record.data is not None
                errors += record.data is None
                if time.monotonic() - last_flush > _PROGRESS_EVERY:
                    await client.hset(key, "probed", probed)
                    last_flush = time.monotonic()
        finally:
            await factory.aclose()
        pipe = client.pipeline(transaction=True)
        pipe.hset(key, mapping={"state": ChunkState.DONE.value, "probed": probed, "undecided": undecided,
                                "finished": time.time()})
        pipe.xadd(events_key(scan_id), {"kind": "chunk", "chunk": chunk, "state": "done"}, maxlen=EVENTS_MAXLEN,
                  approximate=True)
        total = int(await client.hget(scan_key(scan_id), "total_chunks") or 0)
        for name in all_scan_keys(scan_id, total):
            pipe.expire(name, settings.result_ttl_seconds)
        pipe.sadd(finished_key(scan_id), chunk)
        pipe.scard(finished_key(scan_id))
        ended = (await pipe.execute())[-1]
        if ended >= total:
            _close_scan(settings, scan_id)
        # reads start as soon as a miner is identified: "collect" is the reading left after the last identification
        return chunk_result(scan_id=scan_id, chunk=chunk, label=label or f"{first}-{last}", probed=probed,
                            found=found, errors=errors, undecided=undecided, identify_seconds=identified - started,
                            collect_seconds=max(0.0, time.monotonic() - identified))
    except (Exception, SoftTimeLimitExceeded) as exc:
        await client.hset(key, mapping={"state": ChunkState.FAILED.value, "error": f"{type(exc).__name__}: {exc}",
                                        "finished": time.time()})
        await client.sadd(finished_key(scan_id), chunk)
        total = int(await client.hget(scan_key(scan_id), "total_chunks") or 0)
        if await client.scard(finished_key(scan_id)) >= total:
            _close_scan(settings, scan_id)
        raise
    finally:
        await client.aclose()


@app.task(bind=True, name=SCAN_CHUNK, acks_late=True, reject_on_worker_lost=True)
def scan_chunk(self: Task, scan_id: str, chunk: int, first: str, last: str, label: str,
               site: str | None = None, options: dict[str, Any] | None = None) -> dict[str, Any]:
    """Scans addresses first..last (the chunk `label` of scan `scan_id`), writing each miner as it is read."""
    hostname = self.request.hostname or "unknown"
    return run_async(scan_chunk_async(get_settings(), hostname, scan_id, chunk, first, last, options or {}, label))


@app.task(name=SCHEDULED_SCAN, acks_late=True)
def scheduled_scan(site: str) -> str:
    """Plans and queues a site's recurring scan (from Celery beat); returns the scan id."""
    settings = get_settings()
    if settings.sites_file is None:
        raise RuntimeError("ASICFLEET_SITES_FILE is not set")
    config = load_sites(settings.sites_file).sites[site]
    return Scans(settings, app).start_scan(config.ranges, exclude=config.exclude, site=site,
                                           chunk_prefix=config.chunk_prefix, options=config.discovery)


@app.task(name=REAP, acks_late=True)
def reap_scans() -> dict[str, list[int]]:
    """Re-queues chunks held by dead workers and closes finished scans, for scans nobody watches."""
    return Scans(get_settings(), app).reap_all()
