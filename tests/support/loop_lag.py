"""How long the event loop stalls: a ticker task, and waiting for a state without sleeping as synchronisation."""

from __future__ import annotations

import asyncio
import contextlib


class Ticker:
    """A task ticking every ``period`` seconds that records how late each tick came: the loop's longest stall."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.ticks = 0
        self.worst = 0.0
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._due = self._loop.time() + self.period
            await asyncio.sleep(self.period)
            self.worst = max(self.worst, self._loop.time() - self._due)
            self.ticks += 1

    async def stop(self) -> None:
        """Stop ticking; a tick overdue now counts too (a stall just before ``stop`` is a stall)."""
        self.worst = max(self.worst, self._loop.time() - self._due)
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def until(cond, timeout: float = 10.0) -> None:
    """Check ``cond`` every 2 ms until it holds (bounded): waiting for a state, not for a time."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0.002)

    await asyncio.wait_for(poll(), timeout)
