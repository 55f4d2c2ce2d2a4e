"""Per-member sums over the tiers' windows (member_windows), kept exact day by day.

``window_days`` says which member_days days are counted, and in which sums (the window of ``window_days`` days,
the recent ``active_window_days``). Every change is one day's member_days rows added to or taken from the sums,
in the same transaction as the change to that day's ``window_days`` row, so after every commit:

    member_windows = Σ over counted days of that day's member_days rows, in the sums the day is counted in

A day about to be rolled up again is taken out first (``uncount``); ``align`` then makes the counted days match
the windows of the pass's day, adding what entered and taking out what left; with nothing counted yet it builds
the sums in one grouped read. ``last_active_day`` is the latest day ever counted: it only grows.
"""

from __future__ import annotations

from datetime import date, timedelta

from sqlalchemy import bindparam, case, delete, func, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.tiers.models import MemberDay, MemberWindow, WindowDay
from storage.upsert import insert_for

_W = WindowDay.__table__


async def _apply(session: AsyncSession, day: str, d_window: int, d_recent: int) -> None:
    """Add (or with negative deltas, take out) one day's member_days rows to the sums."""
    if not d_window and not d_recent:
        return
    md = MemberDay.__table__.c
    t = MemberWindow.__table__
    # the deltas as SQL literals (small ints from this module): no untyped parameters in arithmetic for PostgreSQL
    dw, dr = literal_column(str(int(d_window))), literal_column(str(int(d_recent)))
    rows = select(md.member_id, dw, dr, md.messages * dw, md.checkins * dw, md.day).where(md.day == bindparam("d"))
    ins = insert_for(session.bind.dialect.name, t).from_select(
        ["member_id", "days_window", "days_recent", "messages_window", "checkins_window", "last_active_day"], rows)
    stmt = ins.on_conflict_do_update(index_elements=["member_id"], set_={
        "days_window": t.c.days_window + ins.excluded.days_window,
        "days_recent": t.c.days_recent + ins.excluded.days_recent,
        "messages_window": t.c.messages_window + ins.excluded.messages_window,
        "checkins_window": t.c.checkins_window + ins.excluded.checkins_window,
        "last_active_day": case((t.c.last_active_day.is_(None), ins.excluded.last_active_day),
                                (ins.excluded.last_active_day > t.c.last_active_day, ins.excluded.last_active_day),
                                else_=t.c.last_active_day),
    })
    await session.execute(stmt, {"d": day})


async def _build(session: AsyncSession, first: date, recent: date, today: date) -> None:
    md = MemberDay.__table__.c
    in_window = (md.day >= first.isoformat(), md.day <= today.isoformat())
    sums = (select(md.member_id, func.count(), func.sum(case((md.day >= recent.isoformat(), 1), else_=0)),
                   func.sum(md.messages), func.sum(md.checkins), func.max(md.day))
            .where(*in_window).group_by(md.member_id))
    await session.execute(delete(MemberWindow))
    await session.execute(MemberWindow.__table__.insert().from_select(
        ["member_id", "days_window", "days_recent", "messages_window", "checkins_window", "last_active_day"], sums))
    days = [first + timedelta(days=i) for i in range((today - first).days + 1)]
    await session.execute(_W.insert(), [{"day": d.isoformat(), "in_window": 1, "in_recent": int(d >= recent)}
                                        for d in days])
    await session.commit()


async def uncount(session: AsyncSession, day: date) -> None:
    """Before ``day``'s member_days rows are rebuilt: take them out of the sums (in the same transaction)."""
    d = day.isoformat()
    row = (await session.execute(select(_W.c.in_window, _W.c.in_recent).where(_W.c.day == d))).first()
    if row is None:
        return
    await _apply(session, d, -row.in_window, -row.in_recent)
    await session.execute(delete(_W).where(_W.c.day == d))


async def align(session: AsyncSession, today: date, window_days: int, recent_days: int) -> None:
    """Make the counted days those of the windows ending ``today``; one day per transaction (commits)."""
    first, recent = today - timedelta(days=window_days - 1), today - timedelta(days=recent_days - 1)
    counted = {r.day: (r.in_window, r.in_recent) for r in await session.execute(select(_W))}
    if not counted:  # the first pass (or after a reset): one grouped read instead of a day-by-day build
        await _build(session, first, recent, today)
        return
    wanted = {(first + timedelta(days=i)).isoformat(): (1, int(first + timedelta(days=i) >= recent))
              for i in range(window_days)}
    for d in sorted(set(counted) | set(wanted)):
        have, want = counted.get(d, (0, 0)), wanted.get(d, (0, 0))
        if have == want:
            continue
        await _apply(session, d, want[0] - have[0], want[1] - have[1])
        await session.execute(delete(_W).where(_W.c.day == d))
        if want != (0, 0):
            await session.execute(_W.insert(), {"day": d, "in_window": want[0], "in_recent": want[1]})
        await session.commit()
