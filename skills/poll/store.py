"""Queries of the poll skill. Each takes the caller's session; nothing here commits.

A vote and a tally run on every vote in a rush: they are built once and go through the fast path (storage.fast).
Starting, closing and the startup load are rare: ordinary SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from skills.poll.models import Poll, PollVote
from storage import fast
from storage.upsert import insert_for

_POLLS = Poll.__table__
_VOTES = PollVote.__table__


class AlreadyOpen(Exception):
    """The room has an open poll already (one started in a race we lost)."""


_POLL = select(_POLLS).where(_POLLS.c.id == bindparam("poll"))
_OPEN_IN_ROOM = select(_POLLS).where(_POLLS.c.room_id == bindparam("room"), _POLLS.c.status == "open")
_LATEST_IN_ROOM = (select(_POLLS).where(_POLLS.c.room_id == bindparam("room"))
                   .order_by(_POLLS.c.id.desc()).limit(1))
_TALLY = (select(_VOTES.c.option, func.count()).where(_VOTES.c.poll_id == bindparam("poll"))
          .group_by(_VOTES.c.option))
_VOTERS = select(func.count()).select_from(_VOTES).where(_VOTES.c.poll_id == bindparam("poll"))
# parameter names differ from the columns they set (see storage/prepared.py)
_CLOSE = (update(_POLLS).where(_POLLS.c.id == bindparam("poll"), _POLLS.c.status == "open")
          .values(status="closed", closed_at=bindparam("now"), closed_by=bindparam("by")))


def _vote_insert(dialect: str) -> Executable:  # a member who voted before: nothing
    return insert_for(dialect, _VOTES).on_conflict_do_nothing(index_elements=["poll_id", "member_id"])


_BY_DIALECT: dict[tuple[str, Callable], Executable] = {}


def _for_dialect(session: AsyncSession, build: Callable[[str], Executable]) -> Executable:
    key = (session.bind.dialect.name, build)
    stmt = _BY_DIALECT.get(key)
    if stmt is None:
        stmt = _BY_DIALECT[key] = build(key[0])
    return stmt


# -- polls ----------------------------------------------------------------------------------------------------------

async def open_polls(session: AsyncSession) -> dict[str, tuple[int, int]]:
    """room → (poll id, number of options) of every open poll: the skill's state at start."""
    rows = await session.execute(select(Poll.room_id, Poll.id, Poll.options).where(Poll.status == "open"))
    return {r.room_id: (r.id, len(r.options)) for r in rows}


async def poll(session: AsyncSession, poll_id: int) -> Any:
    """The poll as a read-only row (its columns as attributes), or None."""
    return (await fast.execute(session, _POLL, {"poll": poll_id})).first()


async def open_in_room(session: AsyncSession, room_id: str) -> Any:
    return (await fast.execute(session, _OPEN_IN_ROOM, {"room": room_id})).first()


async def latest_in_room(session: AsyncSession, room_id: str) -> Any:
    """The room's most recent poll, open or closed, or None."""
    return (await fast.execute(session, _LATEST_IN_ROOM, {"room": room_id})).first()


async def add_poll(session: AsyncSession, *, room_id: str, question: str, options: list[str], created_by: str,
                   at: datetime, deadline: datetime) -> int:
    """Open a poll; its id. Raises AlreadyOpen when the room has one (the partial unique index decides)."""
    row = Poll(room_id=room_id, question=question, options=options, status="open", created_by=created_by,
               created_at=at, deadline=deadline)
    try:
        async with session.begin_nested():
            session.add(row)
            await session.flush()
    except IntegrityError:
        raise AlreadyOpen(room_id) from None
    return row.id


async def close(session: AsyncSession, poll_id: int, now: datetime, by: str | None) -> bool:
    """open → closed; False when it was closed before (by the deadline or an admin): so it is announced once."""
    return (await fast.execute(session, _CLOSE, {"poll": poll_id, "now": now, "by": by})).rowcount == 1


# -- votes ----------------------------------------------------------------------------------------------------------

async def add_vote(session: AsyncSession, poll_id: int, member_id: str, option: int, at: datetime) -> bool:
    """Record the member's vote; False when they voted before (then nothing changes)."""
    result = await fast.execute(session, _for_dialect(session, _vote_insert),
                                {"poll_id": poll_id, "member_id": member_id, "option": option, "at": at})
    return result.rowcount == 1


async def tally(session: AsyncSession, poll_id: int) -> dict[int, int]:
    """option number → votes, for the options that have any."""
    return dict((await fast.execute(session, _TALLY, {"poll": poll_id})).all())


async def voters(session: AsyncSession, poll_id: int) -> int:
    return (await fast.execute(session, _VOTERS, {"poll": poll_id})).scalar() or 0
