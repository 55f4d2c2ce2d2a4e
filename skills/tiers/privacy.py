"""What the tiers skill keeps about a member (``skill.member_data``): their tier and its history, and the daily
rollups behind it.

Erasure deletes the tier, its history and the member's rollup rows (member_days and member_windows together, so
the windows' sums stay exact); the orders projection keeps the orders under the pseudonym, like the orders skill.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.tiers.models import MemberDay, MemberTier, MemberWindow, TierChange, TierOrder
from skills.tiers.store import TIER_NAMES


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    tier = await session.get(MemberTier, member_id)
    if tier is not None:
        out["成员分层"] = (f"{TIER_NAMES.get(tier.tier, tier.tier)}（RFM：R{tier.r} F{tier.f} M{tier.m}；"
                       f"近 7 天活跃 {tier.active_days_7} 天）")
    changes = await session.scalar(select(func.count()).where(TierChange.member_id == member_id))
    days = await session.scalar(select(func.count()).where(MemberDay.member_id == member_id))
    if changes or days:
        out["分层统计"] = f"分层变化 {changes} 次，按天汇总的活跃记录 {days} 天"
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    changed = 0
    for table in (MemberTier.__table__, TierChange.__table__, MemberDay.__table__, MemberWindow.__table__):
        changed += (await session.execute(delete(table).where(table.c.member_id == member_id))).rowcount or 0
    orders = TierOrder.__table__
    changed += (await session.execute(update(orders).where(orders.c.member_id == member_id)
                                      .values(member_id=pseudonym))).rowcount or 0
    return changed
