"""`asicfleet flower`: Flower on the fleet's Celery app, configured here and nowhere else.

Flower's own start-up reads a `flowerconfig.py` from the working directory and every `FLOWER_*` environment
variable, and splits list options (`basic_auth`) on commas, so a password with a comma became two credentials
(one of them possibly empty, which an empty `Authorization: Basic` header matched). This module builds the
Flower application itself instead: the options are set as Python values (the one `user:password` credential
is never split), no config file is read, `FLOWER_*` variables are dropped from this process, and:

- worker and task control (shutdown, pool grow/shrink/restart, consumers, revoke, rate limits, sending tasks)
  is refused (Flower's read-only mode, 403) unless `allow_control`;
- `/metrics` needs the same login as the rest; `/healthcheck` answers `OK` without one (a probe for
  container runtimes; it tells nothing about the fleet);
- the task history is kept in a file (`db`) so a restart of Flower does not lose it;
- a chunk or rollout batch whose result says `outcome: warning` (hosts that answered badly, miners that
  failed) is shown in the state WARNING instead of a green SUCCESS, and the list shows each result's summary.
"""

from __future__ import annotations

import atexit
import copy
import logging
import os
import signal
import sys
import unicodedata
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

from flower.app import Flower
from flower.events import Events
from flower.options import options
from flower.urls import settings as tornado_settings
from flower.views.monitor import Metrics
from tornado import ioloop, web

from fleet.messaging import create_app, task_type_of
from fleet.settings import FleetSettings
from fleet.task_results import WARNING, outcome_of, summary_of

# name, state, the result's summary, when it arrived, how long it ran, where; the uuid opens the task's page
TASK_COLUMNS = "name,state,result,received,runtime,worker,uuid"
WARNING_STATE = "WARNING"
STATE_SAVE_MILLISECONDS = 30_000  # the history file is rewritten this often (and on a clean stop)
LOCAL_CONFIG = "flowerconfig.py"

log = logging.getLogger("asicfleet.flower")


class FlowerConfigError(ValueError):
    """Settings `asicfleet flower` refuses before starting anything; the message says what to change."""


def default_history_file() -> Path:
    """`$XDG_DATA_HOME/asicfleet/flower.db` (`~/.local/share/asicfleet/flower.db` when unset)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "asicfleet" / "flower.db"


def _unprintable(text: str) -> bool:
    return any(unicodedata.category(ch).startswith("C") for ch in text)


def check_credentials(user: str, password: str) -> str:
    """The one `user:password` Flower compares the decoded `Authorization: Basic` value with.

    Commas and colons in the password are fine (the credential is compared whole, never split); a user name
    with a colon is refused because a client cannot send it unambiguously (RFC 7617), as are empty values and
    control characters, which no browser login dialog can type.
    """
    if not user:
        raise FlowerConfigError("ASICFLEET_FLOWER_USER is empty: Flower needs a user name")
    if ":" in user:
        raise FlowerConfigError("ASICFLEET_FLOWER_USER must not contain ':' (basic auth separates user and "
                                "password with the first colon)")
    if not password:
        raise FlowerConfigError("the Flower password is empty: set ASICFLEET_FLOWER_PASSWORD, or unset it for a "
                                "random one")
    for what, value in (("ASICFLEET_FLOWER_USER", user), ("ASICFLEET_FLOWER_PASSWORD", password)):
        if _unprintable(value):
            raise FlowerConfigError(f"{what} contains a control or unprintable character")
    return f"{user}:{password}"


@dataclass(frozen=True)
class FlowerConfig:
    user: str
    password: str
    port: int = 5555
    address: str = "127.0.0.1"
    history: Path | None = None  # None: history only in memory
    allow_control: bool = False
    max_tasks: int = 100_000

    @property
    def credential(self) -> str:
        return check_credentials(self.user, self.password)


def format_for_list(task: Any) -> Any:
    """Flower's `format_task` hook (the tasks list and a task's page, not `/api/tasks`): the result's
    one-line summary instead of the whole dict."""
    summary = summary_of(getattr(task, "result", None))
    if summary is not None:
        task = copy.copy(task)
        task.result = summary
    return task


def _refuse_local_overrides() -> list[str]:
    """Drops `FLOWER_*` variables from this process (Flower reads some at request time, e.g.
    FLOWER_UNAUTHENTICATED_API) and says which were ignored."""
    ignored = sorted(name for name in os.environ if name.startswith("FLOWER_"))
    for name in ignored:
        del os.environ[name]
    return ignored


class TaskTypeMetrics:
    """Flower's Prometheus metrics labelled by task type (`asicfleet.scan_chunk`), not by each task's display
    name: one series per chunk or batch would grow without bound."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner

    def observe_task(self, worker: str, event: dict[str, Any], task: Any) -> None:
        name = event.get("name") or getattr(task, "name", None) or ""
        self.inner.observe_task(worker, {**event, "name": task_type_of(name) or name}, task)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


class OperatorEvents(Events):  # type: ignore[misc]
    """Flower's event consumer; a chunk or batch whose result is a warning is shown in the state WARNING, and
    the metrics count tasks by type."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.state.metrics = TaskTypeMetrics(self.state.metrics)  # not pickled with the history: set each start

    def on_event(self, event: dict[str, Any]) -> None:
        self.io_loop.add_callback(partial(self.apply_event, event))

    def apply_event(self, event: dict[str, Any]) -> None:
        state = self.state
        state.event(event)
        if event.get("type") == "task-succeeded":
            task = state.tasks.get(event.get("uuid"))
            if task is not None and outcome_of(task.result) == WARNING:
                task.state = WARNING_STATE
                state.search_engine.upsert(task)


class AuthenticatedMetrics(Metrics):  # type: ignore[misc]
    """Flower's Prometheus page behind the same login as the rest (Flower serves it to anyone)."""

    @web.authenticated
    async def get(self) -> None:
        await super().get()


def build_flower(settings: FleetSettings, config: FlowerConfig) -> Any:
    """The Flower application (not yet listening), with the options above."""
    if "read_only" not in options:  # guarded by the pinned range too
        raise FlowerConfigError("this Flower has no read-only mode: install flower>=2.2")
    credential = config.credential
    options.port = config.port
    options.address = config.address
    options.basic_auth = [credential]  # a list value: set as is, never split on commas
    options.auth = ""
    options.auth_provider = None
    options.read_only = not config.allow_control
    options.persistent = config.history is not None
    options.db = str(config.history) if config.history is not None else "flower"
    options.state_save_interval = STATE_SAVE_MILLISECONDS if config.history is not None else 0
    options.max_tasks = config.max_tasks
    options.tasks_columns = TASK_COLUMNS
    options.format_task = format_for_list
    options.natural_time = False
    options.unix_socket = ""
    options.url_prefix = ""
    options.xheaders = False
    options.debug = False
    if config.history is not None:
        config.history.parent.mkdir(parents=True, exist_ok=True, mode=0o700)

    capp = create_app(settings)  # the fleet's app: same broker and serialisers as the workers, no task bodies
    io_loop = ioloop.IOLoop.current()
    events = OperatorEvents(capp, io_loop=io_loop, db=options.db, persistent=options.persistent,
                            state_save_interval=options.state_save_interval, enable_events=True,
                            max_workers_in_memory=options.max_workers, max_tasks_in_memory=options.max_tasks)
    app = Flower(capp=capp, options=options, events=events, io_loop=io_loop, **{**tornado_settings, "debug": False})
    app.add_handlers(r".*", [(r"/metrics", AuthenticatedMetrics)])  # checked before Flower's own routes
    return app


def serve(settings: FleetSettings, config: FlowerConfig, say: Any = print) -> int:
    """Runs Flower until SIGINT/SIGTERM; the history is saved on the way out."""
    config.credential  # noqa: B018 - refuses bad credentials before anything starts
    ignored = _refuse_local_overrides()
    if ignored:
        say(f"ignored (asicfleet flower takes its settings from its options and ASICFLEET_ only): {', '.join(ignored)}")
    if Path(LOCAL_CONFIG).exists():
        say(f"ignored: ./{LOCAL_CONFIG} (asicfleet flower never reads a Flower config file)")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("tornado.access").propagate = False
    app = build_flower(settings, config)
    port = app.start_http_server()
    say(f"Flower on http://{config.address}:{port}/ (user {config.user}); "
        + ("worker control ALLOWED" if config.allow_control else "read-only: worker and task control refused")
        + "; history " + (f"in {config.history}" if config.history else "in memory only"))
    sys.stdout.flush()

    def stop(signum: int, _frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    atexit.register(app.stop)
    try:
        app.start()
    except (KeyboardInterrupt, SystemExit):
        pass
    finally:
        app.stop()  # saves the history (persistent mode)
    return 0
