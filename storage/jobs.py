"""Scheduled jobs as other code changes them in its own transaction, without the scheduler object: cancelling
jobs by key, and a member's erasure (bot/privacy.py). The scheduler reads a job's status when it claims a run, so a
job cancelled here never runs."""

from __future__ import annotations

import json

from sqlalchemy import String, bindparam, cast, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import ScheduledJob
from storage.members import like_anywhere

_J = ScheduledJob.__table__
_CANCEL = (update(_J).where(_J.c.key.in_(bindparam("keys", expanding=True)), _J.c.status.in_(("active", "paused")))
           .values(status="cancelled"))
_SET = update(_J).where(_J.c.id == bindparam("job_id")).values(key=bindparam("new_key"),
                                                               payload=bindparam("new_payload"))


async def cancel(session: AsyncSession, keys: list[str]) -> int:
    """Cancel the active or paused jobs among ``keys``; returns how many."""
    done = 0
    for i in range(0, len(keys), 500):
        done += (await session.execute(_CANCEL, {"keys": keys[i:i + 500]})).rowcount or 0
    return done


def _swap(value: object, member_id: str, stand_in: str) -> object:
    if value == member_id:
        return stand_in
    if isinstance(value, list):
        return [_swap(v, member_id, stand_in) for v in value]
    if isinstance(value, dict):
        return {k: _swap(v, member_id, stand_in) for k, v in value.items()}
    return value


async def pseudonymise(session: AsyncSession, member_id: str, stand_in: str) -> int:
    """Jobs whose key or payload names the member (a referral's invitee, the admin who added a schedule) name
    ``stand_in`` instead; whether they still run is the skills' decision (their ``erase`` runs first)."""
    found = (await session.execute(select(_J.c.id, _J.c.key, _J.c.payload).where(
        or_(_J.c.key.like(like_anywhere(member_id), escape="\\"),
            *(cast(_J.c.payload, String).like(like_anywhere(text), escape="\\")
              for text in {member_id, json.dumps(member_id)[1:-1]}))))).all()
    changed = []
    for job_id, key, payload in found:
        new_key = ":".join(stand_in if part == member_id else part for part in key.split(":"))
        new_payload = _swap(payload, member_id, stand_in)
        if new_key != key or new_payload != payload:
            changed.append({"job_id": job_id, "new_key": new_key, "new_payload": new_payload})
    if changed:
        await session.execute(_SET, changed)
    return len(changed)


async def pending(session: AsyncSession, handler: str) -> list[tuple[str, dict]]:
    """(key, payload) of the active or paused jobs that run ``handler``."""
    rows = await session.execute(select(_J.c.key, _J.c.payload).where(
        _J.c.handler == handler, _J.c.status.in_(("active", "paused"))))
    return [(key, payload or {}) for key, payload in rows]
