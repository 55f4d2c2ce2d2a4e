"""The activity store over a real migrated SQLite file, written as the app writes it (multi-row statements on
the process's one inline connection)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.activity import VIRTUAL_FLUSH_S, ActivityLog
from bot.clock import RealClock, VirtualClock
from bot.config import ActivitySettings
from bot.events import Person
from storage.db import create_engine, migrate, session_factory
from storage.models import Activity, Member, MemberName, Room, RoomMember
from tests.support import START

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike


def t(seconds: float) -> datetime:
    return (START + timedelta(seconds=seconds)).astimezone(UTC)


@dataclass
class Store:
    log: ActivityLog
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    clock: VirtualClock

    async def all(self, model, order_by=None) -> list:
        async with self.sessions() as s:
            stmt = select(model)
            if order_by is not None:
                stmt = stmt.order_by(order_by)
            return list((await s.execute(stmt)).scalars())

    async def count(self, model) -> int:
        async with self.sessions() as s:
            return (await s.execute(select(func.count()).select_from(model))).scalar()

    async def sql(self, statement: str) -> None:
        async with self.engine.begin() as conn:
            await conn.execute(text(statement))


async def _make_store(db_url: str, **settings) -> Store:
    engine = create_engine(db_url)
    await migrate(engine)
    sessions = session_factory(engine)
    clock = VirtualClock(START)
    log = ActivityLog(sessions, clock, ActivitySettings(**{"flush_max_rows": 5, **settings}))
    return Store(log, engine, sessions, clock)


@pytest.fixture
async def store(db_url):
    st = await _make_store(db_url)
    yield st
    await st.log.aclose()
    await st.engine.dispose()


async def until(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    """Yield to the loop until ``cond`` holds (checked after every loop step), bounded by ``timeout``."""

    async def poll() -> None:
        while not cond():
            await asyncio.sleep(0)

    await asyncio.wait_for(poll(), timeout)


# -- rows ---------------------------------------------------------------------------------------------------------


async def test_record_and_flush_writes_rows_with_fields(store):
    log = store.log
    log.record("sent", room_id="g1", skill="greeter", detail={"text": "欢迎 👋", "n": [1, 2]}, at=t(5))
    await store.clock.advance(10)
    log.record("message", member_id="u1")  # at defaults to the clock
    assert log.backlog == 2
    assert await log.flush() == 2
    assert log.backlog == 0 and log.flushes == 1 and log.rows_written == 2 and log.last_flush_error is None
    rows = await store.all(Activity, Activity.id)
    assert [(r.at, r.room_id, r.member_id, r.kind, r.skill, r.detail) for r in rows] == [
        (t(5), "g1", None, "sent", "greeter", {"text": "欢迎 👋", "n": [1, 2]}),
        (t(10), None, "u1", "message", None, None),
    ]
    assert await log.flush() == 0  # nothing waiting: no write
    assert log.flushes == 1
    assert await store.count(Activity) == 2


async def test_flush_if_full_writes_at_flush_max_rows(store):
    log = store.log
    for i in range(4):
        log.record("message", detail={"i": i})
        await log.flush_if_full()
    assert log.backlog == 4 and log.rows_written == 0
    log.record("message", detail={"i": 4})
    await log.flush_if_full()
    await until(lambda: log.rows_written == 5)
    assert [r.detail["i"] for r in await store.all(Activity, Activity.id)] == [0, 1, 2, 3, 4]
    assert log.backlog == 0


async def test_flush_if_full_under_load_never_duplicates(store):
    log = store.log
    for i in range(57):
        log.record("message", detail={"i": i})
        await log.flush_if_full()
    await log.aclose()
    assert sorted(r.detail["i"] for r in await store.all(Activity)) == list(range(57))


async def test_aclose_writes_everything(store):
    log = store.log
    for i in range(3):
        log.record("message", detail={"i": i})
    log.seen(Person("u1", "小李"), t(0), "g1", "群")
    await log.aclose()
    assert await store.count(Activity) == 3
    assert await store.count(Member) == 1 and await store.count(Room) == 1 and await store.count(RoomMember) == 1
    assert log.backlog == 0


async def test_the_timed_flush_runs_in_virtual_time_on_a_virtual_clock(db_url):
    st = await _make_store(db_url, flush_interval_s=5.0)
    try:
        st.log.start()
        st.log.record("message", detail={"x": 1})
        await st.clock.advance(VIRTUAL_FLUSH_S - 0.1)
        assert st.log.rows_written == 0  # wall time passing changes nothing: only the script's time does
        await st.clock.advance(0.1)
        assert st.log.rows_written == 1 and await st.count(Activity) == 1
        assert st.clock.next_due() is None  # nothing waiting: no timer ticking through an idle month
        st.log.seen(Person("u1", "a"), st.clock.now(), "g1", "r")
        await st.clock.advance(VIRTUAL_FLUSH_S)
        assert await st.count(Member) == 1
    finally:
        await st.log.aclose()
        await st.engine.dispose()


async def test_a_full_batch_is_written_before_the_next_event_on_a_virtual_clock(store):
    log = store.log
    for i in range(5):
        log.record("message", detail={"i": i})
    await log.flush_if_full()
    assert log.rows_written == 5 and log.backlog == 0  # written, not merely started


async def test_the_timed_flush_runs_on_its_own_on_the_real_clock(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    log = ActivityLog(session_factory(engine), RealClock(), ActivitySettings(flush_interval_s=0.05))
    try:
        log.start()
        log.record("message", detail={"x": 1})
        await until(lambda: log.rows_written == 1)
        log.record("message", detail={"x": 2})  # the timer keeps going on a real clock
        await until(lambda: log.rows_written == 2)
    finally:
        await log.aclose()
        await engine.dispose()
    assert log._timer is None


# -- the member and room directory --------------------------------------------------------------------------------


async def test_members_rooms_and_names(store):
    log = store.log
    log.seen(Person("u1", "小李"), t(0), "g1", "读书会")
    log.seen(Person("u1", ""), t(10), "g1", None)  # a nameless event never blanks the name
    log.seen(Person("u2", "阿王"), t(20))  # a direct chat: no room
    await log.flush()
    members = {m.id: m for m in await store.all(Member)}
    assert (members["u1"].name, members["u1"].first_seen, members["u1"].last_seen) == ("小李", t(0), t(10))
    assert (members["u2"].name, members["u2"].first_seen) == ("阿王", t(20))
    rooms = await store.all(Room)
    assert [(r.id, r.topic, r.first_seen) for r in rooms] == [("g1", "读书会", t(0))]
    pairs = await store.all(RoomMember)
    assert [(p.room_id, p.member_id, p.active, p.first_seen, p.last_seen) for p in pairs] == [
        ("g1", "u1", True, t(0), t(10))
    ]

    # later: a rename, then an empty name; over an hour later so the directory is written again
    log.seen(Person("u1", "李老师"), t(4000), "g1", "")
    await log.flush()
    log.seen(Person("u1", ""), t(8000), "g1", None)
    await log.flush()
    m = (await store.all(Member, Member.id))[0]
    assert (m.id, m.name, m.first_seen, m.last_seen) == ("u1", "李老师", t(0), t(8000))
    names = {(n.member_id, n.name): n.first_seen for n in await store.all(MemberName)}
    assert names == {("u1", "小李"): t(0), ("u1", "李老师"): t(4000), ("u2", "阿王"): t(20)}
    room = (await store.all(Room, Room.id))[0]
    assert (room.topic, room.first_seen, room.last_seen) == ("读书会", t(0), t(8000))


async def test_last_seen_is_batched_to_the_hour(store):
    log = store.log
    log.seen(Person("u1", "a"), t(0), "g1", "x")
    await log.flush()
    log.seen(Person("u1", "a"), t(60), "g1", "x")  # within SEEN_PRECISION: nothing to write
    assert log.backlog == 0
    log.seen(Person("u1", "a"), t(3600), "g1", "x")
    assert log.backlog > 0
    await log.flush()
    m = (await store.all(Member, Member.id))[0]
    assert m.last_seen == t(3600)
    pair = (await store.all(RoomMember))[0]
    assert pair.last_seen == t(0)  # a member's row per room: to the day
    log.seen(Person("u1", "a"), t(86400), "g1", "x")
    await log.flush()
    assert (await store.all(RoomMember))[0].last_seen == t(86400)


async def test_joined_and_left(store):
    log = store.log
    log.joined("g1", Person("u2", "新人"), t(0), inviter_id="u1", room_topic="读书会")
    await log.flush()
    p = (await store.all(RoomMember))[0]
    assert (p.room_id, p.member_id, p.active, p.joined_at, p.left_at, p.inviter_id) == (
        "g1", "u2", True, t(0), None, "u1")
    log.left("g1", "u2", t(100))
    await log.flush()
    p = (await store.all(RoomMember))[0]
    assert (p.active, p.joined_at, p.left_at, p.inviter_id, p.first_seen) == (False, t(0), t(100), "u1", t(0))
    # rejoins without an inviter: active again, left_at cleared, the first inviter kept
    log.joined("g1", Person("u2", "新人"), t(200), inviter_id=None, room_topic=None)
    await log.flush()
    p = (await store.all(RoomMember))[0]
    assert (p.active, p.joined_at, p.left_at, p.inviter_id) == (True, t(200), None, "u1")
    assert [n.name for n in await store.all(MemberName)] == ["新人"]


async def test_join_and_leave_in_one_batch(store):
    log = store.log
    log.joined("g1", Person("u3", "c"), t(0), inviter_id="u1", room_topic="r")
    log.left("g1", "u3", t(5))
    await log.flush()
    p = (await store.all(RoomMember))[0]
    assert (p.active, p.joined_at, p.left_at, p.inviter_id) == (False, t(0), t(5), "u1")


# -- failures -----------------------------------------------------------------------------------------------------


async def test_failed_flush_keeps_rows_and_retry_writes_them_once(store):
    log = store.log
    await store.sql("ALTER TABLE activity RENAME TO activity_away")
    for i in range(3):
        log.record("message", detail={"i": i})
    log.seen(Person("u1", "小李"), t(0), "g1", "群")
    assert await log.flush() == 0
    assert log.last_flush_error is not None
    assert log.backlog == 3 + 3  # rows + member + room + pair
    log.record("message", detail={"i": 3})  # arrives while the database is broken
    assert await log.flush() == 0
    await store.sql("ALTER TABLE activity_away RENAME TO activity")
    assert await log.flush() == 4
    assert log.last_flush_error is None and log.backlog == 0
    assert await log.flush() == 0
    assert [r.detail["i"] for r in await store.all(Activity, Activity.id)] == [0, 1, 2, 3]
    assert [m.name for m in await store.all(Member)] == ["小李"]  # the directory rode along, written once


async def test_failed_flush_with_events_arriving_during_the_write_loses_nothing(store):
    log = store.log
    log.joined("g1", Person("u2", "新人"), t(0), inviter_id="u1", room_topic="读书会")
    log.record("join", room_id="g1", member_id="u2", at=t(0))
    await store.sql("ALTER TABLE activity RENAME TO activity_away")
    task = asyncio.get_running_loop().create_task(log.flush())
    await until(lambda: log.backlog == 0)  # the write has taken its batch and is in flight
    log.left("g1", "u2", t(30))  # arrives while the failing write is in flight
    log.record("leave", room_id="g1", member_id="u2", at=t(30))
    assert await task == 0
    await store.sql("ALTER TABLE activity_away RENAME TO activity")
    assert await log.flush() == 2
    assert [(r.kind, r.at) for r in await store.all(Activity, Activity.id)] == [("join", t(0)), ("leave", t(30))]
    p = (await store.all(RoomMember))[0]
    assert (p.active, p.first_seen, p.joined_at, p.left_at, p.inviter_id) == (False, t(0), t(0), t(30), "u1")
    r = (await store.all(Room))[0]
    assert (r.topic, r.first_seen) == ("读书会", t(0))


async def test_concurrent_flushes_write_each_row_exactly_once(store):
    log = store.log
    for i in range(100):
        log.record("message", detail={"i": i})
    tasks = [asyncio.get_running_loop().create_task(log.flush()) for _ in range(5)]
    for i in range(100, 150):  # more rows while the flushes run
        log.record("message", detail={"i": i})
        await asyncio.sleep(0)
    results = await asyncio.gather(*tasks)
    results.append(await log.flush())
    assert sum(results) == 150
    assert sorted(r.detail["i"] for r in await store.all(Activity)) == list(range(150))
    assert log.rows_written == 150


async def test_cancelled_flush_caller_does_not_duplicate(store):
    log = store.log
    for i in range(20):
        log.record("message", detail={"i": i})
    task = asyncio.get_running_loop().create_task(log.flush())
    await until(lambda: log.backlog == 0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await log.aclose()  # waits for the shielded write, then writes what is left (nothing)
    assert sorted(r.detail["i"] for r in await store.all(Activity)) == list(range(20))


async def test_failed_flush_keeps_first_seen_names_and_topics_of_the_failed_batch(store):
    log = store.log
    log.seen(Person("u1", "小李"), t(0), "g1", "读书会")
    await store.sql("ALTER TABLE activity RENAME TO activity_away")
    log.record("message", member_id="u1", at=t(0))
    task = asyncio.get_running_loop().create_task(log.flush())
    await until(lambda: log.backlog == 0)
    log.seen(Person("u1", ""), t(90000), "g1", "")  # a day later, no name, no topic
    assert await task == 0
    await store.sql("ALTER TABLE activity_away RENAME TO activity")
    assert await log.flush() == 1
    m = (await store.all(Member, Member.id))[0]
    assert (m.name, m.first_seen, m.last_seen) == ("小李", t(0), t(90000))
    r = (await store.all(Room))[0]
    assert (r.topic, r.first_seen, r.last_seen) == ("读书会", t(0), t(90000))
    p = (await store.all(RoomMember))[0]
    assert (p.first_seen, p.last_seen) == (t(0), t(90000))


async def test_after_a_failed_flush_events_do_not_hammer_the_database(store):
    log = store.log
    await store.sql("ALTER TABLE activity RENAME TO activity_away")
    for i in range(5):
        log.record("message", detail={"i": i})
    await log.flush_if_full()
    await until(lambda: log.last_flush_error is not None)
    failures = log._failures
    for i in range(20):  # a busy minute of events while the database is down
        log.record("message", detail={"i": 5 + i})
        await log.flush_if_full()
    assert log._failures == failures  # no new attempts until the pause is over
    await store.sql("ALTER TABLE activity_away RENAME TO activity")
    assert await log.flush() == 25  # an explicit flush (shutdown) always tries, and loses nothing


async def test_flush_if_full_on_the_real_clock_writes_beside_handling_and_never_duplicates(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    log = ActivityLog(session_factory(engine), RealClock(), ActivitySettings(flush_max_rows=5))
    try:
        for i in range(57):
            log.record("message", detail={"i": i})
            await log.flush_if_full()
        await until(lambda: log.rows_written >= 55)
    finally:
        await log.aclose()
    async with session_factory(engine)() as s:
        rows = list((await s.execute(select(Activity.detail))).scalars())
    await engine.dispose()
    assert sorted(d["i"] for d in rows) == list(range(57))


# -- rows the database refuses ------------------------------------------------------------------------------------

SECRET_NAME = "机密名字"  # member data: must never reach the log


async def test_a_refused_row_is_set_aside_and_the_rest_written(store, backend, caplog):
    """Values that bypassed bot/clean.py (a skill calling record/seen directly): the database refuses some; the
    store writes every other row, sets those aside with one log line naming no member data, and keeps writing."""
    log = store.log
    log.record("message", member_id="good1", at=t(0))
    log.seen(Person("u_list", SECRET_NAME), t(0), "g_list", ["a list as topic"])  # refused by both backends
    log.record("message", member_id="u\ud800x", at=t(0))  # a lone surrogate: UTF-8 can't encode it
    log.seen(Person("u_long", "名" * 300), t(0))  # over members.name's 256: PostgreSQL refuses it
    log.record("message", member_id="x" * 200, at=t(0))  # over activity.member_id's 128
    log.record("message", member_id="nul\x00id", at=t(0))  # PostgreSQL refuses NUL in text
    log.seen(Person("good2", "好人"), t(0), "g_good", "好群")
    log.record("message", member_id="good2", at=t(0))
    with caplog.at_level("INFO", logger="bot.activity"):
        written = await log.flush()
    assert log.backlog == 0 and log.last_flush_error is None
    members = {m.id: m.name for m in await store.all(Member)}
    activity = {r.member_id for r in await store.all(Activity)}
    rooms = {r.id: r.topic for r in await store.all(Room)}
    assert {"good1", "good2"} <= activity and members["good2"] == "好人" and rooms["g_good"] == "好群"
    assert "g_list" not in rooms and "u\ud800x" not in activity
    if backend == "postgresql":
        assert "u_long" not in members and not {"x" * 200, "nul\x00id"} & activity
        assert written == 2 and log.set_aside_count == 6  # room, surrogate, name twice (members, names), id, NUL
    else:  # SQLite keeps any length and NUL: only the list and the surrogate are refused
        assert members["u_long"] == "名" * 300 and {"x" * 200, "nul\x00id"} <= activity
        assert written == 4 and log.set_aside_count == 2
    lines = [r.getMessage() for r in caplog.records if "set aside" in r.getMessage()]
    assert len(lines) == 1, lines
    assert "rooms.topic" in lines[0] and "activity.member_id" in lines[0]
    for secret in (SECRET_NAME, "u_list", "g_list", "a list as topic", "u_long", "xxxx", "nul"):
        assert all(secret not in r.getMessage() for r in caplog.records), secret
    assert {table for table, _, _ in log.set_aside} >= {"rooms", "activity"}

    # and it keeps writing: later rows go in with the next flush, nothing is retried
    log.record("message", member_id="later", at=t(10))
    assert await log.flush() == 1
    assert "later" in {r.member_id for r in await store.all(Activity)}


async def test_the_database_going_away_mid_salvage_keeps_what_was_not_written(store):
    log = store.log
    log.seen(Person("u1", "小李"), t(0), "g1", ["a list"])  # refused: the salvage starts
    log.record("message", member_id="u1", at=t(0))
    await store.sql("ALTER TABLE activity RENAME TO activity_away")  # ...and the activity table is away
    assert await log.flush() == 0
    assert log.last_flush_error is not None and log.backlog == 1  # the message row waits
    assert log.set_aside_count == 1  # the room row, refused, is not retried
    assert [m.id for m in await store.all(Member)] == ["u1"]  # the member went in
    await store.sql("ALTER TABLE activity_away RENAME TO activity")
    assert await log.flush() == 1
    assert log.backlog == 0 and log.set_aside_count == 1
    assert [r.member_id for r in await store.all(Activity)] == ["u1"]


async def test_in_virtual_time_no_row_waits_more_than_a_period_and_full_batches_count(db_url):
    st = await _make_store(db_url)  # flush_max_rows 5
    try:
        st.log.start()
        st.log.record("message", detail={"i": 0})
        await st.clock.advance(VIRTUAL_FLUSH_S / 2)
        for i in range(1, 5):
            st.log.record("message", detail={"i": i})
        await st.log.flush_if_full()  # a full batch: written now, the timer's row with it
        assert st.log.flushes == 1
        st.log.record("message", detail={"i": 5})
        await st.clock.advance(VIRTUAL_FLUSH_S / 2)  # the first timer's instant: its row went with the batch
        assert st.log.flushes == 1 and st.log.backlog == 1
        await st.clock.advance(VIRTUAL_FLUSH_S / 2)  # a period after the batch was taken: row 5 is written
        assert st.log.flushes == 2 and st.log.backlog == 0
    finally:
        await st.log.aclose()
        await st.engine.dispose()
