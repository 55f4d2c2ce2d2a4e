"""The process's one inline SQLite connection (storage/sqlite_inline.py): sessions queue for it instead of
busy-waiting on SQLite's lock, a nested session fails at once, WAL checkpoints happen off the loop and keep the
WAL bounded, another connection's lock is awaited (never slept on by the loop), and outside the tested SQLAlchemy /
aiosqlite versions the plain path runs instead."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import OperationalError

from storage import sqlite_inline
from storage.bulk import Write, write_with_session
from storage.db import JOURNAL_SIZE_LIMIT
from storage.models import Activity, ScheduledJob
from storage.models_points import PointsLedger
from storage.points import change_points
from storage.prepared import Prepared
from storage.sqlite_inline import BusyStats, NestedSessionError, WalCheckpointer, untested_versions
from tests.support.loop_lag import Ticker, until
from tests.support import START


async def test_a_writer_that_awaits_mid_transaction_does_not_lock_out_other_tasks(sessions):
    """What once made inline SQLite unsafe: task A holds a write transaction open across an await (an LLM call,
    say) while task B writes. B must wait for the connection without blocking the loop, then succeed."""
    a_has_written = asyncio.Event()
    release_a = asyncio.Event()
    order: list[str] = []

    async def task_a() -> None:
        async with sessions() as s, s.begin():
            await change_points(s, "u1", 5, reason="a", source="test", ref_id="a", at=START)
            a_has_written.set()
            await release_a.wait()  # the loop must keep running for this to ever be set
            order.append("a commits")

    async def task_b() -> None:
        await a_has_written.wait()
        async with sessions() as s, s.begin():
            await change_points(s, "u2", 7, reason="b", source="test", ref_id="b", at=START)  # waits here
            order.append("b has written")

    a = asyncio.create_task(task_a())
    b = asyncio.create_task(task_b())
    await a_has_written.wait()
    for _ in range(20):  # B gets every chance to run; it must be queued, not blocking the loop
        await asyncio.sleep(0)
    assert order == [] and not b.done()
    release_a.set()
    await asyncio.gather(a, b)
    assert order == ["a commits", "b has written"]
    async with sessions() as s:
        assert await s.scalar(select(func.count()).select_from(PointsLedger)) == 2


async def test_a_session_opened_inside_another_in_the_same_task_fails_at_once(sessions):
    async with sessions() as outer:
        await outer.execute(text("select 1"))
        async with sessions() as inner:
            with pytest.raises(NestedSessionError, match="already holds the SQLite connection"):
                await inner.execute(text("select 1"))
    async with sessions() as again:  # the connection went back to the pool
        assert await again.scalar(text("select 1")) == 1


async def test_the_bot_connection_leaves_checkpoints_to_the_checkpointer(sessions, tmp_path):
    async with sessions() as s:
        assert await s.scalar(text("pragma wal_autocheckpoint")) == 0
        assert await s.scalar(text("pragma journal_mode")) == "wal"
    async with sessions() as s, s.begin():
        for i in range(200):
            await change_points(s, f"u{i}", 1, reason="x", source="test", ref_id=str(i), at=START)
    path = str(tmp_path / "bot.db")
    checkpointer = WalCheckpointer(path, interval_s=3600)  # its thread sleeps: the test calls it directly
    try:
        conn = sqlite3.connect(path)
        frames, copied = checkpointer.checkpoint(conn)
        conn.close()
    finally:
        checkpointer.stop()
    assert frames > 0 and copied == frames  # everything the bot wrote is back in the database file


# -- version guard ----------------------------------------------------------------------------------------------------

def test_versions_outside_the_tested_series_are_named():
    assert untested_versions({"sqlalchemy": "2.1.9", "aiosqlite": "0.22.1"}) == []
    assert untested_versions({"sqlalchemy": "2.2.0", "aiosqlite": "0.22.1"}) == ["SQLAlchemy 2.2.0 (written for 2.1.x)"]
    assert untested_versions({"sqlalchemy": "2.1.9", "aiosqlite": "0.3.0"}) == ["aiosqlite 0.3.0 (written for 0.22.x)"]
    assert untested_versions({"sqlalchemy": "2.10.1", "aiosqlite": "0.22"}) == ["SQLAlchemy 2.10.1 (written for 2.1.x)"]


GUARDED_RUN = """
import asyncio, json, sys, warnings
import sqlalchemy
sqlalchemy.__version__ = "2.2.0"  # as a newer SQLAlchemy would say

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    from datetime import UTC, datetime
    from sqlalchemy import bindparam, select
    from storage.bulk import Write, write_with_session
    from storage.db import create_engine, migrate, session_factory
    from storage.models import Activity, ScheduledJob
    from storage.prepared import Prepared
    import storage.sqlite_inline, storage.types  # imported again: still one warning

async def main(path):
    engine = create_engine(f"sqlite+aiosqlite:///{path}")
    await migrate(engine)
    at = datetime(2026, 11, 23, tzinfo=UTC)
    try:
        async with session_factory(engine)() as s:
            conn = await s.connection()
            driver = type((await conn.get_raw_connection()).driver_connection)
            await write_with_session(s, [Write(Activity.__table__, [{"at": at, "kind": "message", "detail": {"文": 1}}])])
            await Prepared(ScheduledJob.__table__.insert()).run(conn, {
                "key": "k", "handler": "h.h", "payload": None, "schedule": "once", "spec": "", "status": "active",
                "misfire_grace_s": 1, "run_count": 0, "attempts": 0, "created_at": at})
            await s.commit()
            keys = Prepared(select(ScheduledJob.key).where(ScheduledJob.key.in_(bindparam("k", expanding=True))))
            found = (await keys.run(await s.connection(), {"k": ["k", "x", "y"]})).all()
            detail = (await s.execute(select(Activity.detail))).scalar_one()
    finally:
        await engine.dispose()
    print(json.dumps({"warnings": [str(w.message) for w in caught if w.category is RuntimeWarning],
                      "inline": storage.sqlite_inline.INLINE_SUPPORTED, "driver": f"{driver.__module__}.{driver.__name__}",
                      "direct_runs": Prepared.direct_runs, "found": [r.key for r in found], "detail": detail}))

asyncio.run(main(sys.argv[1]))
"""


def test_outside_the_tested_versions_sqlite_runs_on_the_plain_path_after_one_warning(tmp_path):
    root = Path(__file__).resolve().parent.parent
    done = subprocess.run([sys.executable, "-c", GUARDED_RUN, str(tmp_path / "bot.db")], cwd=root, timeout=120,
                          capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(root)})
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(out["warnings"]) == 1
    assert "storage/sqlite_inline.py and storage/prepared.py" in out["warnings"][0]
    assert "SQLAlchemy 2.2.0 (written for 2.1.x)" in out["warnings"][0]
    assert out["inline"] is False and out["driver"] == "aiosqlite.core.Connection"
    assert out["direct_runs"] == 0  # every statement went through SQLAlchemy's execution
    assert out["found"] == ["k"] and out["detail"] == {"文": 1}


# -- busy waits off the loop, the WAL bounded ---------------------------------------------------------------------------

@contextlib.contextmanager
def write_lock_held_by_another_connection(path: str):
    """A second sqlite3 connection, on a thread of its own, holding the write lock until the block ends."""
    locked, release = threading.Event(), threading.Event()

    def hold() -> None:
        conn = sqlite3.connect(path)
        conn.execute("BEGIN IMMEDIATE")
        locked.set()
        release.wait(30)
        conn.rollback()
        conn.close()

    thread = threading.Thread(target=hold)
    thread.start()
    assert locked.wait(10)
    try:
        yield
    finally:
        release.set()
        thread.join()


JOBS = ScheduledJob.__table__


def new_job(key: str) -> dict:
    return {"key": key, "handler": "t.h", "payload": None, "schedule": "once", "spec": "", "status": "active",
            "misfire_grace_s": 60, "run_count": 0, "attempts": 0, "created_at": START}


async def write_by(path_name: str, sessions, key: str) -> None:
    async with sessions() as s:
        if path_name == "orm":
            s.add(ScheduledJob(**new_job(key)))
            await s.flush()
        elif path_name == "prepared":
            await Prepared(JOBS.insert()).run(await s.connection(), new_job(key))
        else:
            await write_with_session(s, [Write(JOBS, [new_job(key)])])
        await s.commit()


@pytest.mark.parametrize("path_name", ["orm", "prepared", "bulk"])
async def test_a_write_meeting_another_connections_lock_awaits_it_with_the_loop_running(sessions, tmp_path,
                                                                                          path_name):
    async with sessions() as s:  # the connection is open (its pragmas set) before the lock is taken
        assert await s.scalar(text("pragma busy_timeout")) == 0  # no busy handler sleeping on the loop
    with write_lock_held_by_another_connection(str(tmp_path / "bot.db")):
        ticker = Ticker()
        retries = BusyStats.retries
        write = asyncio.create_task(write_by(path_name, sessions, "k1"))
        await until(lambda: BusyStats.retries - retries >= 9)  # ≥ 200 ms of backing off, the loop turning
        assert not write.done()
    await write  # the lock gone, the retried statement went through
    await ticker.stop()
    assert ticker.ticks >= 20 and ticker.worst < 0.15
    async with sessions() as s:
        assert await s.scalar(select(ScheduledJob.key)) == "k1"


async def test_a_lock_held_past_the_bound_fails_the_write_without_stalling_the_loop(sessions, tmp_path, monkeypatch):
    monkeypatch.setattr(sqlite_inline, "BUSY_WAIT_S", 0.3)
    async with sessions() as s:
        await s.execute(text("select 1"))
    with write_lock_held_by_another_connection(str(tmp_path / "bot.db")):
        ticker = Ticker()
        started = time.monotonic()
        with pytest.raises(OperationalError, match="database is locked"):
            await write_by("orm", sessions, "k1")
        waited = time.monotonic() - started
        await ticker.stop()
    assert 0.3 <= waited < 1.5 and ticker.ticks >= 20 and ticker.worst < 0.15
    await write_by("orm", sessions, "k2")  # the connection is usable again
    async with sessions() as s:
        assert list((await s.execute(select(ScheduledJob.key))).scalars()) == ["k2"]


async def test_a_wal_past_its_bound_is_checkpointed_and_truncated(sessions, tmp_path):
    async with sessions() as s:
        assert await s.scalar(text("pragma journal_size_limit")) == JOURNAL_SIZE_LIMIT
    rows = [{"at": START, "kind": "message", "detail": {"q": "问" * 300, "i": i}} for i in range(4000)]
    async with sessions() as s:
        await write_with_session(s, [Write(Activity.__table__, rows)])
        await s.commit()
    path = str(tmp_path / "bot.db")
    wal = path + "-wal"
    size = os.path.getsize(wal)
    assert size > 2_000_000
    conn = sqlite3.connect(path)
    try:
        roomy = WalCheckpointer(path, interval_s=3600, truncate_bytes=size + 1)  # under its bound: left alone
        roomy.checkpoint(conn)
        roomy.stop()
        assert os.path.getsize(wal) == size and roomy.truncations == 0
        tight = WalCheckpointer(path, interval_s=3600, truncate_bytes=1_000_000)
        tight.checkpoint(conn)
        tight.stop()
    finally:
        conn.close()
    assert os.path.getsize(wal) == 0 and tight.truncations == 1
    async with sessions() as s:  # and the bot goes on writing and reading
        await write_with_session(s, [Write(Activity.__table__, rows[:10])])
        await s.commit()
        assert await s.scalar(select(func.count()).select_from(Activity)) == 4010
