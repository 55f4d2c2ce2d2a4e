"""The member identity table (统一用户ID): (kind, value) → the canonical member id, so one person has one points
wallet and one tier whatever channel they came through (a personal-WeChat group, a WeCom external contact, 微信客服,
the shop).

Kinds: ``wechat`` (a personal-WeChat id), ``external_userid`` (WeCom), ``unionid`` (WeChat's id across one
subject's apps: what links a WeCom contact to the shop's member), ``shop`` (the shop's member id, as the orders
skill's member_bindings has it). A member id is what the activity store, the wallet and every skill key on; an id
with no row is its own canonical id.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import hashlib
from dataclasses import dataclass

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import points
from storage.models_points import PointsLedger
from storage.models_wecom import MemberIdentity
from storage.upsert import insert_for

KINDS = ("wechat", "external_userid", "unionid", "shop")
_T = MemberIdentity.__table__


async def resolve(session: AsyncSession, kind: str, value: str) -> str | None:
    """The canonical member id of (kind, value), or None if unknown."""
    return await session.scalar(select(_T.c.member_id).where(_T.c.kind == kind, _T.c.value == value))


async def link(session: AsyncSession, kind: str, value: str, member_id: str, at: datetime) -> str:
    """Map (kind, value) to ``member_id`` unless it is mapped already; returns the member id it maps to (the first
    mapping wins: moving a wallet is an operator's decision, never a side effect of a callback)."""
    await _add(session, kind, value, member_id, at)
    return await resolve(session, kind, value) or member_id


async def _add(session: AsyncSession, kind: str, value: str, member_id: str, at: datetime) -> None:
    """Map (kind, value) to ``member_id`` unless it is mapped already."""
    if kind not in KINDS:
        raise ValueError(f"identity kind must be one of {', '.join(KINDS)}")
    stmt = insert_for(session.bind.dialect.name, _T).values(kind=kind, value=value, member_id=member_id,
                                                            created_at=at)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["kind", "value"]))


async def bind(session: AsyncSession, kind: str, value: str, member_id: str, at: datetime) -> None:
    """Map (kind, value) to ``member_id``, replacing an earlier mapping: an operator's decision (``orders bind``)."""
    if kind not in KINDS:
        raise ValueError(f"identity kind must be one of {', '.join(KINDS)}")
    stmt = insert_for(session.bind.dialect.name, _T).values(kind=kind, value=value, member_id=member_id,
                                                            created_at=at)
    await session.execute(stmt.on_conflict_do_update(index_elements=["kind", "value"],
                                                     set_={"member_id": stmt.excluded.member_id}))


async def identify(session: AsyncSession, ids: Iterable[tuple[str, str | None]], fallback: str,
                   at: datetime) -> str:
    """The member behind several ids of one person (``[("external_userid", x), ("unionid", u)]``): the first id
    already known decides (in the order given), else ``fallback``; every id given is then linked to it."""
    pairs = [(k, v) for k, v in ids if v]
    member_id = None
    for kind, value in pairs:
        member_id = await resolve(session, kind, value)
        if member_id is not None:
            break
    member_id = member_id or fallback
    for kind, value in pairs:
        await _add(session, kind, value, member_id, at)  # whom it maps to afterwards is not needed: no read back
    return member_id


async def of_member(session: AsyncSession, member_id: str) -> list[tuple[str, str]]:
    rows = await session.execute(select(_T.c.kind, _T.c.value).where(_T.c.member_id == member_id)
                                 .order_by(_T.c.kind, _T.c.value))
    return [(r.kind, r.value) for r in rows]


async def erase(session: AsyncSession, member_id: str) -> int:
    return (await session.execute(delete(_T).where(_T.c.member_id == member_id))).rowcount or 0


@dataclass(frozen=True)
class Merged:
    moved: int  # points moved from the merged wallet (0: none, or moved before)
    relinked: int  # ids that now name the kept member
    balance: int  # the kept member's balance afterwards


async def merge(session: AsyncSession, merged: str, kept: str, at: datetime, actor_id: str | None = None) -> Merged:
    """One person, two member ids (a WeCom customer and a shop member an operator says are the same person):
    every id of ``merged`` now names ``kept`` (``merged`` itself included, as a ``wechat`` id), and the points in
    ``merged``'s wallet move to ``kept``'s through the ledger: a spend on one, an earning on the other, with
    references that make it exactly-once (running it again moves nothing twice; points ``merged`` earns later,
    had a process not yet seen the link, move with the next merge). In the caller's transaction: balances equal the
    ledger afterwards, or nothing changed."""
    if merged == kept:
        raise ValueError("a member can't be merged into itself")
    relinked = (await session.execute(update(_T).where(_T.c.member_id == merged).values(member_id=kept))).rowcount
    if await resolve(session, "wechat", merged) is None and not await session.scalar(
            select(func.count()).select_from(_T).where(_T.c.value == merged)):
        await link(session, "wechat", merged, kept, at)  # the old id itself (a WeChat id) names the kept member
    moved = 0
    amount = await points.balance(session, merged)
    if amount > 0:
        pair = hashlib.sha1(f"{merged}\x00{kept}".encode()).hexdigest()[:24]
        # the reference names the pair and the merged wallet's ledger so far: two runs racing on one state find
        # the same reference, and only one moves the points
        rows = await session.scalar(select(func.count()).select_from(PointsLedger)
                                    .where(PointsLedger.member_id == merged))
        ref = f"merge:{pair}:{rows}"
        try:
            async with session.begin_nested():
                await points.change_points(session, merged, -amount, reason=f"合并到 {kept[:60]}", source="merge",
                                           at=at, ref_id=ref + ":out", actor_id=actor_id, savepoint=False)
                await points.change_points(session, kept, amount, reason=f"从 {merged[:60]} 合并", source="merge",
                                           at=at, ref_id=ref + ":in", actor_id=actor_id, savepoint=False)
            moved = amount
        except (points.AlreadyRecorded, points.InsufficientPoints):
            moved = 0
    return Merged(moved, int(relinked or 0), await points.balance(session, kept))
