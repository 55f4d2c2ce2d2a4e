"""Daily caps on proactive messages, per room and per member, persisted so a restart doesn't reset them."""

from __future__ import annotations

from datetime import date

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import GovernorSettings
from bot.events import OutgoingMessage, ProactiveKind
from storage.models import ProactiveCount
from storage.upsert import insert_for


class CapStore:
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions
        self._cache: dict[tuple[str, str], dict[str, int]] = {}  # (day, scope) -> kind -> count

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

    async def count_sent(self, day: date, message: OutgoingMessage, kind: ProactiveKind) -> None:
        scope = self.scope(message)
        counts = await self.counts(day, scope)
        async with self._sessions() as session, session.begin():
            dialect = session.bind.dialect.name
            for name in ("total", kind.value):
                counts[name] = counts.get(name, 0) + 1
                stmt = insert_for(dialect, ProactiveCount.__table__).values(
                    day=day.isoformat(), scope=scope, kind=name, count=1
                )
                stmt = stmt.on_conflict_do_update(
                    index_elements=["day", "scope", "kind"],
                    set_={"count": ProactiveCount.__table__.c.count + 1},
                )
                await session.execute(stmt)
