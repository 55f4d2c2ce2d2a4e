"""Read-only figures from the core's tables (members, their names, scheduled jobs) for skills and the dashboard.
Nothing here writes; the figures built on a skill's tables live in that skill (skills/tiers/stats.py, ...).

Every reader comes in a pair: ``name_sync(s: sqlalchemy.orm.Session, …)``, to call inside a read function, and
``async name(session: AsyncSession, …)``, the same answer read off the event loop (storage/reads.py: run_read,
on a connection of its own, what is committed; inline on ``session`` when it holds writes of its own).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import case, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import Activity, Member, MemberName, OutboxMessage, ScheduledJob
from storage.models_gentle import ProactiveLast
from storage.reads import run_read

MAX_QUERY = 64  # longest member search string


def find_member_ids_sync(s: Session, text: str, limit: int = 5) -> list[str]:
    """Members whose id is ``text`` exactly, else whose current or past display name is ``text`` exactly."""
    text = text.strip()[:MAX_QUERY]
    if not text:
        return []
    if s.get(Member, text) is not None:
        return [text]
    return list(s.execute(select(MemberName.member_id).where(MemberName.name == text).distinct()
                          .limit(limit)).scalars().all())


async def find_member_ids(session: AsyncSession, text: str, limit: int = 5) -> list[str]:
    return await run_read(session, find_member_ids_sync, text, limit)


def like_pattern(text: str) -> str:
    """A LIKE pattern that matches ``text`` literally anywhere (% and _ escaped with \\)."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def member_names_sync(s: Session, member_id: str) -> list[str]:
    return list(s.execute(select(MemberName.name).where(MemberName.member_id == member_id)
                          .order_by(MemberName.first_seen)).scalars())


async def member_names(session: AsyncSession, member_id: str) -> list[str]:
    return await run_read(session, member_names_sync, member_id)


def jobs_table_sync(s: Session, limit: int = 500) -> list[ScheduledJob]:
    return list(s.execute(select(ScheduledJob).order_by(
        case((ScheduledJob.status == "active", 0), else_=1), ScheduledJob.next_run_at, ScheduledJob.id)
        .limit(limit)).scalars())


async def jobs_table(session: AsyncSession, limit: int = 500) -> list[ScheduledJob]:
    return await run_read(session, jobs_table_sync, limit)


# -- the account page (bot/web/account.py) ----------------------------------------------------------------------------

MAX_HELD_ROWS = 10_000  # outbox rows looked at; a backlog bigger than this is shown as "at least"


@dataclass
class HeldRow:
    room_id: str | None
    kind: str | None  # None: a reply
    status: str  # pending | sending
    decided_at: datetime


@dataclass
class SendFigures:
    sent_last_hour: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # the last day's drops, by the governor's reason
    backoffs: int = 0  # the last day's risk-control pushbacks (each one a back-off)
    held: list[HeldRow] = field(default_factory=list)
    room_last: dict[str, datetime] = field(default_factory=dict)  # room scope -> its last proactive message


def send_figures_sync(s: Session, now: datetime, account_id: str | None = None) -> SendFigures:
    """What the governor did lately, from the activity log (``sent``, ``send_dropped``, ``send_failed`` rows) and
    what waits in the outbox (of ``account_id`` only, when given: a shared database)."""
    out = SendFigures()
    out.sent_last_hour = s.execute(select(func.count()).select_from(Activity).where(
        Activity.at >= now - timedelta(hours=1), Activity.kind == "sent")).scalar_one()
    rows = s.execute(select(Activity.kind, Activity.detail).where(
        Activity.at >= now - timedelta(days=1), Activity.kind.in_(("send_dropped", "send_failed"))))
    for kind, detail in rows:
        reason = str((detail or {}).get("reason") or "unknown")
        if kind == "send_dropped":
            out.dropped[reason] = out.dropped.get(reason, 0) + 1
        elif reason == "risk_control":
            out.backoffs += 1
    mine = [OutboxMessage.account_id == account_id] if account_id is not None else []
    out.held = [HeldRow(r.room_id, r.kind, r.status, r.decided_at) for r in s.execute(
        select(OutboxMessage.room_id, OutboxMessage.kind, OutboxMessage.status, OutboxMessage.decided_at)
        .where(OutboxMessage.status.in_(("pending", "sending")), *mine)
        .order_by(OutboxMessage.id).limit(MAX_HELD_ROWS))]
    scopes = sorted({f"room:{r.room_id}" for r in out.held if r.room_id is not None and r.kind is not None})
    for i in range(0, len(scopes), 500):  # bound the IN list
        for scope, at in s.execute(select(ProactiveLast.scope, ProactiveLast.at)
                                   .where(ProactiveLast.scope.in_(scopes[i:i + 500]))):
            out.room_last[scope] = at
    return out


async def send_figures(session: AsyncSession, now: datetime, account_id: str | None = None) -> SendFigures:
    return await run_read(session, send_figures_sync, now, account_id)
