"""Scheduled group messages: admin commands, config schedules, tips rotation, targets, catch-up after an outage."""

from __future__ import annotations

from datetime import datetime

import pytest
from sqlalchemy import select

from bot.config import ConfigError, skill_settings
from bot.targets import Recipient, register_resolver
from skills.schedule import ScheduleSettings
from storage.models import Activity, ScheduledJob
from tests.support import TZ, Harness, make_config
from tests.test_governor import NEVER_QUIET

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike


def local(day: int, hour: int, minute: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, tzinfo=TZ)


def config(tmp_path=None, items: dict | None = None, **rooms):
    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "schedule"]},
           "rooms": {"g1": {"tags": ["vip"], "admins": ["owner1"]}, "g2": {"tags": ["vip"]}, "g3": {}}}
    if items is not None:
        raw["skills"] = {"schedule": {"items": items}}
    return make_config(raw, quiet_hours=NEVER_QUIET)


async def activity(h: Harness, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity).where(Activity.kind == kind).order_by(Activity.id))).scalars())


def sent_to(h: Harness) -> list[tuple[str, str, datetime]]:
    return [(s.message.room_id or s.message.user_id, s.text, s.at.astimezone(TZ)) for s in h.sent]


async def test_admin_adds_a_daily_message_for_this_room(db_url):
    async with Harness(config(), db_url) as h:
        await h.say("admin1", "/schedule add 早安 daily=09:30 早上好，{weekday}也要元气满满")
        await h.settle()
        assert "已添加定时消息「早安」" in h.transport.texts()[-1] and "11月23日 09:30" in h.transport.texts()[-1]
        await h.clock.advance_to(local(24, 10))
        msgs = [x for x in sent_to(h) if x[1].startswith("早上好")]
        assert msgs == [("g1", "早上好，星期一也要元气满满", local(23, 9, 30)),
                        ("g1", "早上好，星期二也要元气满满", local(24, 9, 30))]


async def test_list_pause_resume_remove_in_chinese(db_url):
    async with Harness(config(), db_url) as h:
        await h.say("admin1", '/定时 添加 晚安 cron="0 21 * * *" target=all 类型=推广 晚安～', room=None)
        await h.say("admin1", "/定时 列表", room=None)
        await h.settle()
        listing = h.transport.texts()[-1]
        assert "晚安" in listing and "cron 0 21 * * *" in listing and "全部群" in listing and "推广" in listing
        assert "运行中" in listing
        await h.say("admin1", "/定时 暂停 晚安", room=None)
        await h.clock.advance_to(local(23, 22))
        assert not any(t == "晚安～" for t in h.transport.texts())  # paused: 21:00 passed silently
        await h.say("admin1", "/定时 恢复 晚安", room=None)
        await h.settle()
        assert "下次发送 11月24日 21:00" in h.transport.texts()[-1]
        await h.clock.advance_to(local(24, 21, 10))
        assert sorted(x[0] for x in sent_to(h) if x[1] == "晚安～") == ["g1", "g2", "g3"]  # all rooms in config
        await h.say("admin1", "/定时 删除 晚安", room=None)
        await h.clock.advance_to(local(25, 22))
        assert len([t for t in h.transport.texts() if t == "晚安～"]) == 3
        await h.say("admin1", "/schedule list", room=None)
        await h.settle()
        assert "还没有定时消息" in h.transport.texts()[-1]


async def test_members_cannot_schedule_and_room_admins_only_for_their_room(db_url):
    async with Harness(config(), db_url) as h:
        await h.say("u1", "/schedule add x daily=09:30 hi")
        await h.say("owner1", "/schedule add x daily=09:30 target=all hi")
        await h.say("owner1", "/schedule add y daily=09:30 target=here hi")
        await h.settle()
        texts = h.transport.texts()
        assert "只有管理员" in texts[0]
        assert "群管理员只能为本群设置定时消息" in texts[1]
        assert "已添加定时消息「y」" in texts[2]
        async with h.app.services.sessions() as s:
            keys = (await s.execute(select(ScheduledJob.key).where(ScheduledJob.handler == "schedule.send"))).scalars()
            assert list(keys) == ["schedule:room:g1:y"]  # a room admin's schedules are keyed by their room


async def test_a_room_admin_never_takes_over_or_changes_a_global_schedule(db_url):
    """Same name, another owner: the global admin's target=all schedule stays as it is; the room admin gets his
    own, for his room, and changes only that."""
    async with Harness(config(), db_url) as h:
        await h.say("admin1", "/schedule add 早安 daily=08:00 target=all 大家早上好", room=None)
        await h.say("owner1", "/schedule add 早安 daily=10:00 本群早安", after_s=1)
        await h.say("owner1", "/schedule pause 早安", after_s=1)
        await h.say("owner1", "/schedule remove 早安", after_s=1)
        await h.say("owner1", "/schedule pause 早安", after_s=1)
        await h.say("owner1", "/schedule list", after_s=1)
        await h.settle()
        texts = [t.split("\u2005", 1)[-1] for t in h.transport.texts()]
        assert texts[1].startswith("已添加定时消息「早安」：每天 10:00 · room:g1")
        assert texts[2].startswith("已暂停定时消息「早安」")  # his own
        assert texts[3] == "已删除定时消息「早安」。"
        assert texts[4].startswith("「早安」会发到其他群，只有总管理员可以修改。")  # the global one
        assert texts[5].startswith("本群还没有定时消息。")
        async with h.app.services.sessions() as s:
            rows = (await s.execute(select(ScheduledJob.key, ScheduledJob.status, ScheduledJob.spec).where(
                ScheduledJob.handler == "schedule.send").order_by(ScheduledJob.key))).all()
        assert [tuple(r) for r in rows] == [("schedule:room:g1:早安", "cancelled", "10:00"),
                                            ("schedule:早安", "active", "08:00")]


@pytest.mark.parametrize("command, answer", [
    ("/schedule add", "请写上定时消息的名称"),
    ("/schedule add x hi", "请写一个时间"),
    ("/schedule add x daily=25:00 hi", "请写一个时间"),
    ('/schedule add x cron="not cron" hi', "请写一个时间"),
    ("/schedule add x daily=09:00 daily2=1 hi", "不认识的选项"),
    ("/schedule add x daily=09:00 kind=loud hi", "kind 请写 light"),
    ("/schedule add x daily=09:00", "请写上要发送的文字"),
    ("/schedule add x daily=09:00 target=tag:nope hi", "没有打了「nope」标签的群"),
    ("/schedule add x daily=09:00 target=tier:silent hi", "还不支持按「tier」选择发送对象"),
    ("/schedule add x daily=09:00 tips=../secret.txt", "knowledge/"),
    ("/schedule add x daily=09:00 {oops}", "{date}"),
    ("/schedule pause nope", "没有名为「nope」的定时消息"),
])
async def test_bad_input_gets_a_polite_answer_and_changes_nothing(db_url, command, answer):
    async with Harness(config(), db_url) as h:
        await h.say("admin1", command)
        await h.settle()
        assert answer in h.transport.texts()[-1]
        async with h.app.services.sessions() as s:
            jobs = await s.execute(select(ScheduledJob).where(ScheduledJob.handler == "schedule.send"))
            assert jobs.first() is None


async def test_tier_targets_work_once_a_resolver_is_registered(db_url):
    async with Harness(config(), db_url) as h:
        async def silent(services, session, arg):
            assert arg == "silent"
            return [Recipient(user_id="u7"), Recipient(user_id="u8"), Recipient(user_id="u7")]

        register_resolver(h.app.services, "tier", silent)
        await h.say("admin1", "/schedule add 唤醒 daily=10:00 target=tier:silent 好久不见～", room=None)
        await h.clock.advance_to(local(23, 10, 5))
        assert sorted(x[0] for x in sent_to(h) if x[1] == "好久不见～") == ["u7", "u8"]


async def test_config_schedules_with_rotating_tips_and_tags(db_url, tmp_path):
    tips = tmp_path / "tips.txt"
    tips.write_text("# comment\n第一条\n\n第二条\n第三条\n", encoding="utf-8")
    items = {"贴士": {"daily": "08:30", "tips": str(tips), "text": "【{date}】{tip}", "targets": ["tag:vip"]}}
    async with Harness(config(items=items), db_url, start=local(23, 8)) as h:
        await h.clock.advance_to(local(24, 9))
        tips_sent = [x for x in sent_to(h) if x[1].startswith("【")]
        assert [x[0] for x in tips_sent] == ["g1", "g2", "g1", "g2"]  # tag:vip → g1, g2 (not g3)
        day1, day2 = {x[1] for x in tips_sent[:2]}, {x[1] for x in tips_sent[2:]}
        assert len(day1) == 1 and len(day2) == 1 and day1 != day2  # one tip a day, the same in every room
        assert day1.pop().startswith("【11月23日】") and day2.pop().startswith("【11月24日】")
        tips.write_text("新贴士\n", encoding="utf-8")  # operators edit the file: the next run uses it
        await h.clock.advance_to(local(25, 9))
        assert h.transport.texts()[-1] == "【11月25日】新贴士"
        await h.say("admin1", "/schedule remove 贴士")
        await h.settle()
        assert "来自配置文件" in h.transport.texts()[-1]


async def test_a_config_schedule_whose_target_has_no_resolver_is_logged_not_sent(db_url, caplog):
    items = {"沉默唤醒": {"daily": "10:00", "text": "好久不见", "targets": ["tier:silent"]}}
    async with Harness(config(items=items), db_url) as h:
        await h.clock.advance_to(local(23, 10, 1))
        assert h.transport.texts() == []
        rows = await activity(h, "schedule")
        assert rows[0].detail["outcome"] == "error" and "no resolver registered for 'tier'" in rows[0].detail["error"]
        assert "no resolver registered for 'tier'" in caplog.text


def test_config_errors_name_the_key():
    bad = make_config({"bot": {"skills": ["schedule"]},
                       "skills": {"schedule": {"items": {"x": {"daily": "9am", "text": "hi"}}}}})
    with pytest.raises(ConfigError) as exc:
        skill_settings(bad, "schedule", ScheduleSettings)
    assert 'skills.schedule.items."x": daily time must look like "09:30"' in str(exc.value)
    bad = make_config({"skills": {"schedule": {"items": {"x": {"cron": "0 9 * * *", "text": "hi", "kind": "spam"}}}}})
    with pytest.raises(ConfigError, match=r'items."x".kind: must be "light" or "promotional"'):
        skill_settings(bad, "schedule", ScheduleSettings)


# -- catch-up after an outage -----------------------------------------------------------------------------------

async def test_one_catch_up_run_within_the_grace_window(db_url):
    items = {"早安": {"daily": "09:00", "text": "早上好", "targets": ["room:g1"]}}
    async with Harness(config(items=items), db_url, start=local(23, 8)) as h:
        await h.clock.advance_to(local(23, 8, 30))
    # down from 08:30 to 09:40: the 09:00 run is 40 min late, within the 1 h grace
    async with Harness(config(items=items), db_url, start=local(23, 9, 40)) as h:
        await h.settle()
        assert sent_to(h) == [("g1", "早上好", local(23, 9, 40))]
        await h.clock.advance_to(local(24, 9, 1))
        assert [x[2] for x in sent_to(h)] == [local(23, 9, 40), local(24, 9)]


async def test_a_run_missed_by_more_than_the_grace_is_skipped_and_logged(db_url):
    items = {"早安": {"daily": "09:00", "text": "早上好", "targets": ["room:g1"]}}
    async with Harness(config(items=items), db_url, start=local(23, 8)) as h:
        pass
    # down for three days: no burst of missed runs, one skip logged, the next run on time
    async with Harness(config(items=items), db_url, start=local(26, 10, 30)) as h:
        await h.settle()
        assert h.sent == []
        missed = [r for r in await activity(h, "job") if r.detail["outcome"] == "missed"]
        assert len(missed) == 1 and missed[0].detail["job"] == "schedule:早安"
        await h.clock.advance_to(local(27, 9, 1))
        assert sent_to(h) == [("g1", "早上好", local(27, 9))]


async def test_a_changed_config_schedule_replaces_the_job_and_an_unchanged_one_keeps_its_pause(db_url):
    items = {"早安": {"daily": "09:00", "text": "早上好", "targets": ["room:g1"]}}
    async with Harness(config(items=items), db_url, start=local(23, 8)) as h:
        await h.say("admin1", "/schedule pause 早安")
    async with Harness(config(items=items), db_url, start=local(23, 8, 10)) as h:
        await h.clock.advance_to(local(23, 9, 30))
        assert "早上好" not in h.transport.texts()  # still paused after a restart
    items["早安"]["daily"] = "09:45"
    async with Harness(config(items=items), db_url, start=local(23, 9, 31)) as h:
        await h.clock.advance_to(local(23, 10))
        assert sent_to(h) == [("g1", "早上好", local(23, 9, 45))]
    async with Harness(config(items={}), db_url, start=local(23, 10)) as h:  # removed from config: cancelled
        job = await h.app.scheduler.get("schedule:早安")
        assert job.status == "cancelled"
