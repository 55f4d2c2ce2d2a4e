"""Rollups of the activity log by local day: member_days, room_days and the orders projection (tier_orders).

Each day is rebuilt whole (delete, then INSERT … SELECT grouped in the database) from range scans of the activity
log's ``at`` index, the only index it has, so rebuilding a day is idempotent and the hot write path pays nothing.
Each day is its own short transaction: the activity writer never waits long for SQLite's write lock.

Orders come only from the activity store (kind "order", detail {"order_id", "status", "amount", "group_buy"}):
``tier_orders`` keeps each order at its latest status and the instant it first reached paid.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Activity
from skills.tiers.models import MemberDay, RoomDay, TierOrder
from storage.upsert import insert_for
from skills.tiers.windows import uncount

ACTIVE_KINDS = ("message", "checkin", "order", "redeem")  # what a member does (not what is done to them)
ORDER_STATUSES = ("created", "paid", "shipped", "ready_for_pickup", "completed", "cancelled")
PLACED = frozenset({"paid", "shipped", "ready_for_pickup", "completed"})
ALL_ROOMS = "*"  # room_days row for everything together (1-on-1 included)


def day_bounds(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a local day (23 or 25 hours long across a DST change)."""
    start = datetime(day.year, day.month, day.day, tzinfo=tz)
    nxt = day + timedelta(days=1)
    end = datetime(nxt.year, nxt.month, nxt.day, tzinfo=tz)
    return start.astimezone(UTC), end.astimezone(UTC)


def _count(kind: str):
    return func.coalesce(func.sum(case((Activity.kind == kind, 1), else_=0)), 0)


DIRECT = ""  # room_days row of the 1-on-1 chats


async def roll_day(session: AsyncSession, day: date, tz: ZoneInfo, rooms: bool = True) -> None:
    """Rebuild the rollups of one local day (call again for the same day: same result).

    One day per statement, the day as a literal: the database groups a day's rows by member (a small sort), where
    grouping a whole range by (local day, member) sorted millions of rows and cost twice as much.
    """
    start, end = day_bounds(day, tz)
    d = day.isoformat()
    in_day = (Activity.at >= start, Activity.at < end)
    await session.execute(delete(MemberDay).where(MemberDay.day == d))
    per_member = (
        select(literal(d), Activity.member_id, func.count(), _count("message"), _count("checkin"))
        .where(*in_day, Activity.member_id.is_not(None), Activity.kind.in_(ACTIVE_KINDS))
        .group_by(Activity.member_id)
    )
    await session.execute(MemberDay.__table__.insert().from_select(
        ["day", "member_id", "actions", "messages", "checkins"], per_member))
    if rooms:
        await session.execute(delete(RoomDay).where(RoomDay.day == d))
        active = func.count(func.distinct(case((Activity.kind.in_(ACTIVE_KINDS), Activity.member_id), else_=None)))
        # a SQL literal, not a bound parameter: PostgreSQL must see the same expression in GROUP BY
        room = func.coalesce(Activity.room_id, literal_column("''"))
        per_room = (select(literal(d), room, active, _count("message"), _count("checkin"), _count("faq_answer"),
                           _count("faq_miss"), _count("join"), _count("leave"))
                    .where(*in_day).group_by(room))
        await session.execute(RoomDay.__table__.insert().from_select(ROOM_COLUMNS, per_room))
        # Everything together: the rooms' sums (1-on-1 included); active members from member_days, since one
        # member active in two rooms is one active member. No second scan of the log.
        r = RoomDay.__table__.c
        members_that_day = select(func.count()).select_from(MemberDay.__table__).where(
            MemberDay.__table__.c.day == d).scalar_subquery()
        totals = (select(literal(d), literal(ALL_ROOMS), members_that_day, func.coalesce(func.sum(r.messages), 0),
                         func.coalesce(func.sum(r.checkins), 0), func.coalesce(func.sum(r.faq_answered), 0),
                         func.coalesce(func.sum(r.faq_missed), 0), func.coalesce(func.sum(r.joins), 0),
                         func.coalesce(func.sum(r.leaves), 0))
                  .where(r.day == d))
        await session.execute(RoomDay.__table__.insert().from_select(ROOM_COLUMNS, totals))
    await _project_orders(session, start, end)


ROOM_COLUMNS = ["day", "room_id", "active_members", "messages", "checkins", "faq_answered", "faq_missed", "joins",
                "leaves"]


def _order_event(detail: object) -> tuple[str, str, float | None, str | None] | None:
    """(order id, status, amount, group buy) from an order row's detail, or None if it doesn't fit the contract."""
    if not isinstance(detail, dict):
        return None
    order_id, status = detail.get("order_id"), detail.get("status")
    if order_id is None or isinstance(order_id, bool) or status not in ORDER_STATUSES:
        return None
    amount = detail.get("amount")
    if isinstance(amount, bool) or not isinstance(amount, (int, float)) or amount < 0:
        amount = None
    group_buy = detail.get("group_buy")
    return str(order_id)[:128], status, (float(amount) if amount is not None else None), \
        (str(group_buy)[:128] if group_buy not in (None, "") else None)


async def _project_orders(session: AsyncSession, start: datetime, end: datetime) -> None:
    rows = (await session.execute(
        select(Activity.at, Activity.member_id, Activity.room_id, Activity.detail)
        .where(Activity.at >= start, Activity.at < end, Activity.kind == "order", Activity.member_id.is_not(None))
        .order_by(Activity.at, Activity.id))).all()
    if not rows:
        return
    merged: dict[str, dict] = {}
    events = [(r, e) for r in rows if (e := _order_event(r.detail)) is not None]
    ids = list({e[0] for _, e in events})
    for chunk in _chunks(ids, 500):
        for o in (await session.execute(select(TierOrder).where(TierOrder.order_id.in_(chunk)))).scalars():
            merged[o.order_id] = {"order_id": o.order_id, "member_id": o.member_id, "room_id": o.room_id,
                                  "status": o.status, "amount": o.amount, "group_buy": o.group_buy,
                                  "placed_at": o.placed_at, "updated_at": o.updated_at}
    for r, (order_id, status, amount, group_buy) in events:
        o = merged.get(order_id)
        if o is None:
            o = merged[order_id] = {"order_id": order_id, "member_id": r.member_id, "room_id": r.room_id,
                                    "status": status, "amount": amount or 0.0, "group_buy": group_buy,
                                    "placed_at": None, "updated_at": r.at}
        if status in PLACED and (o["placed_at"] is None or r.at < o["placed_at"]):
            o["placed_at"] = r.at
        if r.at >= o["updated_at"]:  # the latest status wins; a re-rolled day gives the same answer
            o["status"], o["updated_at"] = status, r.at
            if amount is not None:
                o["amount"] = amount
            o["group_buy"] = group_buy or o["group_buy"]
            o["room_id"] = r.room_id or o["room_id"]
    ins = insert_for(session.bind.dialect.name, TierOrder.__table__)
    stmt = ins.on_conflict_do_update(index_elements=["order_id"], set_={
        c: getattr(ins.excluded, c) for c in ("member_id", "room_id", "status", "amount", "group_buy",
                                              "placed_at", "updated_at")})
    await session.execute(stmt, list(merged.values()))


def _chunks(items: list, size: int) -> Iterable[list]:
    for i in range(0, len(items), size):
        yield items[i:i + size]


async def roll_days(session: AsyncSession, days: list[date], tz: ZoneInfo, rooms_from: date | None = None) -> int:
    """Rebuild ``days``, committing after each: a pass over months of history never keeps the database (and, with
    one SQLite connection, everyone waiting for it) for more than one day's statements. Room rollups only from
    ``rooms_from`` on (they feed charts of recent weeks). Returns the days rolled."""
    for day in days:
        await uncount(session, day)  # the day's old rows leave the member sums with them (same transaction)
        await roll_day(session, day, tz, rooms=rooms_from is None or day >= rooms_from)
        await session.commit()
        await let_the_loop_run()  # the chats waiting (for the connection too, back in the pool) go between days
    return len(days)


LOOP_PAUSE_S = 0.001


async def let_the_loop_run() -> None:
    """Let the coroutines that are ready, or were woken by a timer or a socket meanwhile, run before going on.

    On the inline SQLite connection a statement never yields to the loop, so a long run of them must. ``sleep(0)``
    is not enough: this coroutine is first in the loop's queue again before a task its timer or socket just woke
    (bench/loop_stall.py saw the stalls of two days' rollups join into one). A millisecond's pause lets the loop
    go round until then. Real time on purpose: it paces the loop, not the bot.
    """
    await asyncio.sleep(LOOP_PAUSE_S)
