"""JSON logs for the services: one object per line, with the scan, chunk, IP and worker a record is about.

`ASICFLEET_LOG_FORMAT=json` (or `asicfleet workers --log-format json`) switches a process to it. The context
(`scan_id`, `chunk`, `rollout_id`, `batch`, `worker`) is set once per task (workers/logs.py) and added to
every record logged while the task runs; a record's own `extra={"ip": ...}` adds to it. Credentials never
appear: passwords in URLs are masked, and any field whose name says secret is dropped to `"***"`.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any

import orjson

from fleet.resilience import mask_secrets

LOG_FORMAT_ENV = "ASICFLEET_LOG_FORMAT"
CONTEXT_FIELDS = ("scan_id", "chunk", "rollout_id", "batch", "site", "worker", "ip", "task_id", "task")
_SECRET_WORDS = ("password", "passwd", "secret", "token", "credential", "authorization")

_EMPTY: Mapping[str, Any] = MappingProxyType({})
_context: contextvars.ContextVar[Mapping[str, Any]] = contextvars.ContextVar("asicfleet_log_context",
                                                                            default=_EMPTY)


def bind(**fields: Any) -> contextvars.Token[Mapping[str, Any]]:
    """Adds fields to the context of every record logged from here on (in this thread or task)."""
    return _context.set({**_context.get(), **{k: v for k, v in fields.items() if v is not None}})


def unbind(token: contextvars.Token[Mapping[str, Any]]) -> None:
    _context.reset(token)


def clear() -> None:
    _context.set(_EMPTY)


@contextmanager
def bound(**fields: Any) -> Iterator[None]:
    token = bind(**fields)
    try:
        yield
    finally:
        unbind(token)


def _secret(name: str) -> bool:
    lowered = name.lower()
    return any(word in lowered for word in _SECRET_WORDS)


def _clean(value: Any) -> Any:
    if isinstance(value, str):
        return mask_secrets(value)
    if isinstance(value, int | float | bool) or value is None:
        return value
    return mask_secrets(str(value))


class JsonFormatter(logging.Formatter):
    """`{"ts": ..., "level": ..., "logger": ..., "message": ..., "scan_id": ..., "chunk": ..., "ip": ...}`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": mask_secrets(record.getMessage()),
            "pid": record.process,
        }
        for name, value in _context.get().items():
            entry[name] = "***" if _secret(name) else _clean(value)
        for name in CONTEXT_FIELDS:  # the record's own extra= wins over the task's context
            if name in record.__dict__:
                entry[name] = _clean(record.__dict__[name])
        for name in record.__dict__:
            if _secret(name):
                entry[name] = "***"
        if record.exc_info:
            entry["exception"] = mask_secrets("".join(traceback.format_exception(*record.exc_info)).rstrip())
        return orjson.dumps(entry, default=str).decode()


def json_logging_requested() -> bool:
    return os.environ.get(LOG_FORMAT_ENV, "text").strip().lower() == "json"


def configure_json_logging(level: int | str = logging.INFO) -> None:
    """Every record of the process (root logger) as one JSON line on stderr."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(level if isinstance(level, int) else level.upper())
