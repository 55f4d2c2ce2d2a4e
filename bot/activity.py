"""The activity store's writer: every interaction appended, in batches.

``record`` only appends to memory (no I/O on the hot path). A batch is written as soon as ``flush_max_rows``
are waiting (by the event that filled it), and a clock timer writes whatever waits every ``flush_interval_s``,
which bounds what a crash can lose; ``aclose`` writes the rest. The member and room directory (names
seen, rooms, first/last seen) rides on the same batches, so ordinary chatter costs no database round trip.

On a virtual clock (replay, tests) the timer runs in virtual time (no row waits more than VIRTUAL_FLUSH_S of it),
and a full batch is written before the next event is handled: what a read sees depends only on the script, never on how fast the
machine ran it (a wall-time timer once made /tier and /export differ from run to run of one script).

The store never stops over bad data: a batch the database refuses for a row's sake (a data error: too long, a NUL
byte, a type it can't bind) is written piece by piece, and the rows it refuses are set aside (counted, kept in
memory, logged by table, column and error class, never by value). Only failures that may pass (connection lost,
database locked or full) keep the batch for a later try.

Activity kinds: message, command, refused, sent, send_dropped, send_failed, join, leave, error, job.
Skills add their own: opt_out, schedule, order and reminder (the orders contract is in README.md).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from typing import Protocol

import orjson
from sqlalchemy import JSON, Boolean, DateTime, String, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, TimerHandle, VirtualClock
from bot.config import ActivitySettings
from bot.events import Person
from storage.models import AccountRoom, Activity, Member, MemberName, Room, RoomMember
from storage.bulk import Write, write_with_session
from storage.errors import describe, error_class, is_data_error
from storage.members import scrub_detail

log = logging.getLogger(__name__)


class WriteBehind(Protocol):
    """State another component keeps in memory and has written with the activity batches (the governor's
    counters): taken at each flush, put back if the flush failed."""

    def take_writes(self) -> list[Write]: ...

    def put_back(self, writes: list[Write]) -> None: ...

# If the database stays down, keep at most this many rows waiting; beyond it the oldest are dropped (and said so).
MAX_BACKLOG = 200_000
SEEN_PRECISION = timedelta(hours=1)  # how stale members.last_seen may be (the activity log is exact)
# how stale room_members.last_seen may be: nothing reads it finer than the day, and refreshing it hourly was half
# of the directory's writes on a busy day (a member's row per room, upserted at most once a day this way)
ROOM_SEEN_PRECISION = timedelta(days=1)
MEMO_LIMIT = 500_000
BACKPRESSURE = 4  # batches waiting behind an unfinished write before handling waits for it
SET_ASIDE_KEPT = 1000  # rows the database refused, kept in memory for a look (the count goes on)
FAILURE_LOG_EVERY_S = 60.0  # a database that stays down is reported once a minute, not at every try
# The timed write's period in virtual time (replay, tests): a replay compresses a day into seconds, and a
# transaction every virtual second (flush_interval_s) made it several times slower (docs/benchmarks.md). Five
# minutes of the script's time keeps reads deterministic and bounded-stale for a few percent; a read that must be
# current flushes first (as /kb misses does).
VIRTUAL_FLUSH_S = 600.0


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
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], clock: Clock, settings: ActivitySettings,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self.settings = settings
        self.account_id: str | None = None  # the logged-in account: the rooms it hears from are noted as its own
        self._account_rooms: set[tuple[str, str]] = set()
        self._pending = _Pending()
        self._known_names: set[tuple[str, str]] = set()
        self._written_members: dict[str, tuple[str, datetime]] = {}  # id -> (name, last_seen) as last written
        self._written_rooms: dict[str, tuple[str, datetime]] = {}
        self._written_pairs: dict[tuple[str, str], datetime] = {}
        self._topics_looked_up: set[str] = set()
        self._leftover: list[Write] = []  # not yet written when the database went away mid-salvage
        self._lock = asyncio.Lock()
        self._virtual = isinstance(clock, VirtualClock)
        # seconds for the retry pause: the clock's in virtual time (deterministic), else monotonic
        self._seconds = (lambda: clock.now().timestamp()) if self._virtual else time.monotonic
        self._started = False
        self._timer: TimerHandle | None = None
        self._taken_at: datetime | None = None  # when the last flush took its batch: what waits arrived since
        self._inflight: asyncio.Task | None = None
        self._write_behind: list[WriteBehind] = []
        # members whose data is being erased → (pseudonym, until): see forget()
        self._forgetting: dict[str, tuple[str, datetime]] = {}
        self._failures = 0
        self._retry_at = 0.0  # (self._seconds) before which only explicit flushes try again
        self._failure_logged_at: float | None = None
        self._failures_unlogged = 0
        self.flushes = 0
        self.rows_written = 0
        self.last_flush_error: BaseException | None = None
        self.set_aside_count = 0  # rows the database refused, since start (a /health figure)
        # the latest of them: (table, row, error class)
        self.set_aside: deque[tuple[str, dict, str]] = deque(maxlen=SET_ASIDE_KEPT)

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
        if self._forgetting and member_id in self._forgetting:
            member_id, detail = self._stand_in(member_id, detail)
        self._pending.rows.append(
            {
                "at": at or self._clock.now(),
                "room_id": room_id,
                "member_id": member_id,
                "kind": kind,
                "skill": skill,
                "detail": dict(detail) if detail else detail,  # a snapshot: the caller may reuse its dict
            }
        )
        if self._timer is None:
            self._wake()

    def seen(self, person: Person, at: datetime, room_id: str | None = None, room_topic: str | None = None) -> None:
        """Keep the member (and room) records current.

        ``last_seen`` is kept to within SEEN_PRECISION: a member who chats all afternoon costs one write an hour,
        not one a message (the activity log itself has every instant).
        """
        if self._forgetting and person.id in self._forgetting and self._stand_in(person.id, None)[0] != person.id:
            return  # being erased: not written back into the directory by the erasing event itself
        p = self._pending
        m = p.members.get(person.id)
        if m is not None:
            m["last_seen"] = at
            if person.name:
                m["name"] = person.name
        else:
            written = self._written_members.get(person.id)
            if written is None or (person.name and person.name != written[0]) or at - written[1] >= SEEN_PRECISION:
                p.members[person.id] = {"id": person.id, "name": person.name, "first_seen": at, "last_seen": at}
                self._written_members[person.id] = (person.name or (written[0] if written else ""), at)
        if person.name and (person.id, person.name) not in self._known_names:
            self._known_names.add((person.id, person.name))
            p.names.setdefault((person.id, person.name), at)
        if room_id:
            self._room_seen(room_id, room_topic, at)
            key = (room_id, person.id)
            rm = p.room_members.get(key)
            if rm is not None:
                rm.last_seen = at
            else:
                written_at = self._written_pairs.get(key)
                if written_at is None or at - written_at >= ROOM_SEEN_PRECISION:
                    p.room_members[key] = _RoomMemberState(first_seen=at, last_seen=at)
                    self._written_pairs[key] = at
        self._bound_memos()
        if self._timer is None and len(p):
            self._wake()

    def joined(self, room_id: str, person: Person, at: datetime, inviter_id: str | None, room_topic: str | None) -> None:
        self.seen(person, at, room_id, room_topic)
        rm = self._pair(room_id, person.id, at)
        rm.active, rm.joined_at, rm.left_at, rm.inviter_id = True, at, None, inviter_id

    def left(self, room_id: str, member_id: str, at: datetime) -> None:
        self._room_seen(room_id, None, at)
        rm = self._pair(room_id, member_id, at)
        rm.active, rm.left_at = False, at
        if self._timer is None:
            self._wake()

    def _pair(self, room_id: str, member_id: str, at: datetime) -> _RoomMemberState:
        key = (room_id, member_id)
        rm = self._pending.room_members.get(key)
        if rm is None:
            rm = self._pending.room_members[key] = _RoomMemberState(first_seen=at, last_seen=at)
            self._written_pairs[key] = at
        return rm

    def _room_seen(self, room_id: str, topic: str | None, at: datetime) -> None:
        r = self._pending.rooms.get(room_id)
        if r is not None:
            r["last_seen"] = at
            if topic:
                r["topic"] = topic
        else:
            written = self._written_rooms.get(room_id)
            if written is not None and not (topic and topic != written[0]) and at - written[1] < SEEN_PRECISION:
                return
            self._pending.rooms[room_id] = {"id": room_id, "topic": topic or "", "first_seen": at, "last_seen": at}
            self._written_rooms[room_id] = (topic or (written[0] if written else ""), at)

    def _bound_memos(self) -> None:
        # The memos only save writes; forgetting them costs a few redundant upserts, never data.
        for memo in (self._written_members, self._written_rooms, self._written_pairs, self._known_names):
            if len(memo) > MEMO_LIMIT:
                memo.clear()

    async def room_topic(self, room_id: str) -> str | None:
        """The room's latest known topic: from this process's events, else (once per room) from the database."""
        pending = self._pending.rooms.get(room_id)
        if pending is not None and pending["topic"]:
            return pending["topic"]
        written = self._written_rooms.get(room_id)
        if written is not None and written[0]:
            return written[0]
        if room_id in self._topics_looked_up:
            return None
        self._topics_looked_up.add(room_id)
        async with self._sessions() as session:
            topic = await session.scalar(select(Room.topic).where(Room.id == room_id))
        if topic:
            self._written_rooms.setdefault(room_id, (topic, datetime.min.replace(tzinfo=UTC)))
        return topic or None

    async def note_account_room(self, room_id: str, at: datetime) -> None:
        """The account heard from this room, so it is in it: written at once, the first time in this process
        (not with the batches: another process deciding who runs a room's jobs must not wait for a flush)."""
        key = (self.account_id, room_id)
        if not self.account_id or key in self._account_rooms:
            return
        self._account_rooms.add(key)
        try:
            async with self._sessions() as session, session.begin():
                await write_with_session(session, [Write(AccountRoom.__table__, [
                    {"account_id": self.account_id, "room_id": room_id, "last_seen": at}],
                    key=("account_id", "room_id"), update={"last_seen": "excluded.last_seen"})])
        except Exception as exc:  # the database is away: try again with this room's next event
            self._account_rooms.discard(key)
            log.warning("could not note a room for the account: %s", describe(exc))  # ids are member data

    # -- erasure (bot/privacy.py) --------------------------------------------------------------------------------

    def forget(self, member_id: str, stand_in: str, until: datetime) -> None:
        """A member's data is being erased (flush first: what was waiting is then in the database, erased there).
        Nothing about them waits to be written any more, and until ``until`` (or :meth:`remember`) what is recorded
        about them — the erasing event's own message row, the reply to it — is recorded under ``stand_in``, its
        typed text left out, and not put back into the member directory."""
        p = self._pending
        for row in p.rows:
            if row["member_id"] == member_id:
                row["member_id"] = stand_in
                row["detail"] = scrub_detail(row["detail"], member_id, stand_in)
        p.members.pop(member_id, None)
        for key in [k for k in p.names if k[0] == member_id]:
            del p.names[key]
        for key in [k for k in p.room_members if k[1] == member_id]:
            del p.room_members[key]
        # the memos must not keep a member who comes back later from being written again
        self._written_members.pop(member_id, None)
        self._written_pairs = {k: v for k, v in self._written_pairs.items() if k[1] != member_id}
        self._known_names = {k for k in self._known_names if k[0] != member_id}
        self._forgetting[member_id] = (stand_in, until)

    def remember(self, member_id: str) -> None:
        """The erasure is over: the member is recorded as anyone else again (as a new member)."""
        self._forgetting.pop(member_id, None)

    def _stand_in(self, member_id: str, detail: dict | None) -> tuple[str, dict | None]:
        stand_in, until = self._forgetting[member_id]
        if self._clock.now() > until:  # the erasure was rolled back, or its reply never went out
            del self._forgetting[member_id]
            return member_id, detail
        return stand_in, scrub_detail(detail, member_id, stand_in)

    def add_write_behind(self, source: WriteBehind) -> None:
        self._write_behind.append(source)

    @property
    def backlog(self) -> int:
        return len(self._pending) + sum(len(w.rows) for w in self._leftover)

    # -- writing ------------------------------------------------------------------------------------------------

    async def flush(self) -> int:
        """Write everything waiting in one transaction; on failure keep it for the next try. Returns rows written.

        Shielded: a write handed to the database can't be called back, so a cancelled caller must not put the
        batch back for a second write (that once doubled rows at shutdown).
        """
        return await asyncio.shield(self._flush())

    async def _flush(self) -> int:
        async with self._lock:
            batch, self._pending = self._pending, _Pending()
            self._taken_at = self._clock.now()
            behind = [(source, source.take_writes()) for source in self._write_behind]
            leftover, self._leftover = self._leftover, []
            if not len(batch) and not leftover and not any(w.rows for _, writes in behind for w in writes):
                return 0
            writes = [w for w in (*leftover, *self._plan(batch), *(w for _, ws in behind for w in ws)) if w.rows]
            try:
                await self._write(writes)
            except Exception as exc:
                if not is_data_error(exc):  # may pass: keep it all for the next try
                    self._leftover = leftover
                    for source, ws in behind:
                        source.put_back(ws)
                    self._requeue(batch)
                    self._failed(exc)
                    return 0
                written, unwritten, transient = await self._salvage(writes)
                if transient is not None:
                    self._leftover = unwritten
                    self._failed(transient)
                    self.rows_written += written
                    return written
            else:
                written = sum(len(w.rows) for w in writes if w.table is _ACTIVITY)
            self._succeeded()
            self.rows_written += written
            return written

    async def _write(self, writes: list[Write]) -> None:
        async with self._sessions() as session, session.begin():
            await write_with_session(session, writes)

    async def _salvage(self, writes: list[Write]) -> tuple[int, list[Write], BaseException | None]:
        """Write what the database takes of a batch it refused for a row's sake: each table alone, a refused part
        halved until the rows it refuses stand alone; those are set aside. Returns (activity rows written, what
        is still unwritten, the error) when a failure that may pass stops it."""
        written = 0
        refused: list[tuple[Write, dict, BaseException]] = []
        todo = list(reversed(writes))  # a stack, first write on top
        transient = None
        while todo:
            part = todo.pop()
            try:
                await self._write([part])
            except Exception as exc:
                if not is_data_error(exc):
                    todo.append(part)
                    transient = exc
                    break
                if len(part.rows) == 1:
                    refused.append((part, part.rows[0], exc))
                else:
                    half = len(part.rows) // 2
                    todo.append(replace(part, rows=part.rows[half:]))
                    todo.append(replace(part, rows=part.rows[:half]))
                continue
            if part.table is _ACTIVITY:
                written += len(part.rows)
        if refused:
            self._set_aside(refused)
        return written, list(reversed(todo)), transient

    def _set_aside(self, refused: list[tuple[Write, dict, BaseException]]) -> None:
        """Keep the refused rows aside and say so in one line: table, column and error class, never a value."""
        self.set_aside_count += len(refused)
        causes: dict[str, int] = {}
        for write, row, exc in refused:
            kind = error_class(exc)
            self.set_aside.append((write.table.name, row, kind))
            cause = f"{write.table.name}.{refused_column(write, row)}: {kind}"
            causes[cause] = causes.get(cause, 0) + 1
        log.error("activity store: set aside %d row(s) the database refused (%s); the rest was written; "
                  "%d set aside since start", len(refused),
                  "; ".join(f"{c} x{n}" if n > 1 else c for c, n in causes.items()), self.set_aside_count)

    def _failed(self, exc: BaseException) -> None:
        self.last_flush_error = exc
        self._failures += 1
        pause = min(60.0, 2.0**self._failures)
        now = self._seconds()
        self._retry_at = now + pause
        if self._failure_logged_at is not None and now - self._failure_logged_at < FAILURE_LOG_EVERY_S:
            self._failures_unlogged += 1
            return
        also = f"; {self._failures_unlogged} more failed tries since the last report" if self._failures_unlogged else ""
        log.error("activity flush failed (%d rows kept; next try in %.0f s): %s%s", self.backlog, pause,
                  describe(exc), also)
        self._failure_logged_at, self._failures_unlogged = now, 0

    def _succeeded(self) -> None:
        if self._failure_logged_at is not None:
            log.info("activity store writing again after %d failed tries", self._failures)
        self.last_flush_error = None
        self._failures = 0
        self._retry_at = 0.0
        self._failure_logged_at, self._failures_unlogged = None, 0
        self.flushes += 1

    def _requeue(self, batch: _Pending) -> None:
        """Put a failed batch back in front of what arrived meanwhile; newer directory state wins."""
        newer = self._pending
        batch.rows.extend(newer.rows)
        if len(batch.rows) > MAX_BACKLOG:
            lost = len(batch.rows) - MAX_BACKLOG
            log.error("activity backlog over %d rows: dropping the %d oldest", MAX_BACKLOG, lost)
            del batch.rows[:lost]
        # merged as the upserts in _plan would merge them, had the failed batch been written
        for key, m in newer.members.items():
            if (old := batch.members.get(key)) is not None:
                m["first_seen"] = old["first_seen"]
                m["name"] = m["name"] or old["name"]
            batch.members[key] = m
        batch.names.update(newer.names)
        for key, r in newer.rooms.items():
            if (old := batch.rooms.get(key)) is not None:
                r["first_seen"] = old["first_seen"]
                r["topic"] = r["topic"] or old["topic"]
            batch.rooms[key] = r
        for key, rm in newer.room_members.items():
            if (prev := batch.room_members.get(key)) is not None:
                rm.first_seen = prev.first_seen
                rm.joined_at = rm.joined_at or prev.joined_at
                rm.inviter_id = rm.inviter_id or prev.inviter_id
            batch.room_members[key] = rm
        self._pending = batch

    @staticmethod
    def _plan(batch: _Pending) -> list[Write]:
        return [
            Write(Member.__table__, list(batch.members.values()), key=("id",),
                  # keep the last non-empty display name; first_seen stays as first written
                  update={"name": "coalesce(nullif(excluded.name, ''), members.name)",
                          "last_seen": "excluded.last_seen"}),
            Write(MemberName.__table__,
                  [{"member_id": m, "name": n, "first_seen": at} for (m, n), at in batch.names.items()],
                  key=("member_id", "name"), ignore=True),
            Write(Room.__table__, list(batch.rooms.values()), key=("id",),
                  update={"topic": "coalesce(nullif(excluded.topic, ''), rooms.topic)",
                          "last_seen": "excluded.last_seen"}),
            Write(RoomMember.__table__,
                  [{"room_id": r, "member_id": m, "first_seen": s.first_seen, "last_seen": s.last_seen,
                    "active": s.active, "joined_at": s.joined_at, "left_at": s.left_at, "inviter_id": s.inviter_id}
                   for (r, m), s in batch.room_members.items()],
                  key=("room_id", "member_id"),
                  update={"last_seen": "excluded.last_seen", "active": "excluded.active",
                          "left_at": "excluded.left_at",
                          "joined_at": "coalesce(excluded.joined_at, room_members.joined_at)",
                          "inviter_id": "coalesce(excluded.inviter_id, room_members.inviter_id)"}),
            Write(Activity.__table__, batch.rows),
        ]

    # -- background flusher -------------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the timed writes: on a real clock every ``flush_interval_s``; on a virtual one VIRTUAL_FLUSH_S
        after something arrives (a timer per tick of an idle month would be millions)."""
        self._started = True
        if not self._virtual:
            self._wake()

    def _wake(self) -> None:
        if self._timer is None and self._started:
            self._timer = self._clock.call_later(self._period, self._timed_flush, "activity-flush")

    @property
    def _period(self) -> float:
        return max(self.settings.flush_interval_s, VIRTUAL_FLUSH_S) if self._virtual else self.settings.flush_interval_s

    async def _timed_flush(self) -> None:
        self._timer = None
        if self._virtual and self._taken_at is not None:
            due = self._taken_at + timedelta(seconds=self._period)
            if self._clock.now() < due:
                # a full batch was written since: what waits is younger than a period, so no write yet (a busy
                # replay then writes only full batches, as many as before the timer ran in virtual time)
                self._timer = self._clock.call_at(due, self._timed_flush, "activity-flush")
                return
        try:
            if self._seconds() >= self._retry_at:
                await self.flush()
        finally:
            if not self._virtual or self.backlog:
                self._wake()

    async def flush_if_full(self) -> None:
        """Called after each handled event: under load, batches are started by the events that fill them.

        The write runs beside event handling (a task). Handling ordinary chatter never awaits anything, so while
        a write is in flight each event yields to the loop once, letting the write's steps complete; and if the
        backlog still outgrows BACKPRESSURE batches, the event waits for the write (never unbounded memory).
        """
        if self._seconds() < self._retry_at:
            return  # the database failed a moment ago: don't hammer it from every event
        waiting = len(self._pending.rows)
        if self._virtual:
            if waiting >= self.settings.flush_max_rows:
                await self.flush()  # before the next event: the replay can't depend on how fast this write is
            return
        inflight = self._inflight is not None and not self._inflight.done()
        if inflight:
            if waiting >= BACKPRESSURE * self.settings.flush_max_rows:
                await asyncio.shield(self._inflight)
            else:
                await asyncio.sleep(0)
            return
        if waiting >= self.settings.flush_max_rows:
            self._inflight = asyncio.get_running_loop().create_task(self.flush(), name="activity-flush")
            await asyncio.sleep(0)  # let it take its batch now

    async def aclose(self) -> None:
        self._started = False
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        if self._inflight is not None:
            await asyncio.gather(self._inflight, return_exceptions=True)
            self._inflight = None
        await self.flush()
        if self.backlog:
            log.error("activity store: %d rows could not be written at shutdown", self.backlog)


_ACTIVITY = Activity.__table__


def refused_column(write: Write, row: dict) -> str:
    """The column of ``row`` the database most likely refused (checked against the table's definition), or "?"."""
    for name, value in row.items():
        column = write.table.c.get(name)
        if column is None:
            continue
        if value is None:
            if not column.nullable:
                return name
            continue
        kind = getattr(column.type, "impl", column.type)
        if isinstance(kind, String):
            if not isinstance(value, str) or "\x00" in value or (kind.length and len(value) > kind.length):
                return name
            try:
                value.encode("utf-8")
            except UnicodeEncodeError:
                return name
        elif isinstance(kind, DateTime):
            try:
                value.astimezone(UTC)
            except (AttributeError, OverflowError, ValueError):
                return name
        elif isinstance(kind, JSON):
            try:
                orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
            except TypeError:
                return name
        elif isinstance(kind, Boolean) and not isinstance(value, bool):
            return name
    return "?"
