"""Points: an append-only ledger and a balance kept beside it, changed together, atomically.

Every change is a ledger row (who, how much, why, from which source, reference id, which admin). A
``(source, ref_id)`` pair can be recorded only once (a unique constraint), which makes check-ins, rewards and
refunds exactly-once even when two requests race. Balances never go below zero: a spend is a conditional UPDATE
that matches only when enough points are there, so concurrent spends can't overdraw.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import bindparam, case, delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.members import like_anywhere
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


# -- a member's own data (PIPL: bot/privacy.py) ----------------------------------------------------------------------

@dataclass(frozen=True)
class LedgerSummary:
    balance: int
    rows: int
    earned: int  # sum of the positive changes
    spent: int  # sum of the negative ones, as a positive number
    recent: list[tuple[datetime, int, str]]  # (at, delta, reason), newest first


async def ledger_summary(session: AsyncSession, member_id: str, recent: int = 5) -> LedgerSummary:
    earned, spent, rows = (await session.execute(
        select(func.coalesce(func.sum(case((PointsLedger.delta > 0, PointsLedger.delta), else_=0)), 0),
               func.coalesce(func.sum(case((PointsLedger.delta < 0, -PointsLedger.delta), else_=0)), 0),
               func.count()).where(PointsLedger.member_id == member_id))).one()
    latest = (await session.execute(
        select(PointsLedger.at, PointsLedger.delta, PointsLedger.reason).where(PointsLedger.member_id == member_id)
        .order_by(PointsLedger.at.desc(), PointsLedger.id.desc()).limit(recent))).all()
    return LedgerSummary(await balance(session, member_id), int(rows), int(earned), int(spent),
                         [(at, delta, reason) for at, delta, reason in latest])


_L = PointsLedger.__table__
_SET_REF = update(_L).where(_L.c.id == bindparam("row_id")).values(ref_id=bindparam("new_ref"))


def _rename_ref(ref: str, member_id: str, stand_in: str) -> str:
    """Reference ids are ":"-separated words ("member:2026-11-23", "lottery:12:entry:member"): the member's id is a
    whole word of them."""
    if ":" in member_id:
        return ref.replace(member_id, stand_in)
    return ":".join(stand_in if part == member_id else part for part in ref.split(":"))


async def pseudonymise(session: AsyncSession, member_id: str, stand_in: str) -> int:
    """Hand a member's points over to ``stand_in`` (an erasure): the ledger stays whole, its rows naming the member —
    as the member, in a reference id (a check-in's ``member:date``) or as the admin behind a change — name the
    stand-in; the balance row moves with them, so every balance still equals its ledger. Returns rows changed."""
    changed = (await session.execute(update(_L).where(_L.c.member_id == member_id)
                                     .values(member_id=stand_in))).rowcount or 0
    changed += (await session.execute(update(_L).where(_L.c.actor_id == member_id)
                                      .values(actor_id=stand_in))).rowcount or 0
    refs = (await session.execute(select(_L.c.id, _L.c.source, _L.c.ref_id)
                                  .where(_L.c.ref_id.like(like_anywhere(member_id), escape="\\")))).all()
    if refs:
        # (source, ref_id) is unique: a second erasure of the same id (the member came back) must not collide
        taken = set((await session.execute(select(_L.c.source, _L.c.ref_id).where(
            _L.c.ref_id.like(f"%{stand_in}%")))).all())
        renamed = []
        for row_id, source, ref in refs:
            base = _rename_ref(ref, member_id, stand_in)
            if base == ref:
                continue  # the id was part of a longer one (wxid_a in wxid_ab:...): not this member's
            new, n = base[:200], 1
            while (source, new) in taken:
                n += 1
                new = f"{base[:190]}~{n}"
            taken.add((source, new))
            renamed.append({"row_id": row_id, "new_ref": new})
        if renamed:
            await session.execute(_SET_REF, renamed)
            changed += len(renamed)
    moved = (await session.execute(select(_T.c.balance, _T.c.updated_at).where(_T.c.member_id == member_id))).first()
    if moved is not None:
        conn = await session.connection()
        await _earn(conn.dialect.name).run(conn, {"member_id": stand_in, "balance": moved.balance,
                                                  "updated_at": moved.updated_at})
        await session.execute(delete(_T).where(_T.c.member_id == member_id))
        changed += 1
    return changed
