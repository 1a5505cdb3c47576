"""The container health check of the one image (Dockerfile HEALTHCHECK, compose): it finds what the container
runs and asks that: a Celery worker answers `celery inspect ping` under its own node name, Flower its
`/healthcheck`, beat and the other commands by being alive. Exit 0 healthy, 1 not.

`python -m orchestrator.healthcheck` (no arguments). Kubernetes probes name their checks directly instead
(k8s/base), so that each one says what it tests.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

WORKER_APP = "workers.app"
PING_TIMEOUT_SECONDS = 10


def _command_lines() -> list[list[str]]:
    """Every process's argv in this container (its pid namespace)."""
    lines = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                raw = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if raw:
                lines.append([part.decode(errors="replace") for part in raw.rstrip(b"\0").split(b"\0")])
    return lines


def _option(argv: list[str], name: str, default: str) -> str:
    for index, part in enumerate(argv):
        if part == name and index + 1 < len(argv):
            return argv[index + 1]
        if part.startswith(name + "="):
            return part.split("=", 1)[1]
    return default


def _worker_node(argv: list[str]) -> str | None:
    """The node name a `celery ... worker --hostname NAME@%h` answers to (%h is this host's name)."""
    if "celery" not in " ".join(argv[:3]) or "worker" not in argv:
        return None
    return _option(argv, "--hostname", "celery@%h").replace("%h", socket.gethostname())


def _ping_worker(node: str) -> bool:
    done = subprocess.run([sys.executable, "-m", "celery", "-A", WORKER_APP, "inspect", "ping", "--destination",
                           node, "--timeout", str(PING_TIMEOUT_SECONDS)], capture_output=True, timeout=60,
                          check=False)
    return done.returncode == 0


def _flower_healthy(argv: list[str]) -> bool:
    port = _option(argv, "--port", "5555")
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthcheck", timeout=5) as reply:
            return bool(reply.status == 200 and reply.read().strip() == b"OK")
    except OSError:
        return False


def healthy() -> bool:
    lines = _command_lines()
    for argv in lines:
        node = _worker_node(argv)
        if node is not None:
            return _ping_worker(node)
    for argv in lines:
        if "flower" in argv and any(part.endswith("asicfleet") or part.endswith("orchestrator.cli") for part in argv):
            return _flower_healthy(argv)
    return True  # beat, the simulator, a one-shot command: alive is all there is to tell


def main() -> None:
    sys.exit(0 if healthy() else 1)


if __name__ == "__main__":
    main()
