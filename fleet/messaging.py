"""The Celery app both sides share: JSON only, late acks, the default queue, and the task names.

The orchestrator (and the scans and rollouts it drives) sends tasks by name on an app made here;
the workers make theirs here too and register the task bodies (`workers.app`). Neither side
imports the other.
"""

from __future__ import annotations

from collections.abc import Sequence

from celery import Celery
from kombu.entity import Queue

from fleet.settings import FleetSettings
from fleet.sites import DEFAULT_QUEUE

SCAN_CHUNK = "asicfleet.scan_chunk"
APPLY_BATCH = "asicfleet.apply_batch"
SCHEDULED_SCAN = "asicfleet.scheduled_scan"
REAP = "asicfleet.reap_scans"


def create_app(settings: FleetSettings, *, include: Sequence[str] = ()) -> Celery:
    """The `asicfleet` Celery app on the configured broker; `include` names the modules with task bodies."""
    app = Celery("asicfleet", broker=settings.broker, include=list(include))
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
