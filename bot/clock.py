"""The one clock: everything time-dependent asks it.

``RealClock`` follows wall time (``python -m bot run``). ``VirtualClock`` only moves when told to
(replay and tests): ``advance_to`` runs every timer that falls due on the way, each at its own instant, in order,
and awaits it fully before moving on, so a replay is deterministic and never waits for real time.

Timers carry coroutine functions rather than bare callbacks, so the virtual clock can await the work a timer
starts (a send, a database write) before it moves time further. Work that runs beside the timers rather than
inside one (the governor's sends, several under way at once) is ``spawn``-ed: a task of its own at once; the
virtual clock awaits all of it before it runs the next timer, so what happens at each instant stays in order.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import logging
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

log = logging.getLogger(__name__)

TimerCallback = Callable[[], Awaitable[None]]
ErrorHook = Callable[[BaseException, dict], None]


def _default_error_hook(exc: BaseException, context: dict) -> None:
    log.error("timer %s failed", context.get("timer"), exc_info=exc)


class TimerHandle:
    __slots__ = ("when", "name", "callback", "cancelled", "_native")

    def __init__(self, when: datetime, name: str, callback: TimerCallback) -> None:
        self.when = when
        self.name = name
        self.callback = callback
        self.cancelled = False
        self._native: asyncio.TimerHandle | None = None

    def cancel(self) -> None:
        self.cancelled = True
        if self._native is not None:
            self._native.cancel()


class Clock(ABC):
    def __init__(self, tz: ZoneInfo | str = "Asia/Shanghai") -> None:
        self.tz = ZoneInfo(tz) if isinstance(tz, str) else tz
        self.on_error: ErrorHook = _default_error_hook

    @abstractmethod
    def now(self) -> datetime:
        """Aware datetime, UTC."""

    @property
    def horizon(self) -> datetime:
        """Where the clock is heading: the target of a virtual clock's ``advance_to`` while it runs the timers on
        the way; otherwise (and always for the real clock) ``now()``."""
        return self.now()

    def local_now(self) -> datetime:
        return self.now().astimezone(self.tz)

    def local(self, when: datetime) -> datetime:
        return when.astimezone(self.tz)

    @abstractmethod
    def call_at(self, when: datetime, callback: TimerCallback, name: str = "timer") -> TimerHandle:
        """Run ``await callback()`` at ``when`` (at once if it is past)."""

    def call_later(self, delay_s: float, callback: TimerCallback, name: str = "timer") -> TimerHandle:
        return self.call_at(self.now() + timedelta(seconds=delay_s), callback, name)

    async def _run(self, handle: TimerHandle) -> None:
        try:
            await handle.callback()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a failing timer never stops the clock
            self.on_error(exc, {"timer": handle.name, "at": handle.when.isoformat()})

    def spawn(self, callback: TimerCallback, name: str = "work") -> asyncio.Task:
        """Run ``await callback()`` now, as a task of its own (its failure goes to ``on_error``); the clock
        knows of it until it ends (see the module's docstring)."""
        handle = TimerHandle(self.now(), name, callback)
        task = asyncio.get_running_loop().create_task(self._run(handle), name=name)
        self._track(task)
        return task

    @abstractmethod
    def _track(self, task: asyncio.Task) -> None: ...

    async def aclose(self) -> None:
        """Cancel pending timers and wait for running ones."""


class RealClock(Clock):
    def __init__(self, tz: ZoneInfo | str = "Asia/Shanghai") -> None:
        super().__init__(tz)
        self._tasks: set[asyncio.Task] = set()
        self._handles: set[TimerHandle] = set()

    def now(self) -> datetime:
        return datetime.now(UTC)

    def call_at(self, when: datetime, callback: TimerCallback, name: str = "timer") -> TimerHandle:
        loop = asyncio.get_running_loop()
        handle = TimerHandle(when, name, callback)
        delay = max(0.0, (when - self.now()).total_seconds())
        self._handles.add(handle)

        def fire() -> None:
            self._handles.discard(handle)
            if handle.cancelled:
                return
            task = loop.create_task(self._run(handle), name=name)
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

        handle._native = loop.call_later(delay, fire)
        return handle

    def _track(self, task: asyncio.Task) -> None:
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def aclose(self) -> None:
        while True:  # what the running ones start on their way out (a send's follow-up) is cancelled or awaited too
            for handle in list(self._handles):
                handle.cancel()
            self._handles.clear()
            if not self._tasks:
                return
            await asyncio.gather(*self._tasks, return_exceptions=True)


class VirtualClock(Clock):
    def __init__(self, start: datetime, tz: ZoneInfo | str = "Asia/Shanghai") -> None:
        super().__init__(tz)
        if start.tzinfo is None:
            raise ValueError("the virtual clock needs an aware start time")
        self._now = start.astimezone(UTC)
        self._heap: list[tuple[datetime, int, TimerHandle]] = []
        self._seq = itertools.count()
        self._target: datetime | None = None
        self._work: set[asyncio.Task] = set()  # spawned, not finished: time waits for it

    @property
    def horizon(self) -> datetime:
        return self._target if self._target is not None and self._target > self._now else self._now

    def now(self) -> datetime:
        return self._now

    def call_at(self, when: datetime, callback: TimerCallback, name: str = "timer") -> TimerHandle:
        handle = TimerHandle(max(when, self._now), name, callback)
        heapq.heappush(self._heap, (handle.when, next(self._seq), handle))
        return handle

    def _track(self, task: asyncio.Task) -> None:
        self._work.add(task)
        task.add_done_callback(self._work.discard)

    def next_due(self) -> datetime | None:
        while self._heap and self._heap[0][2].cancelled:
            heapq.heappop(self._heap)
        return self._heap[0][0] if self._heap else None

    async def advance_to(self, target: datetime) -> None:
        """Move to ``target``, running everything due on the way at its own instant. Never goes back. Spawned
        work is awaited before each timer and before returning: time never moves on while it runs."""
        target = max(target.astimezone(UTC), self._now)
        outer, self._target = self._target, max(target, self._target or target)
        try:
            while True:
                while work := self._others_work():
                    await asyncio.wait(work)
                due = self.next_due()
                if due is None or due > target:
                    break
                _, _, handle = heapq.heappop(self._heap)
                self._now = max(self._now, handle.when)
                await self._run(handle)
            self._now = target
        finally:
            self._target = outer

    def _others_work(self) -> set[asyncio.Task]:
        """Spawned work under way, but not the task asking (spawned work that moves the clock would wait for
        itself)."""
        return self._work - {asyncio.current_task()} if self._work else self._work

    async def advance(self, seconds: float) -> None:
        await self.advance_to(self._now + timedelta(seconds=seconds))

    async def run_pending(self) -> None:
        """Run whatever is due now (timers set for 'now' by the last event)."""
        await self.advance_to(self._now)

    async def aclose(self) -> None:
        self._heap.clear()
        if self._work:  # the virtual world ends: work still under way (a send that never answers) is cancelled
            work = list(self._work)
            for task in work:
                task.cancel()
            await asyncio.gather(*work, return_exceptions=True)
