"""Several bot processes on one database: every due job is claimed by exactly one of them.

Two complete apps (each its own clock, scheduler and connection pool — what two processes have) share one
database and reach the same due instant together, so their schedulers race for the same rows. On PostgreSQL the
claim is ``SELECT … FOR UPDATE SKIP LOCKED`` inside the job's own transaction; SQLite has one writer and is for one
process, so this module runs on PostgreSQL only.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy import func, select

from bot.context import JobContext
from storage.models import ScheduledJob
from tests.backends import drop_postgres_database, postgres_or_skip
from tests.support import START, Harness, make_config



@pytest.fixture
async def pg_url():
    url = await postgres_or_skip()
    yield url
    await drop_postgres_database(url)


class SlowRecorder:
    """Records runs; yields to the loop mid-job so a racing scheduler gets every chance to run the same job."""

    def __init__(self, name: str, runs: Counter) -> None:
        self.name = name
        self.runs = runs

    async def __call__(self, ctx: JobContext) -> None:
        for _ in range(3):
            await asyncio.sleep(0)
        self.runs[ctx.job_key] += 1


async def test_two_processes_run_each_due_job_exactly_once(pg_url):
    db_url = pg_url
    runs: Counter = Counter()
    by_process: Counter = Counter()
    async with Harness(make_config(), db_url) as a, Harness(make_config(), db_url) as b:
        for name, h in (("a", a), ("b", b)):
            recorder = SlowRecorder(name, runs)

            async def handler(ctx: JobContext, recorder=recorder, name=name) -> None:
                await recorder(ctx)
                by_process[name] += 1

            h.app.scheduler.register("t.job", handler)
        due = START + timedelta(minutes=5)
        for i in range(60):  # one-off jobs, all due at the same instant, written once (like a shared plan)
            await a.app.scheduler.schedule(f"once:{i}", "t.job", at=due)
        for i in range(20):  # and recurring ones, which both processes ensure at start
            for h in (a, b):
                await h.app.scheduler.schedule(f"daily:{i}", "t.job", daily="09:05", ensure=True)
        await b.app.scheduler.start(b.app.services)  # b learns of a's jobs the way a restarted process would
        for day in range(3):
            target = due + timedelta(days=day, minutes=1)
            await asyncio.gather(a.clock.advance_to(target), b.clock.advance_to(target))
        async with a.app.services.sessions() as s:
            total_runs = await s.scalar(select(func.sum(ScheduledJob.run_count)))

    assert set(runs) == {f"once:{i}" for i in range(60)} | {f"daily:{i}" for i in range(20)}
    assert {k: n for k, n in runs.items() if k.startswith("once:")} == {f"once:{i}": 1 for i in range(60)}
    assert {k: n for k, n in runs.items() if k.startswith("daily:")} == {f"daily:{i}": 3 for i in range(20)}
    assert by_process["a"] > 0 and by_process["b"] > 0, by_process  # both took part: there was a real race
    assert total_runs == 60 + 20 * 3
