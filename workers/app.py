"""The workers' Celery app: the shared app (`fleet.messaging`) with the task bodies, the beat schedule,
and a liveness heartbeat per worker.

Start a worker with `asicfleet workers [--site S] [--concurrency N]` (it runs `celery -A workers.app worker`).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import redis
from celery import Celery, signals
from celery.schedules import crontab

from fleet.ledger import batch_key
from fleet.messaging import APPLY_BATCH, REAP, SCAN_CHUNK, SCHEDULED_SCAN, create_app
from fleet.settings import FleetSettings, get_settings
from fleet.sites import DEFAULT_QUEUE, load_sites
from fleet.store import ChunkState, chunk_key, worker_key


def beat_schedule(settings: FleetSettings) -> dict[str, dict[str, Any]]:
    """One entry per site with a schedule, plus the reaper that re-queues chunks of dead workers."""
    schedule: dict[str, dict[str, Any]] = {
        "reap-scans": {"task": REAP, "schedule": max(5.0, settings.worker_liveness_seconds), "options": {
            "queue": DEFAULT_QUEUE, "expires": 60}},
    }
    if settings.sites_file is None:
        return schedule
    for name, site in load_sites(settings.sites_file).sites.items():
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
    app = create_app(settings, include=["workers.tasks", "workers.rollout_tasks"])
    app.conf.beat_schedule = beat_schedule(settings)
    return app


app = create_worker_app(get_settings())


# ----- liveness: the orchestrator re-queues the chunks of a worker whose heartbeat stops ------------
_heartbeat_stop = threading.Event()


def _heartbeat(hostname: str, settings: FleetSettings) -> None:
    client = redis.Redis.from_url(settings.redis_url, socket_connect_timeout=2, socket_timeout=2)
    ttl = int(max(2, settings.worker_liveness_seconds))
    while not _heartbeat_stop.is_set():
        with contextlib.suppress(redis.RedisError):
            client.set(worker_key(hostname), "alive", ex=ttl)
        _heartbeat_stop.wait(ttl / 4)
    with contextlib.suppress(redis.RedisError):
        client.delete(worker_key(hostname))


@signals.worker_ready.connect
def _start_heartbeat(sender: Any = None, **_: Any) -> None:
    hostname = getattr(sender, "hostname", None)
    if hostname:
        _heartbeat_stop.clear()
        threading.Thread(target=_heartbeat, args=(hostname, get_settings()), daemon=True,
                         name="asicfleet-heartbeat").start()


@signals.worker_shutdown.connect
def _stop_heartbeat(**_: Any) -> None:
    _heartbeat_stop.set()


# Marks a chunk as taken by this worker the moment its message arrives (before it runs), so a worker
# killed while holding prefetched chunks is noticed; a finished chunk is never marked back.
_RESERVE = """
local state = redis.call('HGET', KEYS[1], 'state')
if state and state ~= 'done' then
  redis.call('HSET', KEYS[1], 'state', ARGV[1], 'worker', ARGV[2])
  return 1
end
return 0
"""


def _reserved_key(name: str | None, kwargs: dict[str, Any]) -> str | None:
    """The Redis hash that records which worker holds this task's work (a scan chunk, a rollout batch)."""
    if name == SCAN_CHUNK:
        return chunk_key(kwargs["scan_id"], kwargs["chunk"])
    if name == APPLY_BATCH:
        return batch_key(kwargs["rollout_id"], kwargs["batch"])
    return None


@signals.task_received.connect
def _mark_reserved(sender: Any = None, request: Any = None, **_: Any) -> None:
    if request is None:
        return
    hostname = str(getattr(request, "hostname", None) or getattr(sender, "hostname", ""))
    with contextlib.suppress(redis.RedisError, KeyError):
        # `type` is the registered task name; `name` is the display (shadow) name the sender gave
        key = _reserved_key(getattr(request, "type", None) or getattr(request, "name", None), request.kwargs or {})
        if key is None:
            return
        client = redis.Redis.from_url(get_settings().redis_url, socket_connect_timeout=2, socket_timeout=2)
        with contextlib.closing(client):
            client.eval(_RESERVE, 1, key, ChunkState.RESERVED.value, hostname)
