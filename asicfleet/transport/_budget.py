"""A memory budget for replies being read, shared by every read on one event loop.

A cap per reply (`max_reply_bytes`) bounds one hostile host; it does not bound a thousand of them read at
once (each may send up to the cap). So beyond a small allowance per reply, which every ordinary reply fits
in, the bytes a reply holds while it is read are drawn from one budget per event loop (a scan, a worker's
chunk). A reply that needs more than the budget has free waits for it, within its own read deadline: only
replies larger than the allowance (oversized, hostile or rare) ever wait, and ordinary replies never do.
"""

from __future__ import annotations

import asyncio
import weakref
from dataclasses import dataclass, field

from asicfleet._errors import ResponseTooLargeError

FREE_PER_REPLY = 32 * 1024  # what a reply may hold without drawing on the budget (ordinary replies fit)
DEFAULT_BUDGET = 32 * 1024 * 1024  # bytes of larger replies held at once per event loop


@dataclass
class ReplyBudget:
    """Bytes of oversized replies held at once; `take` waits while the budget is spent.

    Replies draw as their bytes arrive, so they can deadlock: each holds part of the budget and waits for more
    that only the others could give back. When every holder is waiting, the one holding the most is refused
    (it gives its share back and the rest go on); otherwise they would all wait until their read deadlines.
    """

    total: int
    used: int = 0
    _wakeups: list[asyncio.Future[None]] = field(default_factory=list)  # one per waiting `take`
    _held: dict[ReplyBuffer, int] = field(default_factory=dict)  # holder -> bytes it holds
    _waiting: set[ReplyBuffer] = field(default_factory=set)
    _refused: set[ReplyBuffer] = field(default_factory=set)

    async def take(self, size: int, holder: ReplyBuffer) -> None:
        if size > self.total:
            raise ResponseTooLargeError(f"{holder.what} larger than this scanner's reply budget ({self.total} bytes)")
        self._waiting.add(holder)
        try:
            while self.used + size > self.total:
                self._break_deadlock()
                if holder in self._refused:
                    held = self._held.get(holder, 0)
                    raise ResponseTooLargeError(
                        f"{holder.what} refused: it held the most ({held} bytes) of this scanner's reply budget "
                        f"({self.total} bytes) while every reply holding it waited for more")
                wakeup = asyncio.get_running_loop().create_future()
                self._wakeups.append(wakeup)
                try:
                    await wakeup
                finally:
                    if not wakeup.done():  # cancelled: no longer waiting
                        self._wakeups.remove(wakeup)
        finally:
            self._waiting.discard(holder)
            self._refused.discard(holder)
        self.used += size
        self._held[holder] = self._held.get(holder, 0) + size

    def _wake_all(self) -> None:
        wakeups, self._wakeups = self._wakeups, []
        for wakeup in wakeups:
            if not wakeup.done():
                wakeup.set_result(None)

    def _break_deadlock(self) -> None:
        if self._held and all(h in self._waiting for h in self._held) and not self._refused:
            self._refused.add(max(self._held, key=self._held.__getitem__))
            self._wake_all()

    def give_back(self, size: int, holder: ReplyBuffer) -> None:
        """Not a coroutine: it must happen even in a task being cancelled (a scan cut short), or the bytes
        would stay spent for as long as the loop lives (a worker keeps its loop across chunks)."""
        if size:
            self.used -= size
            left = self._held.pop(holder, 0) - size
            if left > 0:
                self._held[holder] = left
            self._wake_all()


_BUDGETS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, ReplyBudget] = weakref.WeakKeyDictionary()


def loop_budget(total: int) -> ReplyBudget:
    """The running loop's budget (made on first use with `total` bytes)."""
    loop = asyncio.get_running_loop()
    budget = _BUDGETS.get(loop)
    if budget is None:
        budget = _BUDGETS[loop] = ReplyBudget(total)
    return budget


class ReplyBuffer:
    """The bytes of one reply as they arrive: refused past `limit`, drawn from the budget past the allowance.

    Use as `async with ReplyBuffer(...) as buffer:`; leaving the block gives the drawn bytes back.
    """

    def __init__(self, limit: int, budget_bytes: int, what: str = "reply") -> None:
        self.limit = limit
        self.what = what
        self.size = 0
        self._chunks: list[bytes] = []
        self._drawn = 0
        self._budget = loop_budget(budget_bytes)

    async def add(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise ResponseTooLargeError(f"{self.what} larger than the {self.limit}-byte cap")
        over = self.size - FREE_PER_REPLY - self._drawn
        if over > 0:
            await self._budget.take(over, self)
            self._drawn += over
        self._chunks.append(chunk)

    async def reserve(self, length: int) -> None:
        """For a reply whose length is announced: draws all it needs at once, before it is read. Replies that
        each held part of the budget while waiting for the rest could starve each other until their deadlines;
        a whole draw cannot. Refuses at once what the cap or the whole budget could never hold."""
        if length > self.limit:
            raise ResponseTooLargeError(f"{self.what}: announced {length} bytes, over the {self.limit}-byte cap")
        need = length - FREE_PER_REPLY - self._drawn
        if need > self._budget.total:
            raise ResponseTooLargeError(f"{self.what}: announced {length} bytes, more than this scanner's reply "
                                        f"budget ({self._budget.total} bytes)")
        if need > 0:
            await self._budget.take(need, self)
            self._drawn += need

    def content(self) -> bytes:
        return b"".join(self._chunks)

    async def __aenter__(self) -> ReplyBuffer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._chunks = []
        drawn, self._drawn = self._drawn, 0
        self._budget.give_back(drawn, self)
