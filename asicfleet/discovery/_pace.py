"""Pacing a scan by what this process can serve, and knowing when our own slowness spoiled an answer.

`LoopMonitor` measures how late the event loop runs its callbacks: the seconds it was stalled. A
deadline that expired while the loop stalled for a fair part of it says nothing about the miner, so
the scan treats that outcome as undecided and asks again once the load is lower.

`AdaptiveLimit` is the in-flight bound: it grows towards the user's limit while the loop keeps up and
shrinks when it falls behind, so that `with_concurrent_limit(10_000)` is safe on any machine. Silent
addresses cost the loop nothing while they wait, so on a quiet network the bound reaches the user's
limit; a flood of instant refusals (loopback, a LAN that rejects) costs callbacks, and the bound
settles where the loop still keeps up.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import Callable

_TICK = 0.02  # seconds between two looks at the loop
_TARGET_LAG = 0.05  # smoothed lateness above which in-flight work is cut
_COOLDOWN = 0.2  # seconds between two cuts: let the last one show first
_FLOOR = 32  # never fewer in flight than this (a lone slow host must not starve the scan)
_START = 512


class LoopMonitor:
    """Stall accounting for the running loop: `stalled()` is the seconds callbacks have run late since
    the monitor started; the difference between two readings is the stall in between."""

    def __init__(self, on_tick: Callable[[float], None] | None = None) -> None:
        self._loop = asyncio.get_running_loop()
        self._stalled = 0.0
        self._due = self._loop.time() + _TICK
        self._on_tick = on_tick
        self._handle: asyncio.TimerHandle | None = self._loop.call_at(self._due, self._tick)
        self.worst = 0.0  # the longest single stall seen, for reports

    def _tick(self) -> None:
        now = self._loop.time()
        late = max(0.0, now - self._due)
        self._stalled += late
        self.worst = max(self.worst, late)
        self._due = now + _TICK
        self._handle = self._loop.call_at(self._due, self._tick)
        if self._on_tick is not None:
            self._on_tick(late)

    def stalled(self) -> float:
        """Seconds stalled so far, the stall still in progress included."""
        return self._stalled + max(0.0, self._loop.time() - self._due)

    def close(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None


class AdaptiveLimit:
    """A semaphore whose size follows the loop's lag, between a floor and the user's `ceiling`."""

    def __init__(self, ceiling: int) -> None:
        self.ceiling = max(1, ceiling)
        self.limit = min(self.ceiling, _START)
        self.peak = self.limit
        self.lowest = self.limit
        self._floor = min(self.ceiling, _FLOOR)
        self._in_use = 0
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()
        self._smoothed = 0.0
        self._last_cut = 0.0
        self._loop = asyncio.get_running_loop()
        self.monitor = LoopMonitor(self._adapt)

    def _adapt(self, late: float) -> None:
        self._smoothed = 0.7 * self._smoothed + 0.3 * late
        now = self._loop.time()
        if self._smoothed > _TARGET_LAG:
            if now - self._last_cut >= _COOLDOWN and self.limit > self._floor:
                self.limit = max(self._floor, int(self.limit * 0.7))
                self.lowest = min(self.lowest, self.limit)
                self._last_cut = now
        elif self._smoothed < _TARGET_LAG / 4 and self.limit < self.ceiling and self._waiters:
            self.limit = min(self.ceiling, self.limit + max(8, self.limit // 16))
            self.peak = max(self.peak, self.limit)
            self._wake()

    def overloaded(self) -> None:
        """Called when this machine ran out of a resource (descriptors, ports): halve at once."""
        self.limit = max(self._floor, self.limit // 2)
        self.lowest = min(self.lowest, self.limit)
        self._last_cut = self._loop.time()

    def cap(self, ceiling: int) -> None:
        """Lowers the ceiling (a retry round runs gently)."""
        self.ceiling = max(1, min(self.ceiling, ceiling))
        self.limit = min(self.limit, self.ceiling)
        self._floor = min(self._floor, self.ceiling)

    async def acquire(self) -> None:
        if self._in_use < self.limit and not self._waiters:
            self._in_use += 1
            return
        waiter: asyncio.Future[None] = self._loop.create_future()
        self._waiters.append(waiter)
        try:
            await waiter
        except BaseException:
            if waiter.done() and not waiter.cancelled():
                self.release()  # woken and cancelled at once: hand the slot on
            raise
        # the slot was counted for us by _wake

    def release(self) -> None:
        self._in_use -= 1
        self._wake()

    def _wake(self) -> None:
        while self._waiters and self._in_use < self.limit:
            waiter = self._waiters.popleft()
            if not waiter.done():
                self._in_use += 1
                waiter.set_result(None)

    def close(self) -> None:
        self.monitor.close()
