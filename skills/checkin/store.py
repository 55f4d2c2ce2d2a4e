"""Queries of the check-in skill. Each takes the caller's session; nothing here commits.

Points always move through storage.points.change_points (ledger + balance together); this module adds the
per-day check-in rows, reward stock and redemptions around it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, Room, RoomMember
from skills.checkin.models import Checkin, Redemption, RewardStock
from storage.models_points import PointsBalance, PointsLedger
from storage.points import AlreadyRecorded, change_points
from storage import fast
from storage.fast import savepoint
from storage.upsert import insert_for


class OutOfStock(Exception):
    pass


# built once and run on the fast path (storage/fast.py)
_CHECKIN_INSERT = (Checkin.__table__.insert())
_LAST_CHECKIN = (select(Checkin.local_date, Checkin.streak).where(Checkin.member_id == bindparam("m"))
                         .order_by(Checkin.local_date.desc()).limit(1))
_MY_BALANCE = (select(PointsBalance.balance).where(PointsBalance.member_id == bindparam("m")))
_ABOVE = (select(func.count()).where(PointsBalance.balance > bindparam("b")))
_ROOM_TOP = (select(PointsBalance.member_id, Member.name, PointsBalance.balance)
             .join(RoomMember, RoomMember.member_id == PointsBalance.member_id)
             .outerjoin(Member, Member.id == PointsBalance.member_id)
             .where(RoomMember.room_id == bindparam("room"), RoomMember.active.is_(True), PointsBalance.balance > 0)
             .order_by(PointsBalance.balance.desc(), PointsBalance.member_id)
             .limit(bindparam("n")))
_STOCK = select(RewardStock.item, RewardStock.stock).where(RewardStock.item.in_(bindparam("items", expanding=True)))
_MEMBER_NAME = (select(Member.name).where(Member.id == bindparam("m")))


@dataclass(frozen=True, slots=True)
class LastCheckin:
    local_date: str  # ISO date
    streak: int


async def last_checkin(session: AsyncSession, member_id: str) -> LastCheckin | None:
    row = (await fast.execute(session, _LAST_CHECKIN, {"m": member_id})).first()
    return LastCheckin(row[0], row[1]) if row is not None else None


async def record_checkin(
    session: AsyncSession, member_id: str, day: date, streak: int, points: int, *, at: datetime,
    room_id: str | None, reason: str,
) -> int:
    """Award the day's points and note the check-in, together; return the new balance.

    Raises AlreadyRecorded when this member already checked in on ``day`` (even by a racing request): then
    nothing changes. The ledger's unique (source, ref_id) is the guard; the checkins row rides on it.
    """
    try:
        async with savepoint(session):  # one savepoint for both rows
            new_balance = await change_points(session, member_id, points, reason=reason, source="checkin",
                                              ref_id=f"{member_id}:{day.isoformat()}", at=at, savepoint=False)
            await fast.execute(session, _CHECKIN_INSERT, {
                "member_id": member_id, "local_date": day.isoformat(), "streak": streak, "points": points,
                "room_id": room_id, "at": at})
    except IntegrityError:  # the checkins row of a racing request that got past the ledger first
        raise AlreadyRecorded(f"checkin:{member_id}:{day}") from None
    return new_balance


async def standing(session: AsyncSession, member_id: str) -> tuple[int, int | None]:
    """(balance, rank among all members by balance; ties share a rank; None without any points)."""
    mine = (await fast.execute(session, _MY_BALANCE, {"m": member_id})).scalar()
    if not mine:
        return 0, None
    above = (await fast.execute(session, _ABOVE, {"b": mine})).scalar()
    return mine, (above or 0) + 1


async def room_top(session: AsyncSession, room_id: str, limit: int) -> list[tuple[str, str, int]]:
    """(member id, name, balance) of the room's current members with points, highest first."""
    rows = (await fast.execute(session, _ROOM_TOP, {"room": room_id, "n": limit})).all()
    return [(m, n or m, b) for m, n, b in rows]


async def member_name(session: AsyncSession, member_id: str) -> str | None:
    return (await fast.execute(session, _MEMBER_NAME, {"m": member_id})).scalar()


async def seed_stock(session: AsyncSession, stock: dict[str, int], at: datetime) -> None:
    """Create stock rows for rewards not seen before; existing rows keep their count (a restart must not
    refill what members already redeemed)."""
    if not stock:
        return
    stmt = insert_for(session.bind.dialect.name, RewardStock.__table__).values(
        [{"item": item, "stock": n, "updated_at": at} for item, n in stock.items()])
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["item"]))


async def stock_of(session: AsyncSession, items: list[str]) -> dict[str, int]:
    if not items:
        return {}
    return dict((await fast.execute(session, _STOCK, {"items": items})).all())  # an IN list of any length


async def redeem(
    session: AsyncSession, member_id: str, item: str, cost: int, *, at: datetime, room_id: str | None,
    member_name: str = "",
) -> tuple[Redemption, int]:
    """Take one from stock, spend the points, write the redemption — all or nothing; return it and the balance.

    Raises OutOfStock, or storage.points.InsufficientPoints; either way nothing changes. The stock is a
    conditional UPDATE (stock > 0), so racing redemptions can't take it below zero.
    """
    async with session.begin_nested():
        taken = await session.execute(
            update(RewardStock).where(RewardStock.item == item, RewardStock.stock > 0)
            .values(stock=RewardStock.stock - 1, updated_at=at).execution_options(synchronize_session=False))
        if taken.rowcount == 0:
            raise OutOfStock(item)
        redemption = Redemption(member_id=member_id, member_name=member_name[:256], room_id=room_id, item=item,
                                cost=cost, status="pending", at=at)
        session.add(redemption)
        await session.flush()
        if cost > 0:
            new_balance = await change_points(session, member_id, -cost, reason=f"兑换 {item}", source="redeem",
                                              ref_id=f"redemption:{redemption.id}", at=at)
        else:
            new_balance = (await standing(session, member_id))[0]
    return redemption, new_balance


async def activity_awards_today(session: AsyncSession, member_id: str, day: date) -> int:
    """How many activity awards this member got on ``day`` (their ref ids are "member:date:n")."""
    prefix = f"{member_id}:{day.isoformat()}:"
    return await session.scalar(
        select(func.count()).select_from(PointsLedger).where(
            PointsLedger.source == "activity", PointsLedger.member_id == member_id,
            PointsLedger.ref_id >= prefix, PointsLedger.ref_id < prefix[:-1] + ";")) or 0  # ";" sorts right after ":"


# -- handling redemptions (admins: hand out or refuse) -------------------------------------------------------------

MAX_LISTED = 20  # /兑换 待处理 lists this many; the dashboard shows every pending one


@dataclass(frozen=True, slots=True)
class RedemptionRow:
    id: int
    member_id: str
    member_name: str
    room_id: str | None
    room_topic: str | None
    item: str
    cost: int
    status: str
    at: datetime
    handled_at: datetime | None
    handled_by: str | None
    reason: str | None


def _rows_query():
    # with the room's topic from the directory: operators see where it was redeemed
    return select(Redemption, Room.topic).outerjoin(Room, Room.id == Redemption.room_id)


def _row(r: Redemption, topic: str | None) -> RedemptionRow:
    return RedemptionRow(r.id, r.member_id, r.member_name, r.room_id, topic, r.item, r.cost, r.status, r.at,
                         r.handled_at, r.handled_by, r.reason)


async def redemption(session: AsyncSession, redemption_id: int) -> RedemptionRow | None:
    row = (await session.execute(_rows_query().where(Redemption.id == redemption_id))).first()
    return _row(*row) if row else None


async def pending_redemptions(session: AsyncSession, room_id: str | None, limit: int | None = MAX_LISTED,
                              ) -> tuple[list[RedemptionRow], int]:
    """The pending redemptions, oldest first (``room_id``: of that room only; None: all), and how many there are."""
    where = [Redemption.status == "pending"]
    if room_id is not None:
        where.append(Redemption.room_id == room_id)
    total = await session.scalar(select(func.count()).select_from(Redemption).where(*where)) or 0
    stmt = _rows_query().where(*where).order_by(Redemption.at, Redemption.id)
    if limit is not None:
        stmt = stmt.limit(limit)
    return [_row(*r) for r in (await session.execute(stmt)).all()], total


async def handled_redemptions(session: AsyncSession, limit: int) -> list[RedemptionRow]:
    """The latest handled (handed out or refused) redemptions, newest first."""
    stmt = (_rows_query().where(Redemption.status != "pending")
            .order_by(Redemption.handled_at.desc(), Redemption.id.desc()).limit(limit))
    return [_row(*r) for r in (await session.execute(stmt)).all()]


async def _claim(session: AsyncSession, redemption_id: int, status: str, actor: str, at: datetime,
                 reason: str | None) -> bool:
    """pending → ``status``; False when it was no longer pending (handled by someone else first)."""
    done = await session.execute(
        update(Redemption).where(Redemption.id == redemption_id, Redemption.status == "pending")
        .values(status=status, handled_by=actor, handled_at=at, reason=reason)
        .execution_options(synchronize_session=False))
    return done.rowcount == 1


async def fulfil(session: AsyncSession, redemption_id: int, actor: str, at: datetime) -> bool:
    """Mark a pending redemption handed out; False if it was not pending any more."""
    return await _claim(session, redemption_id, "done", actor, at, None)


async def refuse(session: AsyncSession, found: RedemptionRow, actor: str, at: datetime, reason: str,
                 ) -> int | None:
    """Refuse a pending redemption: its points go back (exactly once) and its item back to stock, together.

    Returns the member's new balance, or None when it was no longer pending (a racing refusal or hand-out won):
    then nothing changes. Two guards: the conditional UPDATE on the status, and the ledger's unique
    (source, ref_id) for the refund.
    """
    async with session.begin_nested():
        if not await _claim(session, found.id, "refused", actor, at, reason or None):
            return None
        await session.execute(
            update(RewardStock).where(RewardStock.item == found.item)
            .values(stock=RewardStock.stock + 1, updated_at=at).execution_options(synchronize_session=False))
        if found.cost > 0:
            return await change_points(session, found.member_id, found.cost, reason=f"兑换退回 {found.item}",
                                       source="redeem_refund", ref_id=f"redemption:{found.id}", at=at,
                                       savepoint=False)
        return (await standing(session, found.member_id))[0]
