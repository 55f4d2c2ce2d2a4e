"""storage/reads.py: a read run off the loop sees what is committed and nothing uncommitted, sees its own
session's writes when it has them, can't write, and the loop keeps handling other coroutines while it runs."""

from __future__ import annotations

import asyncio
import threading
import time

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from storage.db import create_engine, migrate, session_factory
from storage.models import Member
from storage.reads import run_read
from tests.support.loop_lag import Ticker, until
from tests.support import START

pytestmark = pytest.mark.all_backends


def members_and_thread(s) -> tuple[int, int]:
    return s.scalar(select(func.count()).select_from(Member)), threading.get_ident()


def member(i: int) -> Member:
    return Member(id=f"m{i}", name=f"成员{i}", first_seen=START, last_seen=START)


def reader_threads() -> set[str]:
    return {t.name for t in threading.enumerate() if t.name.startswith(("sqlite-read", "pg-read"))}


async def test_a_read_off_the_loop_sees_what_is_committed_and_nothing_uncommitted(db_url):
    before = reader_threads()
    engine = create_engine(db_url)
    await migrate(engine)
    sessions = session_factory(engine)
    try:
        async with sessions() as s:
            s.add(member(1))
            await s.commit()
            s.add(member(2))
            await s.flush()  # written, not committed, the connection held by this session
            seen, thread = await run_read(engine, members_and_thread)
            assert seen == 1 and thread != threading.get_ident()  # on a worker thread
            await s.commit()
        async with sessions() as s:
            assert (await run_read(s, members_and_thread))[0] == 2
        loaded = await run_read(engine, lambda s: s.get(Member, "m2"))  # detached, its columns loaded
        assert (loaded.name, loaded.first_seen) == ("成员2", START)
        assert reader_threads() - before
    finally:
        await engine.dispose()
    assert not reader_threads() - before  # closed with the engine


async def test_a_session_with_its_own_writes_reads_them_on_the_loop(sessions):
    async with sessions() as s:
        s.add(member(1))
        assert (await run_read(s, members_and_thread)) == (1, threading.get_ident())  # pending: inline, flushed
        await s.commit()
        assert (await run_read(s, members_and_thread))[1] != threading.get_ident()  # committed: off the loop


def write_something(s) -> None:
    s.execute(text("UPDATE members SET name = 'x'"))
    s.flush()


async def test_a_read_off_the_loop_cannot_write(sessions):
    async with sessions() as s:
        with pytest.raises(DBAPIError, match="readonly|read-only|read only"):
            await run_read(s, write_something)


SLOW_COUNT = 3_000_000


def count_slowly(s, n: int = SLOW_COUNT) -> tuple[int, float]:
    started = time.perf_counter()
    got = s.scalar(text("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < :n) "
                        "SELECT count(*) FROM c"), {"n": n})
    return got, time.perf_counter() - started


async def test_the_loop_keeps_turning_while_a_slow_read_runs(sessions, backend):
    async with sessions() as s:
        ticker = Ticker()
        await until(lambda: ticker.ticks >= 2)  # ticking before the read starts
        got, took = await run_read(s, count_slowly)
        await ticker.stop()
    assert got == SLOW_COUNT and took > 0.5
    # generous for a shared 2-core machine (a garbage collection stops every thread); inline it is the whole read
    assert ticker.worst < 0.25 and ticker.ticks >= 0.4 * took / ticker.period
    if backend == "sqlite":  # the same read on the loop's connection: the ticker would have seen it
        async with sessions() as s:
            ticker = Ticker()
            await until(lambda: ticker.ticks >= 2)
            got, took = await s.run_sync(count_slowly)
            await ticker.stop()
        assert ticker.worst > 0.8 * took


async def test_in_memory_sqlite_reads_inline():
    engine = create_engine("sqlite+aiosqlite://")
    await migrate(engine)
    try:
        async with session_factory(engine)() as s:
            s.add(member(1))
            await s.commit()
            assert await run_read(s, members_and_thread) == (1, threading.get_ident())
        assert await run_read(engine, members_and_thread) == (1, threading.get_ident())
    finally:
        await engine.dispose()


@pytest.mark.sqlite_only  # SQLite reads are interrupted; a PostgreSQL read finishes on its thread
async def test_a_cancelled_read_is_interrupted_and_the_readers_close_with_the_engine(db_url):
    before = reader_threads()
    engine = create_engine(db_url)
    await migrate(engine)
    outcome: list[str] = []
    running = threading.Event()

    def count_until_interrupted(s) -> None:
        running.set()
        try:
            count_slowly(s, 200_000_000)  # tens of seconds if left to run
            outcome.append("finished")
        except DBAPIError as exc:
            outcome.append(str(exc.orig))
            raise

    try:
        read = asyncio.create_task(run_read(engine, count_until_interrupted))
        await until(running.is_set)
        started = time.monotonic()
        read.cancel()
        with pytest.raises(asyncio.CancelledError):
            await read
        await until(lambda: bool(outcome), timeout=5)
        assert outcome == ["interrupted"] and time.monotonic() - started < 5
        assert await run_read(engine, members_and_thread) is not None  # the reader goes on working
    finally:
        await engine.dispose()
    assert not reader_threads() - before
