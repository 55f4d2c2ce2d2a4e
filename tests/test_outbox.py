"""The outbox: messages decided in a transaction or held back by the governor survive a restart, and are sent
once — or dropped as stale, or (caught mid-send) never sent again. Two app instances on one database file, one
after the other, stand for the process before and after the restart."""

from __future__ import annotations

import asyncio
import random
from datetime import datetime, timedelta

import pytest
from sqlalchemy import select

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.context import Context
from bot.events import OutgoingMessage, Priority
from skills.lottery.models import Lottery
from storage.models import Activity, OutboxMessage
from tests.support import START, TZ, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

LOTTERY = {"bot": {"admins": ["admin1"], "skills": ["ping", "lottery"]}}
EVENING = datetime(2026, 11, 23, 21, 30, tzinfo=TZ)
MORNING = datetime(2026, 11, 24, 8, 0, tzinfo=TZ)  # quiet hours (22:00–08:00) end


def quiet_config(raw: dict | None = None):
    """The test pacing, with the real quiet hours."""
    return make_config(raw, quiet_hours=make_config().governor.quiet_hours)


async def outbox(h: Harness) -> list[OutboxMessage]:
    await h.app.outbox.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(OutboxMessage).order_by(OutboxMessage.id))).scalars())


async def activity(h: Harness, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))).scalars())


async def crash(app: BotApp) -> None:
    """The process dies: nothing the governor or the outbox still holds in memory is written."""
    assert app.outbox.waiting == 0  # (nothing written behind is pending: what survives is what was committed)
    app.scheduler.stop()
    await app.clock.aclose()
    await app.activity.aclose()  # its own task must end; the activity store is not what these tests are about
    await app.engine.dispose()


# -- a lottery drawn in quiet hours ---------------------------------------------------------------------------------


async def draw_in_quiet_hours(h: Harness) -> Lottery:
    await h.say("admin1", "/lottery start 保温杯 winners=1 duration=60m keyword=抽奖", name="群主")
    for member in ("u1", "u2", "u3"):
        await h.say(member, "抽奖", name=f"名{member}", after_s=1)
    await h.settle()
    await h.clock.advance_to(EVENING + timedelta(hours=1, minutes=30))  # 23:00: drawn at 22:30
    await h.settle()
    async with h.app.services.sessions() as s:
        (lot,) = (await s.execute(select(Lottery))).scalars().all()
    assert lot.status == "drawn" and not any("恭喜中奖" in t for t in h.transport.texts())
    return lot


async def test_a_draw_in_quiet_hours_is_announced_once_by_the_next_process(db_url):
    cfg = quiet_config(LOTTERY)
    async with Harness(cfg, db_url, start=EVENING) as h:
        lot = await draw_in_quiet_hours(h)
        (row,) = await outbox(h)  # committed with the draw, before anything was written behind
        assert (row.status, row.kind, row.room_id) == ("pending", "transactional", "g1") and lot.seed in row.text
        assert row.decided_at == EVENING + timedelta(hours=1)
    # the bot is stopped at 23:00 and started again at 08:00
    async with Harness(cfg, db_url, start=MORNING) as h:
        await h.settle()
        (announcement,) = h.sent
        assert announcement.at == MORNING and "恭喜中奖" in announcement.text
        assert lot.seed in announcement.text and announcement.message.mentions == tuple(lot.winner_ids)
        (row,) = await outbox(h)
        assert (row.status, row.sent_at) == ("sent", MORNING)
        (sent,) = [r for r in await activity(h, "sent") if r.at >= MORNING]  # (the evening's are there too)
        assert sent.detail["proactive"] == "transactional" and sent.skill == "lottery"
    async with Harness(cfg, db_url, start=MORNING + timedelta(hours=1)) as h:  # and once only
        await h.settle()
        assert h.sent == []


async def test_the_announcement_survives_a_crash_too(db_url):
    cfg = quiet_config(LOTTERY)
    h = Harness(cfg, db_url, start=EVENING)
    await h.__aenter__()
    lot = await draw_in_quiet_hours(h)
    await crash(h.app)
    async with Harness(cfg, db_url, start=MORNING) as h:
        await h.settle()
        (announcement,) = h.sent
        assert announcement.at == MORNING and lot.seed in announcement.text


async def test_an_announcement_still_waiting_past_its_max_delay_is_dropped_as_stale(db_url):
    cfg = quiet_config(LOTTERY)  # transactional: max_delay_s 12 h, decided at 22:30
    async with Harness(cfg, db_url, start=EVENING) as h:
        await draw_in_quiet_hours(h)
    async with Harness(cfg, db_url, start=MORNING + timedelta(hours=3)) as h:  # 11:00: 12.5 h after the draw
        await h.settle()
        assert h.sent == []
        (row,) = await outbox(h)
        assert (row.status, row.reason) == ("dropped", "stale")
        (dropped,) = await activity(h, "send_dropped")
        assert dropped.detail["reason"] == "stale" and "恭喜中奖" in dropped.detail["text"]


# -- offline -----------------------------------------------------------------------------------------------------


async def test_messages_held_while_offline_survive_a_restart_and_go_once(db_url):
    cfg = make_config()
    async with Harness(cfg, db_url) as h:
        h.transport.offline = True
        await h.say("u1", "/ping")
        h.app.governor.submit(OutgoingMessage("今日贴士", room_id="g2"), priority=Priority.SCHEDULED)
        await h.clock.advance(60)  # two probes: still down
        assert h.sent == [] and h.app.governor.offline
        rows = await outbox(h)
        assert [(r.status, r.kind) for r in rows] == [("pending", None), ("pending", "light")]
    async with Harness(cfg, db_url, start=START + timedelta(minutes=5)) as h:  # the gateway is back
        await h.settle()
        assert [(x.text, x.at) for x in h.sent] == [
            ("@u1\u2005在的～", START + timedelta(minutes=5)), ("今日贴士", START + timedelta(minutes=5, seconds=1))]
        assert [r.status for r in await outbox(h)] == ["sent", "sent"]
    async with Harness(cfg, db_url, start=START + timedelta(minutes=6)) as h:
        await h.settle()
        assert h.sent == []


async def test_a_reply_held_offline_past_its_useful_life_is_dropped_at_the_next_start(db_url):
    cfg = make_config()  # reply_max_delay_s: 600
    async with Harness(cfg, db_url) as h:
        h.transport.offline = True
        await h.say("u1", "/ping")
        h.app.governor.submit(OutgoingMessage("今日贴士", room_id="g2"), priority=Priority.SCHEDULED)
        await h.clock.advance(1)
    async with Harness(cfg, db_url, start=START + timedelta(minutes=20)) as h:
        await h.settle()
        assert h.transport.texts() == ["今日贴士"]  # the light message keeps 12 h; the answer is 20 min late
        assert [(r.status, r.reason) for r in await outbox(h)] == [("dropped", "stale"), ("sent", None)]


async def test_a_message_caught_mid_send_by_a_crash_is_never_sent_again(db_url):
    cfg = make_config()
    clock = VirtualClock(START, cfg.tz)
    arrived = asyncio.Event()

    async def hanging_send(message: OutgoingMessage) -> str | None:
        arrived.set()  # the gateway has the message...
        await asyncio.Future()  # ...and the process dies before it answers
        return None

    app = BotApp(cfg, clock, hanging_send, db_url=db_url, rng=random.Random(0))
    await app.start()
    app.governor.submit(OutgoingMessage("早上好", room_id="g1"), priority=Priority.SCHEDULED, keep=True)
    sending = asyncio.create_task(clock.run_pending())
    await arrived.wait()
    sending.cancel()
    await asyncio.gather(sending, return_exceptions=True)
    await crash(app)
    async with Harness(cfg, db_url, start=START + timedelta(minutes=1)) as h:
        await h.settle()
        assert h.sent == []
        (row,) = await outbox(h)
        assert (row.status, row.reason) == ("uncertain", "restart")
        (dropped,) = await activity(h, "send_dropped")
        assert (dropped.detail["reason"], dropped.detail["text"], dropped.room_id) == ("uncertain", "早上好", "g1")


# -- ctx.send in a job's transaction ----------------------------------------------------------------------------------


async def test_a_jobs_message_is_committed_with_the_job_or_not_at_all(db_url):
    async with Harness(make_config(), db_url) as h:
        async def ok(ctx: Context) -> None:
            for room in ("g1", "g3"):
                ctx.send(OutgoingMessage(f"已开奖 {room}", room_id=room))

        async def fails(ctx: Context) -> None:
            ctx.send(OutgoingMessage("不该发出", room_id="g2"))
            raise RuntimeError("the job fails after deciding to send")

        h.app.scheduler.register("t.ok", ok)
        h.app.scheduler.register("t.fails", fails)
        await h.app.scheduler.schedule("a", "t.ok", at=START + timedelta(minutes=1))
        await h.app.scheduler.schedule("b", "t.fails", at=START + timedelta(minutes=1))
        await h.clock.advance_to(START + timedelta(minutes=2))
        await h.settle()
        assert h.transport.texts() == ["已开奖 g1", "已开奖 g3"]
        rows = await outbox(h)
        assert [(r.room_id, r.status, r.kind, r.skill) for r in rows] == [("g1", "sent", "light", "t"),
                                                                           ("g3", "sent", "light", "t")]
        assert h.app.outbox.written == 2  # only their outcomes were written behind: the rows came with the job


async def test_a_send_from_an_after_commit_callback_is_kept_too(db_url):
    async with Harness(quiet_config(), db_url, start=EVENING + timedelta(hours=1)) as h:  # 22:30: quiet
        async def job(ctx: Context) -> None:
            ctx.after_commit(lambda: ctx.send(OutgoingMessage("晚安", room_id="g1")))

        h.app.scheduler.register("t.job", job)
        await h.app.scheduler.schedule("a", "t.job", at=h.clock.now())
        await h.clock.run_pending()
        (row,) = await outbox(h)
        assert (row.text, row.status) == ("晚安", "pending")
    async with Harness(quiet_config(), db_url, start=MORNING) as h:
        await h.settle()
        assert h.transport.texts() == ["晚安"]


async def test_replies_that_go_at_once_never_touch_the_outbox(db_url):
    async with Harness(make_config(), db_url) as h:
        for i in range(5):
            await h.say(f"u{i}", "/ping")
        await h.settle()
        assert len(h.sent) == 5 and await outbox(h) == [] and h.app.outbox.written == 0
