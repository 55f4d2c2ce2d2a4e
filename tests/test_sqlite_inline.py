"""The process's one inline SQLite connection (storage/sqlite_inline.py): sessions queue for it instead of
busy-waiting on SQLite's lock, a nested session fails at once, and WAL checkpoints happen off the loop."""

from __future__ import annotations

import asyncio
import sqlite3

import pytest
from sqlalchemy import func, select, text

from storage.models_points import PointsLedger
from storage.points import change_points
from storage.sqlite_inline import NestedSessionError, WalCheckpointer
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
