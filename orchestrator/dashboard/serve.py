"""Serving the dashboard with uvicorn: in the foreground (`asicfleet dashboard`), or in a thread of the caller
(the demo, the tests) with `RunningDashboard`."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from types import TracebackType

import uvicorn

from orchestrator.dashboard.app import Dashboard, create_app
from orchestrator.dashboard.auth import is_loopback_host


def _server(dashboard: Dashboard, host: str, port: int) -> uvicorn.Server:
    dashboard.auth = dashboard.auth.for_host(host)  # refused beyond loopback without a password
    config = uvicorn.Config(create_app(dashboard), host=host, port=port, log_level="warning", access_log=False,
                            proxy_headers=False, server_header=False, lifespan="off")
    return uvicorn.Server(config)


def url_for(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/"


def serve(dashboard: Dashboard, host: str, port: int, say: Callable[[str], None]) -> int:
    """Serves until SIGINT/SIGTERM; the exit code."""
    server = _server(dashboard, host, port)
    say(f"dashboard: {url_for(host, port)} ("
        + ("read-only without login; " if not dashboard.auth.login_to_read else "login required; ")
        + ("actions need a login" if dashboard.auth.configured else
           "actions off: set ASICFLEET_DASHBOARD_PASSWORD to allow them")
        + ("" if is_loopback_host(host) else "; served beyond loopback") + "); Ctrl-C stops")
    server.run()
    return 0 if server.started else 1


class RunningDashboard:
    """`with RunningDashboard(dashboard, "127.0.0.1", port) as url:` serves in a thread for the block."""

    def __init__(self, dashboard: Dashboard, host: str, port: int) -> None:
        self.server = _server(dashboard, host, port)
        self.url = url_for(host, port)
        self.thread = threading.Thread(target=self.server.run, name="dashboard", daemon=True)

    def __enter__(self) -> str:
        self.thread.start()
        deadline = time.monotonic() + 20
        while not self.server.started:
            if not self.thread.is_alive():
                raise RuntimeError(f"the dashboard did not start on {self.url}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start on {self.url} within 20 s")
            time.sleep(0.02)
        return self.url

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)
