"""The outbox: the messages the send governor must not lose, kept in the ``outbox`` table across restarts.

One mechanism for every message that waits. A message gets a row in one of two ways:

- **Staged in a transaction** (``stage``): ``ctx.send`` of a proactive message (every send from a job; a send with
  ``kind=`` from an event handler; any send with ``durable=True``) writes its row in the handler's own session, just
  before it commits, and hands the message to the governor only once the commit is through. The row and the work
  that decided it (a lottery's draw, a reminder's claim) commit together or not at all.
- **Kept by the governor** (``keep``) when it holds a message back — quiet hours, a room's gap, a lively room,
  back-off, the transport offline — or when the process stops with messages still waiting. Written behind: in a
  transaction of its own, moments later. Nothing committed depends on such a message (a reply, a coalesced
  confirmation), so a crash in that moment loses only what was always in memory anyway.

Ordinary replies that can go at once never get a row: the common path costs nothing.

Before the transport is called for a message with a row, the row is marked ``sending`` and that is committed; the
outcome (``sent``, ``dropped``, ``uncertain``, or back to ``pending`` when the transport said it sent nothing) is
written behind. At start (``resume``), rows still ``sending`` become ``uncertain``: the process stopped between the
mark and the outcome, the message may have arrived, and it is never sent again. ``pending`` rows go back to the
governor, which sends each once, or drops it as stale by the usual ``max_delay_s`` rules. Finished rows are deleted
after ``KEEP_FINISHED`` (the activity store keeps the history).
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from sqlalchemy import bindparam, delete, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Session

from bot.clock import Clock
from bot.events import OutgoingMessage, Priority, ProactiveKind
from bot.governor_stores import ActivityRecorder, OutboxEntry, OutboxStatus
from storage.models import OutboxMessage
from storage.prepared import Prepared
from storage.transactions import held

log = logging.getLogger(__name__)

KEEP_FINISHED = timedelta(days=30)
RETRY_MAX_S = 60.0  # a failed write-behind is tried again after 2, 4, … up to this many (wall) seconds

_T = OutboxMessage.__table__
_INSERT = insert(_T).returning(_T.c.id)
_INSERT_ONE = Prepared(_INSERT)
_INSERT_MANY = insert(_T).returning(_T.c.id, sort_by_parameter_order=True)
_SENDING = Prepared(update(_T).where(_T.c.id == bindparam("row_id"))
                    .values(status="sending", attempts=bindparam("n_attempts")))
_MARK = Prepared(update(_T).where(_T.c.id == bindparam("row_id"))
                 .values(status=bindparam("new_status"), reason=bindparam("why"), sent_at=bindparam("sent"),
                         attempts=bindparam("n_attempts")))
_STAGED = "outbox.staged"  # session.info key: entries to write before that session commits


def _row(entry: OutboxEntry, status: str = "pending") -> dict:
    m = entry.message
    return {"account_id": entry.account_id, "room_id": m.room_id, "user_id": m.user_id, "text": m.text,
            "mentions": list(m.mentions) or None, "priority": int(entry.priority),
            "kind": entry.kind.value if entry.kind is not None else None, "skill": entry.skill,
            "decided_at": entry.decided_at, "status": status, "reason": None, "attempts": entry.attempts,
            "sent_at": None, "audience": m.audience if m.audience != "member" else None}


# -- staged in the caller's transaction ------------------------------------------------------------------------------

def stage(session: AsyncSession, entry: OutboxEntry) -> None:
    """Write ``entry``'s row in ``session``'s transaction, just before it commits (a rollback takes it away too).
    Its ``id`` is set by the time the session's after-commit work runs."""
    held(session, _STAGED, "before_commit", _write_staged).append(entry)


def _write_staged(sync: Session) -> None:
    entries = sync.info.pop(_STAGED, None)
    if not entries:
        return
    conn = sync.connection()  # inside the commit, on its connection and transaction
    if len(entries) == 1:
        entries[0].id = conn.execute(_INSERT, _row(entries[0])).scalar_one()
        return
    ids = conn.execute(_INSERT_MANY, [_row(e) for e in entries]).scalars().all()
    for entry, row_id in zip(entries, ids, strict=True):
        entry.id = row_id


# -- the governor's side ---------------------------------------------------------------------------------------------

class Outbox:
    """The governor's outbox (bot.governor_stores.GovernorOutbox) on the database, plus ``resume`` at start."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._inserts: list[OutboxEntry] = []  # kept, not written yet
        self._marks: dict[OutboxEntry, tuple[str, str | None, datetime | None]] = {}  # latest outcome per entry
        self._lock = asyncio.Lock()
        self._task: asyncio.Task | None = None
        self._retry: asyncio.TimerHandle | None = None
        self._failures = 0
        self.written = 0  # rows and outcomes written behind (tests, diagnostics)

    # -- GovernorOutbox --------------------------------------------------------------------------------------------

    def keep(self, entry: OutboxEntry) -> None:
        if entry.id is None and entry not in self._inserts:
            self._inserts.append(entry)
            self._soon()

    def mark(self, entry: OutboxEntry, status: OutboxStatus, *, reason: str | None = None,
             at: datetime | None = None) -> None:
        self._marks[entry] = (status, reason, at)
        self._soon()

    async def sending(self, entry: OutboxEntry) -> None:
        async with self._lock:
            if entry.id is None and entry not in self._inserts:
                self._inserts.append(entry)
            self._marks.pop(entry, None)  # superseded: it is being sent now
            inserts, marks = self._take()
            try:
                async with self._sessions() as s, s.begin():
                    conn = await s.connection()
                    await self._write(conn, inserts, marks)
                    await _SENDING.run(conn, {"row_id": entry.id, "n_attempts": entry.attempts})
            except BaseException:
                self._put_back(inserts, marks)
                raise
            self._wrote(inserts, marks)

    # -- writing behind --------------------------------------------------------------------------------------------

    @property
    def waiting(self) -> int:
        """Rows and outcomes not written yet."""
        return len(self._inserts) + len(self._marks)

    def _soon(self) -> None:
        """Write what waits in a moment (a task of its own: the governor never waits for it)."""
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._flush_quietly(), name="outbox-flush")

    async def _flush_quietly(self) -> None:
        try:
            await self.flush()
        except Exception as exc:  # the database is away: keep it all, try again later (and at stop)
            self._failures += 1
            pause = min(RETRY_MAX_S, 2.0 ** self._failures)
            log.error("outbox write failed (%d waiting; next try in %.0f s): %s", self.waiting, pause, exc)
            if self._retry is None:
                def retry() -> None:
                    self._retry = None
                    self._soon()

                self._retry = asyncio.get_running_loop().call_later(pause, retry)

    async def flush(self) -> None:
        """Write every kept row and outcome now, in one transaction (raises if the database refuses)."""
        async with self._lock:
            inserts, marks = self._take()
            if not inserts and not marks:
                return
            try:
                async with self._sessions() as s, s.begin():
                    await self._write(await s.connection(), inserts, marks)
            except BaseException:
                self._put_back(inserts, marks)
                raise
            self._wrote(inserts, marks)

    def _take(self) -> tuple[list[OutboxEntry], dict]:
        inserts, self._inserts = self._inserts, []
        marks, self._marks = self._marks, {}
        return inserts, marks

    def _put_back(self, inserts: list[OutboxEntry], marks: dict) -> None:
        for entry in inserts:
            entry.id = None  # the transaction that gave it an id was rolled back
        self._inserts[:0] = inserts
        for entry, outcome in marks.items():
            self._marks.setdefault(entry, outcome)  # an outcome decided meanwhile is newer

    def _wrote(self, inserts: list[OutboxEntry], marks: dict) -> None:
        self._failures = 0
        self.written += len(inserts) + len(marks)

    @staticmethod
    async def _write(conn, inserts: list[OutboxEntry], marks: dict) -> None:
        for entry in inserts:  # a handful at a time: one by one, each id back at once
            outcome = marks.pop(entry, None)
            row = _row(entry)
            if outcome is not None:  # decided before it was even written
                row.update(status=outcome[0], reason=outcome[1], sent_at=outcome[2])
            entry.id = (await _INSERT_ONE.run(conn, row)).scalar()
        for entry, (status, reason, at) in marks.items():
            if entry.id is None:
                continue  # never kept (the governor ran without a row for it)
            await _MARK.run(conn, {"row_id": entry.id, "new_status": status, "why": reason,
                                   "sent": at if status == "sent" else None, "n_attempts": entry.attempts})

    async def aclose(self) -> None:
        """At stop: write what waits (the governor has kept everything it still holds)."""
        if self._retry is not None:
            self._retry.cancel()
            self._retry = None
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        try:
            await self.flush()
        except Exception as exc:
            log.error("outbox: %d rows or outcomes could not be written at stop: %s", self.waiting, exc)

    # -- at start ------------------------------------------------------------------------------------------------

    async def resume(self, activity: ActivityRecorder, account_id: str | None, *, shared: bool) -> list[OutboxEntry]:
        """What was left unfinished by the last run (of ``account_id`` only, on a ``shared`` database): rows still
        ``sending`` become ``uncertain`` (recorded as dropped, never resent); the ``pending`` ones are returned, in
        the order they were decided, for the governor to send once or drop as stale. Old finished rows go."""
        table = _T
        mine = [table.c.account_id == account_id] if shared else []
        now = self._clock.now()
        async with self._sessions() as s, s.begin():
            unsure = (await s.execute(select(table).where(table.c.status == "sending", *mine))).all()
            if unsure:
                await s.execute(update(table).where(table.c.id.in_([r.id for r in unsure]))
                                .values(status="uncertain", reason="restart"))
            rows = (await s.execute(select(table).where(table.c.status == "pending", *mine)
                                    .order_by(table.c.id))).all()
            await s.execute(delete(table).where(table.c.status.in_(("sent", "dropped", "uncertain")),
                                                table.c.decided_at < now - KEEP_FINISHED, *mine))
        for r in unsure:
            log.warning("outbox: a message to %s was being sent when the bot stopped; it may have arrived, so it is "
                        "not sent again: %s", r.room_id or r.user_id, r.text[:80])
            activity.record("send_dropped", room_id=r.room_id, member_id=r.user_id, skill=r.skill,
                            detail={"reason": "uncertain", "text": r.text[:200], "kind": r.kind or "reply"})
        if rows:
            log.info("outbox: %d messages left waiting by the last run go back to the send governor", len(rows))
        return [_entry(r) for r in rows]


def _entry(r) -> OutboxEntry:
    message = OutgoingMessage(r.text, room_id=r.room_id, user_id=r.user_id, mentions=tuple(r.mentions or ()),
                              audience=r.audience or "member")
    return OutboxEntry(message, Priority(r.priority), ProactiveKind(r.kind) if r.kind else None, r.skill,
                       r.decided_at, r.account_id, r.id, r.attempts)
