"""Queries of the lottery skill. Each takes the caller's session; nothing here commits.

Rows come back read-only (their columns as attributes). The statements are built once; the hot ones — run on every
``/lottery status`` and on every entry keyword — go through ``storage.fast.execute``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from skills.lottery.draw import alias
from skills.lottery.models import Lottery, LotteryEntry
from storage import fast
from storage.models import Room
from storage.points import AlreadyRecorded, change_points
from storage.reads import run_read

_L = Lottery.__table__
_E = LotteryEntry.__table__

_OPEN = select(_L.c.id, _L.c.room_id, _L.c.keyword, _L.c.deadline).where(_L.c.status == "open")
# hot: /lottery status, and the check before a start
_OPEN_IN_ROOM = select(_L).where(_L.c.room_id == bindparam("room"), _L.c.status == "open")
_BY_ID = select(_L).where(_L.c.id == bindparam("lottery"))
_LATEST_IN_ROOM = select(_L.c.id).where(_L.c.room_id == bindparam("room")).order_by(_L.c.id.desc()).limit(1)
# hot: every entry keyword
_ENTRY_VIEW = select(_L.c.id, _L.c.room_id, _L.c.status, _L.c.deadline, _L.c.cost, _L.c.min_tier,
                     _L.c.alias_salt).where(_L.c.id == bindparam("lottery"))
_ENTERED = select(_E.c.id).where(_E.c.lottery_id == bindparam("lottery"), _E.c.member_id == bindparam("member"))
_ALIAS_TAKEN = select(_E.c.id).where(_E.c.lottery_id == bindparam("lottery"), _E.c.alias == bindparam("alias_"))
_ADD_ENTRY = _E.insert()
_CREATE = _L.insert()
_COUNT = select(func.count()).select_from(_E).where(_E.c.lottery_id == bindparam("lottery"))
_ENTRANTS = (select(_E.c.member_id, _E.c.name, _E.c.alias).where(_E.c.lottery_id == bindparam("lottery"))
             .order_by(_E.c.member_id))
_SET_COMMITMENT = update(_L).where(_L.c.id == bindparam("lottery")).values(commitment=bindparam("commit"))
# Parameter names differ from the columns they set (storage/prepared.py): the conditional open → drawn/cancelled.
_DRAWN = (update(_L).where(_L.c.id == bindparam("lottery"), _L.c.status == "open")
          .values(status="drawn", drawn_at=bindparam("now"), winner_ids=bindparam("winners_"),
                  seed=bindparam("seed_"), entrants_hash=bindparam("hash_")))
_CANCELLED = (update(_L).where(_L.c.id == bindparam("lottery"), _L.c.status == "open")
              .values(status="cancelled", seed=func.coalesce(bindparam("seed_", type_=_L.c.seed.type), _L.c.seed),
                      entrants_hash=bindparam("hash_")))


@dataclass(frozen=True, slots=True)
class Entrant:
    member_id: str
    name: str  # display name at entry (the member id when the platform gave none)
    alias: str | None  # None in legacy lotteries


async def open_lotteries(session: AsyncSession) -> list[Any]:
    """Every open lottery: id, room_id, keyword, deadline."""
    return list((await session.execute(_OPEN)).all())


async def open_in_room(session: AsyncSession, room_id: str) -> Any:
    """The room's open lottery, or None."""
    return (await fast.execute(session, _OPEN_IN_ROOM, {"room": room_id})).first()


async def lottery(session: AsyncSession, lottery_id: int) -> Any:
    return (await session.execute(_BY_ID, {"lottery": lottery_id})).first()


async def latest_in_room(session: AsyncSession, room_id: str) -> int | None:
    return (await session.execute(_LATEST_IN_ROOM, {"room": room_id})).scalar()


async def create(session: AsyncSession, **values: Any) -> int:
    """Insert a lottery (``values``: its columns); its id."""
    result = await session.execute(_CREATE, values)
    return result.inserted_primary_key[0]


async def set_commitment(session: AsyncSession, lottery_id: int, value: str) -> None:
    """The commitment of a seed that depends on the lottery's id, known only once it is inserted."""
    await session.execute(_SET_COMMITMENT, {"lottery": lottery_id, "commit": value})


async def entry_view(session: AsyncSession, lottery_id: int) -> Any:
    """What deciding an entry needs: status, deadline, cost, min_tier, alias_salt, room_id."""
    return (await fast.execute(session, _ENTRY_VIEW, {"lottery": lottery_id})).first()


async def has_entered(session: AsyncSession, lottery_id: int, member_id: str) -> bool:
    return (await fast.execute(session, _ENTERED, {"lottery": lottery_id, "member": member_id})).first() is not None


async def add_entry(session: AsyncSession, lottery_id: int, member_id: str, name: str, at: datetime, *,
                    salt: str | None, cost: int) -> None:
    """Charge ``cost`` and add the entry, together (a savepoint: both or neither).

    The entry's alias is the member's in this lottery (draw.alias); when an earlier entrant holds it already (a
    1-in-4-billion chance per pair) the next attempt's. Raises InsufficientPoints, AlreadyRecorded (charged
    before) or IntegrityError (entered already, in a race this call lost).
    """
    entry_alias = None
    if salt is not None:
        attempt = 0
        while True:
            entry_alias = alias(salt, member_id, attempt)
            if (await fast.execute(session, _ALIAS_TAKEN, {"lottery": lottery_id, "alias_": entry_alias})
                    ).first() is None:
                break
            attempt += 1
    async with fast.savepoint(session):
        if cost:
            await change_points(session, member_id, -cost, reason=f"参加抽奖 #{lottery_id}", source="lottery",
                                ref_id=f"lottery:{lottery_id}:entry:{member_id}", at=at, savepoint=False)
        await fast.execute(session, _ADD_ENTRY, {"lottery_id": lottery_id, "member_id": member_id,
                                                 "name": name[:128], "at": at, "alias": entry_alias})


async def count_entries(session: AsyncSession, lottery_id: int) -> int:
    return (await fast.execute(session, _COUNT, {"lottery": lottery_id})).scalar() or 0


async def entrants(session: AsyncSession, lottery_id: int) -> list[Entrant]:
    """Every entrant, by member id."""
    rows = await session.execute(_ENTRANTS, {"lottery": lottery_id})
    return [Entrant(r.member_id, r.name, r.alias) for r in rows]


async def mark_drawn(session: AsyncSession, lottery_id: int, now: datetime, winners: list[str], seed: str,
                     entrants_hash: str | None) -> bool:
    """open → drawn with the winners and the revealed seed; False if it was no longer open."""
    result = await session.execute(_DRAWN, {"lottery": lottery_id, "now": now, "winners_": winners, "seed_": seed,
                                            "hash_": entrants_hash})
    return result.rowcount == 1


async def mark_cancelled(session: AsyncSession, lottery_id: int, seed: str | None,
                         entrants_hash: str | None) -> bool:
    """open → cancelled, revealing the seed (None: it can't be derived); False if it was no longer open."""
    result = await session.execute(_CANCELLED, {"lottery": lottery_id, "seed_": seed, "hash_": entrants_hash})
    return result.rowcount == 1


async def refund(session: AsyncSession, lottery_id: int, cost: int, members: list[str], at: datetime) -> int:
    """Give each member their entry points back, exactly once (a refund recorded before is not repeated); how many
    were refunded now."""
    refunded = 0
    for member_id in members:
        try:
            await change_points(session, member_id, cost, reason=f"抽奖 #{lottery_id} 取消，退还积分",
                                source="lottery", ref_id=f"lottery:{lottery_id}:refund:{member_id}", at=at)
            refunded += 1
        except AlreadyRecorded:
            pass
    return refunded


# -- the dashboard page (read off the event loop) ------------------------------------------------------------

_ENTRANT_COUNTS = (select(LotteryEntry.lottery_id, func.count().label("n"))
                   .group_by(LotteryEntry.lottery_id).subquery())
_TABLE = (select(Lottery, func.coalesce(_ENTRANT_COUNTS.c.n, 0), func.coalesce(Room.topic, ""))
          .outerjoin(_ENTRANT_COUNTS, _ENTRANT_COUNTS.c.lottery_id == Lottery.id)
          .outerjoin(Room, Room.id == Lottery.room_id)
          .order_by(Lottery.created_at.desc()))


def lotteries_table_sync(s: Session, limit: int = 200) -> list[tuple[Lottery, int, str]]:
    """The newest lotteries with their entrant count and room topic ("" when the room is unknown)."""
    return [(lot, int(n), topic) for lot, n, topic in s.execute(_TABLE.limit(limit)).all()]


async def lotteries_table(session: AsyncSession, limit: int = 200) -> list[tuple[Lottery, int, str]]:
    return await run_read(session, lotteries_table_sync, limit)
