"""The send governor on a virtual clock: pacing, priorities, quiet hours, caps, coalescing, back-off, retries.

Most tests run the governor alone with its stores in memory (GovernorRig, tests/support/governor_memory.py: no
database, milliseconds each); the ones about what reaches the database, and what happens when it fails, run the
real app (Harness) over a real SQLite file. Either way only the transport edge records or raises.
Expected instants are computed from the settings (jitter_s=0 unless the test is about jitter).
"""

from __future__ import annotations

import asyncio
from datetime import datetime, time, timedelta

from sqlalchemy import select, text

from bot.config import KindPolicy, QuietHours
from bot.events import OutgoingMessage, Priority, ProactiveKind
from bot.governor import SendOutcome, in_quiet_hours
from bot.transports.base import FatalTransportError, RiskControlError, UncertainDeliveryError
from storage.models import Activity, ProactiveCount
from tests.support.governor_memory import GovernorRig
from tests.support import START, TZ, Harness, make_config

NEVER_QUIET = QuietHours(start=time(0, 0), end=time(0, 0))


def room(text_: str, room_id: str = "g1", **kw) -> OutgoingMessage:
    return OutgoingMessage(text_, room_id=room_id, **kw)


def dm(text_: str, user_id: str = "u1") -> OutgoingMessage:
    return OutgoingMessage(text_, user_id=user_id)


def s(seconds: float, base: datetime = START) -> datetime:
    return base + timedelta(seconds=seconds)


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=TZ)


def times(h: Harness | GovernorRig) -> list[datetime]:
    return [x.at for x in h.sent]


async def rows_of(h: Harness, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as session:
        result = await session.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))
        return list(result.scalars().all())


def res(future: asyncio.Future) -> SendOutcome:
    """The outcome of a future that must be resolved by now (never waits: a hang would hide the failure)."""
    assert future.done(), "the governor left this message unresolved"
    return future.result()


async def drain(h: Harness | GovernorRig) -> None:
    """Run the clock until the governor has nothing left that could go without a quiet-hours wait."""
    await h.settle()


# -- pacing -------------------------------------------------------------------------------------------------------


async def test_min_interval_same_chat():
    async with GovernorRig(make_config(min_interval_s=2.0, per_chat_interval_s=0.5)) as h:
        for i in range(4):
            h.governor.submit(room(f"m{i}"))
        await drain(h)
        assert h.transport.texts() == ["m0", "m1", "m2", "m3"]
        assert times(h) == [s(0), s(2), s(4), s(6)]


async def test_chat_switch_and_per_chat_intervals():
    gov = dict(min_interval_s=2.0, chat_switch_interval_s=5.0, per_chat_interval_s=3.0)
    async with GovernorRig(make_config(**gov)) as h:
        g = h.governor
        g.submit(room("a", "g1"))
        g.submit(room("b", "g1"))  # same chat: max(min 2, per-chat 3) = 3
        g.submit(room("c", "g2"))  # switch: 5
        g.submit(room("d", "g1"))  # switch again: 5 (per-chat since b is 10 s, already satisfied)
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("a", s(0)), ("b", s(3)), ("c", s(8)), ("d", s(13))]


async def test_per_chat_interval_holds_across_a_switch():
    gov = dict(min_interval_s=1.0, chat_switch_interval_s=2.0, per_chat_interval_s=10.0)
    async with GovernorRig(make_config(**gov)) as h:
        g = h.governor
        g.submit(room("a", "g1"))
        g.submit(room("b", "g2"))
        g.submit(room("c", "g1"))  # switch would allow +4, but g1 had a send at 0: per-chat 10 wins
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("a", s(0)), ("b", s(2)), ("c", s(10))]


async def test_max_per_minute_is_a_sliding_window():
    async with GovernorRig(make_config(max_per_minute=3, min_interval_s=1.0)) as h:
        for i in range(7):
            h.governor.submit(room(f"m{i}"))
        await drain(h)
        # 3 in the first minute; each later send waits until the send 3 back is 60 s old
        assert times(h) == [s(0), s(1), s(2), s(60), s(61), s(62), s(120)]
        for i in range(3, len(h.sent)):
            assert h.sent[i].at - h.sent[i - 3].at >= timedelta(seconds=60)


async def test_sends_spaced_from_previous_send_not_from_submit():
    async with GovernorRig(make_config(min_interval_s=5.0, per_chat_interval_s=1.0)) as h:
        h.governor.submit(room("a"))
        await drain(h)
        await h.clock.advance(3)
        h.governor.submit(room("b"))
        await drain(h)
        await h.clock.advance(60)
        h.governor.submit(room("c"))  # long after: goes at once
        await drain(h)
        assert times(h) == [s(0), s(5), s(65)]


# -- jitter -------------------------------------------------------------------------------------------------------


async def _jittered_gaps(seed: int, n: int = 300) -> list[float]:
    gov = dict(min_interval_s=1.0, chat_switch_interval_s=1.0, per_chat_interval_s=0.0, jitter_s=0.5)
    async with GovernorRig(make_config(**gov), seed=seed) as h:
        for i in range(n):
            h.governor.submit(room(f"m{i}"))
        await drain(h)
        assert len(h.sent) == n
        t = times(h)
        return [(b - a).total_seconds() for a, b in zip(t, t[1:])]


async def test_jitter_gaps_within_bounds_and_span_the_range():
    gaps = await _jittered_gaps(seed=7)
    assert all(1.0 - 1e-6 <= g <= 1.5 + 1e-6 for g in gaps), (min(gaps), max(gaps))
    assert min(gaps) < 1.02 and max(gaps) > 1.48  # both ends approached
    assert len({round(g, 3) for g in gaps}) > 50  # really random, not one constant


async def test_jitter_is_deterministic_for_a_seed():
    a = await _jittered_gaps(seed=3, n=40)
    b = await _jittered_gaps(seed=3, n=40)
    c = await _jittered_gaps(seed=4, n=40)
    assert a == b
    assert a != c


async def test_jitter_applies_to_chat_switch():
    gov = dict(min_interval_s=1.0, chat_switch_interval_s=10.0, per_chat_interval_s=0.0, jitter_s=2.0)
    async with GovernorRig(make_config(**gov), seed=11) as h:
        for i in range(60):
            h.governor.submit(room(f"m{i}", "g1" if i % 2 == 0 else "g2"))
        await drain(h)
        t = times(h)
        gaps = [(b - a).total_seconds() for a, b in zip(t, t[1:])]
        assert all(10.0 - 1e-6 <= g <= 12.0 + 1e-6 for g in gaps)
        assert len(set(gaps)) > 10


# -- order --------------------------------------------------------------------------------------------------------


async def test_priority_order_when_queued_together():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        f_sched = g.submit(room("scheduled"), priority=Priority.SCHEDULED)
        f_trans = g.submit(room("transactional"), priority=Priority.TRANSACTIONAL)
        f_reply = g.submit(room("reply"), priority=Priority.REPLY)
        await drain(h)
        assert h.transport.texts() == ["reply", "transactional", "scheduled"]
        assert [(res(f)).at for f in (f_reply, f_trans, f_sched)] == [s(0), s(1), s(2)]


async def test_reply_overtakes_a_waiting_scheduled_backlog():
    async with GovernorRig(make_config(min_interval_s=10.0, room_daily_caps={})) as h:
        g = h.governor
        for i in range(3):
            g.submit(room(f"s{i}"), priority=Priority.SCHEDULED)
        await h.clock.advance(5)  # s0 went at 0; s1 waits for 10
        g.submit(room("reply"))
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("s0", s(0)), ("reply", s(10)), ("s1", s(20)), ("s2", s(30))]


async def test_fifo_within_priority_never_skips_to_a_cheaper_chat():
    gov = dict(min_interval_s=1.0, chat_switch_interval_s=5.0, per_chat_interval_s=1.0)
    async with GovernorRig(make_config(**gov)) as h:
        g = h.governor
        order = [("a", "g1"), ("b", "g2"), ("c", "g1"), ("d", "g1"), ("e", "g2")]
        for t, r in order:
            g.submit(room(t, r))
        await drain(h)
        assert h.transport.texts() == ["a", "b", "c", "d", "e"]
        assert times(h) == [s(0), s(5), s(10), s(11), s(16)]


async def test_per_chat_order_kept_within_each_priority():
    async with GovernorRig(make_config(room_daily_caps={})) as h:
        g = h.governor
        for i in range(4):
            g.submit(room(f"s{i}", "g1"), priority=Priority.SCHEDULED)
            g.submit(room(f"r{i}", "g1"))
        await drain(h)
        texts = h.transport.texts()
        assert texts == ["r0", "r1", "r2", "r3", "s0", "s1", "s2", "s3"]


# -- quiet hours --------------------------------------------------------------------------------------------------


def test_in_quiet_hours_windows():
    assert in_quiet_hours(time(23, 0), time(22, 0), time(8, 0))
    assert in_quiet_hours(time(3, 0), time(22, 0), time(8, 0))
    assert in_quiet_hours(time(22, 0), time(22, 0), time(8, 0))
    assert not in_quiet_hours(time(8, 0), time(22, 0), time(8, 0))
    assert not in_quiet_hours(time(12, 0), time(22, 0), time(8, 0))
    assert in_quiet_hours(time(13, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(14, 0), time(12, 0), time(14, 0))
    assert not in_quiet_hours(time(3, 0), time(0, 0), time(0, 0))


async def test_light_message_at_23_goes_at_8_next_morning():
    cfg = make_config(light=KindPolicy(quiet_hours="defer", max_delay_s=12 * 3600))
    async with GovernorRig(cfg, start=local(23, 23)) as h:
        f = h.governor.submit(room("早安"), priority=Priority.SCHEDULED, kind=ProactiveKind.LIGHT)
        await h.clock.advance_to(local(24, 7, 59, 59))
        assert h.sent == [] and not f.done()
        await h.clock.advance_to(local(24, 8))
        assert [(x.text, x.at) for x in h.sent] == [("早安", local(24, 8))]
        assert res(f) == SendOutcome(True, local(24, 8).astimezone(f.result().at.tzinfo), platform_id="m1")


async def test_light_message_in_early_morning_with_default_policy_is_deferred():
    # default light max_delay is 6 h: 03:00 → 08:00 is 5 h, so it waits
    async with GovernorRig(make_config(), start=local(24, 3)) as h:
        f = h.governor.submit(room("tip"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(local(24, 12))
        assert times(h) == [local(24, 8)]
        assert (res(f)).sent


async def test_transactional_deferred_to_end_of_quiet_hours():
    async with GovernorRig(make_config(), start=local(23, 22, 30)) as h:
        f = h.governor.submit(dm("您的订单已发货"), priority=Priority.TRANSACTIONAL)
        await h.clock.advance_to(local(24, 12))
        assert times(h) == [local(24, 8)]
        assert (res(f)).sent


async def test_promotional_in_quiet_hours_is_dropped():
    async with GovernorRig(make_config(), start=local(23, 23)) as h:
        f = h.governor.submit(room("大促"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        assert f.done()
        outcome = f.result()
        assert outcome == SendOutcome(False, local(23, 23), reason="quiet_hours")
        await h.clock.advance_to(local(24, 12))
        assert h.sent == []
        assert h.governor.dropped == {"quiet_hours": 1}


async def test_reply_in_quiet_hours_goes_at_once():
    async with GovernorRig(make_config(), start=local(23, 23)) as h:
        f = h.governor.submit(room("在的"))
        await h.clock.run_pending()
        assert times(h) == [local(23, 23)]
        assert (res(f)).sent


async def test_deferral_longer_than_max_delay_is_dropped_stale_at_submit():
    cfg = make_config(light=KindPolicy(quiet_hours="defer", max_delay_s=3600))
    async with GovernorRig(cfg, start=local(23, 23)) as h:
        f = h.governor.submit(room("tip"), priority=Priority.SCHEDULED)
        assert (res(f)) == SendOutcome(False, local(23, 23), reason="stale")
        await h.clock.advance_to(local(24, 12))
        assert h.sent == []


async def test_pacing_into_quiet_hours_drops_promotional():
    cfg = make_config(min_interval_s=10.0, per_chat_interval_s=10.0)
    async with GovernorRig(cfg, start=local(23, 21, 59, 55)) as h:
        g = h.governor
        f1 = g.submit(room("p1"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        f2 = g.submit(room("p2", "g2"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        await h.clock.advance_to(local(24, 12))
        assert (res(f1)).sent
        assert (res(f2)) == SendOutcome(False, local(23, 22, 0, 5), reason="quiet_hours")
        assert times(h) == [local(23, 21, 59, 55)]


async def test_pacing_into_quiet_hours_defers_light():
    cfg = make_config(min_interval_s=10.0, per_chat_interval_s=10.0,
                      light=KindPolicy(quiet_hours="defer", max_delay_s=12 * 3600))
    async with GovernorRig(cfg, start=local(23, 21, 59, 55)) as h:
        g = h.governor
        g.submit(room("l1"), priority=Priority.SCHEDULED)
        f2 = g.submit(room("l2"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(local(24, 12))
        assert (res(f2)).sent
        assert [(x.text, x.at) for x in h.sent] == [("l1", local(23, 21, 59, 55)), ("l2", local(24, 8))]


async def test_message_held_past_max_delay_is_dropped_stale_at_delivery():
    cfg = make_config(light=KindPolicy(quiet_hours="defer", max_delay_s=600), backoff_initial_s=1800,
                      reply_max_delay_s=3600)
    async with GovernorRig(cfg) as h:
        h.transport.fail_with.append(RiskControlError("操作过于频繁"))
        g = h.governor
        f_reply = g.submit(room("reply"))
        f_light = g.submit(room("tip", "g2"), priority=Priority.SCHEDULED)
        await drain(h)
        # the reply waits out the 30 min back-off; the light message (10 min max delay) is stale by then
        assert (res(f_reply)).at == s(1800)
        assert (res(f_light)) == SendOutcome(False, s(1801), reason="stale")  # its turn comes 1 s after
        assert h.transport.texts() == ["reply"]


async def test_a_reply_held_back_too_long_is_dropped_not_sent_late():
    cfg = make_config(backoff_initial_s=1800, reply_max_delay_s=600)
    async with GovernorRig(cfg) as h:
        h.transport.fail_with.append(RiskControlError("操作过于频繁"))
        f_reply = h.governor.submit(room("reply"))
        await drain(h)
        assert res(f_reply) == SendOutcome(False, s(1800), reason="stale")
        assert h.transport.texts() == []


# -- daily caps ---------------------------------------------------------------------------------------------------


async def test_room_total_cap_drops_fourth_light_message():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        futures = [g.submit(room(f"t{i}"), priority=Priority.SCHEDULED) for i in range(4)]
        await drain(h)
        outcomes = [res(f) for f in futures]
        assert [o.sent for o in outcomes] == [True, True, True, False]
        assert outcomes[3].reason == "cap:total"
        assert h.transport.texts() == ["t0", "t1", "t2"]
        g.submit(room("other room", "g2"), priority=Priority.SCHEDULED)  # another room has its own count
        g.submit(room("a reply"))  # replies are never capped
        await drain(h)
        assert h.transport.texts()[3:] == ["a reply", "other room"]


async def test_room_cap_is_per_room_and_replies_uncapped():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        for i in range(3):
            g.submit(room(f"g1-{i}", "g1"), priority=Priority.SCHEDULED)
        await drain(h)
        f_other = g.submit(room("g2-0", "g2"), priority=Priority.SCHEDULED)
        f_reply = g.submit(room("reply", "g1"))
        f_over = g.submit(room("g1-3", "g1"), priority=Priority.SCHEDULED)
        await drain(h)
        assert (res(f_other)).sent and (res(f_reply)).sent
        assert (res(f_over)).reason == "cap:total"


async def test_promotional_cap():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        f1 = g.submit(room("promo1"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        f2 = g.submit(room("promo2"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        f3 = g.submit(room("light"), priority=Priority.SCHEDULED, kind=ProactiveKind.LIGHT)
        await drain(h)
        assert (res(f1)).sent
        assert (res(f2)).reason == "cap:promotional"
        assert (res(f3)).sent  # the promotional counted 1 of the 3 total


async def test_cap_resets_on_the_next_local_day():
    # quiet hours off so sends can straddle local midnight (16:00 UTC, same UTC date)
    cfg = make_config(quiet_hours=NEVER_QUIET)
    async with GovernorRig(cfg, start=local(23, 23, 50)) as h:
        g = h.governor
        fs = [g.submit(room(f"d1-{i}"), priority=Priority.SCHEDULED) for i in range(4)]
        await drain(h)
        assert [(res(f)).sent for f in fs] == [True, True, True, False]
        await h.clock.advance_to(local(24, 0, 10))
        assert h.clock.now().date() == local(23, 23, 50).astimezone(h.clock.now().tzinfo).date()  # same UTC day
        fs2 = [g.submit(room(f"d2-{i}"), priority=Priority.SCHEDULED) for i in range(4)]
        await drain(h)
        assert [(res(f)).sent for f in fs2] == [True, True, True, False]
        assert h.transport.texts() == ["d1-0", "d1-1", "d1-2", "d2-0", "d2-1", "d2-2"]


async def test_caps_survive_a_restart(db_url):
    async with Harness(make_config(), db_url) as a:
        for i in range(2):
            a.app.governor.submit(room(f"a{i}"), priority=Priority.SCHEDULED)
        a.app.governor.submit(room("p"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        await a.settle()
        assert len(a.sent) == 3
    async with Harness(make_config(), db_url, start=s(3600)) as b:
        f_light = b.app.governor.submit(room("b0"), priority=Priority.SCHEDULED)
        f_promo = b.app.governor.submit(room("b1", "g2"), priority=Priority.SCHEDULED,
                                        kind=ProactiveKind.PROMOTIONAL)
        await b.settle()
        assert (res(f_light)).reason == "cap:total"
        assert (res(f_promo)).sent  # g2 is another scope
        await b.app.activity.flush()  # the counts are written behind, with the activity store's batches
        async with b.app.services.sessions() as session:
            counts = {(r.day, r.scope, r.kind): r.count
                      for r in (await session.execute(select(ProactiveCount))).scalars()}
        day = "2026-11-23"  # the local day in Asia/Shanghai
        assert counts == {(day, "room:g1", "total"): 3, (day, "room:g1", "light"): 2,
                          (day, "room:g1", "promotional"): 1,
                          (day, "room:g2", "total"): 1, (day, "room:g2", "promotional"): 1}


async def test_counts_written_behind_survive_a_failed_flush(db_url):
    async with Harness(make_config(), db_url) as h:
        g = h.app.governor
        g.submit(room("a"), priority=Priority.SCHEDULED)
        await h.settle()
        await h.app.activity.flush()
        async with h.app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE proactive_counts RENAME TO proactive_counts_gone"))
        # g1's counts are in memory already: its sends don't need the table, only their write does
        g.submit(room("b"), priority=Priority.SCHEDULED)
        g.submit(room("p"), priority=Priority.SCHEDULED, kind=ProactiveKind.PROMOTIONAL)
        await h.settle()
        assert h.transport.texts() == ["a", "b", "p"]
        assert await h.app.activity.flush() == 0  # the batch (rows and counts) failed and is kept
        async with h.app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE proactive_counts_gone RENAME TO proactive_counts"))
        assert await h.app.activity.flush() > 0
        async with h.app.services.sessions() as session:
            counts = {(r.scope, r.kind): r.count for r in (await session.execute(select(ProactiveCount))).scalars()}
        assert counts == {("room:g1", "total"): 3, ("room:g1", "light"): 2, ("room:g1", "promotional"): 1}


async def test_member_dm_cap():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        f1 = g.submit(dm("hi", "u1"), priority=Priority.SCHEDULED)
        f2 = g.submit(dm("again", "u1"), priority=Priority.SCHEDULED)
        f3 = g.submit(dm("hi", "u2"), priority=Priority.SCHEDULED)
        f4 = g.submit(room("room", "g1"), priority=Priority.SCHEDULED)
        await drain(h)
        assert (res(f1)).sent
        assert (res(f2)) .reason == "cap:total"
        assert (res(f3)).sent and (res(f4)).sent


async def test_transactional_is_not_capped_and_not_counted(db_url):
    async with Harness(make_config(), db_url) as h:
        g = h.app.governor
        ft = [g.submit(room(f"order{i}"), priority=Priority.TRANSACTIONAL) for i in range(5)]
        ft += [g.submit(dm(f"order-dm{i}"), priority=Priority.TRANSACTIONAL) for i in range(3)]
        await drain(h)
        assert all((res(f)).sent for f in ft)
        fl = [g.submit(room(f"light{i}"), priority=Priority.SCHEDULED) for i in range(3)]
        await drain(h)
        assert all((res(f)).sent for f in fl)
        await h.app.activity.flush()  # the counts are written behind, with the activity store's batches
        async with h.app.services.sessions() as session:
            kinds = {(r.scope, r.kind) for r in (await session.execute(select(ProactiveCount))).scalars()}
        assert kinds == {("room:g1", "total"), ("room:g1", "light")}


# -- coalescing ---------------------------------------------------------------------------------------------------


async def test_coalesce_many_items_into_one_message_at_window_end():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        rendered: list[list] = []

        def render(items: list) -> OutgoingMessage:
            rendered.append(list(items))
            return room("欢迎 " + "、".join(items))

        for i, name in enumerate(["甲", "乙", "丙", "丁"]):
            await h.clock.advance_to(s(5 * i))
            g.coalesce("welcome:g1", name, render, window_s=30)
        assert g.busy and h.sent == []
        await h.clock.advance_to(s(29.999))
        assert h.sent == []
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("欢迎 甲、乙、丙、丁", s(30))]
        assert rendered == [["甲", "乙", "丙", "丁"]]
        # a new item after the window starts a new bucket
        await h.clock.advance_to(s(40))
        g.coalesce("welcome:g1", "戊", render, window_s=30)
        await drain(h)
        assert [(x.text, x.at) for x in h.sent][1:] == [("欢迎 戊", s(70))]


async def test_coalesce_keys_are_separate_and_render_none_sends_nothing():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        g.coalesce("a", 1, lambda items: room(f"a{sum(items)}"), window_s=10)
        g.coalesce("b", 2, lambda items: None, window_s=10)
        g.coalesce("a", 2, lambda items: room("never used"), window_s=10)  # the first render wins
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("a3", s(10))]
        assert not g.busy and g.pending == 0


async def test_coalesced_message_obeys_kind_caps():
    async with GovernorRig(make_config()) as h:
        g = h.governor
        for i in range(5):
            g.coalesce(f"k{i}", i, lambda items: room(f"c{items[0]}"), window_s=1, priority=Priority.SCHEDULED,
                       kind=ProactiveKind.LIGHT)
        await drain(h)
        assert h.transport.texts() == ["c0", "c1", "c2"]
        assert g.dropped == {"cap:total": 2}


# -- back-off on risk control -------------------------------------------------------------------------------------


async def test_risk_control_pauses_all_sends_then_retries_same_message():
    async with GovernorRig(make_config(backoff_initial_s=60.0)) as h:
        h.transport.fail_with.append(RiskControlError("操作过于频繁"))
        g = h.governor
        f1 = g.submit(room("first", "g1"))
        f2 = g.submit(room("second", "g2"))
        await h.clock.advance_to(s(59.999))
        assert h.sent == []
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("first", s(60)), ("second", s(61))]
        assert (res(f1)).sent and (res(f2)).sent


async def test_backoff_doubles_up_to_max_and_resets_after_success():
    cfg = make_config(backoff_initial_s=60.0, backoff_max_s=200.0)
    async with GovernorRig(cfg) as h:
        attempts: list[datetime] = []
        real_send = h.transport.send

        async def counting_send(message):
            attempts.append(h.clock.now())
            return await real_send(message)

        h.governor._send = counting_send  # the transport edge
        h.transport.fail_with.extend(RiskControlError("风控") for _ in range(4))
        f = h.governor.submit(room("x"))
        await drain(h)
        # waits: 60, 120, 200 (capped from 240), 200 (capped from 480)
        assert attempts == [s(0), s(60), s(180), s(380), s(580)]
        assert (res(f)).at == s(580)
        # after a success the next risk-control error starts from the initial back-off again
        await h.clock.advance_to(s(1000))
        h.transport.fail_with.append(RiskControlError("风控"))
        f2 = h.governor.submit(room("y"))
        await drain(h)
        assert (res(f2)).at == s(1060)
        failed = h.activity.rows("send_failed")
        assert [r.detail["backoff_s"] for r in failed] == [60, 120, 200, 200, 60]
        assert all(r.detail["reason"] == "risk_control" for r in failed)


# -- ordinary transport errors ------------------------------------------------------------------------------------


async def test_transport_error_retried_then_sent():
    async with GovernorRig(make_config(retry_attempts=3)) as h:
        h.transport.fail_with.extend([ConnectionError("reset"), ConnectionError("reset")])
        f = h.governor.submit(room("x"))
        await h.clock.advance_to(s(600))  # retry waits are deferred: settle() does not wait for them
        # retry waits 2 s then 4 s
        assert (res(f)) == SendOutcome(True, s(6), platform_id="m1")
        assert [r.detail["attempt"] for r in h.activity.rows("send_failed")] == [1, 2]


async def test_transport_error_dropped_after_retry_attempts():
    async with GovernorRig(make_config(retry_attempts=3)) as h:
        attempts: list[datetime] = []
        real_send = h.transport.send

        async def counting_send(message):
            attempts.append(h.clock.now())
            return await real_send(message)

        h.governor._send = counting_send
        h.transport.fail_with.extend(ConnectionError("down") for _ in range(10))
        f = h.governor.submit(room("x"))
        await h.clock.advance_to(s(600))  # retry waits are deferred: settle() does not wait for them
        assert attempts == [s(0), s(2), s(6), s(14)]  # the first try and 3 retries
        assert (res(f)) == SendOutcome(False, s(14), reason="transport_error")
        assert h.governor.dropped == {"transport_error": 1}
        dropped = h.activity.rows("send_dropped")
        assert [(r.room_id, r.detail["reason"]) for r in dropped] == [("g1", "transport_error")]


async def test_transport_error_does_not_block_other_messages():
    async with GovernorRig(make_config(retry_attempts=3)) as h:
        h.transport.fail_with.append(ConnectionError("once"))
        g = h.governor
        f1 = g.submit(room("a", "g1"))
        f2 = g.submit(room("b", "g2"))
        await h.clock.advance_to(s(600))  # retry waits are deferred: settle() does not wait for them
        assert (res(f2)).at == s(0)  # a waits 2 s aside; b goes in its place
        assert (res(f1)).at == s(2)


# -- warm-up ------------------------------------------------------------------------------------------------------


async def test_warmup_multiplies_intervals_after_login():
    gov = dict(min_interval_s=1.0, chat_switch_interval_s=3.0, per_chat_interval_s=1.0,
               warmup_s=600.0, warmup_factor=2.0)
    async with GovernorRig(make_config(**gov)) as h:
        h.governor.on_login()
        g = h.governor
        g.submit(room("a", "g1"))
        g.submit(room("b", "g1"))  # 1 × 2
        g.submit(room("c", "g2"))  # 3 × 2
        await drain(h)
        assert times(h) == [s(0), s(2), s(8)]
        await h.clock.advance_to(s(600))  # warm-up over
        g.submit(room("d", "g2"))
        g.submit(room("e", "g2"))
        g.submit(room("f", "g1"))
        await drain(h)
        assert times(h)[3:] == [s(600), s(601), s(604)]


async def test_no_warmup_without_login():
    gov = dict(min_interval_s=1.0, per_chat_interval_s=1.0, warmup_s=600.0, warmup_factor=5.0)
    async with GovernorRig(make_config(**gov)) as h:
        h.governor.submit(room("a"))
        h.governor.submit(room("b"))
        await drain(h)
        assert times(h) == [s(0), s(1)]


# -- outcomes and the activity store ------------------------------------------------------------------------------


async def test_outcome_future_for_sent_message():
    async with GovernorRig(make_config()) as h:
        f = h.governor.submit(room("hello", mentions=("u1",)), skill="greeter")
        assert not f.done()
        await drain(h)
        outcome = res(f)
        assert outcome == SendOutcome(True, s(0), platform_id="m1")
        assert h.governor.sent_count == 1


async def test_everything_sent_and_dropped_is_in_the_activity_store(db_url):
    async with Harness(make_config(), db_url) as h:
        g = h.app.governor
        g.submit(room("hi", mentions=("u1",)), skill="greeter")
        g.submit(dm("order", "u9"), priority=Priority.TRANSACTIONAL, skill="orders")
        for i in range(4):
            g.submit(room(f"tip{i}", "g2"), priority=Priority.SCHEDULED, skill="tips")
        await drain(h)
        sent = await rows_of(h, "sent")
        dropped = await rows_of(h, "send_dropped")
        assert [(r.room_id, r.member_id, r.skill, r.detail["text"]) for r in sent] == [
            ("g1", None, "greeter", "hi"),
            (None, "u9", "orders", "order"),
            ("g2", None, "tips", "tip0"), ("g2", None, "tips", "tip1"), ("g2", None, "tips", "tip2"),
        ]
        assert sent[0].detail == {"text": "hi", "priority": "reply", "mentions": ["u1"]}
        assert sent[1].detail == {"text": "order", "priority": "transactional", "proactive": "transactional"}
        assert sent[2].detail == {"text": "tip0", "priority": "scheduled", "proactive": "light"}
        assert [r.at for r in sent] == [x.at for x in h.sent]
        assert [(r.room_id, r.skill, r.detail) for r in dropped] == [
            ("g2", "tips", {"reason": "cap:total", "text": "tip3", "kind": "light"})
        ]


async def test_caps_database_failure_does_not_lose_the_message_or_stall_the_queue(db_url):
    async with Harness(make_config(), db_url) as h:
        async with h.app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE proactive_counts RENAME TO proactive_counts_gone"))
        g = h.app.governor
        f1 = g.submit(room("light1"), priority=Priority.SCHEDULED)
        f2 = g.submit(room("light2", "g2"), priority=Priority.SCHEDULED)
        await h.clock.run_pending()
        async with h.app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE proactive_counts_gone RENAME TO proactive_counts"))
        await h.clock.advance(600)
        # neither message is left hanging, and the queue kept moving once the database was back
        assert f1.done() and f2.done()
        assert (f1.result().sent, f2.result().sent) == (True, True)
        assert sorted(h.transport.texts()) == ["light1", "light2"]
        failed = await rows_of(h, "send_failed")
        assert [(r.detail["reason"], r.detail["attempt"]) for r in failed] == [("caps", 1), ("caps", 1)]


async def test_caps_database_down_for_good_drops_with_cap_error(db_url):
    async with Harness(make_config(retry_attempts=2), db_url) as h:
        async with h.app.engine.begin() as conn:
            await conn.execute(text("ALTER TABLE proactive_counts RENAME TO proactive_counts_gone"))
        f = h.app.governor.submit(room("light"), priority=Priority.SCHEDULED)
        f_reply = h.app.governor.submit(room("reply", "g2"))
        await h.clock.advance_to(s(600))
        assert res(f_reply).sent  # replies don't need the cap store
        assert res(f) == SendOutcome(False, s(7), reason="cap_error")  # tries at 1 (after the reply), 3, 7
        assert h.transport.texts() == ["reply"]


async def test_settle_waits_for_retries_but_not_for_quiet_hours(db_url):
    async with Harness(make_config(), db_url) as h:
        h.transport.fail_with.append(ConnectionError("gateway restarting"))
        f = h.app.governor.submit(room("retry me"))
        await h.settle()  # the replay's end: a retry is work still to do, so the clock runs on to it
        assert res(f).sent and res(f).at == s(2)
    async with Harness(make_config(), db_url, start=local(23, 23)) as h:
        f = h.app.governor.submit(room("tip"), priority=Priority.SCHEDULED)
        await h.settle()  # deferred to 08:00 by quiet hours: not waited for
        assert not f.done() and h.app.governor.pending == 1


# -- the transport disconnected ---------------------------------------------------------------------------------


async def test_held_while_disconnected_then_each_sent_once_after_login():
    async with GovernorRig(make_config(min_interval_s=1.0, per_chat_interval_s=1.0)) as h:
        g = h.governor
        h.transport.offline = True
        first, second = g.submit(room("a")), g.submit(room("b"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(s(300))  # five minutes down: the probes every 30 s find it still down
        assert h.transport.texts() == [] and g.offline and g.pending == 2
        assert not first.done() and not second.done()  # held, no retries spent, nothing dropped
        h.transport.offline = False
        await h.clock.advance_to(s(310))
        g.on_login()  # the transport logged in again
        await drain(h)
        assert [(x.text, x.at) for x in h.sent] == [("a", s(310)), ("b", s(311))]
        assert res(first).sent and res(second).sent and not g.offline
        assert [r for r in h.activity.rows("send_failed")] == []


async def test_a_reply_held_past_its_useful_life_is_dropped_not_sent_late():
    async with GovernorRig(make_config(reply_max_delay_s=600.0)) as h:
        g = h.governor
        h.transport.offline = True
        reply = g.submit(room("在的～"))
        later = g.submit(room("light tip"), priority=Priority.SCHEDULED)
        await h.clock.advance_to(s(900))
        h.transport.offline = False
        g.on_login()
        await drain(h)
        assert h.transport.texts() == ["light tip"]
        assert (res(reply).sent, res(reply).reason) == (False, "stale") and res(later).sent


async def test_probe_finds_the_transport_back_even_without_a_login_report():
    async with GovernorRig(make_config()) as h:
        h.transport.offline = True
        future = h.governor.submit(room("a"))
        await h.clock.advance_to(s(40))
        h.transport.offline = False
        await h.clock.advance_to(s(100))
        assert res(future).sent and h.sent[0].at == s(60)  # the probe 30 s after the failed one at 30 s


async def test_refused_credentials_hold_everything_without_retries_until_login():
    async with GovernorRig(make_config(retry_attempts=3, reply_max_delay_s=7200)) as h:
        h.transport.fail_with = [FatalTransportError("HTTP 401 on POST /send")]
        first = h.governor.submit(room("a"))
        h.governor.submit(room("b", room_id="g2"))
        await h.clock.advance_to(s(3600))
        assert h.transport.texts() == [] and not first.done()
        assert h.governor.halted and not h.governor.busy  # nothing to run the clock on for
        assert h.clock.next_due() is None  # no probe, no retry timer: no storm
        h.governor.on_login()
        await h.clock.advance_to(s(3610))
        assert h.transport.texts() == ["a", "b"] and res(first).sent


async def test_uncertain_delivery_is_never_retried():
    async with GovernorRig(make_config(retry_attempts=3)) as h:
        h.transport.fail_with = [UncertainDeliveryError("send timed out after 30s")]
        future = h.governor.submit(room("a"))
        h.governor.submit(room("b"))
        await h.clock.advance_to(s(600))
        assert h.transport.texts() == ["b"]  # "a" may have arrived: sending it again could make it twice
        assert (res(future).sent, res(future).reason) == (False, "uncertain")
        (failed,) = h.activity.rows("send_failed")
        assert failed.detail["reason"] == "uncertain"
