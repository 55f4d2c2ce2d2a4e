"""Read-only figures of the tiers skill for /stats, /tier, /export members and its dashboard pages. Nothing here
writes.

Days before today come from the rollups (room_days, tier_daily, member_tiers); today is counted live from the
activity log with one range scan of its ``at`` index, so the charts are current without a member or room index.

Every reader comes in a pair: ``name_sync(s: sqlalchemy.orm.Session, …)``, to call inside a read function, and
``async name(session: AsyncSession, …)``, the same answer read off the event loop (storage/reads.py: run_read,
on a connection of its own, what is committed; inline on ``session`` when it holds writes of its own).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from skills.tiers.models import MemberTier, RoomDay, TierChange, TierDaily, TierOrder
from skills.tiers.rollup import ACTIVE_KINDS, ALL_ROOMS, DIRECT, day_bounds
from skills.tiers.store import TIERS, tier_counts_sync
from storage.models import Activity, Member, MemberName, Room, RoomMember
from storage.models_points import PointsBalance
from storage.reads import run_read
from storage.stats import MAX_QUERY, like_pattern


def _count(kind: str):
    return func.coalesce(func.sum(case((Activity.kind == kind, 1), else_=0)), 0)


_ACTIVE = func.count(func.distinct(case((Activity.kind.in_(ACTIVE_KINDS), Activity.member_id), else_=None)))


def live_figures_sync(s: Session, start: datetime, end: datetime, room_id: str | None = None,
                      ) -> tuple[int, int, int, int, int, int]:
    """(active members, messages, check-ins by distinct member, FAQ answered, FAQ missed, check-in rows)."""
    where = [Activity.at >= start, Activity.at < end]
    if room_id is not None:
        where.append(Activity.room_id == room_id)
    checkers = func.count(func.distinct(case((Activity.kind == "checkin", Activity.member_id), else_=None)))
    row = s.execute(select(_ACTIVE, _count("message"), checkers, _count("faq_answer"),
                           _count("faq_miss"), _count("checkin")).where(*where)).one()
    return tuple(int(v or 0) for v in row)  # type: ignore[return-value]


async def live_figures(session: AsyncSession, start: datetime, end: datetime, room_id: str | None = None,
                       ) -> tuple[int, int, int, int, int, int]:
    return await run_read(session, live_figures_sync, start, end, room_id)


@dataclass(frozen=True)
class DayFigures:
    day: str
    active: int = 0
    messages: int = 0
    checkins: int = 0
    faq_answered: int = 0
    faq_missed: int = 0

    @property
    def faq_hit_rate(self) -> float | None:
        asked = self.faq_answered + self.faq_missed
        return self.faq_answered / asked if asked else None


# -- /stats ---------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class RoomSummary:
    members: int
    active_today: int
    active_7d: int
    checked_in_today: int
    faq_answered_7d: int
    faq_missed_7d: int


def room_summary_sync(s: Session, room_id: str, now: datetime, tz: ZoneInfo) -> RoomSummary:
    today = now.astimezone(tz).date()
    start_today, _ = day_bounds(today, tz)
    start_7d, _ = day_bounds(today - timedelta(days=6), tz)
    members = s.scalar(select(func.count()).select_from(RoomMember).where(
        RoomMember.room_id == room_id, RoomMember.active.is_(True))) or 0
    t = live_figures_sync(s, start_today, now, room_id)
    w = live_figures_sync(s, start_7d, now, room_id)
    return RoomSummary(int(members), t[0], w[0], t[2], w[3], w[4])


async def room_summary(session: AsyncSession, room_id: str, now: datetime, tz: ZoneInfo) -> RoomSummary:
    return await run_read(session, room_summary_sync, room_id, now, tz)


# -- one member -----------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberCard:
    member_id: str
    name: str
    first_seen: datetime
    last_seen: datetime
    points: int
    orders: int  # placed, not cancelled, all time (as far as the rollups have seen)
    amount: float
    tier: MemberTier | None
    rooms: int


def member_card_sync(s: Session, member_id: str) -> MemberCard | None:
    m = s.get(Member, member_id)
    if m is None:
        return None
    points = s.scalar(select(PointsBalance.balance).where(PointsBalance.member_id == member_id)) or 0
    orders, amount = s.execute(
        select(func.count(), func.coalesce(func.sum(TierOrder.amount), 0.0))
        .where(TierOrder.member_id == member_id, TierOrder.placed_at.is_not(None),
               TierOrder.status != "cancelled")).one()
    rooms = s.scalar(select(func.count()).select_from(RoomMember).where(
        RoomMember.member_id == member_id, RoomMember.active.is_(True))) or 0
    return MemberCard(m.id, m.name, m.first_seen, m.last_seen, int(points), int(orders), float(amount or 0),
                      s.get(MemberTier, member_id), int(rooms))


async def member_card(session: AsyncSession, member_id: str) -> MemberCard | None:
    return await run_read(session, member_card_sync, member_id)


# -- dashboard: overview ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Overview:
    days: list[DayFigures]
    tiers_by_day: list[tuple[str, dict[str, int]]]
    funnel: list[tuple[str, int]]
    tier_counts: dict[str, int]
    members: int


def daily_series_sync(s: Session, now: datetime, tz: ZoneInfo, days: int,
                      room_id: str = ALL_ROOMS) -> list[DayFigures]:
    today = now.astimezone(tz).date()
    first = today - timedelta(days=days - 1)
    rolled = {r.day: r for r in s.execute(
        select(RoomDay).where(RoomDay.room_id == room_id, RoomDay.day >= first.isoformat(),
                              RoomDay.day < today.isoformat())).scalars()}
    out = []
    for i in range(days - 1):
        d = (first + timedelta(days=i)).isoformat()
        r = rolled.get(d)
        out.append(DayFigures(d, r.active_members, r.messages, r.checkins, r.faq_answered, r.faq_missed)
                   if r else DayFigures(d))
    start, _ = day_bounds(today, tz)
    live = live_figures_sync(s, start, now, None if room_id == ALL_ROOMS else room_id)
    out.append(DayFigures(today.isoformat(), live[0], live[1], live[5], live[3], live[4]))
    return out


async def daily_series(session: AsyncSession, now: datetime, tz: ZoneInfo, days: int,
                       room_id: str = ALL_ROOMS) -> list[DayFigures]:
    return await run_read(session, daily_series_sync, now, tz, days, room_id)


def tiers_by_day_sync(s: Session, now: datetime, tz: ZoneInfo, days: int) -> list[tuple[str, dict]]:
    today = now.astimezone(tz).date()
    first = (today - timedelta(days=days - 1)).isoformat()
    by_day: dict[str, dict[str, int]] = {}
    for day, tier, n in s.execute(select(TierDaily.day, TierDaily.tier, TierDaily.members)
                                  .where(TierDaily.day >= first).order_by(TierDaily.day)):
        by_day.setdefault(day, {t: 0 for t in TIERS})[tier] = int(n)
    return sorted(by_day.items())


async def tiers_by_day(session: AsyncSession, now: datetime, tz: ZoneInfo, days: int) -> list[tuple[str, dict]]:
    return await run_read(session, tiers_by_day_sync, now, tz, days)


def funnel_sync(s: Session, now: datetime, tz: ZoneInfo, window_days: int) -> list[tuple[str, int]]:
    """Members who joined in the window (the tiers' window, as of the last pass), and how many of them spoke,
    checked in, ordered, ordered again in it."""
    since = (now.astimezone(tz).date() - timedelta(days=window_days - 1)).isoformat()
    row = (s.execute(select(
        func.count(),
        func.coalesce(func.sum(case((MemberTier.messages_window > 0, 1), else_=0)), 0),
        func.coalesce(func.sum(case((MemberTier.checkins_window > 0, 1), else_=0)), 0),
        func.coalesce(func.sum(case((MemberTier.orders_window >= 1, 1), else_=0)), 0),
        func.coalesce(func.sum(case((MemberTier.orders_window >= 2, 1), else_=0)), 0),
    ).where(MemberTier.joined_day >= since))).one()
    labels = ("joined", "spoke", "checked_in", "ordered", "ordered_again")
    return list(zip(labels, (int(v) for v in row)))


async def funnel(session: AsyncSession, now: datetime, tz: ZoneInfo, window_days: int) -> list[tuple[str, int]]:
    return await run_read(session, funnel_sync, now, tz, window_days)


def overview_sync(s: Session, now: datetime, tz: ZoneInfo, days: int, window_days: int) -> Overview:
    counts = tier_counts_sync(s)
    members = s.scalar(select(func.count()).select_from(Member)) or 0
    return Overview(daily_series_sync(s, now, tz, days), tiers_by_day_sync(s, now, tz, days),
                    funnel_sync(s, now, tz, window_days), counts, int(members))


async def overview(session: AsyncSession, now: datetime, tz: ZoneInfo, days: int, window_days: int) -> Overview:
    return await run_read(session, overview_sync, now, tz, days, window_days)


# -- dashboard: rooms, members, misses, jobs, lotteries ---------------------------------------------------------------

@dataclass(frozen=True)
class RoomRow:
    room_id: str
    topic: str
    members: int
    active_7d_peak: int  # the busiest day's active members in the last 7 days (distinct per day)
    messages_7d: int
    checkins_7d: int
    last_seen: datetime


def rooms_table_sync(s: Session, now: datetime, tz: ZoneInfo, limit: int = 500) -> list[RoomRow]:
    first = (now.astimezone(tz).date() - timedelta(days=7)).isoformat()
    members = dict(s.execute(select(RoomMember.room_id, func.count()).where(RoomMember.active.is_(True))
                             .group_by(RoomMember.room_id)).all())
    week = {r[0]: r[1:] for r in s.execute(
        select(RoomDay.room_id, func.max(RoomDay.active_members), func.sum(RoomDay.messages),
               func.sum(RoomDay.checkins))
        .where(RoomDay.day >= first, RoomDay.room_id.not_in((ALL_ROOMS, DIRECT))).group_by(RoomDay.room_id))}
    rooms = s.execute(select(Room).order_by(Room.last_seen.desc()).limit(limit)).scalars()
    return [RoomRow(r.id, r.topic, int(members.get(r.id, 0)), *(int(v or 0) for v in week.get(r.id, (0, 0, 0))),
                    r.last_seen) for r in rooms]


async def rooms_table(session: AsyncSession, now: datetime, tz: ZoneInfo, limit: int = 500) -> list[RoomRow]:
    return await run_read(session, rooms_table_sync, now, tz, limit)


@dataclass(frozen=True)
class MemberRow:
    member_id: str
    name: str
    last_seen: datetime
    tier: str | None
    r: int | None
    f: int | None
    m: int | None


def search_members_sync(s: Session, text: str, page: int, page_size: int,
                        tier: str | None = None) -> tuple[list[MemberRow], int, int]:
    """(rows of the page, total matches, the page shown). Text is matched literally (bound, LIKE-escaped) against
    ids and every display name seen; a page past the end shows the last page."""
    text = text.strip()[:MAX_QUERY]
    where = []
    if text:
        pattern = like_pattern(text)
        names = select(MemberName.member_id).where(MemberName.name.like(pattern, escape="\\"))
        where.append(or_(Member.id.like(pattern, escape="\\"), Member.name.like(pattern, escape="\\"),
                         Member.id.in_(names)))
    if tier is not None:
        where.append(MemberTier.tier == tier)
    base = select(Member.id).outerjoin(MemberTier, MemberTier.member_id == Member.id).where(*where)
    total = int(s.scalar(select(func.count()).select_from(base.subquery())) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(1, page), pages)
    rows = s.execute(
        select(Member.id, Member.name, Member.last_seen, MemberTier.tier, MemberTier.r, MemberTier.f, MemberTier.m)
        .outerjoin(MemberTier, MemberTier.member_id == Member.id).where(*where)
        .order_by(Member.last_seen.desc(), Member.id).limit(page_size).offset((page - 1) * page_size)).all()
    return [MemberRow(*r) for r in rows], total, page


async def search_members(session: AsyncSession, text: str, page: int, page_size: int,
                         tier: str | None = None) -> tuple[list[MemberRow], int, int]:
    return await run_read(session, search_members_sync, text, page, page_size, tier)


def member_history_sync(s: Session, member_id: str, limit: int = 100) -> list[TierChange]:
    return list(s.execute(select(TierChange).where(TierChange.member_id == member_id)
                          .order_by(TierChange.at.desc(), TierChange.id.desc()).limit(limit)).scalars())


async def member_history(session: AsyncSession, member_id: str, limit: int = 100) -> list[TierChange]:
    return await run_read(session, member_history_sync, member_id, limit)


# -- export -----------------------------------------------------------------------------------------------------------

EXPORT_COLUMNS = ("member_id", "name", "tier", "tier_since", "r", "f", "m", "last_active_day", "last_seen",
                  "joined_day", "points", "orders_window", "amount_window", "rooms")


def export_rows_sync(s: Session, tz: ZoneInfo, room_id: str | None = None) -> list[tuple]:
    """Every member with tier and figures, one tuple per member in EXPORT_COLUMNS order; with ``room_id``, only the
    members seen in that room."""
    rooms = select(RoomMember.member_id, func.count().label("n")).where(RoomMember.active.is_(True)) \
        .group_by(RoomMember.member_id).subquery()
    stmt = (select(Member.id, Member.name, MemberTier.tier, MemberTier.since, MemberTier.r, MemberTier.f,
                   MemberTier.m, MemberTier.last_active_day, Member.last_seen, MemberTier.joined_day,
                   func.coalesce(PointsBalance.balance, 0), MemberTier.orders_window, MemberTier.amount_window,
                   func.coalesce(rooms.c.n, 0))
            .outerjoin(MemberTier, MemberTier.member_id == Member.id)
            .outerjoin(PointsBalance, PointsBalance.member_id == Member.id)
            .outerjoin(rooms, rooms.c.member_id == Member.id).order_by(Member.id))
    if room_id is not None:
        stmt = stmt.where(Member.id.in_(select(RoomMember.member_id).where(RoomMember.room_id == room_id)))
    return [tuple(v.astimezone(tz).isoformat(timespec="seconds") if isinstance(v, datetime) else v for v in row)
            for row in s.execute(stmt)]


async def export_rows(session: AsyncSession, tz: ZoneInfo, room_id: str | None = None):
    """``export_rows_sync`` read off the loop, then yielded row by row (the caller collects them all anyway)."""
    for row in await run_read(session, export_rows_sync, tz, room_id):
        yield row
