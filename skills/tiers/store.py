"""The tier engine and the queries other code uses to read tiers.

A pass (``recompute``) rolls up the days since the last pass (skills/tiers/rollup.py), then classifies every member
from the rollups in one read of each table (off the event loop: storage/reads.py), writes the ``member_tiers``
rows that changed, appends a ``tier_changes`` row for each member whose tier changed and a ``tier_daily``
snapshot for the charts.

The readers below come in pairs: ``name_sync(session: sqlalchemy.orm.Session, …)`` to call inside a read
function, and ``async name(session: AsyncSession, …)`` that runs it off the loop with ``run_read``.

Tiers, first match wins (thresholds in ``TierRules``, from config.toml [skills.tiers]):

- ``core``: active with ≥ ``core_min_orders`` placed orders in the window, or in the top ``core_points_top_pct``
  % by points balance and seen within ``silent_after_days``;
- ``new``: joined ≤ ``new_days`` local days ago;
- ``active``: active on ≥ ``active_min_days`` of the last ``active_window_days`` local days;
- ``lost``: nothing for > ``lost_after_days`` days (counted from the last active day, else the join, else first seen);
- ``silent``: nothing for ``silent_after_days`` … ``lost_after_days`` days;
- ``casual``: everyone else (some activity lately, below the active bar).

RFM, 1–4 by quartile over all members (4 best): R = days since the last active day, F = active days in the
window, M = placed order amount in the window. Equal values get the same score.
"""

from __future__ import annotations

import bisect
import math
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from zoneinfo import ZoneInfo

from sqlalchemy import case, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import Activity, Member, RoomMember
from storage.models_points import PointsBalance
from skills.tiers.models import MemberTier, MemberWindow, TierChange, TierDaily, TierOrder, TierRun
from storage.reads import run_read
from skills.tiers.rollup import let_the_loop_run, roll_days
from skills.tiers.windows import align
from storage.upsert import insert_for

TIERS = ("core", "new", "active", "casual", "silent", "lost")
WRITE_CHUNK = 500  # member_tiers / tier_changes rows per statement when a pass writes its results (~10-30 ms)
TIER_NAMES = {"core": "核心", "new": "新成员", "active": "活跃", "casual": "一般", "silent": "沉默", "lost": "流失"}


@dataclass(frozen=True)
class TierRules:
    new_days: int = 7
    active_window_days: int = 7
    active_min_days: int = 3
    core_min_orders: int = 2
    core_points_top_pct: float = 10.0
    silent_after_days: int = 14
    lost_after_days: int = 30
    window_days: int = 90  # orders for core, and the RFM window


@dataclass(frozen=True)
class MemberFigures:
    member_id: str
    joined_day: date | None
    last_active_day: date | None
    reference_day: date  # last active, else joined, else first seen: where silence is counted from
    active_days_7: int = 0
    active_days_window: int = 0
    messages_window: int = 0
    checkins_window: int = 0
    orders_window: int = 0
    amount_window: float = 0.0
    points: int = 0


def classify(rules: TierRules, f: MemberFigures, today: date, points_top: bool) -> str:
    active = f.active_days_7 >= rules.active_min_days
    quiet_days = (today - f.reference_day).days
    if (active and f.orders_window >= rules.core_min_orders) or (points_top and quiet_days < rules.silent_after_days):
        return "core"
    if f.joined_day is not None and (today - f.joined_day).days <= rules.new_days:
        return "new"
    if active:
        return "active"
    if quiet_days > rules.lost_after_days:
        return "lost"
    if quiet_days >= rules.silent_after_days:
        return "silent"
    return "casual"


def quartile_scores(values: Sequence[float]) -> list[int]:
    """1–4 by quartile, higher values scoring higher; equal values score the same (by their lowest rank)."""
    n = len(values)
    if not n:
        return []
    ordered = sorted(values)
    return [1 + min(3, 4 * bisect.bisect_left(ordered, v) // n) for v in values]


def points_threshold(balances: Iterable[int], members: int, top_pct: float) -> int | None:
    """The smallest balance that is still in the top ``top_pct`` % of ``members`` (None: nobody qualifies)."""
    positive = sorted((b for b in balances if b > 0), reverse=True)
    k = math.ceil(members * top_pct / 100)
    if not positive or k <= 0:
        return None
    return positive[min(k, len(positive)) - 1]


@dataclass(frozen=True)
class PassResult:
    members: int
    changed: int
    days_rolled: int
    duration_ms: int
    counts: dict[str, int]
    rollup_ms: int = 0  # of duration_ms: rolling up days...
    read_ms: int = 0  # ...reading every member's figures...
    written: int = 0  # ...and how many member rows differed and were written


async def recompute(s: AsyncSession, now: datetime, tz: ZoneInfo, rules: TierRules, room_days: int = 37, *,
                    reads_off_loop: bool = True) -> PassResult:
    """One tier pass at ``now``: roll up what is new, classify everyone, record the changes.

    Runs in the caller's session (a scheduled job's, say: never a second session beside it) and commits as it goes:
    each rolled day, then the results. Every step can be redone, so a pass cut short is simply run again.

    The reads and the classification, seconds for 100,000 members, run off the event loop (storage/reads.py) on
    what is committed; the rollups and the results are written on the caller's session. ``reads_off_loop=False``
    runs them on the caller's session instead (the benchmark's before, bench/loop_stall.py).

    ``room_days``: how far back per-room daily figures are (re)built, for the dashboard's charts; the member
    rollups always cover the tiers' window.
    """
    read = run_read if reads_off_loop else _read_inline
    started = time.perf_counter()
    today = now.astimezone(tz).date()
    start, top_id = await read(s, _days_to_roll, today, tz, rules)
    # today too, partially (redone next pass); room figures only for the weeks the dashboard charts
    days_rolled = await roll_days(s, _days(start, today), tz, rooms_from=today - timedelta(days=room_days))
    await align(s, today, rules.window_days, rules.active_window_days)
    await s.commit()  # the reads below see the rollups (and keep no transaction open here while they run)
    rollup_ms = int((time.perf_counter() - started) * 1000)

    plan = await read(s, classify_all, now, tz, rules)
    # the results, in one transaction, in chunks with the loop let run between them (on the inline SQLite
    # connection a statement never yields): other coroutines wait one chunk, not the whole write
    upsert = _upsert(s.bind.dialect.name)
    for chunk in _chunks(plan.writes, WRITE_CHUNK):
        await s.execute(upsert, chunk)
        await let_the_loop_run()
    for chunk in _chunks(plan.changes, WRITE_CHUNK):
        await s.execute(TierChange.__table__.insert(), chunk)
        await let_the_loop_run()
    await s.execute(delete(TierDaily).where(TierDaily.day == today.isoformat()))
    if plan.counts:
        await s.execute(TierDaily.__table__.insert(),
                        [{"day": today.isoformat(), "tier": t, "members": n} for t, n in plan.counts.items()])
    duration_ms = int((time.perf_counter() - started) * 1000)
    s.add(TierRun(at=now, day=today.isoformat(), rolled_through=(today - timedelta(days=1)).isoformat(),
                  members=plan.members, changed=len(plan.changes), duration_ms=duration_ms, activity_id=top_id))
    await s.commit()
    return PassResult(plan.members, len(plan.changes), days_rolled, duration_ms, plan.counts, rollup_ms,
                      plan.read_ms, len(plan.writes))


async def _read_inline(session: AsyncSession, fn, *args):
    return await session.run_sync(fn, *args)


def _days_to_roll(s: Session, today: date, tz: ZoneInfo, rules: TierRules) -> tuple[date, int]:
    """(the first day to roll up, the newest activity id now): from the last pass's day, or the earliest day of
    rows written since it, whichever is earlier, but no further back than the tiers can look."""
    last = s.execute(select(TierRun.rolled_through, TierRun.activity_id).order_by(TierRun.id.desc()).limit(1)).first()
    top_id = s.scalar(select(func.max(Activity.id))) or 0
    # The earliest day among rows written since the last pass, found by id (the primary key): ordering the
    # inner query by id keeps the database from walking the whole ``at`` index for the min.
    newer = (select(Activity.at).where(Activity.id > (last.activity_id if last else 0))
             .order_by(Activity.id).limit(5_000_000).subquery())
    since = s.scalar(select(func.min(newer.c.at)))
    floor = today - timedelta(days=rules.window_days + 1)  # older days can't change a tier
    start = today
    if last is not None and last.rolled_through:
        start = min(start, date.fromisoformat(last.rolled_through))  # today of the last pass was partial
    if since is not None:
        start = min(start, since.astimezone(tz).date())
    return max(start, floor), top_id


@dataclass(frozen=True)
class TierPlan:
    """What a pass will write: member_tiers rows that differ, tier changes, members per tier."""

    members: int
    writes: list[dict]
    changes: list[dict]
    counts: dict[str, int]
    read_ms: int


def classify_all(s: Session, now: datetime, tz: ZoneInfo, rules: TierRules) -> TierPlan:
    """Read every member's figures and current tier, classify everyone: the pass's reading and thinking, without
    writing (storage/reads.py runs it off the loop)."""
    started = time.perf_counter()
    today = now.astimezone(tz).date()
    figures = _figures(s, rules, today, tz)
    old = {r[0]: tuple(r[1:]) for r in s.execute(select(MemberTier.member_id, *_COMPARED))}
    read_ms = int((time.perf_counter() - started) * 1000)
    threshold = points_threshold([f.points for f in figures], len(figures), rules.core_points_top_pct)
    r = quartile_scores([-(today - f.last_active_day).days if f.last_active_day else -10**9 for f in figures])
    fq = quartile_scores([f.active_days_window for f in figures])
    m = quartile_scores([f.amount_window for f in figures])
    writes, changes = [], []
    counts: Counter[str] = Counter()
    for i, f in enumerate(figures):
        tier = classify(rules, f, today, threshold is not None and f.points >= threshold)
        counts[tier] += 1
        row = (tier, f.joined_day.isoformat() if f.joined_day else None,
               f.last_active_day.isoformat() if f.last_active_day else None, f.active_days_7, f.active_days_window,
               f.messages_window, f.checkins_window, f.orders_window, round(f.amount_window, 2), f.points,
               r[i], fq[i], m[i])
        before = old.get(f.member_id)
        if before == row:
            continue  # most members on most nights: nothing to write
        if before is None or before[0] != tier:
            changes.append({"member_id": f.member_id, "from_tier": before[0] if before else None, "to_tier": tier,
                            "at": now})
        writes.append({"member_id": f.member_id, "since": now, **dict(zip(_COMPARED_NAMES, row))})
    return TierPlan(len(figures), writes, changes, dict(counts), read_ms)


_COMPARED = (MemberTier.tier, MemberTier.joined_day, MemberTier.last_active_day, MemberTier.active_days_7,
             MemberTier.active_days_window, MemberTier.messages_window, MemberTier.checkins_window,
             MemberTier.orders_window, MemberTier.amount_window, MemberTier.points, MemberTier.r, MemberTier.f,
             MemberTier.m)
_COMPARED_NAMES = tuple(c.key for c in _COMPARED)


def _upsert(dialect: str):
    """Insert or update a member's row; ``since`` moves only when the tier changes (SET sees the old row)."""
    t = MemberTier.__table__
    ins = insert_for(dialect, t)
    return ins.on_conflict_do_update(index_elements=["member_id"], set_={
        **{name: getattr(ins.excluded, name) for name in _COMPARED_NAMES},
        "since": case((t.c.tier != ins.excluded.tier, ins.excluded.since), else_=t.c.since)})


def _days(start: date, end: date) -> list[date]:
    return [start + timedelta(days=i) for i in range((end - start).days + 1)]


def _chunks(items: list, size: int):
    for i in range(0, len(items), size):
        yield items[i:i + size]


def _day_start(day: date, tz: ZoneInfo) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=tz)


def _figures(s: Session, rules: TierRules, today: date, tz: ZoneInfo) -> list[MemberFigures]:
    w0 = (today - timedelta(days=rules.window_days - 1)).isoformat()
    w = MemberWindow.__table__.c
    days = {r[0]: r[1:] for r in s.execute(select(w.member_id, w.last_active_day, w.days_recent, w.days_window,
                                                  w.messages_window, w.checkins_window))}
    w0_at = _day_start(date.fromisoformat(w0), tz)
    orders = {r[0]: (r[1], r[2]) for r in s.execute(
        select(TierOrder.member_id, func.count(), func.sum(TierOrder.amount))
        .where(TierOrder.placed_at >= w0_at, TierOrder.status != "cancelled")
        .group_by(TierOrder.member_id))}
    joined = dict(s.execute(select(RoomMember.member_id, func.min(RoomMember.joined_at))
                            .where(RoomMember.joined_at.is_not(None))
                            .group_by(RoomMember.member_id)).all())
    points = dict(s.execute(select(PointsBalance.member_id, PointsBalance.balance)).all())
    out = []
    for member_id, first_seen in s.execute(select(Member.id, Member.first_seen)):
        d = days.get(member_id)
        last_active = date.fromisoformat(d[0]) if d and d[0] else None
        j = joined.get(member_id)
        joined_day = j.astimezone(tz).date() if j else None
        o = orders.get(member_id, (0, 0.0))
        out.append(MemberFigures(
            member_id=member_id, joined_day=joined_day, last_active_day=last_active,
            reference_day=last_active or joined_day or first_seen.astimezone(tz).date(),
            active_days_7=int(d[1] or 0) if d else 0, active_days_window=int(d[2]) if d else 0,
            messages_window=int(d[3] or 0) if d else 0, checkins_window=int(d[4] or 0) if d else 0,
            orders_window=int(o[0]), amount_window=float(o[1] or 0.0), points=int(points.get(member_id, 0))))
    return out


# -- reading tiers ----------------------------------------------------------------------------------------------------

def _tiers_arg(tier: str | Iterable[str]) -> list[str]:
    wanted = [tier] if isinstance(tier, str) else list(tier)
    unknown = [t for t in wanted if t not in TIERS]
    if unknown or not wanted:
        raise ValueError(f"unknown tier {unknown or wanted!r}; tiers are {', '.join(TIERS)}")
    return wanted


def members_in_tier_sync(s: Session, tier: str | Iterable[str], room_id: str | None = None) -> list[str]:
    stmt = select(MemberTier.member_id).where(MemberTier.tier.in_(_tiers_arg(tier)))
    if room_id is not None:
        stmt = stmt.join(RoomMember, RoomMember.member_id == MemberTier.member_id).where(
            RoomMember.room_id == room_id, RoomMember.active.is_(True))
    return list(s.execute(stmt.order_by(MemberTier.member_id)).scalars())


async def members_in_tier(session: AsyncSession, tier: str | Iterable[str], room_id: str | None = None) -> list[str]:
    """Ids of the members in ``tier`` (a name from TIERS, or several) as of the last pass, sorted.

    With ``room_id``: only those currently in that room. Raises ValueError for an unknown tier name.
    """
    wanted = _tiers_arg(tier)  # an unknown name fails here, on the caller's side
    return await run_read(session, members_in_tier_sync, wanted, room_id)


async def tier_of(session: AsyncSession, member_id: str) -> MemberTier | None:
    return await session.get(MemberTier, member_id)  # one row by key: on the caller's session


def tier_counts_sync(s: Session, room_id: str | None = None) -> dict[str, int]:
    stmt = select(MemberTier.tier, func.count()).group_by(MemberTier.tier)
    if room_id is not None:
        stmt = stmt.join(RoomMember, RoomMember.member_id == MemberTier.member_id).where(
            RoomMember.room_id == room_id, RoomMember.active.is_(True))
    found = dict(s.execute(stmt).all())
    return {t: int(found.get(t, 0)) for t in TIERS}


async def tier_counts(session: AsyncSession, room_id: str | None = None) -> dict[str, int]:
    return await run_read(session, tier_counts_sync, room_id)


def tier_history_sync(s: Session, member_id: str, limit: int = 50) -> list[TierChange]:
    return list(s.execute(select(TierChange).where(TierChange.member_id == member_id)
                          .order_by(TierChange.at.desc(), TierChange.id.desc()).limit(limit)).scalars())


async def tier_history(session: AsyncSession, member_id: str, limit: int = 50) -> list[TierChange]:
    return await run_read(session, tier_history_sync, member_id, limit)


def last_run_sync(s: Session) -> TierRun | None:
    return s.scalar(select(TierRun).order_by(TierRun.id.desc()).limit(1))


async def last_run(session: AsyncSession) -> TierRun | None:
    return await run_read(session, last_run_sync)
