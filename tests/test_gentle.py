"""Gentleness rules in the send governor: the minimum gap between a room's proactive messages, lively rooms,
and opt-out (/退订, TD, /订阅). The real app on a virtual clock over a real database (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest

from bot.events import OutgoingMessage, Priority, ProactiveKind
from tests.support import START, TZ, Harness, make_config
from tests.test_governor import NEVER_QUIET, res, rows_of

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike


def room(text: str, room_id: str = "g1") -> OutgoingMessage:
    return OutgoingMessage(text, room_id=room_id)


def dm(text: str, user_id: str = "u1") -> OutgoingMessage:
    return OutgoingMessage(text, user_id=user_id)


def at(minutes: float) -> datetime:
    return START + timedelta(minutes=minutes)


# -- minimum gap ----------------------------------------------------------------------------------------------------

async def test_second_proactive_message_in_a_room_waits_for_the_gap(db_url):
    async with Harness(make_config(room_min_gap_s=5400.0, quiet_hours=NEVER_QUIET), db_url) as h:
        g = h.app.governor
        f1 = g.submit(room("早安"), priority=Priority.SCHEDULED)
        f2 = g.submit(room("贴士"), priority=Priority.SCHEDULED)
        f3 = g.submit(room("别的群", "g2"), priority=Priority.SCHEDULED)
        g.submit(room("回复"))  # replies are never held
        await h.settle()
        assert [(s.text, s.at) for s in h.sent] == [("回复", START), ("早安", START + timedelta(seconds=1)),
                                                     ("别的群", START + timedelta(seconds=2))]
        await h.clock.advance_to(at(200))
        assert res(f1).sent and res(f3).sent
        assert res(f2).at == START + timedelta(seconds=1, minutes=90)  # 90 min after the first, not before
        assert g.held == {"gap": 1}


async def test_transactional_is_not_held_but_counts_as_the_last_proactive_message(db_url):
    async with Harness(make_config(room_min_gap_s=5400.0, quiet_hours=NEVER_QUIET), db_url) as h:
        g = h.app.governor
        g.submit(room("还有1小时截单"), priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
        await h.settle()
        g.submit(room("截单提醒2"), priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
        light = g.submit(room("贴士"), priority=Priority.SCHEDULED)
        await h.settle()
        assert h.transport.texts() == ["还有1小时截单", "截单提醒2"]
        await h.clock.advance_to(at(120))
        assert res(light).at == START + timedelta(seconds=1, minutes=90)


async def test_the_gap_survives_a_restart(db_url):
    cfg = make_config(room_min_gap_s=5400.0, quiet_hours=NEVER_QUIET)
    async with Harness(cfg, db_url) as h:
        h.app.governor.submit(room("早安"), priority=Priority.SCHEDULED)
        await h.settle()
    async with Harness(cfg, db_url, start=at(30)) as h:
        f = h.app.governor.submit(room("贴士"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(at(100))
        assert res(f).at == at(90)


async def test_a_held_message_still_obeys_quiet_hours_and_staleness(db_url):
    evening = datetime(2026, 11, 23, 21, 0, tzinfo=TZ)
    async with Harness(make_config(room_min_gap_s=5400.0), db_url, start=evening) as h:
        g = h.app.governor
        g.submit(room("晚安"), priority=Priority.SCHEDULED)
        promo = g.submit(room("秒杀"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        light = g.submit(room("明日预告"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(datetime(2026, 11, 24, 9, 0, tzinfo=TZ))
        assert res(promo).reason == "stale"  # held to 22:30: past a promotion's max_delay_s (1 h)
        assert res(light).at == datetime(2026, 11, 24, 8, 0, tzinfo=TZ)  # light defers to the morning
        assert all(not 22 <= s.at.astimezone(TZ).hour or s.at.astimezone(TZ).hour < 8 for s in h.sent)


# -- lively rooms ---------------------------------------------------------------------------------------------------

async def test_a_scheduled_message_waits_while_the_room_is_lively(db_url):
    cfg = make_config(lively_messages=4, lively_window_s=300.0, lively_max_defer_s=1800.0, quiet_hours=NEVER_QUIET)
    async with Harness(cfg, db_url) as h:
        for i in range(4):
            await h.say(f"u{i}", "哈哈哈", after_s=10)
        f = h.app.governor.submit(room("今日贴士"), priority=Priority.SCHEDULED)
        await h.settle()
        assert h.transport.texts() == []
        await h.clock.advance_to(at(10))
        # quiet again when the oldest of the last 4 messages is 5 min old: 09:00:10 + 300 s
        assert res(f).at == START + timedelta(seconds=310)
        assert h.app.governor.held == {"lively": 1}


async def test_lively_hold_is_limited_and_replies_are_never_held(db_url):
    cfg = make_config(lively_messages=3, lively_window_s=300.0, lively_max_defer_s=600.0, quiet_hours=NEVER_QUIET)
    async with Harness(cfg, db_url) as h:
        await h.say("u1", "聊天")
        await h.say("u2", "聊天")
        await h.say("u3", "聊天")
        f = h.app.governor.submit(room("今日贴士"), priority=Priority.SCHEDULED)
        await h.say("u1", "/ping")  # a command in the lively room gets its answer at once
        assert h.transport.texts() == ["@u1\u2005在的～"]
        for minute in range(1, 16):  # the chat goes on without a break
            await h.clock.advance_to(at(minute))
            await h.say("u2", "继续聊")
        assert res(f).sent and res(f).at == START + timedelta(seconds=600)  # the limit, not the end of the chat


async def test_the_bots_own_messages_do_not_make_a_room_lively(db_url):
    cfg = make_config(lively_messages=2, quiet_hours=NEVER_QUIET)
    async with Harness(cfg, db_url) as h:
        await h.say("bot", "我自己说的")
        await h.say("bot", "我自己说的")
        f = h.app.governor.submit(room("贴士"), priority=Priority.SCHEDULED)
        await h.settle()
        assert res(f).at == START


# -- opt-out --------------------------------------------------------------------------------------------------------

async def test_td_stops_light_and_promotional_dms_until_subscribe(db_url):
    async with Harness(make_config(quiet_hours=NEVER_QUIET, member_daily_caps={}), db_url) as h:
        g = h.app.governor
        await h.say("u1", "TD", room=None)
        assert "已为你退订" in h.transport.texts()[-1]
        light = g.submit(dm("活动通知"), priority=Priority.SCHEDULED)
        promo = g.submit(dm("新品推荐"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        order = g.submit(dm("你的订单已发货"), priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
        other = g.submit(dm("活动通知", "u2"), priority=Priority.SCHEDULED)
        await h.settle()
        assert res(light).reason == "opted_out" and res(promo).reason == "opted_out"
        assert res(order).sent and res(other).sent
        dropped = await rows_of(h, "send_dropped")
        assert [(r.member_id, r.detail["reason"]) for r in dropped] == [("u1", "opted_out"), ("u1", "opted_out")]
        await h.say("u1", "/订阅", room=None)
        await h.settle()
        assert "已恢复订阅" in h.transport.texts()[-1]
        again = g.submit(dm("活动通知"), priority=Priority.SCHEDULED)
        await h.settle()
        assert res(again).sent


async def test_opt_out_is_persisted_and_said_politely_twice(db_url):
    cfg = make_config(quiet_hours=NEVER_QUIET)
    async with Harness(cfg, db_url) as h:
        await h.say("u1", "/退订", room=None)
        await h.say("u1", "退订", room=None)
        await h.settle()
        assert "已经退订过了" in h.transport.texts()[-1]
        opt = await rows_of(h, "opt_out")
        assert [(r.member_id, r.detail["changed"]) for r in opt] == [("u1", True), ("u1", False)]
    async with Harness(cfg, db_url, start=at(60)) as h:  # a restart keeps it
        f = h.app.governor.submit(dm("活动通知"), priority=Priority.SCHEDULED)
        await h.settle()
        assert res(f).reason == "opted_out"


async def test_opt_out_applies_to_messages_already_queued(db_url):
    evening = datetime(2026, 11, 23, 23, 0, tzinfo=TZ)
    async with Harness(make_config(), db_url, start=evening) as h:
        f = h.app.governor.submit(dm("明早的活动通知"), priority=Priority.SCHEDULED)  # deferred to 08:00
        await h.say("u1", "td", room=None)
        await h.clock.advance_to(datetime(2026, 11, 24, 9, 0, tzinfo=TZ))
        assert res(f).reason == "opted_out"


async def test_group_messages_are_not_affected_by_a_members_opt_out(db_url):
    async with Harness(make_config(quiet_hours=NEVER_QUIET), db_url) as h:
        await h.say("u1", "TD", room="g1")
        f = h.app.governor.submit(room("群贴士"), priority=Priority.SCHEDULED)
        await h.settle()
        assert res(f).sent
