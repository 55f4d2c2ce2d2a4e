"""The activity store's writer: every interaction appended, in batches.

``record`` only appends to memory (no I/O on the hot path); a background flusher writes a batch every
``flush_interval_s`` (wall time: it bounds what a crash can lose) or as soon as ``flush_max_rows`` are waiting,
and ``aclose`` writes the rest. The member and room directory (names seen, rooms, first/last seen) rides on the
same batches, so ordinary chatter costs no database round trip.

Activity kinds: message, command, refused, sent, send_dropped, send_failed, join, leave, error, job.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import func, insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.config import ActivitySettings
from bot.events import Person
from storage.models import Activity, Member, MemberName, Room, RoomMember
from storage.upsert import insert_for

log = logging.getLogger(__name__)

# If the database stays down, keep at most this many rows waiting; beyond it the oldest are dropped (and said so).
MAX_BACKLOG = 200_000


@dataclass(slots=True)
class _RoomMemberState:
    first_seen: datetime
    last_seen: datetime
    active: bool = True
    joined_at: datetime | None = None
    left_at: datetime | None = None
    inviter_id: str | None = None


@dataclass(slots=True)
class _Pending:
    rows: list[dict] = field(default_factory=list)
    members: dict[str, dict] = field(default_factory=dict)
    names: dict[tuple[str, str], datetime] = field(default_factory=dict)
    rooms: dict[str, dict] = field(default_factory=dict)
    room_members: dict[tuple[str, str], _RoomMemberState] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows) + len(self.members) + len(self.rooms) + len(self.room_members)


class ActivityLog:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock, settings: ActivitySettings) -> None:
        self._sessions = sessions
        self._clock = clock
        self.settings = settings
        self._pending = _Pending()
        self._known_names: set[tuple[str, str]] = set()
        self._wake = asyncio.Event()
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self.flushes = 0
        self.rows_written = 0
        self.last_flush_error: BaseException | None = None

    # -- appending (synchronous, no I/O) ------------------------------------------------------------------------

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
        self._pending.rows.append(
            {
                "at": at or self._clock.now(),
                "room_id": room_id,
                "member_id": member_id,
                "kind": kind,
                "skill": skill,
                "detail": detail,
            }
        )
        if len(self._pending.rows) >= self.settings.flush_max_rows:
            self._wake.set()

    def seen(self, person: Person, at: datetime, room_id: str | None = None, room_topic: str | None = None) -> None:
        """Keep the member (and room) records current."""
        p = self._pending
        m = p.members.get(person.id)
        if m is None:
            p.members[person.id] = {"id": person.id, "name": person.name, "first_seen": at, "last_seen": at}
        else:
            m["last_seen"] = at
            if person.name:
                m["name"] = person.name
        if person.name and (person.id, person.name) not in self._known_names:
            self._known_names.add((person.id, person.name))
            p.names.setdefault((person.id, person.name), at)
        if room_id:
            self._room_seen(room_id, room_topic, at)
            key = (room_id, person.id)
            rm = p.room_members.get(key)
            if rm is None:
                p.room_members[key] = _RoomMemberState(first_seen=at, last_seen=at)
            else:
                rm.last_seen = at

    def joined(self, room_id: str, person: Person, at: datetime, inviter_id: str | None, room_topic: str | None) -> None:
        self.seen(person, at, room_id, room_topic)
        rm = self._pending.room_members[(room_id, person.id)]
        rm.active, rm.joined_at, rm.left_at, rm.inviter_id = True, at, None, inviter_id

    def left(self, room_id: str, member_id: str, at: datetime) -> None:
        self._room_seen(room_id, None, at)
        key = (room_id, member_id)
        rm = self._pending.room_members.get(key)
        if rm is None:
            rm = self._pending.room_members[key] = _RoomMemberState(first_seen=at, last_seen=at)
        rm.active, rm.left_at = False, at

    def _room_seen(self, room_id: str, topic: str | None, at: datetime) -> None:
        r = self._pending.rooms.get(room_id)
        if r is None:
            self._pending.rooms[room_id] = {"id": room_id, "topic": topic or "", "first_seen": at, "last_seen": at}
        else:
            r["last_seen"] = at
            if topic:
                r["topic"] = topic

    @property
    def backlog(self) -> int:
        return len(self._pending)

    # -- writing ------------------------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write everything waiting in one transaction; on failure keep it for the next try. Returns rows written."""
        async with self._lock:
            batch, self._pending = self._pending, _Pending()
            if not len(batch):
                return 0
            try:
                async with self._sessions() as session, session.begin():
                    await self._write(session, batch)
            except asyncio.CancelledError:
                self._requeue(batch)  # shutdown mid-write: aclose() writes it again
                raise
            except Exception as exc:
                self.last_flush_error = exc
                self._requeue(batch)
                log.error("activity flush failed (%d rows kept for retry): %s", len(batch.rows), exc)
                return 0
            self.last_flush_error = None
            self.flushes += 1
            self.rows_written += len(batch.rows)
            return len(batch.rows)

    def _requeue(self, batch: _Pending) -> None:
        """Put a failed batch back in front of what arrived meanwhile; newer directory state wins."""
        newer = self._pending
        batch.rows.extend(newer.rows)
        if len(batch.rows) > MAX_BACKLOG:
            lost = len(batch.rows) - MAX_BACKLOG
            log.error("activity backlog over %d rows: dropping the %d oldest", MAX_BACKLOG, lost)
            del batch.rows[:lost]
        for key, m in newer.members.items():
            if key in batch.members:
                m["first_seen"] = batch.members[key]["first_seen"]
            batch.members[key] = m
        batch.names.update(newer.names)
        batch.rooms.update(newer.rooms)
        batch.room_members.update(newer.room_members)
        self._pending = batch

    async def _write(self, session: AsyncSession, batch: _Pending) -> None:
        dialect = session.bind.dialect.name
        if batch.members:
            stmt = insert_for(dialect, Member.__table__)
            stmt = stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    # keep the last non-empty display name
                    "name": func.coalesce(func.nullif(stmt.excluded.name, ""), Member.__table__.c.name),
                    "last_seen": stmt.excluded.last_seen,
                },
            )
            await session.execute(stmt, list(batch.members.values()))
        if batch.names:
            stmt = insert_for(dialect, MemberName.__table__).on_conflict_do_nothing()
            await session.execute(
                stmt, [{"member_id": m, "name": n, "first_seen": at} for (m, n), at in batch.names.items()]
            )
        if batch.rooms:
            stmt = insert_for(dialect, Room.__table__)
            stmt = stmt.on_conflict_do_update(
                index_elements=["id"],
                set_={
                    "topic": func.coalesce(func.nullif(stmt.excluded.topic, ""), Room.__table__.c.topic),
                    "last_seen": stmt.excluded.last_seen,
                },
            )
            await session.execute(stmt, list(batch.rooms.values()))
        if batch.room_members:
            t = RoomMember.__table__
            stmt = insert_for(dialect, t)
            stmt = stmt.on_conflict_do_update(
                index_elements=["room_id", "member_id"],
                set_={
                    "last_seen": stmt.excluded.last_seen,
                    "active": stmt.excluded.active,
                    "left_at": stmt.excluded.left_at,
                    "joined_at": func.coalesce(stmt.excluded.joined_at, t.c.joined_at),
                    "inviter_id": func.coalesce(stmt.excluded.inviter_id, t.c.inviter_id),
                },
            )
            await session.execute(
                stmt,
                [
                    {
                        "room_id": r,
                        "member_id": m,
                        "first_seen": s.first_seen,
                        "last_seen": s.last_seen,
                        "active": s.active,
                        "joined_at": s.joined_at,
                        "left_at": s.left_at,
                        "inviter_id": s.inviter_id,
                    }
                    for (r, m), s in batch.room_members.items()
                ],
            )
        if batch.rows:
            await session.execute(insert(Activity), batch.rows)

    # -- background flusher -------------------------------------------------------------------------------------

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="activity-flusher")

    async def _run(self) -> None:
        while True:
            try:
                await asyncio.wait_for(self._wake.wait(), timeout=self.settings.flush_interval_s)
            except TimeoutError:
                pass
            self._wake.clear()
            await self.flush()

    async def aclose(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass
            self._task = None
        await self.flush()
        if self.backlog:
            log.error("activity store: %d rows could not be written at shutdown", self.backlog)
