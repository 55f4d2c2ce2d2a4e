"""Seeding for the tier and dashboard tests: rows written straight into the tables the bot writes (the activity
contract of orders and FAQ included), on a real SQLite file."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

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
