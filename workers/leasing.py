"""Keeping a task's lease (`fleet.lease`) while it runs: renewed every third of its length; when another
attempt took the work over, the running task is cancelled (its work is someone else's now)."""

from __future__ import annotations

import asyncio
from typing import Any

import redis
import redis.asyncio as aredis

from fleet.lease import RENEW


class LeaseKeeper:
    def __init__(self, client: aredis.Redis, key: str, holder: str, worker: str, seconds: float) -> None:
        self.client = client
        self.key = key
        self.holder = holder
        self.worker = worker
        self.seconds = seconds
        self.lost = False
        self._task: asyncio.Task[None] | None = None

    def start(self, owner: asyncio.Task[Any]) -> None:
        self._task = asyncio.create_task(self._renew(owner))

    async def _renew(self, owner: asyncio.Task[Any]) -> None:
        while True:
            await asyncio.sleep(self.seconds / 3)
            try:
                held = await self.client.eval(RENEW, 1, self.key, self.holder, self.worker, self.seconds)
            except redis.RedisError:
                continue  # Redis away: try at the next tick (reapers give a restarted Redis a lease's grace)
            if not held:
                self.lost = True
                owner.cancel()
                return

    def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
