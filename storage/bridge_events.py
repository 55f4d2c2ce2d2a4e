"""The bridge's accepted events (table ``bridge_events``): remember one or a batch (an event to hand on with its
payload, unhandled until marked), mark them handled, list the ones accepted but not handled, and prune the old ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fast
from storage.models import BridgeEvent

_T = BridgeEvent.__table__
_REMEMBER = {
    "sqlite": sqlite.insert(_T).values(id=bindparam("event_id"), received_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["id"]),
    "postgresql": postgresql.insert(_T).values(id=bindparam("event_id"), received_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["id"]),
}
_PRUNE = delete(_T).where(_T.c.received_at < bindparam("before"))


async def remember(session: AsyncSession, event_id: str, at: datetime) -> bool:
    """Note ``event_id`` as accepted at ``at``; False if it was accepted before (nothing changes then)."""
    statement = _REMEMBER[session.bind.dialect.name]
    return (await fast.execute(session, statement, {"event_id": event_id, "at": at})).rowcount == 1


BATCH_ROWS = 64  # ids per statement; a batch's statement is compiled once per padded size (1, 2, 4, … 64)
_BATCHES: dict[tuple[str, int], object] = {}


def _padded(items: list) -> list:
    """``items`` (not empty) padded to the next power of two with its last one: few sizes, each compiled once."""
    return items + [items[-1]] * ((1 << (len(items) - 1).bit_length()) - len(items))


def _remember_batch(dialect: str, n: int):
    """``INSERT … VALUES (…) × n ON CONFLICT DO NOTHING RETURNING id``: the ids it returns are the new ones."""
    statement = _BATCHES.get((dialect, n))
    if statement is None:
        make = sqlite.insert if dialect == "sqlite" else postgresql.insert
        rows = [{"id": bindparam(f"id{k}"), "received_at": bindparam(f"at{k}", type_=_T.c.received_at.type),
                 "payload": bindparam(f"p{k}", type_=_T.c.payload.type),
                 "handled_at": bindparam(f"h{k}", type_=_T.c.handled_at.type)}
                for k in range(n)]
        statement = _BATCHES[(dialect, n)] = (make(_T).values(rows).on_conflict_do_nothing(index_elements=["id"])
                                              .returning(_T.c.id))
    return statement


async def remember_many(session: AsyncSession, event_ids: list[str], at: datetime,
                        payloads: list[str | None] | None = None) -> list[bool]:
    """Note each of ``event_ids`` as accepted at ``at``, a few statements for the lot; for each, whether it is new
    (an id accepted before, or earlier in the same list, is not). An id with a payload (``payloads``, in the same
    order) is pending until ``mark_handled``; one without is handled already."""
    dialect = session.bind.dialect.name
    if payloads is None:
        payloads = [None] * len(event_ids)
    inserted: set[str] = set()
    for start in range(0, len(event_ids), BATCH_ROWS):
        padded = _padded(event_ids[start:start + BATCH_ROWS])  # a repeat of the last id changes nothing
        bodies = _padded(payloads[start:start + BATCH_ROWS])
        size = len(padded)
        params = {f"id{k}": event_id for k, event_id in enumerate(padded)}
        params.update({f"at{k}": at for k in range(size)})
        params.update({f"p{k}": body for k, body in enumerate(bodies)})
        params.update({f"h{k}": None if body is not None else at for k, body in enumerate(bodies)})
        result = await fast.execute(session, _remember_batch(dialect, size), params)
        inserted.update(row[0] for row in result.all())
    new = []
    for event_id in event_ids:
        new.append(event_id in inserted)
        inserted.discard(event_id)  # a second time in the same list is a duplicate
    return new


async def prune(session: AsyncSession, before: datetime) -> int:
    """Forget the ids accepted before ``before``; how many."""
    return (await fast.execute(session, _PRUNE, {"before": before})).rowcount


_DROP = update(_T).where(_T.c.id.in_(bindparam("ids", expanding=True))).values(
    handled_at=bindparam("at"), payload=None, dropped=bindparam("reason"))
_PENDING = (select(_T.c.id, _T.c.received_at, _T.c.payload).where(_T.c.handled_at.is_(None))
            .order_by(_T.c.received_at))


_MARK_ONE = update(_T).where(_T.c.id == bindparam("event_id")).values(handled_at=bindparam("at"), payload=None)


_MARKS: dict[int, object] = {}


def _mark_batch(n: int):
    """``UPDATE … WHERE id IN (n ids)``, built and compiled once per padded size."""
    statement = _MARKS.get(n)
    if statement is None:
        statement = _MARKS[n] = update(_T).where(_T.c.id.in_([bindparam(f"id{k}") for k in range(n)])).values(
            handled_at=bindparam("at"), payload=None)
    return statement


async def mark_handled(session: AsyncSession, event_ids: list[str], at: datetime) -> None:
    """The events ``event_ids`` were handled at ``at``: their payloads are not needed any more."""
    if len(event_ids) == 1:  # in the event's own transaction: the compiled-once path
        await fast.execute(session, _MARK_ONE, {"event_id": event_ids[0], "at": at})
        return
    for start in range(0, len(event_ids), BATCH_ROWS):
        padded = _padded(event_ids[start:start + BATCH_ROWS])  # the last id again: marked twice, the same
        params: dict = {f"id{k}": event_id for k, event_id in enumerate(padded)}
        params["at"] = at
        await fast.execute(session, _mark_batch(len(padded)), params)


async def drop(session: AsyncSession, event_ids: list[str], at: datetime, reason: str) -> None:
    """The events ``event_ids`` will not be handled, because of ``reason`` (≤ 64 characters)."""
    for start in range(0, len(event_ids), 500):
        await session.execute(_DROP, {"ids": event_ids[start:start + 500], "at": at, "reason": reason[:64]})


async def pending(session: AsyncSession) -> list[tuple[str, datetime, str | None]]:
    """The events accepted but neither handled nor dropped, oldest first: (id, received_at, payload)."""
    return [tuple(row) for row in (await session.execute(_PENDING)).all()]
