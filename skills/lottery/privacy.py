"""What the lottery keeps about a member (``skill.member_data``): their entries, and lotteries they started.

Erasure withdraws the member from open lotteries (an entry cost stays spent, in the pseudonymised ledger). In
lotteries that were cancelled the entry is kept under the pseudonym. In lotteries that were drawn the entry keeps
the member's id, only the name goes: the published draw is recomputed from the sorted entrant ids
(skills/lottery/draw.py), and anyone's ``/lottery verify`` must still match.
"""

from __future__ import annotations

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.lottery.models import Lottery, LotteryEntry
from storage.members import ERASED_NAME


async def export(session: AsyncSession, member_id: str) -> dict[str, object]:
    rows = (await session.execute(
        select(Lottery.status, Lottery.winner_ids).join(LotteryEntry, LotteryEntry.lottery_id == Lottery.id)
        .where(LotteryEntry.member_id == member_id))).all()
    out: dict[str, object] = {}
    if rows:
        won = sum(1 for status, winners in rows if status == "drawn" and member_id in (winners or []))
        waiting = sum(1 for status, _ in rows if status == "open")
        out["抽奖"] = f"参与 {len(rows)} 次，中奖 {won} 次" + (f"，{waiting} 次等待开奖" if waiting else "")
    started = await session.scalar(select(func.count()).where(Lottery.created_by == member_id))
    if started:
        out["发起的抽奖"] = f"{started} 次"
    return out


async def erase(session: AsyncSession, member_id: str, pseudonym: str) -> int:
    entries, lotteries = LotteryEntry.__table__, Lottery.__table__
    mine = entries.c.member_id == member_id

    def in_status(*statuses: str):
        return entries.c.lottery_id.in_(select(lotteries.c.id).where(lotteries.c.status.in_(statuses)))

    changed = (await session.execute(delete(entries).where(mine, in_status("open")))).rowcount or 0
    changed += (await session.execute(update(entries).where(mine, in_status("cancelled"))
                                      .values(member_id=pseudonym, name=ERASED_NAME))).rowcount or 0
    changed += (await session.execute(update(entries).where(mine, in_status("drawn"))
                                      .values(name=ERASED_NAME))).rowcount or 0
    changed += (await session.execute(update(lotteries).where(lotteries.c.created_by == member_id)
                                      .values(created_by=pseudonym))).rowcount or 0
    return changed
