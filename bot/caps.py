"""The governor's persisted state: daily caps on proactive messages (per room and per member), each room's last
proactive message (for the minimum gap) and members' opt-outs — persisted so a restart doesn't reset them.

Counts and last-message instants live in memory (read from the database once per day and scope) and are written
behind, with the activity store's batches (``ActivityLog.add_write_behind``): a send costs no round trip of its
own. A crash loses what the activity store's flush window loses (about a second), so after a crash a room may
get at most that much more than its cap; a clean stop writes everything."""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import GovernorSettings
from bot.events import OutgoingMessage, ProactiveKind
from storage.bulk import Write
from storage.models import ProactiveCount
from storage.models_gentle import MemberOptOut, ProactiveLast
from storage.upsert import insert_for

_UNKNOWN = object()


class CapStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[tuple[str, str], dict[str, int]] = {}  # (day, scope) -> kind -> count
        self._last: dict[str, datetime | None] = {}  # room scope -> its last proactive message
        self._optouts: set[str] | None = None  # loaded on first use: a few thousand ids at most
        # written behind: increments per (day, scope, kind) and instants per room scope not yet in the database
        self._unsaved_counts: dict[tuple[str, str, str], int] = {}
        self._unsaved_last: dict[str, datetime] = {}

    @staticmethod
    def scope(message: OutgoingMessage) -> str:
        return message.chat_key

    async def counts(self, day: date, scope: str) -> dict[str, int]:
        key = (day.isoformat(), scope)
        cached = self._cache.get(key)
        if cached is None:
            async with self._sessions() as session:
                rows = await session.execute(
                    select(ProactiveCount.kind, ProactiveCount.count).where(
                        ProactiveCount.day == key[0], ProactiveCount.scope == scope
                    )
                )
                cached = self._cache[key] = {k: c for k, c in rows}
            if len(self._cache) > 50_000:  # old days are never asked again
                today = key[0]
                self._cache = {k: v for k, v in self._cache.items() if k[0] == today}
        return cached

    async def over_cap(
        self, day: date, message: OutgoingMessage, kind: ProactiveKind, settings: GovernorSettings
    ) -> str | None:
        """Name of the cap this message would break, or None."""
        caps = settings.room_daily_caps if message.room_id else settings.member_daily_caps
        counts = await self.counts(day, self.scope(message))
        for name in ("total", kind.value):
            limit = caps.get(name)
            if limit is not None and counts.get(name, 0) >= limit:
                return name
        return None

    async def last_proactive(self, scope: str) -> datetime | None:
        last = self._last.get(scope, _UNKNOWN)
        if last is _UNKNOWN:
            async with self._sessions() as session:
                last = await session.scalar(select(ProactiveLast.at).where(ProactiveLast.scope == scope))
            if len(self._last) > 100_000:
                self._last.clear()
            self._last[scope] = last
        return last  # type: ignore[return-value]

    async def count_sent(self, day: date, message: OutgoingMessage, kind: ProactiveKind,
                         at: datetime | None = None) -> None:
        """Count a proactive send against the day's caps (transactional ones are not counted) and, for a room,
        remember it as the room's last proactive message. Written behind (see the module's docstring)."""
        scope = self.scope(message)
        counting = kind != ProactiveKind.TRANSACTIONAL
        if message.room_id is not None and at is not None:
            self._last[scope] = at
            self._unsaved_last[scope] = at
        if counting:
            counts = await self.counts(day, scope)
            for name in ("total", kind.value):
                counts[name] = counts.get(name, 0) + 1
                key = (day.isoformat(), scope, name)
                self._unsaved_counts[key] = self._unsaved_counts.get(key, 0) + 1

    def take_writes(self) -> list[Write]:
        """What the activity store's next flush writes for us (in its transaction); ``put_back`` if it failed."""
        counts, self._unsaved_counts = self._unsaved_counts, {}
        last, self._unsaved_last = self._unsaved_last, {}
        return [
            Write(ProactiveCount.__table__,
                  [{"day": d, "scope": sc, "kind": k, "count": n} for (d, sc, k), n in counts.items()],
                  key=("day", "scope", "kind"), update={"count": "proactive_counts.count + excluded.count"}),
            Write(ProactiveLast.__table__, [{"scope": sc, "at": at} for sc, at in last.items()],
                  key=("scope",), update={"at": "excluded.at"}),
        ]

    def put_back(self, writes: list[Write]) -> None:
        counts, last = writes
        for row in counts.rows:
            key = (row["day"], row["scope"], row["kind"])
            self._unsaved_counts[key] = self._unsaved_counts.get(key, 0) + row["count"]
        for row in last.rows:
            self._unsaved_last.setdefault(row["scope"], row["at"])  # a newer instant taken meanwhile wins

    # -- opt-outs -----------------------------------------------------------------------------------------------

    async def _optout_set(self) -> set[str]:
        if self._optouts is None:
            async with self._sessions() as session:
                self._optouts = set((await session.execute(select(MemberOptOut.member_id))).scalars())
        return self._optouts

    async def opted_out(self, member_id: str) -> bool:
        return member_id in await self._optout_set()

    async def set_opted_out(self, member_id: str, opted_out: bool, at: datetime) -> bool:
        """Record /退订 (True) or /订阅 (False). Returns whether anything changed."""
        ids = await self._optout_set()
        if (member_id in ids) == opted_out:
            return False
        async with self._sessions() as session, session.begin():
            if opted_out:
                stmt = insert_for(session.bind.dialect.name, MemberOptOut.__table__).values(
                    member_id=member_id, opted_out_at=at)
                await session.execute(stmt.on_conflict_do_nothing(index_elements=["member_id"]))
            else:
                await session.execute(delete(MemberOptOut).where(MemberOptOut.member_id == member_id))
        if opted_out:
            ids.add(member_id)
        else:
            ids.discard(member_id)
        return True
