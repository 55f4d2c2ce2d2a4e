"""What the send governor needs from its stores, and nothing more.

The bot gives it the database stores (bot.caps.CapStore, bot.activity.ActivityLog, bot.outbox.Outbox); tests of
pacing, quiet hours, caps and back-off give it in-memory ones (tests/support/governor_memory.py) or no outbox at all, so
they need no database. The contract tests in tests/test_governor_stores.py hold both kinds to the same answers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Literal, Protocol

from bot.config import GovernorSettings
from bot.events import OutgoingMessage, Priority, ProactiveKind


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


OutboxStatus = Literal["pending", "sent", "dropped", "uncertain"]


@dataclass(eq=False, slots=True)
class OutboxEntry:
    """A message with a row in the outbox (or about to get one): what the row holds, and its id once written."""

    message: OutgoingMessage
    priority: Priority
    kind: ProactiveKind | None  # None: a reply
    skill: str | None
    decided_at: datetime
    account_id: str | None = None
    id: int | None = None
    attempts: int = 0


class GovernorOutbox(Protocol):
    """Where the governor keeps the messages it must not lose across a restart (bot.outbox.Outbox)."""

    def keep(self, entry: OutboxEntry) -> None:
        """Give ``entry`` a row, pending (written behind: soon, in a transaction of its own)."""

    async def sending(self, entry: OutboxEntry) -> None:
        """Mark the row ``sending`` and commit that before returning (the transport is called next); raises if it
        could not be written, and then the message must not be sent yet."""

    def mark(self, entry: OutboxEntry, status: OutboxStatus, *, reason: str | None = None,
             at: datetime | None = None) -> None:
        """The outcome (sent, dropped, uncertain), or back to pending when the transport said it sent nothing;
        written behind."""
