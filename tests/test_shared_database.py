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

from sqlalchemy import func, select

from bot.context import Context
from storage.models import ScheduledJob
from tests.support import START, Harness, make_config



async def test_two_processes_run_each_due_job_exactly_once(pg_url):
    db_url = pg_url
    runs: Counter = Counter()
    by_process: Counter = Counter()
    async with Harness(make_config(), db_url) as a, Harness(make_config(), db_url) as b:
        for name, h in (("a", a), ("b", b)):

            async def handler(ctx: Context, name: str = name) -> None:
                for _ in range(3):  # yield mid-job: a racing scheduler gets every chance to run the same job
                    await asyncio.sleep(0)
                runs[ctx.job_key] += 1
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


def shared_config(db_url: str):
    from dataclasses import replace

    from bot.config import parse_config
    from tests.support import fast_governor

    cfg = parse_config({"bot": {"admins": ["admin1"], "skills": ["ping", "lottery"]},
                        "storage": {"url": db_url, "shared": True}})
    return replace(cfg, governor=fast_governor())


async def lottery_status(h: Harness) -> dict[str, str]:
    from skills.lottery.models import Lottery

    async with h.app.services.sessions() as s:
        rows = (await s.execute(select(Lottery.room_id, Lottery.status, Lottery.id).order_by(Lottery.id))).all()
    return {f"{room}#{lid}": status for room, status, lid in rows}


def draws(h: Harness) -> list[str]:
    return sorted(s.message.room_id for s in h.sent if "开奖啦" in s.text or "没有中奖者" in s.text)


async def test_a_rooms_jobs_run_only_where_its_account_is_a_member_and_survive_a_dead_process(pg_url):
    """Account A is in g1 and g2, account B in g2 and g3 (each learns its rooms from the events it receives).
    Lotteries in all three rooms: g1's is drawn by A, g3's by B, g2's by exactly one of them. Then A dies with
    lotteries open: B takes over g2's but never g1's (its account isn't there); A, restarted, draws g1's."""
    async with Harness(shared_config(pg_url), pg_url) as a, Harness(shared_config(pg_url), pg_url) as b:
        a.app.set_account("botA")
        b.app.set_account("botB")
        for h, rooms in ((a, ("g1", "g2")), (b, ("g2", "g3"))):
            for room in rooms:
                await h.say("m1", "大家好", room=room)
            await h.app.activity.flush()  # the account's rooms are written with the directory

        async def start_lotteries() -> None:
            for h, room in ((a, "g1"), (a, "g2"), (b, "g3")):
                await h.say("admin1", "/lottery start 帆布袋 winners=1 duration=30m keyword=抽奖", room=room)

        await start_lotteries()
        t1 = a.clock.now() + timedelta(minutes=31)
        await asyncio.gather(a.clock.advance_to(t1), b.clock.advance_to(t1))
        await asyncio.gather(a.settle(), b.settle())
        assert set((await lottery_status(a)).values()) == {"drawn"}
        assert "g1" in draws(a) and "g3" in draws(b) and "g3" not in draws(a) and "g1" not in draws(b)
        assert sorted(draws(a) + draws(b)) == ["g1", "g2", "g3"]  # g2: exactly once, by either

        # -- A dies with three lotteries open -------------------------------------------------------------
        await start_lotteries()
    # (a and b stopped here; b comes back alone, as the surviving process)
    async with Harness(shared_config(pg_url), pg_url, start=t1 + timedelta(minutes=1)) as b2:
        b2.app.set_account("botB")  # as at login: the scheduler looks again, now knowing its rooms
        await b2.clock.advance_to(t1 + timedelta(minutes=40))
        await b2.settle()
        status = await lottery_status(b2)
        open_ = sorted(k.split("#")[0] for k, v in status.items() if v == "open")
        assert open_ == ["g1"], status  # g2 and g3 taken over; g1 waits for an account that is in it
        assert draws(b2) == ["g2", "g3"]
    async with Harness(shared_config(pg_url), pg_url, start=t1 + timedelta(minutes=45)) as a2:
        a2.app.set_account("botA")
        await a2.clock.run_pending()
        await a2.settle()
        assert draws(a2) == ["g1"]  # the late draw, within its grace, exactly once
        assert set((await lottery_status(a2)).values()) == {"drawn"}


async def test_a_scheduled_message_to_many_rooms_goes_to_each_room_once_from_an_account_in_it(pg_url):
    """A daily message to g1, g2, g3 with A in g1 and g2, B in g2 and g3: whichever process claims the schedule
    fans it out as one job per room; g1's goes out from A, g3's from B, g2's from exactly one of them."""
    from dataclasses import replace
    from datetime import time as dtime

    from bot.config import QuietHours, parse_config
    from tests.support import fast_governor

    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "schedule"]},
           "storage": {"url": pg_url, "shared": True},
           "skills": {"schedule": {"items": {"早安": {"daily": "09:30", "text": "早上好",
                                                   "targets": ["room:g1", "room:g2", "room:g3"]}}}}}
    cfg = parse_config(raw)
    cfg = replace(cfg, governor=replace(fast_governor(), quiet_hours=QuietHours(start=dtime(0, 0), end=dtime(0, 0))))
    async with Harness(cfg, pg_url) as a, Harness(cfg, pg_url) as b:
        a.app.set_account("botA")
        b.app.set_account("botB")
        for h, rooms in ((a, ("g1", "g2")), (b, ("g2", "g3"))):
            for room in rooms:
                await h.say("m1", "大家好", room=room)
        for day in range(2):
            target = START + timedelta(days=day, minutes=31)
            await asyncio.gather(a.clock.advance_to(target), b.clock.advance_to(target))
            await asyncio.gather(a.settle(), b.settle())
        sent_a = [s.message.room_id for s in a.sent if s.text == "早上好"]
        sent_b = [s.message.room_id for s in b.sent if s.text == "早上好"]
    assert sent_a.count("g1") == 2 and "g3" not in sent_a  # each day, from an account that is in the room
    assert sent_b.count("g3") == 2 and "g1" not in sent_b
    assert sorted(sent_a + sent_b) == ["g1", "g1", "g2", "g2", "g3", "g3"]  # every room once a day, no more
