"""What the check-in skill keeps about a member (``skill.member_data``): check-ins and redemptions.

Erasure deletes the check-ins (the points they earned stay in the ledger, pseudonymised by the core) and keeps the
redemptions, which operators fulfil and account for, under the pseudonym without the name.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.checkin.models import Checkin, Redemption
from storage.members import ERASED_NAME

STATUS_ZH = {"pending": "待发放", "done": "已发放", "refused": "未发放（积分已退回）"}


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    count, last = (await session.execute(select(func.count(), func.max(Checkin.local_date))
                                         .where(Checkin.member_id == member_id))).one()
    if count:
        streak = await session.scalar(select(Checkin.streak).where(Checkin.member_id == member_id,
                                                                   Checkin.local_date == last))
        out["签到"] = f"共 {count} 次，最近一次 {last}（连续 {streak} 天）"
    redeemed = await session.scalar(select(func.count()).where(Redemption.member_id == member_id))
    if redeemed:
        rows = (await session.execute(select(Redemption.item, Redemption.status)
                                      .where(Redemption.member_id == member_id)
                                      .order_by(Redemption.at.desc()).limit(5))).all()
        shown = "、".join(f"{item}（{STATUS_ZH.get(status, status)}）" for item, status in rows)
        out["积分兑换"] = f"共 {redeemed} 次：{shown}" + ("等" if redeemed > len(rows) else "")
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    checkins, redemptions = Checkin.__table__, Redemption.__table__
    changed = (await session.execute(delete(checkins).where(checkins.c.member_id == member_id))).rowcount or 0
    changed += (await session.execute(update(redemptions).where(redemptions.c.member_id == member_id)
                                      .values(member_id=pseudonym, member_name=ERASED_NAME))).rowcount or 0
    changed += (await session.execute(update(redemptions).where(redemptions.c.handled_by == member_id)
                                      .values(handled_by=pseudonym))).rowcount or 0
    return changed
