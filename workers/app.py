"""The workers' Celery app: the shared app (`fleet.messaging`) with the task bodies, the beat schedule,
and a liveness heartbeat per worker.

Start a worker with `asicfleet workers [--site S] [--concurrency N]` (it runs `celery -A workers.app worker`).
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from typing import Any

import redis
from celery import Celery, signals
from celery.schedules import crontab

from fleet.lease import CLAIM, holder
from fleet.ledger import BATCH_FINAL_STATES, batch_key
from fleet.messaging import APPLY_BATCH, COLLECT_SITE, REAP, SCAN_CHUNK, SCHEDULED_SCAN, create_app
from fleet.resilience import RedisUnavailable, mask_secrets, retry
from fleet.rules import CHECK_SITES
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DEFAULT_QUEUE, load_sites, site_queue
from fleet.store import PREFIX, ChunkState, chunk_key, worker_key, workers_key
from workers import logs, metrics  # noqa: F401 - the workers' metrics and JSON logs hang on Celery's signals
from workers.reaping import Reaper

logger = logging.getLogger(__name__)


def beat_schedule(settings: FleetSettings) -> dict[str, dict[str, Any]]:
    """One scan entry per site with a scan schedule, one collection entry per site that collects (on the site's
    queue: its own workers plan and read the round), plus the reaper that re-queues chunks of dead workers."""
    schedule: dict[str, dict[str, Any]] = {
        "reap-scans": {"task": REAP, "schedule": max(5.0, settings.worker_liveness_seconds), "options": {
            "queue": DEFAULT_QUEUE, "expires": 60}},
    }
    if settings.rules_file is not None or settings.sites_file is not None:  # site events between rounds
        schedule["rules-check-sites"] = {"task": CHECK_SITES, "schedule": 60.0,
                                         "options": {"queue": DEFAULT_QUEUE, "expires": 60}}
    if settings.sites_file is None:
        return schedule
    for name, site in load_sites(settings.sites_file).sites.items():
        if site.collect_every_minutes is not None:
            interval = settings.collect_interval_seconds or site.collect_every_minutes * 60
            schedule[f"collect-{name}"] = {"task": COLLECT_SITE, "schedule": interval, "kwargs": {"site": name},
                                           "options": {"queue": site_queue(name), "expires": interval}}
        if site.every_minutes is not None:
            every: Any = site.every_minutes * 60
        elif site.cron is not None:
            minute, hour, day, month, weekday = site.cron.split()
            every = crontab(minute=minute, hour=hour, day_of_month=day, month_of_year=month, day_of_week=weekday)
        else:
            continue
        # the scan is planned by a worker of the default queue; its chunks go to the site's queue
        schedule[f"scan-{name}"] = {"task": SCHEDULED_SCAN, "schedule": every, "kwargs": {"site": name},
                                    "options": {"queue": DEFAULT_QUEUE, "expires": 300}}
    return schedule


def create_worker_app(settings: FleetSettings) -> Celery:
    """The shared app (`fleet.messaging`) with this package's task bodies and the beat schedule."""
    app = create_app(settings, include=["workers.tasks", "workers.rollout_tasks", "workers.monitor_tasks",
                                        "workers.rule_tasks"])
    app.conf.beat_schedule = beat_schedule(settings)
    return app


app = create_worker_app(get_settings())


# ----- liveness: the orchestrator re-queues the chunks of a worker whose heartbeat stops ------------
_heartbeat_stop = threading.Event()


def _heartbeat(hostname: str, queues: str, settings: FleetSettings) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    ttl = int(max(2, settings.worker_liveness_seconds))
    while not _heartbeat_stop.is_set():
        with contextlib.suppress(redis.RedisError):
            beat = client.pipeline(transaction=False)
            beat.set(worker_key(hostname), queues, ex=ttl)
            beat.sadd(workers_key(), hostname)  # the index readers look up live workers by
            beat.execute()
        _heartbeat_stop.wait(ttl / 4)
    with contextlib.suppress(redis.RedisError):
        client.delete(worker_key(hostname))
        client.srem(workers_key(), hostname)


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    if hostname:
        _heartbeat_stop.clear()
        # the queues it consumes: a watcher tells "no worker serves this scan's queue" from "workers are busy"
        queues = " ".join(sorted(app.amqp.queues.consume_from)) or "alive"
        threading.Thread(target=_heartbeat, args=(hostname, queues, get_settings()), daemon=True,
                         name="asicfleet-heartbeat").start()
        threading.Thread(target=_reaper, args=(get_settings(),), daemon=True, name="asicfleet-reaper").start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()


def _reserved_key(name: str | None, kwargs: dict[str, Any]) -> tuple[str, str] | None:
    """The Redis hash that records which attempt holds this task's work (a scan chunk, a rollout batch), and
    the states in which that work is finished (a delivery then changes nothing)."""
    if name == SCAN_CHUNK:
        return chunk_key(kwargs["scan_id"], kwargs["chunk"]), f"{ChunkState.DONE.value} {ChunkState.FAILED.value}"
    if name == APPLY_BATCH:
        return batch_key(kwargs["rollout_id"], kwargs["batch"]), BATCH_FINAL_STATES
    return None


@signals.task_received.connect
def _mark_reserved(sender: Any = None, request: Any = None, **_: Any) -> None:
    """Marks the work as taken by this worker (with a lease) the moment its message arrives, before it runs,
    so that a worker killed while holding prefetched work is noticed; finished work is never marked back."""
    if request is None:
        return
    hostname = str(getattr(request, "hostname", None) or getattr(sender, "hostname", ""))
    try:
        # `type` is the registered task name; `name` is the display (shadow) name the sender gave
        target = _reserved_key(getattr(request, "type", None) or getattr(request, "name", None), request.kwargs or {})
    except KeyError:
        return
    if target is None:
        return
    key, final = target
    settings = get_settings()
    client = _reserving_client(settings.redis_url)
    try:
        retry(lambda: client.eval(CLAIM, 1, key, holder(str(request.id), hostname), hostname,
                                  settings.lease_seconds, ChunkState.RESERVED.value, final),
              url=settings.redis_url, what="marking a task reserved", budget=settings.redis_retry_seconds)
    except RedisUnavailable as exc:  # the task itself claims its work when it starts
        logger.warning("%s", exc)


_reserving_clients: dict[tuple[int, str], redis.Redis] = {}


def _reserving_client(url: str) -> redis.Redis:
    """The client `_mark_reserved` uses, kept for the process (a connection per message cost more than the mark);
    its pool reconnects by itself after Redis restarts."""
    key = (os.getpid(), url)
    client = _reserving_clients.get(key)
    if client is None:
        client = redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=5)
        _reserving_clients[key] = client
    return client


# ----- the reaper: no beat needed. Every worker runs one; a lock in Redis lets one act at a time ---------
_REAPER_LOCK = f"{PREFIX}:reaper"


def _reaper(settings: FleetSettings) -> None:
    every = max(1.0, settings.worker_liveness_seconds / 3)
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=5)
    reaper = Reaper(settings, app)
    failing = False
    while not _heartbeat_stop.wait(every):
        try:
            if not client.set(_REAPER_LOCK, "1", nx=True, px=int(every * 900)):
                continue  # another worker reaps this round
            reaper.reap()
            if failing:
                logger.warning("reaping works again")
            failing = False
        except Exception as exc:  # the reaper must outlive anything one round meets (Redis away, a bad record)
            reaper.outage()
            if not failing:  # once per outage, not every round
                logger.warning("reaping failed (%s); trying again every %.0f s", mask_secrets(str(exc)), every)
            failing = True
