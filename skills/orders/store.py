"""Queries of the orders skill. Each takes the caller's session; nothing here commits.

Statements are built once (building one costs about as much as running it through SQLAlchemy); the ones an order
update and a reminder run go through the fast path (storage.fast). The INSERT … ON CONFLICT ones differ by
dialect: built once per dialect.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from skills.orders.input import OPEN_STATUSES
from skills.orders.models import GroupBuy, MemberBinding, Order, OrderEvent, ReminderSent
from storage import fast, identity
from storage.models import RoomMember
from storage.upsert import insert_for

_ORDERS = Order.__table__
_GROUP_BUYS = GroupBuy.__table__
# the columns an update may change (the id and created_at never change)
UPDATABLE = ("member_id", "external_member_id", "items", "amount_cents", "pay_by", "pickup_by", "group_buy_id",
             "room_id", "tracking", "status", "updated_at")

_ORDER = select(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"))
_ORDER_INSERT = _ORDERS.insert()
_ORDER_UPDATE = (update(_ORDERS).where(_ORDERS.c.id == bindparam("order_id"))
                 .values({c: bindparam("new_" + c) for c in UPDATABLE}))
_BOUND = (select(MemberBinding.__table__.c.wechat_id)
          .where(MemberBinding.__table__.c.external_id == bindparam("external_id")))
_BIND_WAITING = (update(_ORDERS).where(_ORDERS.c.external_member_id == bindparam("external_id"),
                                       _ORDERS.c.member_id.is_(None))
                 .values(member_id=bindparam("wechat_id")))
_GROUP_BUY = select(_GROUP_BUYS.c.id, _GROUP_BUYS.c.cutoff_at).where(_GROUP_BUYS.c.id == bindparam("gb"))
_GROUP_BUY_INSERT = _GROUP_BUYS.insert()
_GROUP_BUY_MOVE = (update(_GROUP_BUYS).where(_GROUP_BUYS.c.id == bindparam("gb"))
                   .values(cutoff_at=bindparam("new_cutoff")))
_BUYERS = select(_ORDERS.c.room_id, _ORDERS.c.member_id).where(_ORDERS.c.group_buy_id == bindparam("gb"),
                                                                _ORDERS.c.status != "cancelled")


def _event_insert(dialect: str) -> Executable:  # the (order, status) seen before: nothing
    return insert_for(dialect, OrderEvent.__table__).on_conflict_do_nothing(index_elements=["order_id", "status"])


def _claim_insert(dialect: str) -> Executable:  # a reminder decided before: nothing
    return insert_for(dialect, ReminderSent.__table__).on_conflict_do_nothing()


def _binding_upsert(dialect: str) -> Executable:  # a member bound again: the new WeChat id
    stmt = insert_for(dialect, MemberBinding.__table__)
    return stmt.on_conflict_do_update(index_elements=["external_id"], set_={"wechat_id": stmt.excluded.wechat_id})


_BY_DIALECT: dict[tuple[str, Any], Executable] = {}


def _for_dialect(session: AsyncSession, build) -> Executable:  # type: ignore[no-untyped-def]
    key = (session.bind.dialect.name, build)
    stmt = _BY_DIALECT.get(key)
    if stmt is None:
        stmt = _BY_DIALECT[key] = build(key[0])
    return stmt


# -- orders ---------------------------------------------------------------------------------------------------------

async def get_order(session: AsyncSession, order_id: str) -> Row | None:
    return (await fast.execute(session, _ORDER, {"order_id": order_id})).first()


async def record_event(session: AsyncSession, order_id: str, status: str, source: str, at: datetime,
                       applied: bool) -> bool:
    """Note (order, status) as received; False when it was received before (its unique key)."""
    result = await fast.execute(session, _for_dialect(session, _event_insert), {
        "order_id": order_id, "status": status, "source": source, "received_at": at, "applied": applied})
    return result.rowcount > 0


async def insert_order(session: AsyncSession, order: dict) -> None:
    """``order``: the id, created_at and every UPDATABLE column."""
    await fast.execute(session, _ORDER_INSERT, order)


async def update_order(session: AsyncSession, order_id: str, order: dict) -> None:
    await fast.execute(session, _ORDER_UPDATE, {("new_" + c): order[c] for c in UPDATABLE} | {"order_id": order_id})


async def open_orders(session: AsyncSession, member_id: str, limit: int = 10) -> list[Order]:
    """The member's orders not yet completed or cancelled, newest first."""
    return list((await session.execute(
        select(Order).where(Order.member_id == member_id, Order.status.in_(OPEN_STATUSES))
        .order_by(Order.created_at.desc()).limit(limit))).scalars())


# -- member bindings ------------------------------------------------------------------------------------------------

async def bound_wechat_id(session: AsyncSession, external_id: str) -> str | None:
    return (await fast.execute(session, _BOUND, {"external_id": external_id})).scalar()


async def bind_member(session: AsyncSession, external_id: str, wechat_id: str, at: datetime,
                      member_id: str | None = None) -> int:
    """Map the shop's member id to a WeChat id (the orders' recipient) and to ``member_id`` (the canonical member,
    the WeChat id's own by default); orders waiting for it get the WeChat id. Returns how many orders did."""
    await fast.execute(session, _for_dialect(session, _binding_upsert),
                       {"external_id": external_id, "wechat_id": wechat_id, "created_at": at})
    await identity.bind(session, "shop", external_id, member_id or wechat_id, at)  # one member, one wallet
    result = await fast.execute(session, _BIND_WAITING, {"external_id": external_id, "wechat_id": wechat_id})
    return result.rowcount


# -- group buys -----------------------------------------------------------------------------------------------------

async def group_buy(session: AsyncSession, gb_id: str) -> Row | None:
    """(id, cutoff_at) of a known group buy, or None."""
    return (await fast.execute(session, _GROUP_BUY, {"gb": gb_id})).first()


async def add_group_buy(session: AsyncSession, gb_id: str, cutoff: datetime) -> None:
    await fast.execute(session, _GROUP_BUY_INSERT, {"id": gb_id, "cutoff_at": cutoff})


async def move_group_buy_cutoff(session: AsyncSession, gb_id: str, cutoff: datetime) -> None:
    await fast.execute(session, _GROUP_BUY_MOVE, {"gb": gb_id, "new_cutoff": cutoff})


async def group_buy_buyers(session: AsyncSession, gb_id: str) -> list[Row]:
    """(room_id, member_id) of the group buy's orders that are not cancelled."""
    return (await fast.execute(session, _BUYERS, {"gb": gb_id})).all()


async def active_rooms_of(session: AsyncSession, members: Iterable[str]) -> set[str]:
    """The rooms these members are in now."""
    return set((await session.execute(select(RoomMember.room_id).where(
        RoomMember.member_id.in_(list(members)), RoomMember.active.is_(True)))).scalars())


# -- reminders ------------------------------------------------------------------------------------------------------

async def claim_reminder(session: AsyncSession, ref: str, kind: str, target: str, at: datetime) -> bool:
    """Insert the reminder's unique row; False if it was decided before (restart, duplicate job)."""
    result = await fast.execute(session, _for_dialect(session, _claim_insert),
                                {"ref": ref, "kind": kind, "target": target, "decided_at": at})
    return result.rowcount > 0
