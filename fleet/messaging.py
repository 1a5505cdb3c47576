"""The Celery app both sides share: JSON only, late acks, the default queue, and the task names.

The orchestrator (and the scans and rollouts it drives) sends tasks by name on an app made here;
the workers make theirs here too and register the task bodies (`workers.app`). Neither side
imports the other.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import redis
from celery import Celery
from celery.app.amqp import AMQP
from kombu.entity import Queue

from fleet.settings import FleetSettings
from fleet.sites import DEFAULT_QUEUE

SCAN_CHUNK = "asicfleet.scan_chunk"
APPLY_BATCH = "asicfleet.apply_batch"
SCHEDULED_SCAN = "asicfleet.scheduled_scan"
REAP = "asicfleet.reap_scans"
COLLECT_SITE = "asicfleet.monitor.collect_site"  # plans one collection round of a site (fleet.monitor)
COLLECT_BATCH = "asicfleet.monitor.collect_batch"  # reads a batch of a site's known miners

_DESCRIBE_MAX = 60  # characters of a control's description kept in a task's display name


def chunk_display_name(scan_id: str, chunk: int, total: int, label: str, site: str | None) -> str:
    """What Flower (and the worker's log) calls a chunk task (Celery's `shadow` name), e.g.
    `scan 20261202T024117-52532d chunk 11/16 10.1.11.0/24 site east`; the number before the slash is the
    chunk's index (from 0, as in its Redis key), the one after it the scan's chunk count."""
    return f"scan {scan_id} chunk {chunk}/{total} {label} site {site or 'default'}"


def batch_display_name(rollout_id: str, control: str, batch: int, total: int, miners: int) -> str:
    """What Flower calls a rollout batch task, e.g. `rollout r20261202T... fault light on batch 4/6 (10 miners)`."""
    if len(control) > _DESCRIBE_MAX:
        control = control[: _DESCRIBE_MAX - 1] + "…"
    return f"rollout {rollout_id} {control} batch {batch}/{total} ({miners} miner{'s' if miners != 1 else ''})"


def collect_display_name(site: str, round_id: str, batch: int, total: int, miners: int) -> str:
    """What Flower calls a collection batch, e.g. `collect site east round 1764770000 batch 3/20 (500 miners)`."""
    return f"collect site {site} round {round_id} batch {batch}/{total} ({miners} miner{'s' if miners != 1 else ''})"


def task_type_of(display_name: str) -> str | None:
    """The registered task name behind a display name made above (None for any other name)."""
    if display_name.startswith("scan ") and " chunk " in display_name:
        return SCAN_CHUNK
    if display_name.startswith("rollout ") and " batch " in display_name:
        return APPLY_BATCH
    if display_name.startswith("collect site ") and " batch " in display_name:
        return COLLECT_BATCH
    return None


class DisplayNameAMQP(AMQP):  # type: ignore[misc]
    """Celery's message factory, with the task-sent event naming a task by its display (shadow) name as the
    worker's task-received event does, so Flower lists a queued chunk or batch by what it is, not by
    `asicfleet.scan_chunk` until a worker takes it."""

    def as_task_v2(self, task_id: str, name: str, *args: Any, **kwargs: Any) -> Any:
        message = super().as_task_v2(task_id, name, *args, **kwargs)
        shadow = message.headers.get("shadow")
        if shadow and message.sent_event is not None:
            message.sent_event["name"] = shadow
        return message


def create_app(settings: FleetSettings, *, include: Sequence[str] = ()) -> Celery:
    """The `asicfleet` Celery app on the configured broker; `include` names the modules with task bodies."""
    app = Celery("asicfleet", broker=settings.broker, include=list(include), amqp=DisplayNameAMQP)
    app.conf.update(
        task_serializer="json", accept_content=["json"], result_serializer="json", event_serializer="json",
        task_ignore_result=True,  # results live in Redis in the documented shape, not in the backend
        task_acks_late=True, task_reject_on_worker_lost=True, worker_prefetch_multiplier=1,
        task_default_queue=DEFAULT_QUEUE, task_queues=[Queue(DEFAULT_QUEUE)],  # type: ignore[no-untyped-call]
        worker_send_task_events=True, task_send_sent_event=True, task_track_started=True,
        broker_connection_retry_on_startup=True, worker_hijack_root_logger=False,
        broker_transport_options={"visibility_timeout": 3600}, timezone="UTC",
        # a task goes on through a broker outage (its Redis writes retry); if its ack is lost with the old
        # connection, the redelivery finds the work finished or held (fleet.lease) and does nothing
        worker_cancel_long_running_tasks_on_connection_loss=False,
    )
    return app


# kombu's Redis transport keeps a queue's ready messages in a list of the queue's name, and those sent
# with a priority in lists named queue + this separator + the priority step
_PRIORITY_SEPARATOR = "\x06\x16"
_PRIORITY_STEPS = (3, 6, 9)
WAITING_SCAN_LIMIT = 5000  # a longer queue is not read through: its work is flowing anyway


class BrokerQueue:
    """What still waits in a queue of a Redis broker: the ids of its ready messages.

    With the Redis transport a message a worker took leaves the ready list for kombu's `unacked` hash; a
    worker that lost its broker connection before it started the task drops it, and kombu gives it back
    only after the visibility timeout (an hour). Whoever knows which messages should exist (the reaper,
    from the scan's record) can tell such a lost message from one still waiting. Other brokers (RabbitMQ)
    hand an unacked message back as soon as its consumer's connection drops: nothing to look at there.
    """

    def __init__(self, broker_url: str) -> None:
        self.client: redis.Redis | None = None
        if broker_url.startswith(("redis://", "rediss://", "unix://")):
            self.client = redis.Redis.from_url(broker_url, socket_connect_timeout=5, socket_timeout=10)

    def waiting_task_ids(self, queue: str, expected: int, limit: int = WAITING_SCAN_LIMIT) -> set[str] | None:
        """Task ids of the messages waiting in `queue`, read only when fewer than `expected` messages wait
        (so at least one expected message is gone: one LLEN per call while work flows); None when nothing
        can be missing, or it cannot be known cheaply (not a Redis broker, more than `limit` waiting)."""
        if self.client is None:
            return None
        lists = [queue, *(f"{queue}{_PRIORITY_SEPARATOR}{step}" for step in _PRIORITY_STEPS)]
        pipe = self.client.pipeline(transaction=False)
        for name in lists:
            pipe.llen(name)
        waiting = sum(int(n) for n in pipe.execute())
        if waiting >= expected or waiting > limit:
            return None
        ids: set[str] = set()
        for name in lists:
            for raw in self.client.lrange(name, 0, -1):
                try:
                    ids.add(str(json.loads(raw)["headers"]["id"]))
                except (ValueError, KeyError, TypeError):
                    continue  # not a Celery message of ours: nothing to match
        return ids

    def close(self) -> None:
        if self.client is not None:
            self.client.close()
