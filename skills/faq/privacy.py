"""What the FAQ skill keeps about a member (``skill.member_data``): the handoff tickets of their questions.

Erasure deletes them: a ticket is the member's own words; the counts on the dashboard are of the tickets that
remain.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.faq.models import Ticket


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    n = await session.scalar(select(func.count()).where(Ticket.member_id == member_id))
    return {"转人工的问题": f"{n} 个"} if n else {}


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    return (await session.execute(delete(Ticket).where(Ticket.member_id == member_id))).rowcount
