"""The governor's store protocols (bot/governor_stores.py): the database stores and the in-memory ones the governor
tests use (tests/support/governor_memory.py) give the same answers.

Each test runs on the memory stores and on the real ones (bot.caps.CapStore and bot.activity.ActivityLog over a
migrated SQLite file, and PostgreSQL where one is reachable), so a governor test passing on the memory stores
means what it would on the database.
"""

from __future__ import annotations

import inspect
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

import pytest
from sqlalchemy import select

from bot.activity import ActivityLog
from bot.caps import CapStore
from bot.clock import VirtualClock
from bot.config import ActivitySettings
from bot.events import OutgoingMessage, ProactiveKind
from bot.governor_stores import ActivityRecorder, GovernorCapStore
from storage.db import create_engine, migrate, session_factory
from storage.models import Activity
from tests.support.backends import drop_postgres_database, postgres_or_skip
from tests.support.governor_memory import MemoryActivity, MemoryCapStore
from tests.support import START, fast_governor

DAY = date(2026, 11, 23)
SETTINGS = fast_governor(room_daily_caps={"total": 3, "promotional": 1}, member_daily_caps={"total": 1})
LIGHT, PROMO, TRANS = ProactiveKind.LIGHT, ProactiveKind.PROMOTIONAL, ProactiveKind.TRANSACTIONAL


def room(room_id: str = "g1") -> OutgoingMessage:
    return OutgoingMessage("x", room_id=room_id)


def dm(user_id: str = "u1") -> OutgoingMessage:
    return OutgoingMessage("x", user_id=user_id)


@dataclass
class Stores:
    caps: GovernorCapStore
    activity: ActivityRecorder
    clock: VirtualClock
    rows_of: Callable[[str], Awaitable[list]]  # a kind's rows (kind, at, room_id, member_id, skill, detail), in order


@pytest.fixture(params=["memory", "sqlite", "postgresql"])
async def stores(request, tmp_path) -> AsyncIterator[Stores]:
    clock = VirtualClock(START)
    if request.param == "memory":
        activity = MemoryActivity(clock)

        async def memory_rows(kind: str) -> list:
            return activity.rows(kind)

        yield Stores(MemoryCapStore(), activity, clock, memory_rows)
        return
    url = f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}" if request.param == "sqlite" else await postgres_or_skip()
    engine = create_engine(url)
    try:
        await migrate(engine)
        sessions = session_factory(engine)
        log = ActivityLog(sessions, clock, ActivitySettings())

        async def database_rows(kind: str) -> list:
            await log.flush()
            async with sessions() as session:
                result = await session.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))
                return list(result.scalars())

        yield Stores(CapStore(sessions), log, clock, database_rows)
    finally:
        await engine.dispose()
        if request.param == "postgresql":
            await drop_postgres_database(url)


# -- the protocols' shape -------------------------------------------------------------------------------------------


def _shape(cls: type, protocol: type) -> dict[str, list[tuple[str, object, object]]]:
    """Each protocol method's parameters (name, kind, default) as ``cls`` declares them."""
    methods = [n for n, v in vars(protocol).items() if inspect.isfunction(v) and not n.startswith("_")]
    return {n: [(p.name, p.kind, p.default) for p in inspect.signature(getattr(cls, n)).parameters.values()]
            for n in methods}


@pytest.mark.parametrize("protocol, real, memory", [
    (GovernorCapStore, CapStore, MemoryCapStore),
    (ActivityRecorder, ActivityLog, MemoryActivity),
])
def test_real_and_memory_stores_have_the_protocols_methods(protocol, real, memory):
    expected = _shape(protocol, protocol)
    assert expected  # the protocol names methods
    assert _shape(real, protocol) == expected
    assert _shape(memory, protocol) == expected
    for name in expected:
        coroutine = inspect.iscoroutinefunction(getattr(protocol, name))
        assert inspect.iscoroutinefunction(getattr(real, name)) == coroutine, name
        assert inspect.iscoroutinefunction(getattr(memory, name)) == coroutine, name


# -- the cap store --------------------------------------------------------------------------------------------------


async def test_room_caps_count_the_total_and_each_kind(stores):
    caps = stores.caps
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) is None
    await caps.count_sent(DAY, room(), PROMO)
    assert await caps.over_cap(DAY, room(), PROMO, SETTINGS) == "promotional"
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) is None  # 1 of the 3 in all
    await caps.count_sent(DAY, room(), LIGHT)
    await caps.count_sent(DAY, room(), LIGHT)
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) == "total"
    assert await caps.over_cap(DAY, room("g2"), LIGHT, SETTINGS) is None  # each room its own counts


async def test_caps_are_per_day(stores):
    caps = stores.caps
    for _ in range(3):
        await caps.count_sent(DAY, room(), LIGHT)
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) == "total"
    assert await caps.over_cap(DAY + timedelta(days=1), room(), LIGHT, SETTINGS) is None


async def test_a_members_messages_use_the_member_caps(stores):
    caps = stores.caps
    await caps.count_sent(DAY, dm("u1"), LIGHT)
    assert await caps.over_cap(DAY, dm("u1"), LIGHT, SETTINGS) == "total"  # members get 1 a day here, rooms 3
    assert await caps.over_cap(DAY, dm("u2"), LIGHT, SETTINGS) is None
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) is None


async def test_transactional_is_not_counted_but_is_a_rooms_last_proactive_message(stores):
    caps = stores.caps
    first, later = START, START + timedelta(minutes=5)
    assert await caps.last_proactive(room().chat_key) is None
    for _ in range(5):
        await caps.count_sent(DAY, room(), TRANS, at=first)
    assert await caps.over_cap(DAY, room(), LIGHT, SETTINGS) is None
    assert await caps.last_proactive(room().chat_key) == first
    await caps.count_sent(DAY, room(), LIGHT, at=later)
    assert await caps.last_proactive(room().chat_key) == later


async def test_only_rooms_remember_their_last_proactive_message(stores):
    caps = stores.caps
    await caps.count_sent(DAY, dm("u1"), LIGHT, at=START)
    await caps.count_sent(DAY, room("g2"), LIGHT)  # no instant given: nothing to remember
    assert await caps.last_proactive(dm("u1").chat_key) is None
    assert await caps.last_proactive(room("g2").chat_key) is None


async def test_opt_out_and_back_in(stores):
    caps = stores.caps
    assert not await caps.opted_out("u1")
    assert await caps.set_opted_out("u1", True, START) is True
    assert await caps.set_opted_out("u1", True, START) is False  # already: nothing changed
    assert await caps.opted_out("u1") and not await caps.opted_out("u2")
    assert await caps.set_opted_out("u1", False, START) is True
    assert await caps.set_opted_out("u1", False, START) is False
    assert not await caps.opted_out("u1")


# -- the activity recorder ------------------------------------------------------------------------------------------


async def test_recorded_rows_read_back_as_the_governor_wrote_them(stores):
    recorder, clock = stores.activity, stores.clock
    detail = {"text": "早安", "priority": "scheduled", "proactive": "light", "mentions": ["u1"]}
    recorder.record("sent", room_id="g1", skill="tips", detail=detail, at=START + timedelta(seconds=3))
    detail["text"] = "changed afterwards"  # the row keeps what was recorded
    await clock.advance(10)
    recorder.record("send_failed", member_id="u9", detail={"reason": "risk_control", "backoff_s": 60.0})
    recorder.record("sent", room_id="g2")
    sent = [(r.kind, r.at, r.room_id, r.member_id, r.skill, r.detail) for r in await stores.rows_of("sent")]
    assert sent == [
        ("sent", START + timedelta(seconds=3), "g1", None, "tips",
         {"text": "早安", "priority": "scheduled", "proactive": "light", "mentions": ["u1"]}),
        ("sent", START + timedelta(seconds=10), "g2", None, None, None),
    ]
    (failed,) = await stores.rows_of("send_failed")
    assert (failed.at, failed.room_id, failed.member_id, failed.detail) == (
        START + timedelta(seconds=10), None, "u9", {"reason": "risk_control", "backoff_s": 60.0})
    assert isinstance(failed.at, datetime)
