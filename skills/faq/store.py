"""Queries of the FAQ skill. Each takes the caller's session; nothing here writes.

The skill's records are activity rows (``faq_answer``, ``faq_miss``: the contract in skills/faq/__init__.py);
this module reads them back.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

from skills.faq.knowledge.candidates import Confirmed
from skills.faq.knowledge.misses import MissGroup, MissRow, group_misses
from storage.models import Activity

MAX_MISS_ROWS = 50_000  # the newest misses of the window read at most: bounds the memory and time of a report

_MISSES = (select(Activity.id, Activity.at, Activity.detail)
           .where(Activity.kind == "faq_miss", Activity.at >= bindparam("since"), Activity.at <= bindparam("now"))
           .order_by(Activity.at.desc(), Activity.id.desc()).limit(MAX_MISS_ROWS))
_ROOM_MISSES = (select(Activity.id, Activity.at, Activity.detail)
                .where(Activity.kind == "faq_miss", Activity.at >= bindparam("since"), Activity.at <= bindparam("now"),
                       Activity.room_id == bindparam("room"))
                .order_by(Activity.at.desc(), Activity.id.desc()).limit(MAX_MISS_ROWS))


async def miss_rows(session: AsyncSession, now: datetime, days: float, room_id: str | None = None) -> list[MissRow]:
    """The ``faq_miss`` rows of the last ``days`` days up to ``now`` (``room_id``: asked in that room), newest
    first."""
    params = {"since": now - timedelta(days=days), "now": now}
    result = await session.execute(_MISSES if room_id is None else _ROOM_MISSES,
                                   params if room_id is None else {**params, "room": room_id})
    rows = []
    for id_, at, detail in result:
        d = detail if isinstance(detail, dict) else {}
        rows.append(MissRow(id_, at, str(d.get("q") or ""), str(d.get("reason") or "")[:40]))
    return rows


async def misses(session: AsyncSession, now: datetime, days: float, limit: int | None = 100,
                 room_id: str | None = None) -> list[MissGroup]:
    """Unanswered questions of the last ``days`` days (``room_id``: asked in that room), similar ones grouped
    (skills/faq/knowledge/misses.py: the one grouping, shared by /kb misses and the dashboard), most asked first;
    ``limit`` groups (None: all)."""
    rows = await miss_rows(session, now, days, room_id)
    return await asyncio.to_thread(group_misses, rows, limit)  # jieba over thousands of questions: off the loop


_MISS = select(Activity.detail, Activity.room_id).where(Activity.id == bindparam("id"), Activity.kind == "faq_miss")
_ANSWERS = (select(Activity.id, Activity.at, Activity.detail)
            .where(Activity.kind == "faq_answer", Activity.at >= bindparam("since"), Activity.at <= bindparam("now"))
            .order_by(Activity.at.desc(), Activity.id.desc()).limit(MAX_MISS_ROWS))


async def miss(session: AsyncSession, miss_id: int) -> tuple[str, str | None] | None:
    """The question of the ``faq_miss`` row ``miss_id`` and its room (None: 1-on-1), or None if there is none."""
    row = (await session.execute(_MISS, {"id": miss_id})).first()
    if row is None:
        return None
    detail, room = row
    question = str(detail.get("q") or "") if isinstance(detail, dict) else ""
    return (question, room) if question else None


async def confirmed_choices(session: AsyncSession, now: datetime, days: float) -> list[Confirmed]:
    """The numbered choices members confirmed (``faq_answer`` with mode ``choice``) in the last ``days`` days, newest
    first: the newest answers of the window read at most ``MAX_MISS_ROWS``."""
    result = await session.execute(_ANSWERS, {"since": now - timedelta(days=days), "now": now})
    out = []
    for id_, at, detail in result:
        if isinstance(detail, dict) and detail.get("mode") == "choice" and detail.get("q") and detail.get("entry"):
            out.append(Confirmed(id_, at, str(detail["q"]), str(detail["entry"])))
    return out
