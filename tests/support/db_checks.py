"""Reading a test database from outside the bot (after a process was killed, or an app stopped): the figures
the fault tests check — messages logged, and every points balance beside its ledger sum."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncConnection

from storage.db import create_engine
from storage.models import Activity
from storage.models_points import PointsBalance, PointsLedger

T = TypeVar("T")


async def read(db_url: str, query: Callable[[AsyncConnection], Awaitable[T]]) -> T:
    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            return await query(conn)
    finally:
        await engine.dispose()


async def messages_balances_ledger(conn: AsyncConnection) -> tuple[int, dict[str, int], dict[str, int]]:
    """(message rows in the activity store, balance per member, ledger sum per member)."""
    messages = (await conn.execute(select(func.count()).select_from(Activity)
                                   .where(Activity.kind == "message"))).scalar()
    balances = dict((await conn.execute(select(PointsBalance.member_id, PointsBalance.balance))).all())
    ledger = dict((await conn.execute(select(PointsLedger.member_id, func.sum(PointsLedger.delta))
                                      .group_by(PointsLedger.member_id))).all())
    return messages, balances, {k: int(v) for k, v in ledger.items()}
