"""Member tiers on the real bot: the pass over seeded activity, history, targeting, and the admin commands."""

from __future__ import annotations

import csv
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import ConfigError
from skills.tiers import run_pass, settings_of
from skills.tiers.models import MemberTier, TierChange, TierDaily, TierOrder, TierRun
from skills.tiers.store import members_in_tier, quartile_scores, recompute
from tests.support import Harness
from tests.support.tiers_support import TODAY_NOON, Seeder, ago, seed_population, tiers_config

pytestmark = pytest.mark.all_backends  # the tiers' SQL runs on SQLite and PostgreSQL alike



@pytest.fixture
async def h(harness, tmp_path):
    h = await harness(tiers_config(export_dir=str(tmp_path / "exports")), start=TODAY_NOON)
    await h.clock.run_pending()  # the first-start pass (empty database)
    await seed_population(h.app.services)
    return h


async def tiers(h: Harness) -> dict[str, MemberTier]:
    async with h.app.services.sessions() as s:
        return {t.member_id: t for t in (await s.execute(select(MemberTier))).scalars()}


async def test_every_member_gets_the_tier_the_rules_say(h):
    result = await run_pass(h.app.services)
    got = {m: t.tier for m, t in (await tiers(h)).items()}
    assert got == {"newbie": "new", "act": "active", "core1": "core", "rich": "core", "casual": "casual",
                   "quiet": "silent", "gone": "lost", "never": "lost", "refund": "active"}
    assert result.members == 9 and result.counts["core"] == 2
    t = (await tiers(h))
    assert (t["core1"].orders_window, t["core1"].amount_window) == (2, 200.5)
    assert (t["refund"].orders_window, t["refund"].amount_window) == (1, 50.0)  # cancelled and unpaid left out
    assert t["act"].active_days_7 == 4 and t["act"].checkins_window == 1 and t["act"].last_active_day == "2026-11-23"


async def test_rfm_scores_follow_the_quartiles(h):
    await run_pass(h.app.services)
    t = await tiers(h)
    assert t["core1"].m == 4 and t["refund"].m >= 3 and t["act"].m == 1  # spent most, next, nothing
    assert t["act"].r == 4 and t["gone"].r <= 2 and t["never"].r == 1
    assert t["refund"].f == 4 and t["never"].f == 1  # 6 active days (orders count), none
    assert quartile_scores([0, 0, 0, 0]) == [1, 1, 1, 1]
    assert quartile_scores([1, 2, 3, 4, 5, 6, 7, 8]) == [1, 1, 2, 2, 3, 3, 4, 4]


async def test_orders_are_projected_from_the_activity_contract(h):
    await run_pass(h.app.services)
    async with h.app.services.sessions() as s:
        orders = {o.order_id: o for o in (await s.execute(select(TierOrder))).scalars()}
    assert orders["o1"].status == "completed" and orders["o1"].placed_at == ago(20) + timedelta(minutes=1)
    assert orders["o3"].status == "cancelled" and orders["o5"].placed_at is None
    await run_pass(h.app.services)  # the same days rolled again: same projection
    async with h.app.services.sessions() as s:
        again = {o.order_id: (o.status, o.amount, o.placed_at) for o in (await s.execute(select(TierOrder))).scalars()}
    assert again == {k: (o.status, o.amount, o.placed_at) for k, o in orders.items()}


async def test_changes_are_recorded_with_their_time_and_the_nightly_job_runs(h):
    await run_pass(h.app.services)
    first_at = h.clock.now()
    async with h.app.services.sessions() as s:  # written late (a flush after an outage): days already rolled up
        sd = Seeder(s)
        sd.say("act", 2, 6)
        sd.say("never", 3)
        await sd.commit()
    # 25 quiet days later the nightly job (03:30) has run: the active members have gone quiet
    await h.clock.advance(25 * 86400)
    got = {m: t.tier for m, t in (await tiers(h)).items()}
    assert got["act"] == "silent" and got["newbie"] == "silent" and got["quiet"] == "lost" and got["never"] == "silent"
    async with h.app.services.sessions() as s:
        history = (await s.execute(select(TierChange).where(TierChange.member_id == "act")
                                   .order_by(TierChange.id))).scalars().all()
        runs = (await s.execute(select(TierRun))).scalars().all()
        days = (await s.execute(select(TierDaily.day).distinct())).scalars().all()
    assert [(c.from_tier, c.to_tier) for c in history] == [(None, "active"), ("active", "casual"),
                                                          ("casual", "silent")]
    assert history[0].at == first_at
    assert all(h.clock.local(c.at).strftime("%H:%M") == "03:30" for c in history[1:])
    assert len(runs) == 27 and len(days) == 26  # first start + the pass above + 25 nights; one snapshot per day
    await assert_windows_exact(h, h.clock.local(h.clock.now()).date())


async def assert_windows_exact(h: Harness, today, window: int = 90, recent: int = 7) -> None:
    """member_windows, kept by adding and taking out days, equals summing member_days afresh."""
    from skills.tiers.models import MemberDay, MemberWindow

    async with h.app.services.sessions() as s:
        days = (await s.execute(select(MemberDay))).scalars().all()
        kept = {w.member_id: (w.days_window, w.days_recent, w.messages_window, w.checkins_window, w.last_active_day)
                for w in (await s.execute(select(MemberWindow))).scalars()}
    first, recent_from = (today - timedelta(days=window - 1)).isoformat(), (today - timedelta(days=recent - 1)).isoformat()
    fresh: dict[str, list] = {}
    for d in days:
        f = fresh.setdefault(d.member_id, [0, 0, 0, 0, None])
        if d.day >= first:
            f[0] += 1
            f[1] += d.day >= recent_from
            f[2] += d.messages
            f[3] += d.checkins
        f[4] = max(f[4] or d.day, d.day)
    assert kept == {m: tuple(f) for m, f in fresh.items()} and kept


async def test_members_in_tier_for_other_skills(h):
    await run_pass(h.app.services)
    async with h.app.services.sessions() as s:
        assert await members_in_tier(s, "core") == ["core1", "rich"]
        assert await members_in_tier(s, "core", room_id="g2") == ["core1"]
        assert await members_in_tier(s, ("silent", "lost"), room_id="g2") == ["quiet"]
        assert await members_in_tier(s, "lost", room_id="nowhere") == []
        with pytest.raises(ValueError, match="unknown tier"):
            await members_in_tier(s, "vip")


async def test_a_pass_reading_off_the_loop_and_one_reading_inline_agree(h):
    """The pass reads and classifies on a worker thread (storage/reads.py); read on the loop's own session
    instead, the same data gives the same tiers: a second pass at the same instant finds nothing to change."""
    services = h.app.services
    first = await run_pass(services)
    rules = settings_of(services).rules
    async with services.sessions() as s:
        inline = await recompute(s, services.clock.now(), services.config.tz, rules, reads_off_loop=False)
    async with services.sessions() as s:
        again = await recompute(s, services.clock.now(), services.config.tz, rules)
    for result in (inline, again):
        assert (result.members, result.counts, result.changed, result.written) == (first.members, first.counts, 0, 0)
    assert first.written == first.members == 9


# -- commands ---------------------------------------------------------------------------------------------------------

async def test_stats_for_the_room(h):
    await run_pass(h.app.services)
    await h.say("admin1", "/stats")
    await h.settle()
    text = h.sent[-1].text
    assert "成员：8 人" in text  # g1's members (quiet is only in g2)
    assert "今日活跃：2 人" in text  # act and refund spoke today (the admin's /stats is not activity of a member yet)
    assert "核心 2" in text and "流失 2" in text


async def test_stats_in_an_empty_room_and_refused_to_members(h):
    await h.say("admin1", "/统计", room="empty")
    await h.say("act", "/stats")
    await h.settle()
    # the admin's own /统计 is the room's only activity: still a clear answer
    assert "本群数据" in h.sent[0].text or "还没有" in h.sent[0].text
    assert h.sent[1].text.endswith("抱歉，这个命令只有管理员可以使用。")


async def test_tier_of_a_member_by_mention_and_by_id(h):
    await run_pass(h.app.services)
    await h.say("admin1", "/tier @核心甲\u2005", mention_ids=("core1",))
    await h.say("admin1", "/分层 refund", room=None)
    await h.say("admin1", "/tier 积分王", room=None)
    await h.settle()
    core, refund, rich = h.transport.texts()
    assert "分层：核心" in core and "RFM：R" in core and "近 90 天 2 单（¥200.50）" in core
    assert "分层：活跃" in refund and "累计 1 单（¥50.00）" in refund
    assert "积分：500" in rich


async def test_tier_of_unknown_or_bad_input(h):
    await h.say("admin1", "/tier nobody'; DROP TABLE members;--", room=None)
    await h.say("admin1", "/tier", room=None)
    await h.say("admin1", "/tier @a\u2005 @b\u2005", mention_ids=("act", "rich"))
    await h.settle()
    unknown, empty, two = h.transport.texts()
    assert "没有找到这位成员" in unknown
    assert "请 @ 要查询的成员" in empty and "用法：/tier @成员" in empty
    assert "一次只能查一位成员" in two
    async with h.app.services.sessions() as s:
        assert len(await members_in_tier(s, ["lost", "new", "core", "active", "casual", "silent"])) == 0


async def test_tier_of_a_member_seen_after_the_last_pass_says_when_it_comes(h):
    await h.say("admin1", "/tier newbie", room=None)  # the fixture seeded after the first-start pass
    await h.settle()
    assert "分层：暂无（每天 03:30 更新，上次 11月23日 12:00）" in h.sent[0].text and "积分：0" in h.sent[0].text


async def test_export_members_writes_a_csv(h, tmp_path):
    await run_pass(h.app.services)
    async with h.app.services.sessions() as s:
        sd = Seeder(s)
        sd.member("evil", "=HYPERLINK(\"x\")", joined=ago(1))
        await sd.commit()
    await h.say("admin1", "/export members", room=None)
    await h.say("admin1", "/导出 订单", room=None)
    await h.settle()
    ok, bad = h.transport.texts()
    assert ok.startswith("已导出 10 位成员：")
    path = Path(ok.split("：", 1)[1])
    assert path.parent == (tmp_path / "exports").resolve() and not list(path.parent.glob("*.part"))
    with path.open(encoding="utf-8-sig") as fh:
        rows = list(csv.DictReader(fh))
    by_id = {r["member_id"]: r for r in rows}
    assert by_id["core1"]["tier"] == "core" and by_id["core1"]["orders_window"] == "2"
    assert by_id["rich"]["points"] == "500" and by_id["core1"]["rooms"] == "2"
    assert by_id["evil"]["name"].startswith("'=")  # not a formula in a spreadsheet
    assert "目前可以导出的是成员名单" in bad


def test_thresholds_are_validated_with_their_key():
    from bot.app import check_skills

    problems = check_skills(tiers_config(silent_after_days=40, lost_after_days=30, nightly_at="25:00"))
    assert any("skills.tiers.nightly_at" in p for p in problems)
    with pytest.raises(ConfigError, match="skills.tiers.active_min_days"):
        from bot.config import skill_settings
        from skills.tiers import TierSettings

        skill_settings(tiers_config(active_min_days=9), "tiers", TierSettings)


async def test_rollups_count_local_days_across_dst_and_rolling_again_changes_nothing(db_url):
    """Day bounds come from the zone (23- and 25-hour days included); a day rolled twice gives the same rows."""
    from datetime import UTC, date, datetime
    from zoneinfo import ZoneInfo

    from storage.db import create_engine, migrate, session_factory
    from storage.models import Activity
    from skills.tiers.models import MemberDay, RoomDay
    from skills.tiers.rollup import roll_day, roll_days

    ny = ZoneInfo("America/New_York")  # DST starts 2026-03-08 02:00 local
    engine = create_engine(db_url)
    await migrate(engine)
    sessions = session_factory(engine)
    instants = [datetime(2026, 3, d, h, m, tzinfo=UTC) for d in (6, 7, 8, 9, 10) for h, m in ((4, 30), (5, 30), (16, 0))]
    async with sessions() as s, s.begin():
        await s.execute(Activity.__table__.insert(), [
            {"at": at, "room_id": "g1" if i % 3 else None, "member_id": f"m{i % 4}", "kind": "message", "skill": None,
             "detail": None} for i, at in enumerate(instants)])
    days = [date(2026, 3, d) for d in range(5, 12)]

    async def snapshot():
        async with sessions() as s:
            return ((await s.execute(select(MemberDay.day, MemberDay.member_id, MemberDay.messages)
                                     .order_by(MemberDay.day, MemberDay.member_id))).all(),
                    (await s.execute(select(RoomDay.day, RoomDay.room_id, RoomDay.active_members, RoomDay.messages)
                                     .order_by(RoomDay.day, RoomDay.room_id))).all())

    async with sessions() as s:
        assert await roll_days(s, days, ny) == 7
    ranged = await snapshot()
    for d in days:
        async with sessions() as s, s.begin():
            await roll_day(s, d, ny)
    assert await snapshot() == ranged
    member_rows, room_rows = ranged
    assert {r.day for r in member_rows} == {"2026-03-05", "2026-03-06", "2026-03-07", "2026-03-08", "2026-03-09",
                                            "2026-03-10"}
    by_day = {r.day: r.messages for r in room_rows if r.room_id == "*"}
    # before the change 04:30 UTC is 23:30 the day before (EST); from 03-09 on it is 00:30 the same day (EDT)
    assert by_day == {"2026-03-11": 0, "2026-03-05": 1, "2026-03-06": 3, "2026-03-07": 3, "2026-03-08": 2, "2026-03-09": 3,
                      "2026-03-10": 3}
    assert sum(by_day.values()) == len(instants)
    await engine.dispose()


async def test_a_lost_member_who_speaks_again_is_welcomed_back_once(db_url):
    async with Harness(tiers_config(welcome_back="好久不见，{name}！欢迎回来～"), db_url, start=TODAY_NOON) as h:
        await h.clock.run_pending()
        await seed_population(h.app.services)
        await run_pass(h.app.services)
        await h.say("gone", "大家好", name="老朋友")
        await h.say("gone", "还记得我吗", name="老朋友", after_s=60)
        await h.say("act", "早", after_s=60)
        await h.say("never", "/ping", after_s=60)  # a command is answered as usual, not greeted
        await h.settle()
        assert h.transport.texts()[0] == "@老朋友\u2005好久不见，老朋友！欢迎回来～"
        assert len(h.transport.texts()) == 2 and "好久不见" not in h.transport.texts()[1]


def test_welcome_back_template_is_checked():
    from bot.app import check_skills

    assert any("skills.tiers.welcome_back" in p for p in check_skills(tiers_config(welcome_back="hi {nmae}")))


async def test_scheduled_messages_can_target_a_tier(h):
    from bot.targets import Recipient, TargetError, resolve

    await run_pass(h.app.services)
    async with h.app.services.sessions() as s:
        assert await resolve(h.app.services, s, ["tier:core"]) == [Recipient(user_id="core1"),
                                                                   Recipient(user_id="rich")]
        assert await resolve(h.app.services, s, ["tier:silent,lost/g2"]) == [Recipient(user_id="quiet")]
        with pytest.raises(TargetError, match="tiers are core"):
            await resolve(h.app.services, s, ["tier:vip"])
