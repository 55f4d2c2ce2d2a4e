"""What the orders skill keeps about a member (``skill.member_data``): their orders, reminders and the shop's
member numbers bound to them.

Orders are the shop's bookkeeping: erasure keeps them under the pseudonym, without the tracking text (an address or
a phone number may be in it) and without the shop's member number; their pending reminders are cancelled, the
bindings deleted.
"""

from __future__ import annotations

from sqlalchemy import case, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.orders.input import OPEN_STATUSES
from skills.orders.models import MemberBinding, Order, ReminderSent
from storage import jobs

REMINDERS = ("unpaid", "pickup_ready", "pickup_due", "shipped")  # the per-order jobs: order:<id>:<kind>


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    out: dict[str, object] = {}
    total, open_ = (await session.execute(
        select(func.count(), func.coalesce(func.sum(case((Order.status.in_(OPEN_STATUSES), 1), else_=0)), 0))
        .where(Order.member_id == member_id))).one()
    if total:
        out["订单"] = f"共 {total} 单，其中进行中 {int(open_)} 单（私聊发送「我的订单」查看）"
    reminders = await session.scalar(select(func.count()).where(ReminderSent.target == f"user:{member_id}"))
    if reminders:
        out["订单提醒"] = f"收到过 {reminders} 条"
    bound = await session.scalar(select(func.count()).where(MemberBinding.wechat_id == member_id))
    if bound:
        out["商城会员绑定"] = f"{bound} 个会员号"
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    orders, sent, bindings = Order.__table__, ReminderSent.__table__, MemberBinding.__table__
    ids = list((await session.execute(select(orders.c.id).where(orders.c.member_id == member_id))).scalars())
    changed = await jobs.cancel(session, [f"order:{i}:{kind}" for i in ids for kind in REMINDERS])
    changed += (await session.execute(update(orders).where(orders.c.member_id == member_id).values(
        member_id=pseudonym, external_member_id=None, tracking=None))).rowcount or 0
    changed += (await session.execute(update(sent).where(sent.c.target == f"user:{member_id}")
                                      .values(target=f"user:{pseudonym}"))).rowcount or 0
    changed += (await session.execute(delete(bindings).where(bindings.c.wechat_id == member_id))).rowcount or 0
    return changed
