"""Queries of the FAQ skill. Each takes the caller's session.

The skill's records are activity rows (``faq_answer``, ``faq_miss``: the contract in skills/faq/__init__.py);
this module reads them back. The handoff tickets (skills/faq/models.py) are the one table it writes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from skills.faq.knowledge.candidates import Confirmed
from skills.faq.knowledge.misses import MissGroup, MissRow, group_misses
from skills.faq.models import Ticket
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


# -- handoff tickets (人工接管): cold paths, a handful per day; plain ORM ------------------------------------------

MAX_QUESTION = 1000  # characters of a question kept on a ticket
MAX_FOLLOW_UPS = 20  # follow-ups kept on one ticket (the newest); older ones are dropped


@dataclass(frozen=True)
class ChatLine:
    at: datetime
    member_id: str | None
    from_bot: bool
    text: str


@dataclass(frozen=True)
class TicketStats:
    open: list[Ticket]  # waiting for an operator, oldest first
    answered: list[Ticket]  # replied, not closed yet
    replied: int  # tickets of the window with a first reply...
    median_s: float | None  # ...and their first reply's delay
    slowest_s: float | None
    unanswered: int  # tickets of the window never replied to


async def live_ticket(session: AsyncSession, member_id: str, room_id: str | None, now: datetime,
                      follow_up_s: float) -> Ticket | None:
    """The member's ticket in this chat that keeps the bot quiet: open, or answered within ``follow_up_s``."""
    where = Ticket.room_id.is_(None) if room_id is None else Ticket.room_id == room_id
    rows = (await session.execute(
        select(Ticket).where(Ticket.member_id == member_id, Ticket.status.in_(("open", "answered")), where)
        .order_by(Ticket.id.desc()).limit(5))).scalars().all()
    horizon = now - timedelta(seconds=follow_up_s)
    for t in rows:
        if t.status == "open" or (t.last_reply_at is not None and t.last_reply_at >= horizon):
            return t
    return None


async def create_ticket(session: AsyncSession, *, member_id: str, member_name: str, room_id: str | None,
                        room_topic: str, question: str, now: datetime) -> Ticket:
    ticket = Ticket(member_id=member_id, member_name=member_name[:256], room_id=room_id,
                    room_topic=(room_topic or "")[:256], question=question[:MAX_QUESTION], follow_ups=[],
                    status="open", created_at=now, waiting_since=now)
    session.add(ticket)
    await session.flush()
    return ticket


async def add_follow_up(session: AsyncSession, ticket: Ticket, text: str, now: datetime) -> bool:
    """Append the member's further question; an answered ticket waits again. True if it was answered (so it
    waits anew: renotify again)."""
    ticket.follow_ups = [*ticket.follow_ups, {"at": now.isoformat(), "text": text[:MAX_QUESTION]}][-MAX_FOLLOW_UPS:]
    reopened = ticket.status == "answered"
    if reopened:
        ticket.status, ticket.waiting_since, ticket.renotified_at = "open", now, None
    await session.flush()
    return reopened


async def get_ticket(session: AsyncSession, ticket_id: int) -> Ticket | None:
    return await session.get(Ticket, ticket_id)


async def mark_replied(session: AsyncSession, ticket: Ticket, operator: str, now: datetime) -> None:
    ticket.status = "answered"
    ticket.first_reply_at = ticket.first_reply_at or now
    ticket.last_reply_at, ticket.replied_by = now, operator
    await session.flush()


async def close_ticket(session: AsyncSession, ticket_id: int, operator: str, now: datetime) -> bool:
    """True if this call closed it (a ticket is closed once, whoever asks twice)."""
    result = await session.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.status != "closed")
                                   .values(status="closed", closed_at=now, closed_by=operator))
    return result.rowcount == 1


async def claim_renotify(session: AsyncSession, ticket_id: int, now: datetime) -> Ticket | None:
    """The ticket if it still waits and was not re-notified yet, now marked re-notified (once, across processes)."""
    result = await session.execute(update(Ticket).where(Ticket.id == ticket_id, Ticket.status == "open",
                                                        Ticket.renotified_at.is_(None))
                                   .values(renotified_at=now))
    if result.rowcount != 1:
        return None
    return await session.get(Ticket, ticket_id, populate_existing=True)


async def open_tickets(session: AsyncSession, limit: int = 20) -> list[Ticket]:
    return list((await session.execute(select(Ticket).where(Ticket.status == "open")
                                       .order_by(Ticket.waiting_since, Ticket.id).limit(limit))).scalars())


async def recent_chat(session: AsyncSession, room_id: str | None, member_id: str, now: datetime,
                      minutes: float, limit: int) -> list[ChatLine]:
    """The last lines of the chat with their text kept (messages addressed to the bot, what it sent; chatter too
    with ``activity.chatter_text``), oldest first: what a person taking over needs to read."""
    where = (Activity.room_id == room_id if room_id is not None
             else (Activity.room_id.is_(None) & (Activity.member_id == member_id)))
    rows = (await session.execute(
        select(Activity.at, Activity.member_id, Activity.kind, Activity.detail)
        .where(Activity.at >= now - timedelta(minutes=minutes), Activity.at <= now,
               Activity.kind.in_(("message", "sent")), where)
        .order_by(Activity.at.desc(), Activity.id.desc()).limit(limit * 4))).all()
    lines = []
    for at, member, kind, detail in rows:
        text = detail.get("text") if isinstance(detail, dict) else None
        if text:
            lines.append(ChatLine(at, member, kind == "sent", str(text)))
        if len(lines) == limit:
            break
    return lines[::-1]


async def ticket_stats(session: AsyncSession, now: datetime, days: float) -> TicketStats:
    since = now - timedelta(days=days)
    open_ = await open_tickets(session, limit=100)
    answered = list((await session.execute(select(Ticket).where(Ticket.status == "answered")
                                           .order_by(Ticket.last_reply_at.desc()).limit(50))).scalars())
    window = (await session.execute(select(Ticket.created_at, Ticket.first_reply_at)
                                    .where(Ticket.created_at >= since))).all()
    delays = sorted((r - c).total_seconds() for c, r in window if r is not None)
    median = delays[len(delays) // 2] if delays else None
    return TicketStats(open_, answered, len(delays), median, delays[-1] if delays else None,
                       sum(1 for _, r in window if r is None))


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
