"""Queries of the FAQ skill. Each takes the caller's session; nothing here writes.

The skill's records are activity rows (``faq_answer``, ``faq_miss``: the contract in skills/faq/__init__.py);
this module reads them back.
"""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlalchemy.ext.asyncio import AsyncSession

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
