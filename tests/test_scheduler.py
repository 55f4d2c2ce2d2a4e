"""The persisted scheduler on a virtual clock: next-run computation, firing, replace/cancel/pause/resume,
restarts, misfires, failures and transactional bookkeeping. Real app, real SQLite file."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.context import Context
from bot.replayer import run_replay
from bot.scheduler import MAX_ATTEMPTS, ScheduleError
from storage.models import Activity, Member, ScheduledJob
from tests.support import TZ, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike


def local(day: int, hour: int, minute: int = 0, second: int = 0, month: int = 11) -> datetime:
    return datetime(2026, month, day, hour, minute, second, tzinfo=TZ)


class Recorder:
    """A job handler that records each run; ``fail`` makes the next runs raise."""

    def __init__(self, fail: int = 0) -> None:
        self.runs: list[tuple[str, dict, datetime, datetime]] = []
        self.fail = fail

    async def __call__(self, ctx: Context) -> None:
        self.runs.append((ctx.job_key, ctx.payload, ctx.scheduled_for, ctx.now))
        if self.fail:
            self.fail -= 1
            raise RuntimeError("boom")

    @property
    def at(self) -> list[datetime]:
        return [r[3] for r in self.runs]


async def started(h: Harness, **handlers) -> None:
    for name, fn in handlers.items():
        h.app.scheduler.register(f"t.{name}", fn)


async def job_rows(h: Harness, kind: str = "job") -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))).scalars())


# -- next-run computation -----------------------------------------------------------------------------------------


async def test_next_after_daily_in_local_time(db_url):
    async with Harness(make_config(), db_url) as h:
        nxt = h.app.scheduler.next_after
        assert nxt("daily", "09:30", local(23, 9).astimezone(UTC)) == local(23, 9, 30)
        assert nxt("daily", "09:30", local(23, 9, 30).astimezone(UTC)) == local(24, 9, 30)  # strictly after
        assert nxt("daily", "09:30", local(23, 10).astimezone(UTC)) == local(24, 9, 30)
        assert nxt("daily", "9:05", local(23, 10).astimezone(UTC)) == local(24, 9, 5)
        # 07:00 Shanghai is 23:00 UTC the day before
        got = nxt("daily", "07:00", local(24, 6).astimezone(UTC))
        assert got == datetime(2026, 11, 23, 23, 0, tzinfo=UTC) and got.utcoffset() == timedelta(0)
        # month end
        assert nxt("daily", "00:00", local(30, 23, 59).astimezone(UTC)) == local(1, 0, 0, month=12)


async def test_next_after_cron_in_local_time(db_url):
    async with Harness(make_config(), db_url) as h:
        nxt = h.app.scheduler.next_after
        monday_9 = local(23, 9).astimezone(UTC)  # 2026-11-23 is a Monday
        assert nxt("cron", "0 9 * * 1", monday_9) == local(30, 9)  # strictly after
        assert nxt("cron", "0 9 * * 1", local(23, 8, 59).astimezone(UTC)) == local(23, 9)
        assert nxt("cron", "*/15 * * * *", local(23, 9, 7).astimezone(UTC)) == local(23, 9, 15)
        got = nxt("cron", "0 7 * * *", monday_9)
        assert got == datetime(2026, 11, 23, 23, 0, tzinfo=UTC)
        assert nxt("once", "", monday_9) is None


async def test_invalid_schedules_are_refused(db_url):
    async with Harness(make_config(), db_url) as h:
        sch = h.app.scheduler
        await started(h, rec=Recorder())
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.nope", at=local(23, 10))
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.rec", at=local(23, 10), daily="09:00")
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.rec")
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.rec", at=datetime(2026, 11, 23, 10))  # naive
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.rec", daily="25:00")
        with pytest.raises(ScheduleError):
            await sch.schedule("k", "t.rec", cron="not a cron")
        assert await sch.get("k") is None
        with pytest.raises(ValueError):
            sch.register("t.rec", Recorder())  # twice


# -- firing -------------------------------------------------------------------------------------------------------


async def test_once_job_fires_at_its_time_with_payload(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        nxt = await h.app.scheduler.schedule("k1", "t.rec", at=local(23, 10), payload={"room": "g1", "n": 2})
        assert nxt == local(23, 10)
        await h.clock.advance_to(local(23, 9, 59, 59))
        assert rec.runs == []
        await h.clock.advance_to(local(23, 12))
        assert rec.runs == [("k1", {"room": "g1", "n": 2}, local(23, 10), local(23, 10))]
        job = await h.app.scheduler.get("k1")
        assert (job.status, job.run_count, job.last_run_at, job.next_run_at) == ("done", 1, local(23, 10), None)
        assert h.app.scheduler.fired == [("k1", local(23, 10))]
        assert [r.detail for r in await job_rows(h)] == [
            {"job": "k1", "outcome": "ok", "due": local(23, 10).astimezone(UTC).isoformat()}
        ]


async def test_daily_job_fires_each_day_at_local_time(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        await h.app.scheduler.schedule("d", "t.rec", daily="09:30")
        await h.clock.advance_to(local(26, 9))
        assert rec.at == [local(23, 9, 30), local(24, 9, 30), local(25, 9, 30)]
        job = await h.app.scheduler.get("d")
        assert (job.status, job.run_count, job.next_run_at) == ("active", 3, local(26, 9, 30))


async def test_cron_job_fires_on_its_slots(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        await h.app.scheduler.schedule("c", "t.rec", cron="*/20 9-10 * * *")
        await h.clock.advance_to(local(24, 9, 1))
        assert rec.at == [local(23, 9, 20), local(23, 9, 40), local(23, 10), local(23, 10, 20), local(23, 10, 40),
                          local(24, 9)]


async def test_rescheduling_the_same_key_replaces(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch = h.app.scheduler
        await sch.schedule("k", "t.rec", at=local(23, 10), payload={"v": 1})
        await sch.schedule("k", "t.rec", at=local(23, 11), payload={"v": 2})
        await h.clock.advance_to(local(23, 12))
        assert rec.runs == [("k", {"v": 2}, local(23, 11), local(23, 11))]
        async with h.app.services.sessions() as s:
            assert (await s.execute(select(func.count()).select_from(ScheduledJob))).scalar() == 1
        # and a daily job can become a one-off
        await sch.schedule("k2", "t.rec", daily="13:00")
        await sch.schedule("k2", "t.rec", at=local(23, 12, 30))
        await h.clock.advance_to(local(24, 14))
        assert [r[0] for r in rec.runs] == ["k", "k2"]
        assert (await sch.get("k2")).status == "done"


async def test_cancel(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch = h.app.scheduler
        await sch.schedule("k", "t.rec", at=local(23, 10))
        assert await sch.cancel("k") is True
        assert await sch.cancel("k") is False
        assert await sch.cancel("unknown") is False
        await h.clock.advance_to(local(24, 12))
        assert rec.runs == []
        assert (await sch.get("k")).status == "cancelled"


async def test_pause_and_resume_recurring(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch = h.app.scheduler
        await sch.schedule("d", "t.rec", daily="09:30")
        assert await sch.pause("d") is True
        await h.clock.advance_to(local(25, 10))
        assert rec.runs == []
        assert await sch.resume("d") is True
        assert await sch.resume("d") is False  # not paused any more
        job = await sch.get("d")
        assert (job.status, job.next_run_at) == ("active", local(26, 9, 30))  # the next slot, no catch-up burst
        await h.clock.advance_to(local(26, 10))
        assert rec.at == [local(26, 9, 30)]


async def test_pause_and_resume_once_keeps_its_time(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch = h.app.scheduler
        await sch.schedule("o", "t.rec", at=local(23, 11))
        await sch.pause("o")
        await h.clock.advance_to(local(23, 10))
        await sch.resume("o")
        await h.clock.advance_to(local(23, 12))
        assert rec.at == [local(23, 11)]


# -- restarts and misfires ----------------------------------------------------------------------------------------


async def test_jobs_survive_a_restart(db_url):
    async with Harness(make_config(), db_url) as a:
        await started(a, rec=Recorder())
        await a.app.scheduler.schedule("once", "t.rec", at=local(23, 10), payload={"x": 1})
        await a.app.scheduler.schedule("daily", "t.rec", daily="09:30")
    rec = Recorder()
    async with Harness(make_config(), db_url, start=local(23, 9, 40)) as b:
        await started(b, rec=rec)
        await b.clock.run_pending()
        assert rec.runs == [("daily", {}, local(23, 9, 30), local(23, 9, 40))]  # 10 min late: one catch-up
        await b.clock.advance_to(local(24, 9, 31))
        assert rec.runs[1:] == [("once", {"x": 1}, local(23, 10), local(23, 10)),
                                ("daily", {}, local(24, 9, 30), local(24, 9, 30))]
        assert (await b.app.scheduler.get("daily")).next_run_at == local(25, 9, 30)


async def test_misfire_beyond_grace_is_skipped_not_burst(db_url):
    async with Harness(make_config(), db_url) as a:
        await started(a, rec=Recorder())
        await a.app.scheduler.schedule("daily", "t.rec", daily="09:30", misfire_grace_s=3600)
        await a.app.scheduler.schedule("once", "t.rec", at=local(23, 10), misfire_grace_s=60)
    rec = Recorder()
    async with Harness(make_config(), db_url, start=local(26, 12)) as b:  # down for three days
        await started(b, rec=rec)
        await b.clock.run_pending()
        assert rec.runs == []
        daily, once = await b.app.scheduler.get("daily"), await b.app.scheduler.get("once")
        assert (daily.status, daily.next_run_at, daily.run_count) == ("active", local(27, 9, 30), 0)
        assert (once.status, once.next_run_at) == ("missed", None)
        missed = await job_rows(b)
        assert sorted(r.detail["job"] for r in missed) == ["daily", "once"]
        assert all(r.detail["outcome"] == "missed" for r in missed)
        await b.clock.advance_to(local(27, 10))
        assert rec.at == [local(27, 9, 30)]


async def test_many_missed_periods_within_grace_give_exactly_one_catch_up(db_url):
    async with Harness(make_config(), db_url) as a:
        await started(a, rec=Recorder())
        await a.app.scheduler.schedule("c", "t.rec", cron="*/10 * * * *", misfire_grace_s=3600)
    rec = Recorder()
    async with Harness(make_config(), db_url, start=local(23, 9, 55)) as b:  # 09:10 … 09:50 all missed
        await started(b, rec=rec)
        await b.clock.run_pending()
        assert [(r[2], r[3]) for r in rec.runs] == [(local(23, 9, 10), local(23, 9, 55))]
        assert (await b.app.scheduler.get("c")).next_run_at == local(23, 10)
        await b.clock.advance_to(local(23, 10, 5))
        assert rec.at == [local(23, 9, 55), local(23, 10)]


async def test_a_clock_jump_runs_a_daily_job_once_not_once_per_virtual_day(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        await h.app.scheduler.schedule("d", "t.rec", daily="09:30")
        landing = local(23, 9) + timedelta(days=365)  # a replay line a year ahead, or --until
        await h.clock.advance_to(landing)
        assert rec.at == [local(23, 9, 30)]
        job = await h.app.scheduler.get("d")
        assert (job.run_count, job.next_run_at) == (1, landing + timedelta(minutes=30))  # from where it landed
        await h.clock.advance_to(landing + timedelta(days=2))
        assert len(rec.runs) == 3  # daily again from there


async def test_a_few_quiet_days_are_not_a_jump(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        await h.app.scheduler.schedule("d", "t.rec", daily="09:30")
        await h.clock.advance_to(local(30, 9))  # a week without an event: every run happens, at its time
        assert rec.at == [local(day, 9, 30) for day in range(23, 30)]


async def test_a_replay_of_two_lines_a_year_apart_runs_a_daily_schedule_at_most_twice(tmp_path):
    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "schedule"]},
           "skills": {"schedule": {"items": {"早安": {"daily": "10:00", "text": "早上好", "targets": ["room:g1"]}}}}}
    lines = [json.dumps({"at": at, "kind": "message", "room": "g1", "user": "u1", "text": "大家好"})
             for at in ("2026-11-23T09:00:00+08:00", "2027-11-23T09:00:00+08:00")]
    out, err, handled = io.StringIO(), io.StringIO(), []
    status = await run_replay(make_config(raw), enumerate(lines, start=1), out=out, err=err,
                              db_url=f"sqlite+aiosqlite:///{tmp_path / 'r.db'}", on_event=handled.append)
    greetings = [a for a in map(json.loads, out.getvalue().splitlines()) if a["text"] == "早上好"]
    assert status == 0 and 1 <= len(greetings) <= 2, (len(greetings), err.getvalue()[-500:])
    assert handled[1] < 1.0  # the year-long jump: one run on the way, not 365


async def test_misfire_exactly_at_grace_still_runs(db_url):
    async with Harness(make_config(), db_url) as a:
        await started(a, rec=Recorder())
        await a.app.scheduler.schedule("o", "t.rec", at=local(23, 10), misfire_grace_s=600)
    rec = Recorder()
    async with Harness(make_config(), db_url, start=local(23, 10, 10)) as b:
        await started(b, rec=rec)
        await b.clock.run_pending()
        assert rec.at == [local(23, 10, 10)]


# -- failures -----------------------------------------------------------------------------------------------------


async def test_failing_handler_does_not_stop_other_jobs(db_url):
    async with Harness(make_config(), db_url) as h:
        bad, good = Recorder(fail=10), Recorder()
        await started(h, bad=bad, good=good)
        sch = h.app.scheduler
        await sch.schedule("bad", "t.bad", daily="10:00")  # scheduled first: runs first
        await sch.schedule("good", "t.good", at=local(23, 10))
        await h.clock.advance_to(local(23, 11))
        assert bad.at == [local(23, 10)] and good.at == [local(23, 10)]
        job = await sch.get("bad")
        assert (job.status, job.next_run_at, job.last_error) == ("active", local(24, 10), "RuntimeError: boom")
        assert h.app.errors.count == 1
        await h.clock.advance_to(local(24, 11))
        assert bad.at == [local(23, 10), local(24, 10)]  # recurring: tried again at its next slot
        assert (await sch.get("good")).status == "done"


async def test_one_off_retried_then_marked_failed(db_url):
    async with Harness(make_config(), db_url) as h:
        bad = Recorder(fail=100)
        await started(h, bad=bad)
        await h.app.scheduler.schedule("o", "t.bad", at=local(23, 10))
        await h.clock.advance_to(local(24, 10))
        assert bad.at == [local(23, 10), local(23, 10, 1), local(23, 10, 3)]  # +60 s, then +120 s
        assert len(bad.at) == MAX_ATTEMPTS
        job = await h.app.scheduler.get("o")
        assert (job.status, job.run_count, job.attempts, job.last_error) == ("failed", 0, 3, "RuntimeError: boom")


async def test_one_off_succeeds_on_retry(db_url):
    async with Harness(make_config(), db_url) as h:
        flaky = Recorder(fail=1)
        await started(h, flaky=flaky)
        await h.app.scheduler.schedule("o", "t.flaky", at=local(23, 10))
        await h.clock.advance_to(local(24, 10))
        assert flaky.at == [local(23, 10), local(23, 10, 1)]
        job = await h.app.scheduler.get("o")
        assert (job.status, job.last_error) == ("done", None)


async def test_rescheduled_one_off_gets_fresh_attempts(db_url):
    async with Harness(make_config(), db_url) as h:
        flaky = Recorder(fail=3)
        await started(h, flaky=flaky)
        sch = h.app.scheduler
        await sch.schedule("o", "t.flaky", at=local(23, 10))
        await h.clock.advance_to(local(23, 11))
        assert (await sch.get("o")).status == "failed"
        flaky.fail = 1  # the replaced job fails once more, then works
        await sch.schedule("o", "t.flaky", at=local(23, 12))
        await h.clock.advance_to(local(23, 13))
        assert flaky.at[3:] == [local(23, 12), local(23, 12, 1)]
        assert (await sch.get("o")).status == "done"


async def test_job_with_missing_handler_is_marked_failed(db_url):
    async with Harness(make_config(), db_url) as a:
        await started(a, gone=Recorder())
        await a.app.scheduler.schedule("k", "t.gone", at=local(23, 10))
    async with Harness(make_config(), db_url) as b:  # this version has no t.gone
        await b.clock.advance_to(local(23, 11))
        job = await b.app.scheduler.get("k")
        assert job.status == "failed" and "t.gone" in job.last_error


# -- effects and bookkeeping together -----------------------------------------------------------------------------


async def test_handler_effects_and_bookkeeping_commit_together(db_url):
    async with Harness(make_config(), db_url) as h:
        async def write_then(ctx: Context) -> None:
            ctx.session.add(Member(id=ctx.payload["member"], name="x", first_seen=ctx.now, last_seen=ctx.now))
            await ctx.services.scheduler.schedule(f"follow-{ctx.payload['member']}", "t.rec",
                                                  at=ctx.now + timedelta(hours=1), session=ctx.session)
            if ctx.payload.get("fail"):
                raise RuntimeError("after writing")

        rec = Recorder()
        await started(h, write=write_then, rec=rec)
        sch = h.app.scheduler
        await sch.schedule("ok", "t.write", at=local(23, 10), payload={"member": "m_ok"})
        await sch.schedule("bad", "t.write", daily="10:00", payload={"member": "m_bad", "fail": True})
        await h.clock.advance_to(local(23, 12))
        async with h.app.services.sessions() as s:
            members = set((await s.execute(select(Member.id))).scalars())
        assert members == {"m_ok"}  # the failing run's write was rolled back
        assert await sch.get("follow-m_bad") is None  # ...and so was the job it scheduled
        follow = await sch.get("follow-m_ok")
        assert (follow.status, follow.last_run_at) == ("done", local(23, 11))
        assert rec.runs == [("follow-m_ok", {}, local(23, 11), local(23, 11))]  # the new job was armed and ran
        ok, bad = await sch.get("ok"), await sch.get("bad")
        assert (ok.status, ok.run_count) == ("done", 1)
        assert (bad.run_count, bad.attempts, bad.last_error) == (0, 1, "RuntimeError: after writing")


async def test_one_off_handler_can_reschedule_itself(db_url):
    async with Harness(make_config(), db_url) as h:
        runs: list[datetime] = []

        async def snooze(ctx: Context) -> None:
            runs.append(ctx.now)
            if len(runs) < 3:
                await ctx.services.scheduler.schedule(ctx.job_key, "t.snooze", at=ctx.now + timedelta(minutes=30),
                                                      session=ctx.session)

        await started(h, snooze=snooze)
        await h.app.scheduler.schedule("s", "t.snooze", at=local(23, 10))
        await h.clock.advance_to(local(23, 13))
        assert runs == [local(23, 10), local(23, 10, 30), local(23, 11)]
        assert (await h.app.scheduler.get("s")).status == "done"


async def test_ensure_leaves_an_existing_job_alone(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch = h.app.scheduler
        assert await sch.schedule("tips", "t.rec", daily="09:30", ensure=True) == local(23, 9, 30)
        assert await sch.pause("tips")
        # a skill making sure its job exists at start must not undo the operator's pause
        assert await sch.schedule("tips", "t.rec", daily="10:00", ensure=True) is None
        job = await sch.get("tips")
        assert (job.status, job.spec) == ("paused", "09:30")


async def test_a_job_scheduled_in_a_handlers_session_is_armed_only_once_committed(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        await started(h, rec=rec)
        sch, clock = h.app.scheduler, h.clock
        async with h.app.services.sessions() as session:
            await sch.schedule("k", "t.rec", at=local(23, 10), session=session)
            assert clock.next_due() is None  # not yet committed: nothing armed
            await session.rollback()
        assert clock.next_due() is None and await sch.get("k") is None
        async with h.app.services.sessions() as session:
            await sch.schedule("k", "t.rec", at=local(23, 10), session=session)
            await session.commit()
        assert clock.next_due() == local(23, 10)
        await clock.advance_to(local(23, 11))
        assert rec.at == [local(23, 10)]


async def test_jobs_the_last_look_saw_run_without_looking_again_and_new_earlier_ones_still_run_on_time(db_url):
    async with Harness(make_config(), db_url) as h:
        rec = Recorder()
        sch = h.app.scheduler
        looks: list[int] = []

        async def spawner(ctx: Context) -> None:  # a handler scheduling a job due before the others
            rec.runs.append((ctx.job_key, ctx.payload, ctx.scheduled_for, ctx.now))
            await sch.schedule("from-handler", "t.rec", at=ctx.now, session=ctx.session)

        await started(h, rec=rec, spawner=spawner)
        for i in range(6):  # 10:01 … 10:06, fewer than one look returns: the look sees all of them
            await sch.schedule(f"k{i}", "t.rec", at=local(23, 10, 1 + i))
        original = sch._due_query

        def counting(limit: int):  # count the looks at the table
            looks.append(limit)
            return original(limit)

        sch._due_query = counting
        await h.clock.advance_to(local(23, 10, 1, 30))
        assert rec.at == [local(23, 10, 1)] and len(looks) == 1
        await h.clock.advance_to(local(23, 10, 2, 10))  # k1 was seen by that look: no second look
        assert rec.at[-1] == local(23, 10, 2) and len(looks) == 1
        # news before the horizon: from outside at the very instant of a job the look saw (one timer, one pass) …
        await sch.schedule("outside", "t.rec", at=local(23, 10, 4))
        await h.clock.advance_to(local(23, 10, 4, 30))
        assert [(r[0], r[3]) for r in rec.runs[2:]] == [
            ("k2", local(23, 10, 3)), ("k3", local(23, 10, 4)), ("outside", local(23, 10, 4))]
        # … and from a handler's own transaction
        await sch.schedule("spawner", "t.spawner", at=local(23, 10, 4, 40))
        await h.clock.advance_to(local(23, 10, 10))
        assert [(r[0], r[3]) for r in rec.runs[5:]] == [
            ("spawner", local(23, 10, 4, 40)), ("from-handler", local(23, 10, 4, 40)), ("k4", local(23, 10, 5)),
            ("k5", local(23, 10, 6))]
        assert len(looks) < len(rec.runs)  # fewer looks than runs, yet none missed or late
        # a job cancelled after the look is not run from what the look saw
        await sch.schedule("late1", "t.rec", at=local(23, 11))
        await sch.schedule("late2", "t.rec", at=local(23, 11, 1))
        await h.clock.advance_to(local(23, 10, 30))
        assert await sch.cancel("late2")
        await h.clock.advance_to(local(23, 12))
        assert [r[0] for r in rec.runs][-1] == "late1"
