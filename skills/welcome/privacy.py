"""What the welcome skill keeps about a member (``skill.member_data``): when they were welcomed in which room, and
the referral rewards waiting for them as an inviter.

Erasure deletes the welcomes and cancels the rewards still due to the member (a reward due to someone else for
inviting the member stays: the core renames the invitee in it).
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.welcome.models import Welcome
from storage import jobs

REFERRAL_JOB = "welcome.referral"


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    welcomed = await session.scalar(select(func.count()).where(Welcome.member_id == member_id))
    if welcomed:
        out["入群欢迎"] = f"在 {welcomed} 个群被欢迎过"
    waiting = sum(1 for _, p in await jobs.pending(session, REFERRAL_JOB) if p.get("inviter") == member_id)
    if waiting:
        out["邀请奖励"] = f"{waiting} 个待发放"
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    welcomes = Welcome.__table__
    changed = (await session.execute(delete(welcomes).where(welcomes.c.member_id == member_id))).rowcount or 0
    mine = [key for key, p in await jobs.pending(session, REFERRAL_JOB) if p.get("inviter") == member_id]
    return changed + await jobs.cancel(session, mine)
