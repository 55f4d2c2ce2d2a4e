"""What the send governor needs from its stores, and nothing more.

The bot gives it the database stores (bot.caps.CapStore, bot.activity.ActivityLog); tests of pacing, quiet
hours, caps and back-off give it in-memory ones (tests/governor_memory.py), so they need no database. The
contract tests in tests/test_governor_stores.py hold both kinds to the same answers.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Protocol

from bot.config import GovernorSettings
from bot.events import OutgoingMessage, ProactiveKind


class GovernorCapStore(Protocol):
    """Daily caps on proactive messages, each room's last proactive message, and members' opt-outs."""

    async def over_cap(
        self, day: date, message: OutgoingMessage, kind: ProactiveKind, settings: GovernorSettings
    ) -> str | None:
        """Name of the daily cap (of ``day``, local) this message would break, or None."""

    async def count_sent(self, day: date, message: OutgoingMessage, kind: ProactiveKind,
                         at: datetime | None = None) -> None:
        """Count a proactive send (transactional ones are not counted); for a room, remember ``at`` as its last
        proactive message."""

    async def last_proactive(self, scope: str) -> datetime | None:
        """When the chat ``scope`` (a chat key) last got a proactive message, if ever."""

    async def opted_out(self, member_id: str) -> bool: ...

    async def set_opted_out(self, member_id: str, opted_out: bool, at: datetime) -> bool:
        """Record /退订 (True) or /订阅 (False); whether anything changed."""


class ActivityRecorder(Protocol):
    """The activity store as the governor writes to it: one row per send, drop and failure."""

    def record(
        self,
        kind: str,
        *,
        room_id: str | None = None,
        member_id: str | None = None,
        skill: str | None = None,
        detail: dict | None = None,
        at: datetime | None = None,
    ) -> None: ...
