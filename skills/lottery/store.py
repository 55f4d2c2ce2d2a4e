"""Queries of the lottery skill's dashboard page. Nothing here writes."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from skills.lottery.models import Lottery, LotteryEntry
from storage.models import Room
from storage.reads import run_read

_ENTRANTS = select(LotteryEntry.lottery_id, func.count().label("n")).group_by(LotteryEntry.lottery_id).subquery()
_TABLE = (select(Lottery, func.coalesce(_ENTRANTS.c.n, 0), func.coalesce(Room.topic, ""))
          .outerjoin(_ENTRANTS, _ENTRANTS.c.lottery_id == Lottery.id).outerjoin(Room, Room.id == Lottery.room_id)
          .order_by(Lottery.created_at.desc()))


def lotteries_table_sync(s: Session, limit: int = 200) -> list[tuple[Lottery, int, str]]:
    """The newest lotteries with their entrant count and room topic ("" when the room is unknown)."""
    return [(lot, int(n), topic) for lot, n, topic in s.execute(_TABLE.limit(limit)).all()]


async def lotteries_table(session: AsyncSession, limit: int = 200) -> list[tuple[Lottery, int, str]]:
    return await run_read(session, lotteries_table_sync, limit)
