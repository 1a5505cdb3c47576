"""What a worker's pool process keeps from one scan chunk to the next: its event loop (uvloop when installed)
and its Redis client, so that a chunk does not pay for a new loop and new Redis connections.

A prefork pool process runs one task at a time, so one loop per process is enough. The loop is made on
the first chunk in the process that runs it (never inherited across a fork: a pool process that finds a
loop made by another pid makes its own), and closed with the Redis client when the process ends
(`worker_process_shutdown`: a worker stopping, or a pool process replaced after its max tasks). Whatever
a chunk leaves behind on the loop (tasks of a chunk cut short by its time limit) is cancelled before the
next chunk starts, as `asyncio.run` would at its end; after a chunk that failed, the Redis client is
made anew, so no connection of a broken run is reused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import redis.asyncio as aredis
from celery import signals

T = TypeVar("T")
logger = logging.getLogger(__name__)


def _loop_factory() -> Callable[[], asyncio.AbstractEventLoop]:
    try:
        import uvloop
    except ImportError:
        return asyncio.new_event_loop
    return uvloop.new_event_loop


class ProcessLoop:
    """One event loop and one Redis client per process, kept across the tasks it runs."""

    def __init__(self) -> None:
        self._runner: asyncio.Runner | None = None
        self._pid = 0
        self._clients: dict[str, aredis.Redis] = {}

    def _fresh_process(self) -> bool:
        return self._pid != os.getpid()

    def _runner_here(self) -> asyncio.Runner:
        if self._runner is not None and self._fresh_process():
            # a copy of another process's loop (made before a fork): its selector is that process's; dropped
            self._runner, self._clients = None, {}
        if self._runner is None or self._runner.get_loop().is_closed():
            self._runner = asyncio.Runner(loop_factory=_loop_factory())
            self._pid = os.getpid()
            self._clients = {}
        return self._runner

    def redis(self, url: str) -> aredis.Redis:
        """This process's client for `url` (call it from a coroutine run by `run`)."""
        client = self._clients.get(url)
        if client is None:
            client = aredis.Redis.from_url(url, socket_connect_timeout=5, socket_timeout=30)
            self._clients[url] = client
        return client

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        """Runs `coro` to its end on this process's loop; what it left running is cancelled afterwards."""
        runner = self._runner_here()
        failed = True
        try:
            result = runner.run(coro)
            failed = False
            return result
        finally:
            self._cancel_leftovers(runner.get_loop())
            if failed:
                self._drop_clients(runner)

    @staticmethod
    def _cancel_leftovers(loop: asyncio.AbstractEventLoop) -> None:
        leftovers = [task for task in asyncio.all_tasks(loop) if not task.done()]
        if not leftovers:
            return
        for task in leftovers:
            task.cancel()
        loop.run_until_complete(asyncio.gather(*leftovers, return_exceptions=True))
        for task in leftovers:
            if not task.cancelled() and task.exception() is not None:
                logger.warning("a task left over by the last chunk ended with %r", task.exception())

    def _drop_clients(self, runner: asyncio.Runner) -> None:
        clients, self._clients = list(self._clients.values()), {}
        for client in clients:
            with contextlib.suppress(Exception):
                runner.run(client.aclose())

    def close(self) -> None:
        """Closes the clients and the loop (at the process's end); a later `run` starts afresh."""
        if self._runner is None or self._fresh_process():
            self._runner, self._clients = None, {}
            return
        runner, self._runner = self._runner, None
        with contextlib.suppress(Exception):
            if not runner.get_loop().is_closed():
                self._drop_clients(runner)
        runner.close()


process_loop = ProcessLoop()


@signals.worker_process_shutdown.connect
def _close_process_loop(**_: Any) -> None:
    process_loop.close()
