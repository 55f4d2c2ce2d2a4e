"""The send governor without a database: in-memory stores and a small rig on a virtual clock.

``MemoryCapStore`` and ``MemoryActivity`` are stand-ins for storage (bot.caps.CapStore, bot.activity.ActivityLog),
not mocks: they implement the governor's store protocols (bot/governor_stores.py) with the same answers, which
tests/test_governor_stores.py checks against the real stores. The governor, the clock and the transport edge
(tests.support.RecordingTransport) are the real ones, as in ``Harness``.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime

from bot.clock import VirtualClock
from bot.config import Config, GovernorSettings
from bot.events import OutgoingMessage, ProactiveKind
from bot.governor import SendFn, SendGovernor
from tests.support import START, RecordingTransport, Sent


class MemoryCapStore:
    """Daily counts per (local day, chat), rooms' last proactive instants and opt-outs, kept in dicts."""

    def __init__(self) -> None:
        self.counts: dict[tuple[date, str], dict[str, int]] = {}  # (day, chat key) -> cap name -> count
        self.last: dict[str, datetime] = {}  # room chat key -> its last proactive message
        self.opted_out_ids: set[str] = set()

    async def over_cap(
        self, day: date, message: OutgoingMessage, kind: ProactiveKind, settings: GovernorSettings
    ) -> str | None:
        caps = settings.room_daily_caps if message.room_id else settings.member_daily_caps
        counts = self.counts.get((day, message.chat_key), {})
        for name in ("total", kind.value):
            limit = caps.get(name)
            if limit is not None and counts.get(name, 0) >= limit:
                return name
        return None

    async def count_sent(self, day: date, message: OutgoingMessage, kind: ProactiveKind,
                         at: datetime | None = None) -> None:
        if message.room_id is not None and at is not None:
            self.last[message.chat_key] = at
        if kind != ProactiveKind.TRANSACTIONAL:
            counts = self.counts.setdefault((day, message.chat_key), {})
            for name in ("total", kind.value):
                counts[name] = counts.get(name, 0) + 1

    async def last_proactive(self, scope: str) -> datetime | None:
        return self.last.get(scope)

    async def opted_out(self, member_id: str) -> bool:
        return member_id in self.opted_out_ids

    async def set_opted_out(self, member_id: str, opted_out: bool, at: datetime) -> bool:
        if (member_id in self.opted_out_ids) == opted_out:
            return False
        if opted_out:
            self.opted_out_ids.add(member_id)
        else:
            self.opted_out_ids.discard(member_id)
        return True


@dataclass(frozen=True)
class Recorded:
    """One activity row, with the fields of storage.models.Activity the tests read."""

    kind: str
    at: datetime
    room_id: str | None
    member_id: str | None
    skill: str | None
    detail: dict | None


class MemoryActivity:
    """The activity store's appending side, kept in a list. ``detail`` goes through JSON, as into the database."""

    def __init__(self, clock: VirtualClock) -> None:
        self._clock = clock
        self.recorded: list[Recorded] = []

    def record(
        self,
        kind: str,
        *,
        room_id: str | None = None,
        member_id: str | None = None,
        skill: str | None = None,
        detail: dict | None = None,
        at: datetime | None = None,
    ) -> None:
        stored = json.loads(json.dumps(detail, ensure_ascii=False)) if detail is not None else None
        self.recorded.append(Recorded(kind, at or self._clock.now(), room_id, member_id, skill, stored))

    def rows(self, kind: str) -> list[Recorded]:
        """The rows of one kind, in the order they were recorded (as ``ORDER BY id`` reads them)."""
        return [r for r in self.recorded if r.kind == kind]


class GovernorRig:
    """A SendGovernor alone on a virtual clock, its stores in memory, sending to a RecordingTransport.

    Built as ``Harness`` builds the app's (the config's governor settings and time zone, the seeded jitter), and
    used the same way where the governor tests use it: ``async with``, ``clock``, ``transport``, ``sent``,
    ``settle()``."""

    def __init__(self, config: Config, start: datetime = START, seed: int = 0,
                 edge: Callable[[RecordingTransport], SendFn] | None = None) -> None:
        """``edge``: what the governor calls instead of the recorder's ``send``, given the recorder (a platform
        whose sends take their time, say: tests/test_governor_concurrency.py)."""
        self.clock = VirtualClock(start, config.tz)
        self.transport = RecordingTransport(self.clock)
        self.caps = MemoryCapStore()
        self.activity = MemoryActivity(self.clock)
        send = edge(self.transport) if edge is not None else self.transport.send
        self.governor = SendGovernor(send, self.clock, config.governor, self.caps, self.activity,
                                     random.Random(seed))

    async def __aenter__(self) -> GovernorRig:
        return self

    async def __aexit__(self, *exc) -> None:
        await self.clock.aclose()

    @property
    def sent(self) -> list[Sent]:
        return self.transport.sent

    async def settle(self) -> None:
        """Run the clock on until nothing the governor has decided to send is still waiting (as BotApp.settle)."""
        await self.clock.run_pending()
        while self.governor.busy and (due := self.clock.next_due()) is not None:
            await self.clock.advance_to(due)
