"""The workers' own Prometheus metrics: scans, chunks, addresses, miners, errors, task durations, rollout steps
and Redis retries, served on `/metrics` by the worker's main process.

Start with `asicfleet workers --metrics-port 9100` (or a plain `celery -A workers.app worker` with
`ASICFLEET_WORKER_METRICS_PORT` set): the `worker_init` signal starts the HTTP server. Tasks run in the
prefork pool's child processes, so every process writes its counts to prometheus-client's multiprocess
directory (`PROMETHEUS_MULTIPROC_DIR`, made here when unset; one per worker: a starting worker empties it)
and the server adds them up on each scrape.
Counts are taken when a task ends (a chunk's addresses, miners and errors come from its result).

The fleet's per-miner gauges are another exporter's (`asicfleet exporter`); these are the services' own.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import time
from pathlib import Path
from typing import Any

from celery import signals

from fleet import resilience
from fleet.messaging import APPLY_BATCH, SCAN_CHUNK, SCHEDULED_SCAN

METRICS_PORT_ENV = "ASICFLEET_WORKER_METRICS_PORT"
METRICS_ADDRESS_ENV = "ASICFLEET_WORKER_METRICS_ADDRESS"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"

# prometheus-client picks its multiprocess mode when it is first imported: the directory must be known first
if os.environ.get(METRICS_PORT_ENV) and not os.environ.get(MULTIPROC_ENV):
    os.environ[MULTIPROC_ENV] = tempfile.mkdtemp(prefix="asicfleet-metrics-")
if os.environ.get(MULTIPROC_ENV):
    Path(os.environ[MULTIPROC_ENV]).mkdir(parents=True, exist_ok=True)

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, multiprocess, start_http_server  # noqa: E402

logger = logging.getLogger(__name__)

# a /24 chunk takes seconds to about two minutes; a firmware batch up to about twenty minutes
_DURATION_BUCKETS = (0.5, 1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, float("inf"))

SCANS_STARTED = Counter("asicfleet_scans_started_total", "Scans planned and queued by this service", ["origin"])
SCANS_FINISHED = Counter("asicfleet_scans_finished_total", "Scans closed by this service, by final status",
                         ["status"])
CHUNKS = Counter("asicfleet_chunks_total", "Chunk tasks ended, by state (done, failed, skipped: a duplicate "
                                           "delivery or a chunk another attempt holds)", ["state"])
ADDRESSES_PROBED = Counter("asicfleet_addresses_probed_total", "Addresses probed by finished chunks")
MINERS_FOUND = Counter("asicfleet_miners_found_total", "Miners found and read by finished chunks")
ERRORS = Counter("asicfleet_errors_total", "Errors by kind: host (a host that answered badly), undecided, or the "
                                           "exception class of a failed task", ["kind"])
TASKS = Counter("asicfleet_tasks_total", "Tasks ended, by registered name and Celery state", ["task", "state"])
TASK_SECONDS = Histogram("asicfleet_task_duration_seconds", "Task run time, by registered name", ["task"],
                         buckets=_DURATION_BUCKETS)
TASKS_RUNNING = Gauge("asicfleet_tasks_running", "Tasks running now", ["task"], multiprocess_mode="livesum")
ROLLOUT_STEPS = Counter("asicfleet_rollout_steps_total", "Rollout ledger steps taken per miner (intent, sent, "
                                                         "verified, failed, unverified, skipped, pending)", ["state"])
REDIS_RETRIES = Counter("asicfleet_redis_retries_total", "Redis calls retried after a transient error, by error",
                        ["error"])
REDIS_GAVE_UP = Counter("asicfleet_redis_gave_up_total", "Redis calls abandoned after the retry budget")


resilience.observe_retries(lambda error: REDIS_RETRIES.labels(error=error).inc(), REDIS_GAVE_UP.inc)


def rollout_step(state: str) -> None:
    ROLLOUT_STEPS.labels(state=state).inc()


def scan_closed(status: str | None) -> None:
    if status:
        SCANS_FINISHED.labels(status=status).inc()


def count_task(name: str, state: str, retval: Any) -> None:
    """A task's outcome in the counters; a chunk's or batch's result dict carries its counts."""
    TASKS.labels(task=name, state=state.lower()).inc()
    if state == "FAILURE":
        ERRORS.labels(kind=type(retval).__name__ if isinstance(retval, BaseException) else "unknown").inc()
        if name == SCAN_CHUNK:
            CHUNKS.labels(state="failed").inc()
        return
    if state != "SUCCESS":
        return
    if name == SCAN_CHUNK and isinstance(retval, dict):
        if "skipped" in retval:
            CHUNKS.labels(state="skipped").inc()
            return
        CHUNKS.labels(state="done").inc()
        ADDRESSES_PROBED.inc(int(retval.get("probed", 0)))
        MINERS_FOUND.inc(int(retval.get("found", 0)))
        undecided = int(retval.get("undecided", 0))
        host_errors = int(retval.get("errors", 0)) - undecided  # a chunk's errors count its undecided too
        if host_errors > 0:
            ERRORS.labels(kind="host").inc(host_errors)
        if undecided > 0:
            ERRORS.labels(kind="undecided").inc(undecided)
    elif name == SCHEDULED_SCAN:
        SCANS_STARTED.labels(origin="schedule").inc()


_started: dict[str, tuple[str, float]] = {}  # task id -> (name, monotonic start), in the process running it


@signals.task_prerun.connect
def _task_started(task_id: str | None = None, task: Any = None, **_: Any) -> None:
    name = str(getattr(task, "name", "unknown"))
    if task_id:
        _started[task_id] = (name, time.monotonic())
    TASKS_RUNNING.labels(task=name).inc()


@signals.task_postrun.connect
def _task_ended(task_id: str | None = None, task: Any = None, retval: Any = None, state: str | None = None,
                **_: Any) -> None:
    name = str(getattr(task, "name", "unknown"))
    began = _started.pop(task_id or "", None)
    if began is not None:
        TASK_SECONDS.labels(task=began[0]).observe(time.monotonic() - began[1])
    TASKS_RUNNING.labels(task=name).dec()
    try:
        count_task(name, state or "UNKNOWN", retval)
    except (TypeError, ValueError):  # a result of an unexpected shape must not fail the task
        logger.warning("could not count the result of task %s", name)


@signals.task_rejected.connect
def _task_rejected(**_: Any) -> None:
    TASKS.labels(task="unknown", state="rejected").inc()


def _known_tasks() -> tuple[str, ...]:
    return SCAN_CHUNK, APPLY_BATCH, SCHEDULED_SCAN


def metrics_registry() -> CollectorRegistry:
    """All processes' counts added up (the multiprocess directory), as one registry to serve."""
    registry = CollectorRegistry()
    multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    return registry


@signals.worker_init.connect
def _serve_metrics(**_: Any) -> None:
    """In the worker's main process, before the pool starts: a fresh multiprocess directory, then the server."""
    port = os.environ.get(METRICS_PORT_ENV)
    if not port:
        return
    directory = Path(os.environ[MULTIPROC_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    for stale in directory.glob("*.db"):  # counts of an earlier run of this worker are not this run's
        if not stale.name.endswith(f"_{os.getpid()}.db"):
            with contextlib.suppress(OSError):
                stale.unlink()
    for name in _known_tasks():  # every task type shows (at 0) from the first scrape on
        TASKS_RUNNING.labels(task=name)
        TASK_SECONDS.labels(task=name)
    for state in ("done", "failed", "skipped"):
        CHUNKS.labels(state=state)
    address = os.environ.get(METRICS_ADDRESS_ENV, "127.0.0.1")
    start_http_server(int(port), addr=address, registry=metrics_registry())
    logger.info("metrics on http://%s:%s/metrics", address, port)


@signals.worker_process_shutdown.connect
def _child_gone(pid: int | None = None, **_: Any) -> None:
    """A pool process that ends takes its live gauges with it (its counters stay counted)."""
    if os.environ.get(MULTIPROC_ENV):
        with contextlib.suppress(OSError):
            multiprocess.mark_process_dead(pid or os.getpid())  # type: ignore[no-untyped-call]
