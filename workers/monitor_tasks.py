"""Collection tasks (`fleet.monitor`): a site's round is planned by `collect_site` (from Celery beat, on the
site's queue) and read in batches of known IPs by `collect_batch`, on the same queue; nothing is rescanned.

A round: the known inventory (scans' miners, ingested when a scan closes; collections keep it current) is cut
into batches of `collect_batch_size` IPs. Each batch identifies and reads its miners with `get_data()` at the
site's discovery options and the worker's credentials, writes their state and one history sample each, and
counts itself done; the batch that completes the round records the site's totals and calls the
`fleet.monitor.after_collection` hooks.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import Any

import redis
from celery import Task

from asicfleet import Miner, MinerFactory
from asicfleet.data import MinerData
from fleet import monitor
from fleet.loop import run_async
from fleet.messaging import COLLECT_BATCH, COLLECT_SITE, collect_display_name
from fleet.resilience import mask_secrets, retry
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DiscoveryOptions, SiteConfig, load_sites, site_queue
from fleet.store import ScanStatus, ScanStore
from workers.app import app
from workers.tasks import apply_credentials

logger = logging.getLogger(__name__)
DEFAULT_INTERVAL_SECONDS = 300.0


def _client(settings: FleetSettings) -> redis.Redis:
    return redis.Redis.from_url(settings.redis_url, socket_connect_timeout=5, socket_timeout=30)


def site_config(settings: FleetSettings, site: str) -> SiteConfig | None:
    if settings.sites_file is None:
        return None
    return load_sites(settings.sites_file).sites.get(site)


def collect_interval(settings: FleetSettings, config: SiteConfig | None) -> float:
    """Seconds between a site's rounds: the settings' override, else the sites file's, else 5 minutes."""
    if settings.collect_interval_seconds is not None:
        return settings.collect_interval_seconds
    if config is not None and config.collect_every_minutes is not None:
        return config.collect_every_minutes * 60
    return DEFAULT_INTERVAL_SECONDS


def site_options(client: redis.Redis, config: SiteConfig | None, site: str) -> DiscoveryOptions:
    """The sites file's discovery options, else those of the site's latest ingested scan, else the defaults."""
    if config is not None:
        return config.discovery
    raw = client.get(monitor.site_options_key(site))
    return DiscoveryOptions.model_validate_json(raw) if raw else DiscoveryOptions()


def seed_from_scans(client: redis.Redis, site: str, ttl_seconds: int) -> int:
    """A site with no known miners takes those of its latest finished scan (scans made before monitoring ran)."""
    store = ScanStore(client, ttl_seconds)
    for info in store.recent_scans(limit=200):
        if (info.site or monitor.DEFAULT_SITE) == site and info.status is not ScanStatus.RUNNING:
            miners = [MinerData.model_validate_json(raw) for raw in store.miners(info.scan_id).values()]
            monitor.ingest_inventory(client, site, miners, DiscoveryOptions.model_validate(info.options)
                                     .model_dump_json())
            return len(miners)
    return 0


def plan_round(settings: FleetSettings, site: str, now: float | None = None) -> dict[str, Any]:
    """Cuts the site's known miners into batches and queues them (skipped while the previous round runs)."""
    now = time.time() if now is None else now
    config = site_config(settings, site)
    interval = collect_interval(settings, config)
    batch_size = config.collect_batch_size if config is not None else 500
    client = _client(settings)
    try:
        if not client.scard(monitor.site_miners_key(site)):
            seed_from_scans(client, site, settings.result_ttl_seconds)
        round_id = f"{int(now)}-{uuid.uuid4().hex[:6]}"
        options = site_options(client, config, site)
        soft, hard = options.chunk_time_limits(batch_size)
        # a round that overruns makes the next one wait, not pile up; each batch done extends the lock, so only
        # a round that stopped making progress (its workers gone) is given up
        lock_seconds = interval * 1.5 + hard
        if not monitor.try_lock_round(client, site, round_id, lock_seconds):
            return {"site": site, "skipped": "the previous round still runs"}
        ips = monitor.site_ips(client, site)
        batches = [ips[i:i + batch_size] for i in range(0, len(ips), batch_size)]
        monitor.start_round(client, site, round_id, len(batches), len(ips), now)
        if not batches:
            _close(client, site, round_id)
            return {"site": site, "round": round_id, "batches": 0}
        for index, batch in enumerate(batches):
            kwargs = {"site": site, "round_id": round_id, "ips": batch, "options": options.model_dump(),
                      "lock_seconds": lock_seconds}
            # no expiry: a batch waits for its round's turn however long the round takes; a batch of a round
            # that was given up finds out when it starts (`is_current_round`) and reads nothing
            app.send_task(COLLECT_BATCH, kwargs=kwargs, queue=site_queue(site), soft_time_limit=soft,
                          time_limit=hard,
                          shadow=collect_display_name(site, round_id, index, len(batches), len(batch)),
                          kwargsrepr=repr({"site": site, "round_id": round_id, "miners": len(batch)}))
        return {"site": site, "round": round_id, "batches": len(batches), "miners": len(ips)}
    finally:
        client.close()


# A worker process keeps the handles it identified (per site options): the next rounds only read. A handle is
# identified again when a read through it fails or reads nothing, and after `HANDLE_MAX_AGE` (so capabilities
# follow a firmware upgrade). The handles' HTTP client follows each task's event loop (asicfleet.transport).
HANDLE_MAX_AGE = 3600.0
_HANDLES_MAX = 50_000
_factories: dict[str, MinerFactory] = {}
_handles: dict[tuple[str, str], tuple[Miner, float]] = {}


def _factory(settings: FleetSettings, options: DiscoveryOptions) -> tuple[str, MinerFactory]:
    key = f"{options.model_dump_json()}|{settings.secrets_file}"
    factory = _factories.get(key)
    if factory is None:
        factory = (MinerFactory()
                   .with_allow_public(options.allow_public)
                   .with_concurrent_limit(options.concurrency)
                   .with_connectivity_timeout_secs(options.connect_timeout)
                   .with_read_timeout_secs(options.read_timeout)
                   .with_identification_timeout_secs(options.identify_timeout)
                   .with_port_map(options.ports))
        apply_credentials(factory, settings.secrets_file)
        _factories[key] = factory
    return key, factory


def _read_nothing(data: MinerData) -> bool:
    """A reply that gave no figures at all: the handle may no longer fit what answers there."""
    return data.hashrate is None and not data.hashboards and bool(data.errors)


async def read_miners(factory: MinerFactory, ips: list[str], concurrency: int, deadline: float,
                      factory_key: str = "") -> list[tuple[str, MinerData | None, str]]:
    """(ip, data, error) for each IP: read through a kept handle, else identified and read, each attempt
    within `deadline` seconds."""
    gate = asyncio.Semaphore(max(1, concurrency))

    async def one(ip: str) -> tuple[str, MinerData | None, str]:
        async with gate:
            kept = _handles.get((factory_key, ip))
            if kept is not None and time.monotonic() - kept[1] < HANDLE_MAX_AGE:
                try:
                    async with asyncio.timeout(deadline):
                        data = await kept[0].get_data()
                    if not _read_nothing(data):
                        return ip, data, ""
                except Exception:  # identified afresh below, which says what is wrong
                    pass
            _handles.pop((factory_key, ip), None)
            try:
                async with asyncio.timeout(deadline):
                    miner = await factory.get_miner(ip)
                    if miner is None:
                        return ip, None, "no miner answers"
                    data = await miner.get_data()
                if len(_handles) < _HANDLES_MAX:
                    _handles[(factory_key, ip)] = (miner, time.monotonic())
                return ip, data, ""
            except TimeoutError:
                return ip, None, f"no reply within {deadline:g}s"
            except Exception as exc:  # one miner's failure is its own: the batch goes on
                return ip, None, mask_secrets(f"{type(exc).__name__}: {exc}")

    try:
        results = await asyncio.gather(*(one(ip) for ip in ips))
        # a read that ran out of time may have been spoiled by our own load (hundreds at once on a busy
        # machine): those are asked once more, a few at a time, before they count as offline
        late = [ip for ip, data, error in results if data is None and error.startswith("no reply within")]
        if late:
            gate = asyncio.Semaphore(max(1, concurrency // 8))
            again = {ip: (ip, data, error) for ip, data, error in await asyncio.gather(*(one(ip) for ip in late))}
            results = [again.get(ip, (ip, data, error)) for ip, data, error in results]
        return results
    finally:
        await factory.aclose()  # the sockets of this task's loop; handles reconnect on the next one


def collect(settings: FleetSettings, site: str, round_id: str, ips: list[str], options: DiscoveryOptions,
            lock_seconds: float | None = None) -> dict[str, Any]:
    started = time.monotonic()
    client = _client(settings)
    try:
        if not retry(lambda: monitor.is_current_round(client, site, round_id), url=settings.redis_url,
                     what="reading the site's round", budget=settings.redis_retry_seconds):
            return {"site": site, "round": round_id, "skipped": "the round was given up"}
    finally:
        client.close()
    key, factory = _factory(settings, options)
    deadline = options.identify_timeout + 4 * options.read_timeout + options.connect_timeout
    results = run_async(read_miners(factory, ips, min(options.concurrency, len(ips)), deadline, key))
    now = time.time()
    client = _client(settings)
    try:
        def write() -> None:
            pipe = client.pipeline(transaction=False)
            for ip, data, error in results:
                if data is not None:
                    monitor.queue_reading(pipe, site, data, now)
                else:
                    monitor.queue_offline(pipe, site, ip, now, error)
            pipe.execute()

        retry(write, url=settings.redis_url, what=f"writing a collection batch of site {site}",
              budget=settings.redis_retry_seconds)
        # the hour before this one is closed: its samples shrink to a third (once; later calls find nothing)
        retry(lambda: monitor.compact_history(client, ips, int(now // 3600) - 1), url=settings.redis_url,
              what="compacting the history of the hour before", budget=settings.redis_retry_seconds)
        online = sum(1 for _, data, _ in results if data is not None)
        if lock_seconds is not None:
            retry(lambda: monitor.refresh_round_lock(client, site, round_id, lock_seconds), url=settings.redis_url,
                  what="extending the round's lock", budget=settings.redis_retry_seconds)
        closes = retry(lambda: monitor.finish_batch(client, site, round_id), url=settings.redis_url,
                       what="counting a collection batch done", budget=settings.redis_retry_seconds)
        if closes:
            _close(client, site, round_id)
        return {"site": site, "round": round_id, "miners": len(ips), "online": online,
                "seconds": round(time.monotonic() - started, 3), "closed_round": closes}
    finally:
        client.close()


def _close(client: redis.Redis, site: str, round_id: str) -> None:
    _, states = monitor.close_round(client, site, round_id, time.time())
    for hook in list(monitor.after_collection):
        try:
            hook(client, site, states)
        except Exception:  # a hook's failure is its own: the others still run, the round stays recorded
            logger.exception("after-collection hook %r failed for site %s", hook, site)


@app.task(name=COLLECT_SITE, acks_late=True)
def collect_site(site: str) -> dict[str, Any]:
    """Plans one collection round of `site` (from Celery beat, on the site's queue)."""
    return plan_round(get_settings(), site)


@app.task(bind=True, name=COLLECT_BATCH, acks_late=True)
def collect_batch(self: Task, site: str, round_id: str, ips: list[str], options: dict[str, Any],
                  lock_seconds: float | None = None) -> dict[str, Any]:
    """Reads a batch of the site's known miners and records their state and history."""
    return collect(get_settings(), site, round_id, ips, DiscoveryOptions.model_validate(options), lock_seconds)
