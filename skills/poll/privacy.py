"""What the poll skill keeps about a member (``skill.member_data``): their votes and the polls they started.

Erasure keeps every count right: a vote stays, under the pseudonym, and so does a poll's starter.
"""

from __future__ import annotations

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.poll.models import Poll, PollVote


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    votes = await session.scalar(select(func.count()).where(PollVote.member_id == member_id))
    if votes:
        out["投票"] = f"参与 {votes} 次"
    started = await session.scalar(select(func.count()).where(Poll.created_by == member_id))
    if started:
        out["发起的投票"] = f"{started} 次"
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    changed = (await session.execute(update(PollVote).where(PollVote.member_id == member_id)
                                     .values(member_id=pseudonym))).rowcount
    changed += (await session.execute(update(Poll).where(Poll.created_by == member_id)
                                      .values(created_by=pseudonym))).rowcount
    return changed
