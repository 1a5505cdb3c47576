"""A cluster on this machine: Redis (embedded when none answers) and worker processes.

Used by `asicfleet scan --distributed --local-workers N`, the demo and the tests.
"""

from __future__ import annotations

import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from fleet.resilience import RedisAuthRefused, RedisUnavailable, check_redis
from fleet.settings import FleetSettings
from fleet.store import worker_key
from orchestrator.redis_server import EmbeddedRedis


class ClusterStartError(RuntimeError):
    """Redis or a worker of the local cluster did not come up."""


def start_workers(redis_url: str, count: int, site: str | None, concurrency: int = 1,
                  extra_env: dict[str, str] | None = None, beat: bool = False
                  ) -> tuple[list[subprocess.Popen[bytes]], list[str]]:
    """Starts `count` worker processes; returns them with their (unique) worker names."""
    env = {**os.environ, "ASICFLEET_REDIS_URL": redis_url}
    env.pop("ASICFLEET_BROKER_URL", None)  # the local cluster's broker is its own Redis unless told otherwise
    env.update(extra_env or {})
    names = [f"local{i}-{secrets.token_hex(4)}" for i in range(count)]
    processes = [subprocess.Popen([sys.executable, "-m", "orchestrator.cli", "workers", "--concurrency",
                                   str(concurrency), "--name", name, *(["--site", site] if site else []),
                                   *(["--beat"] if beat else []), "--loglevel", "warning"],
                                  env=env, stdout=subprocess.DEVNULL)
                 for name in names]
    return processes, names


def wait_for_workers(redis_url: str, names: list[str], processes: list[subprocess.Popen[bytes]],
                     timeout: float = 90.0) -> None:
    """Blocks until every named worker beats; raises ClusterStartError if one dies or time runs out."""
    client = redis.Redis.from_url(redis_url)
    keys = [worker_key(f"{name}@{socket.gethostname()}") for name in names]
    deadline = time.monotonic() + timeout
    try:
        while client.exists(*keys) < len(keys):
            if any(p.poll() is not None for p in processes):
                raise ClusterStartError("a worker process exited at start (see its output above)")
            if time.monotonic() > deadline:
                raise ClusterStartError(f"workers did not come up within {timeout:g}s")
            time.sleep(0.2)
    finally:
        client.close()


def stop_processes(processes: list[subprocess.Popen[bytes]], timeout: float = 20.0) -> None:
    """SIGTERM, then SIGKILL what has not exited by `timeout`."""
    for process in processes:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for process in processes:
        try:
            process.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def configured_redis(settings: FleetSettings) -> str | None:
    """The Redis URL the user set (ASICFLEET_REDIS_URL or .env), or None when only the default applies."""
    return settings.redis_url if "redis_url" in settings.model_fields_set else None


@contextmanager
def local_cluster(redis_url: str | None, workers: int, site: str | None, default_url: str = "") -> Iterator[str]:
    """With `workers` > 0: a Redis and that many workers. The Redis is the one `redis_url` names when it
    answers; with no URL configured (None), always a private one, never whatever happens to answer on
    the default port (another user's, or a production one). Yields the Redis URL to use; everything
    started here is stopped on exit. With no workers, yields `redis_url` (or `default_url`)."""
    if workers == 0:
        yield redis_url or default_url
        return
    try:
        if redis_url is None:
            raise RedisUnavailable("no Redis configured")  # a private one, never whatever answers on the default port
        check_redis(redis_url)
        answers = True
    except RedisAuthRefused as exc:  # a Redis is there but refuses us: say so rather than start another
        raise ClusterStartError(str(exc)) from None
    except RedisUnavailable:
        answers = False
    try:
        embedded = None if answers else EmbeddedRedis().start()
    except RuntimeError as exc:
        raise ClusterStartError(str(exc)) from None
    url = embedded.url if embedded else redis_url
    assert url is not None
    processes: list[subprocess.Popen[bytes]] = []
    try:
        processes, names = start_workers(url, workers, site)
        wait_for_workers(url, names, processes)
        yield url
    finally:
        stop_processes(processes)
        if embedded is not None:
            embedded.stop()
