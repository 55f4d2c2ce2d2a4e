"""Seeding for the tier and dashboard tests: rows written straight into the tables the bot writes (the activity
contract of orders and FAQ included), on a real SQLite file."""

from __future__ import annotations

import logging
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncSession

from bot.web import dashboard
from storage.models import Activity, Member, MemberName, Room, RoomMember
from storage.models_points import PointsBalance
from tests.support import TZ, fast_governor, make_config

TODAY_NOON = datetime(2026, 11, 23, 12, 0, tzinfo=TZ)


def tiers_config(**tiers):
    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "tiers"]}, "skills": {"tiers": tiers}}
    return replace(make_config(raw), governor=fast_governor())


def ago(days: int, hour: int = 10) -> datetime:
    """``days`` local days before 2026-11-23, at ``hour`` o'clock Shanghai time."""
    d = TODAY_NOON - timedelta(days=days)
    return d.replace(hour=hour)


class Seeder:
    def __init__(self, session: AsyncSession) -> None:
        self.s = session
        self.rows: list[dict] = []

    def member(self, mid: str, name: str | None = None, *, rooms: tuple[str, ...] = ("g1",),
               joined: datetime | None = None, first_seen: datetime | None = None, points: int = 0) -> None:
        first = first_seen or joined or ago(200)
        self.s.add(Member(id=mid, name=name or mid, first_seen=first, last_seen=first))
        self.s.add(MemberName(member_id=mid, name=name or mid, first_seen=first))
        for room in rooms:
            self.s.add(RoomMember(room_id=room, member_id=mid, first_seen=first, last_seen=first, joined_at=joined,
                                  active=True))
            if joined:
                self.event("join", mid, joined, room=room)
        if points:
            self.s.add(PointsBalance(member_id=mid, balance=points, updated_at=first))

    def room(self, rid: str, topic: str) -> None:
        self.s.add(Room(id=rid, topic=topic, first_seen=ago(200), last_seen=ago(0)))

    def event(self, kind: str, mid: str | None, at: datetime, *, room: str | None = "g1",
              detail: dict | None = None) -> None:
        self.rows.append({"at": at.astimezone(UTC), "room_id": room, "member_id": mid, "kind": kind,
                          "skill": None, "detail": detail})

    def say(self, mid: str, *days: int, room: str | None = "g1", hour: int = 10) -> None:
        for d in days:
            self.event("message", mid, ago(d, hour), room=room, detail={"len": 2})

    def order(self, mid: str, order_id: str, at: datetime, *statuses: str, amount: float = 100.0) -> None:
        for i, status in enumerate(statuses):
            self.event("order", mid, at + timedelta(minutes=i), detail={
                "order_id": order_id, "status": status, "amount": amount, "group_buy": "gb1"})

    async def commit(self) -> None:
        if self.rows:
            await self.s.execute(Activity.__table__.insert(), self.rows)
        await self.s.commit()


async def seed_population(services) -> None:
    """Nine members whose histories put them in every tier (see test_tiers), two rooms, orders, a check-in."""
    async with services.sessions() as s:
        sd = Seeder(s)
        sd.room("g1", "会员一群")
        sd.room("g2", "会员二群")
        sd.member("newbie", "小新", joined=ago(2))
        sd.say("newbie", 1)
        sd.member("act", "阿活", joined=ago(60), points=10)
        sd.say("act", 0, 1, 3, 5)
        sd.member("core1", "核心甲", joined=ago(60), rooms=("g1", "g2"))
        sd.say("core1", 1, 2, 4)
        sd.order("core1", "o1", ago(20), "created", "paid", "completed", amount=120)
        sd.order("core1", "o2", ago(5), "created", "paid", amount=80.5)
        sd.member("rich", "积分王", joined=ago(80), points=500)
        sd.say("rich", 10)
        sd.member("casual", "路人", joined=ago(90))
        sd.say("casual", 5)
        sd.member("quiet", "潜水员", joined=ago(90), rooms=("g2",))
        sd.say("quiet", 20, room="g2")
        sd.member("gone", "老朋友", joined=ago(100))
        sd.say("gone", 40)
        sd.member("never", "从不说话", joined=ago(45))
        sd.member("refund", "退款君", joined=ago(70))
        sd.say("refund", 0, 2, 6)
        sd.order("refund", "o3", ago(10), "created", "paid", "cancelled", amount=300)
        sd.order("refund", "o4", ago(8), "created", "paid", amount=50)
        sd.order("refund", "o5", ago(3), "created", amount=70)  # never paid: not placed
        sd.event("checkin", "act", ago(1), detail={"date": "x", "streak": 1, "points": 5, "balance": 10})
        await sd.commit()


@asynccontextmanager
async def serve(services, skills=(), *, access_log: bool = False):
    """The dashboard with the pages of ``skills`` on a real aiohttp server on a free port of 127.0.0.1; yields its
    base URL."""
    app = web.Application()
    dashboard.setup(app, services, skills)
    runner = web.AppRunner(app, access_log=logging.getLogger("aiohttp.access") if access_log else None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()
