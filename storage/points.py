"""Points: an append-only ledger and a balance kept beside it, changed together, atomically.

Every change is a ledger row (who, how much, why, from which source, reference id, which admin). A
``(source, ref_id)`` pair can be recorded only once (a unique constraint), which makes check-ins, rewards and
refunds exactly-once even when two requests race. Balances never go below zero: a spend is a conditional UPDATE
that matches only when enough points are there, so concurrent spends can't overdraw.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models_points import PointsBalance, PointsLedger
from storage.prepared import Prepared
from storage.upsert import insert_for


class InsufficientPoints(Exception):
    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(f"balance {balance} < {needed}")
        self.balance = balance
        self.needed = needed


class AlreadyRecorded(Exception):
    """This (source, ref_id) is in the ledger already: the change happened before, exactly once."""


# Statements built once, with bind parameters: building one per call cost more than running it.
_T = PointsBalance.__table__
_LEDGER_INSERT = Prepared(PointsLedger.__table__.insert())
_BALANCE = Prepared(select(_T.c.balance).where(_T.c.member_id == bindparam("m")))
_SPEND = Prepared(update(_T)
          .where(_T.c.member_id == bindparam("m"), _T.c.balance >= bindparam("need"))
          .values(balance=_T.c.balance - bindparam("need"), updated_at=bindparam("now"))
          .returning(_T.c.balance))
_EARN: dict[str, Prepared] = {}  # per dialect


def _earn(dialect: str) -> Prepared:
    stmt = _EARN.get(dialect)
    if stmt is None:
        ins = insert_for(dialect, _T)
        stmt = _EARN[dialect] = Prepared(ins.on_conflict_do_update(
            index_elements=["member_id"],
            set_={"balance": _T.c.balance + ins.excluded.balance, "updated_at": ins.excluded.updated_at},
        ).returning(_T.c.balance))
    return stmt


async def balance(session: AsyncSession, member_id: str) -> int:
    value = (await _BALANCE.run(await session.connection(), {"m": member_id})).scalar()
    return value or 0


async def change_points(
    session: AsyncSession,
    member_id: str,
    delta: int,
    *,
    reason: str,
    source: str,
    at: datetime,
    ref_id: str | None = None,
    actor_id: str | None = None,
    savepoint: bool = True,
) -> int:
    """Record ``delta`` (positive: earn, negative: spend) and return the new balance.

    Raises AlreadyRecorded if ``(source, ref_id)`` was recorded before, InsufficientPoints if a spend would take the
    balance below zero. Either way nothing changes (the work is done in a savepoint of the caller's transaction;
    ``savepoint=False`` when the caller already runs it inside its own savepoint, which then undoes it).
    """
    if delta == 0:
        raise ValueError("a points change of 0 records nothing")
    try:
        if not savepoint:
            return await _change(session, member_id, delta, reason, source, at, ref_id, actor_id)
        async with session.begin_nested():
            return await _change(session, member_id, delta, reason, source, at, ref_id, actor_id)
    except IntegrityError:
        raise AlreadyRecorded(f"{source}:{ref_id}") from None


async def _change(
    session: AsyncSession, member_id: str, delta: int, reason: str, source: str, at: datetime, ref_id: str | None,
    actor_id: str | None,
) -> int:
    # prepared Core statements, not the ORM unit of work: this runs on every check-in and redemption
    conn = await session.connection()
    await _LEDGER_INSERT.run(conn, {
        "member_id": member_id, "delta": delta, "reason": reason[:200], "source": source, "ref_id": ref_id,
        "actor_id": actor_id, "at": at})
    if delta > 0:
        return (await _earn(conn.dialect.name).run(
            conn, {"member_id": member_id, "balance": delta, "updated_at": at})).scalar()
    new_balance = (await _SPEND.run(conn, {"m": member_id, "need": -delta, "now": at})).scalar()
    if new_balance is None:
        raise InsufficientPoints(await balance(session, member_id), -delta)
    return new_balance


async def ledger_sum(session: AsyncSession, member_id: str) -> int:
    value = await session.scalar(select(func.sum(PointsLedger.delta)).where(PointsLedger.member_id == member_id))
    return value or 0


async def recorded(session: AsyncSession, source: str, ref_id: str) -> bool:
    found = await session.scalar(
        select(PointsLedger.id).where(PointsLedger.source == source, PointsLedger.ref_id == ref_id).limit(1))
    return found is not None
