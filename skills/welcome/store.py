"""Queries of the welcome skill: who was welcomed in a room and when; whether an invitee is still there."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.welcome.models import Welcome
from storage.models import RoomMember


async def last_welcomes(session: AsyncSession, room_id: str, member_ids: Iterable[str]) -> dict[str, Welcome]:
    """The room's welcome rows of these members, by member id."""
    rows = await session.execute(select(Welcome).where(Welcome.room_id == room_id,
                                                       Welcome.member_id.in_(list(member_ids))))
    return {w.member_id: w for w in rows.scalars()}


def note_welcome(session: AsyncSession, room_id: str, member_id: str, at: datetime,
                 last: Welcome | None) -> None:
    """Welcomed now: a new row, or the earlier one moved to ``at``."""
    if last is None:
        session.add(Welcome(room_id=room_id, member_id=member_id, welcomed_at=at))
    else:
        last.welcomed_at = at


async def left_room(session: AsyncSession, room_id: str, member_id: str) -> bool:
    """True when the directory says the member left the room (unknown: not left)."""
    row = await session.get(RoomMember, (room_id, member_id))
    return row is not None and not row.active
