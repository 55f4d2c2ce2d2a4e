"""Points: an append-only ledger and a balance kept beside it, changed together, atomically.

Every change is a ledger row (who, how much, why, from which source, reference id, which admin). A
``(source, ref_id)`` pair can be recorded only once (a unique constraint), which makes check-ins, rewards and
refunds exactly-once even when two requests race. Balances never go below zero: a spend is a conditional UPDATE
that matches only when enough points are there, so concurrent spends can't overdraw.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models_points import PointsBalance, PointsLedger
from storage.upsert import insert_for


class InsufficientPoints(Exception):
    def __init__(self, balance: int, needed: int) -> None:
        super().__init__(f"balance {balance} < {needed}")
        self.balance = balance
        self.needed = needed


class AlreadyRecorded(Exception):
    """This (source, ref_id) is in the ledger already: the change happened before, exactly once."""


async def balance(session: AsyncSession, member_id: str) -> int:
    value = await session.scalar(select(PointsBalance.balance).where(PointsBalance.member_id == member_id))
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
) -> int:
    """Record ``delta`` (positive: earn, negative: spend) and return the new balance.

    Raises AlreadyRecorded if ``(source, ref_id)`` was recorded before, InsufficientPoints if a spend would take the
    balance below zero. Either way nothing changes (the work is done in a savepoint of the caller's transaction).
    """
    if delta == 0:
        raise ValueError("a points change of 0 records nothing")
    try:
        async with session.begin_nested():
            session.add(PointsLedger(member_id=member_id, delta=delta, reason=reason[:200], source=source,
                                     ref_id=ref_id, actor_id=actor_id, at=at))
            await session.flush()
            if delta > 0:
                stmt = insert_for(session.bind.dialect.name, PointsBalance.__table__).values(
                    member_id=member_id, balance=delta, updated_at=at)
                stmt = stmt.on_conflict_do_update(
                    index_elements=["member_id"],
                    set_={"balance": PointsBalance.__table__.c.balance + delta, "updated_at": at})
                await session.execute(stmt)
            else:
                result = await session.execute(
                    update(PointsBalance)
                    .where(PointsBalance.member_id == member_id, PointsBalance.balance >= -delta)
                    .values(balance=PointsBalance.balance + delta, updated_at=at)
                    .execution_options(synchronize_session=False))
                if result.rowcount == 0:
                    raise InsufficientPoints(await balance(session, member_id), -delta)
    except IntegrityError:
        raise AlreadyRecorded(f"{source}:{ref_id}") from None
    return await balance(session, member_id)


async def ledger_sum(session: AsyncSession, member_id: str) -> int:
    value = await session.scalar(select(func.sum(PointsLedger.delta)).where(PointsLedger.member_id == member_id))
    return value or 0


async def recorded(session: AsyncSession, source: str, ref_id: str) -> bool:
    found = await session.scalar(
        select(PointsLedger.id).where(PointsLedger.source == source, PointsLedger.ref_id == ref_id).limit(1))
    return found is not None
