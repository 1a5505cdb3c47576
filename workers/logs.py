"""JSON logs for the workers (`ASICFLEET_LOG_FORMAT=json`, or `asicfleet workers --log-format json`).

Celery then leaves logging to us (`setup_logging` has a receiver), and every record a task logs carries the
task's scan id and chunk (or rollout id and batch), site and worker (fleet/logs.py); credentials never
reach a record: task messages carry none, and URLs are masked.
"""

from __future__ import annotations

from typing import Any

from celery import signals

from fleet import logs


@signals.setup_logging.connect
def _setup_logging(loglevel: Any = None, **_: Any) -> None:
    """Connected only when JSON is asked for: otherwise Celery configures its usual text logs."""
    logs.configure_json_logging(loglevel or "INFO")


if not logs.json_logging_requested():
    signals.setup_logging.disconnect(_setup_logging)


_CONTEXT_KWARGS = ("scan_id", "chunk", "rollout_id", "batch", "site")


@signals.task_prerun.connect
def _bind_task(task_id: str | None = None, task: Any = None, kwargs: dict[str, Any] | None = None,
               **_: Any) -> None:
    fields = {name: (kwargs or {}).get(name) for name in _CONTEXT_KWARGS}
    request = getattr(task, "request", None)
    logs.clear()
    logs.bind(task=getattr(task, "name", None), task_id=task_id, worker=getattr(request, "hostname", None),
              **fields)


@signals.task_postrun.connect
def _unbind_task(**_: Any) -> None:
    logs.clear()
