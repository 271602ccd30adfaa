"""Time as an input: every component that needs the time is handed a :class:`Clock`.

Production code uses :class:`SystemClock`; tests use :class:`FakeClock`, whose time only
moves when the test says so, so schedules are checked without sleeping.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from typing import Protocol, runtime_checkable


@runtime_checkable
class Clock(Protocol):
    """Wall-clock seconds since the epoch, and a way to sleep until one of them."""

    def time(self) -> float: ...

    async def sleep_until(self, deadline: float) -> None: ...


class SystemClock:
    """The real clock: ``time.time()`` and ``asyncio.sleep``."""

    def time(self) -> float:
        return time.time()

    async def sleep_until(self, deadline: float) -> None:
        delay = deadline - time.time()
        if delay > 0:
            await asyncio.sleep(delay)
        else:
            await asyncio.sleep(0)


class FakeClock:
    """A clock that moves only when :meth:`advance` or :meth:`set` is called.

    Sleepers wake in deadline order as time passes them; ``advance`` yields to the
    event loop after each wake-up so woken tasks run before the next deadline.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self._sleepers: list[tuple[float, int, asyncio.Future[None]]] = []
        self._seq = itertools.count()

    def time(self) -> float:
        return self._now

    async def sleep_until(self, deadline: float) -> None:
        if deadline <= self._now:
            await asyncio.sleep(0)
            return
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._sleepers, (deadline, next(self._seq), fut))
        await fut

    @property
    def sleepers(self) -> int:
        """How many tasks are waiting on this clock."""
        return sum(1 for _, _, fut in self._sleepers if not fut.done())

    async def advance(self, seconds: float) -> None:
        """Move time forward by ``seconds``, waking every sleeper passed on the way."""
        await self.set(self._now + seconds)

    async def set(self, when: float) -> None:
        """Move time forward to ``when`` (never backward)."""
        await _settle()
        while self._sleepers and self._sleepers[0][0] <= when:
            deadline, _, fut = heapq.heappop(self._sleepers)
            self._now = max(self._now, deadline)
            if not fut.done():
                fut.set_result(None)
                await _settle()
        self._now = max(self._now, when)
        await _settle()


async def _settle(rounds: int = 5) -> None:
    # Several loop passes let woken tasks run through to their next await.
    for _ in range(rounds):
        await asyncio.sleep(0)
