"""Read-only figures from the core's tables (members, their names, scheduled jobs) for skills and the dashboard.
Nothing here writes; the figures built on a skill's tables live in that skill (skills/tiers/stats.py, ...).

Every reader comes in a pair: ``name_sync(s: sqlalchemy.orm.Session, …)``, to call inside a read function, and
``async name(session: AsyncSession, …)``, the same answer read off the event loop (storage/reads.py: run_read,
on a connection of its own, what is committed; inline on ``session`` when it holds writes of its own).
"""

from __future__ import annotations

from sqlalchemy import case, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from storage.models import Member, MemberName, ScheduledJob
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
