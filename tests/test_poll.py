"""Group polls (群投票) through the whole bot on a virtual clock: start, votes, results, the deadline, restarts."""

from datetime import timedelta

import pytest

from bot.app import check_skills
from skills.poll import store
from tests.support import START, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

RAW = {"bot": {"admins": ["admin1"], "skills": ["ping", "poll"]},
       "rooms": {"g1": {"admins": ["owner1"]}, "g2": {"admins": ["owner2"]}},
       "skills": {"poll": {"confirm_window_s": 30.0}}}
LUNCH = "/投票 发起 午饭吃什么 | 面 | 饭 | 粉 duration=1h"


def config(raw=RAW):
    return make_config(raw, jitter_s=0.0)


@pytest.fixture
async def h(harness):
    return await harness(config())


async def texts(h) -> list[str]:
    await h.settle()
    return h.transport.texts()


async def latest(h, room="g1"):
    async with h.app.services.sessions() as s:
        return await store.latest_in_room(s, room)


async def tally(h, poll_id=1) -> dict[int, int]:
    async with h.app.services.sessions() as s:
        return await store.tally(s, poll_id)


def results_messages(h) -> list[str]:
    return [t for t in h.transport.texts() if "结果（" in t]


# -- start ----------------------------------------------------------------------------------------------------------

async def test_a_room_admin_starts_a_poll_with_numbered_options_and_a_deadline_job(h):
    await h.say("owner1", LUNCH)
    sent = await texts(h)
    assert "投票 #1：午饭吃什么" in sent[-1] and "1. 面\n2. 饭\n3. 粉" in sent[-1] and "11月23日 10:00 截止" in sent[-1]
    poll = await latest(h)
    assert (poll.status, poll.options, poll.deadline, poll.created_by) == (
        "open", ["面", "饭", "粉"], START + timedelta(hours=1), "owner1")
    job = await h.app.services.scheduler.get("poll:1:close")
    assert (job.handler, job.status, job.next_run_at, job.room_id) == (
        "poll.close", "active", START + timedelta(hours=1), "g1")


async def test_the_default_duration_comes_from_the_settings(db_url):
    raw = {**RAW, "skills": {"poll": {"duration": "2h", "max_options": 3}}}
    async with Harness(config(raw), db_url) as h:
        await h.say("owner1", "/poll start 周末去哪 | 公园 | 商场 | 书店")
        await h.say("owner1", "/poll start 周末去哪 | 公园 | 商场 | 书店 | 家里")
        sent = await texts(h)
        assert (await latest(h)).deadline == START + timedelta(hours=2)
        assert "选项最多 3 个，现在有 4 个" in sent[-1]


async def test_members_and_other_rooms_admins_may_not_start_one(h):
    await h.say("u1", LUNCH)
    await h.say("owner2", LUNCH)
    sent = await texts(h)
    assert sent == ["@u1\u2005抱歉，这个命令只有管理员可以使用。", "@owner2\u2005抱歉，这个命令只有管理员可以使用。"]
    assert await latest(h) is None


async def test_one_open_poll_per_room(h):
    await h.say("owner1", LUNCH)
    await h.say("admin1", "/poll start 晚饭吃什么 | 面 | 饭")
    await h.say("owner2", "/poll start 晚饭吃什么 | 面 | 饭", room="g2")
    sent = await texts(h)
    assert "本群已经有一个进行中的投票（#1「午饭吃什么」）" in sent[1]
    assert "投票 #2：晚饭吃什么" in sent[2]
    assert (await latest(h, "g1")).id == 1 and (await latest(h, "g2")).id == 2


@pytest.mark.parametrize("text, answer", [
    ("/投票 发起 午饭吃什么", "请用 | 隔开问题和选项"),
    ("/投票 发起", "请先写问题"),
    ("/投票 发起 | 面 | 饭", "请先写问题"),
    ("/投票 发起 午饭吃什么 | 面", "至少要两个选项"),
    ("/投票 发起 午饭吃什么 | 面 | | ", "至少要两个选项"),
    ("/poll start 选哪个 | " + " | ".join(f"选项{i}" for i in range(1, 21)), "选项最多 9 个，现在有 20 个"),
    ("/poll start " + "长" * 150 + " | 面 | 饭", "问题太长了（150 字），请控制在 100 字以内"),
    ("/poll start 午饭 | 面 | " + "饭" * 41, "第 2 个选项太长了"),
    ("/poll start 午饭 | 面 | 面", "选项「面」重复了"),
    ("/poll start 午饭 | 面 | 饭 duration=forever", "duration 请写成 30m、2h、1d 这样的时长"),
    ("/poll start 午饭 | 面 | 饭 duration=30d", "投票时长最长 7天"),
    ("/poll start 午饭 | 面 | 饭 duration=30s", "投票时长至少 1 分钟"),
])
async def test_bad_input_gets_a_polite_answer_and_the_usage(h, text, answer):
    await h.say("owner1", text)
    sent = await texts(h)
    assert len(sent) == 1 and answer in sent[0] and "用法：/poll start 问题 | 选项1 | 选项2" in sent[0]
    assert await latest(h) is None


async def test_the_question_keeps_what_looks_like_an_option_and_loses_control_characters(h):
    await h.say("owner1", "/投票 发起 开会时间:周五还是周六\x07？ ｜ 周五 ｜ 周六 时长=2小时")
    await h.settle()
    poll = await latest(h)
    assert (poll.question, poll.options, poll.deadline) == (
        "开会时间:周五还是周六？", ["周五", "周六"], START + timedelta(hours=2))


# -- votes ----------------------------------------------------------------------------------------------------------

async def test_members_vote_by_number_and_by_command_with_one_confirmation_per_window(h):
    await h.say("owner1", LUNCH)
    await h.settle()
    before = len(h.sent)
    await h.say("u1", "1")
    await h.say("u2", "２", after_s=1)
    await h.say("u3", "第2个", after_s=1)
    await h.say("u4", "/poll vote 3", after_s=1)
    await h.say("u5", "/投票 1", after_s=1)
    await h.say("u6", "@小助手\u2005选三", after_s=1)
    await h.settle()
    confirmations = h.sent[before:]
    assert len(confirmations) == 1
    assert confirmations[0].message.mentions == ("u1", "u2", "u3", "u4", "u5", "u6")
    assert "投票成功✅ 目前共 6 人投票" in confirmations[0].text
    assert await tally(h) == {1: 2, 2: 2, 3: 2}


async def test_a_second_vote_is_refused_politely_and_changes_nothing(h):
    await h.say("owner1", LUNCH)
    await h.say("u1", "1")
    await h.say("u1", "2")
    sent = await texts(h)
    assert "你已经投过票了" in sent[-1]
    await h.say("u1", "/投票 3", after_s=60)
    sent = await texts(h)
    assert sent[-1] == "@u1\u2005你已经投过票了，每人一票哦～"
    assert await tally(h) == {1: 1}


async def test_numbers_that_are_not_votes(h):
    await h.say("u1", "1")  # no poll in the room: chatter
    await h.say("owner1", LUNCH)
    await h.settle()
    before = len(h.sent)
    await h.say("u1", "7")  # out of range, bare: chatter
    await h.say("u2", "1", room="g2")  # another room has no poll
    await h.say("u3", "二")  # a lone Chinese numeral: chatter
    await h.say("u4", "我选1号的面")
    await h.settle()
    assert len(h.sent) == before
    await h.say("u1", "第7个")
    await h.say("u2", "/投票 十")
    await h.say("u5", "/投票 面")
    sent = await texts(h)
    assert sent[before:] == ["@u1\u2005请回复 1 到 3 之间的编号哦～", "@u2\u2005请回复 1 到 3 之间的编号哦～",
                             "@u5\u2005请写选项的编号，例如 /投票 2。\n用法：" + "/poll vote 编号（或 /投票 编号，或在群里直接发送编号，如 2、第2个）"]
    assert await tally(h) == {}


async def test_results_show_counts_per_option_at_any_time(h):
    await h.say("u1", "/投票 结果")
    await h.say("owner1", LUNCH)
    for i, choice in enumerate(["1", "2", "1"]):
        await h.say(f"u{i}", choice)
    await h.say("u9", "/投票 结果")
    sent = await texts(h)
    assert sent[0] == "@u1\u2005本群还没有发起过投票。"
    assert [t for t in sent if "当前票数" in t] == ["📊 投票 #1「午饭吃什么」当前票数（共 3 人投票，11月23日 10:00 截止）：\n"
                                                 "1. 面 — 2 票（66%）\n2. 饭 — 1 票（33%）\n3. 粉 — 0 票（0%）"]
    await h.say("u9", "/投票")  # the bare command shows the open poll too
    assert "当前票数" in (await texts(h))[-1]


# -- closing --------------------------------------------------------------------------------------------------------

async def test_the_deadline_closes_the_poll_and_announces_the_results_once(h):
    await h.say("owner1", LUNCH)
    await h.say("u1", "2")
    await h.say("u2", "2")
    await h.say("u3", "3")
    await h.clock.advance_to(START + timedelta(hours=1))
    await h.settle()
    assert results_messages(h) == ["📊 投票 #1「午饭吃什么」结果（共 3 人投票，已结束）：\n"
                                   "1. 面 — 0 票（0%）\n2. 饭 — 2 票（66%）\n3. 粉 — 1 票（33%）\n最多票：饭"]
    assert h.sent[-1].at >= START + timedelta(hours=1)
    poll = await latest(h)
    assert (poll.status, poll.closed_at, poll.closed_by) == ("closed", START + timedelta(hours=1), None)
    await h.say("u4", "1")  # too late: chatter now
    await h.say("u5", "/投票 1")
    await h.say("u6", "/投票 结果")
    await h.clock.advance(86400)
    sent = await texts(h)
    assert sent[-2] == "@u5\u2005本群现在没有进行中的投票。"
    assert sent[-1].startswith("📊 投票 #1「午饭吃什么」结果（共 3 人投票，已结束）")
    assert len(results_messages(h)) == 2  # the announcement and u6's question: announced once
    assert await tally(h) == {2: 2, 3: 1}


async def test_a_tie_and_an_empty_poll_are_said_so(h):
    await h.say("owner1", "/poll start A还是B | A | B duration=10m")
    await h.say("u1", "1")
    await h.say("u2", "2")
    await h.clock.advance(600)
    await h.say("owner1", "/poll start 没人投 | A | B duration=10m")
    await h.clock.advance(600)
    await h.settle()
    first, second = results_messages(h)
    assert first.endswith("并列最多：A、B") and second.endswith("没有人投票。")


async def test_only_the_rooms_admins_close_it_early_and_then_the_deadline_is_quiet(h):
    await h.say("owner1", LUNCH)
    await h.say("u1", "1")
    await h.say("u1", "/投票 结束", after_s=60)
    await h.say("owner2", "/投票 结束")
    sent = await texts(h)
    assert sent[-2:] == ["@u1\u2005抱歉，这个命令只有管理员可以使用。", "@owner2\u2005抱歉，这个命令只有管理员可以使用。"]
    assert (await latest(h)).status == "open"
    await h.say("owner1", "/poll close")
    await h.settle()
    assert results_messages(h) == ["📊 投票 #1「午饭吃什么」结果（共 1 人投票，已结束）：\n"
                                   "1. 面 — 1 票（100%）\n2. 饭 — 0 票（0%）\n3. 粉 — 0 票（0%）\n最多票：面"]
    poll = await latest(h)
    assert (poll.status, poll.closed_by) == ("closed", "owner1")
    assert (await h.app.services.scheduler.get("poll:1:close")).status == "cancelled"
    await h.say("owner1", "/poll close")
    await h.clock.advance_to(START + timedelta(days=1))
    sent = await texts(h)
    assert sent[-1] == "@owner1\u2005本群现在没有进行中的投票。"
    assert len(results_messages(h)) == 1
    await h.say("owner1", "/poll start 晚饭吃什么 | 面 | 饭")  # the room is free for the next one
    assert "投票 #2：晚饭吃什么" in (await texts(h))[-1]


# -- restarts -------------------------------------------------------------------------------------------------------

async def test_an_open_poll_survives_a_restart(db_url):
    async with Harness(config(), db_url) as h:
        await h.say("owner1", LUNCH)
        await h.say("u1", "1")
        await h.settle()
        stopped_at = h.clock.now()
    async with Harness(config(), db_url, start=stopped_at + timedelta(minutes=5)) as h:
        await h.say("u2", "2")  # the new process knows the room's poll from the database
        await h.say("u1", "3")
        sent = await texts(h)
        assert "投票成功✅ 目前共 2 人投票" in sent[-1] and "你已经投过票了" in sent[-1]
        await h.clock.advance_to(START + timedelta(hours=1))
        await h.settle()
        assert len(results_messages(h)) == 1 and "共 2 人投票" in results_messages(h)[0]
        assert await tally(h) == {1: 1, 2: 1}


async def test_a_bot_down_at_the_deadline_announces_once_when_back(db_url):
    async with Harness(config(), db_url) as h:
        await h.say("owner1", LUNCH)
        await h.say("u1", "1")
        await h.settle()
    for hours in (3, 4):  # back after the deadline, then restarted once more
        async with Harness(config(), db_url, start=START + timedelta(hours=hours)) as h:
            await h.settle()
            assert len(results_messages(h)) == (1 if hours == 3 else 0)
            assert (await latest(h)).status == "closed"


# -- settings -------------------------------------------------------------------------------------------------------

def test_settings_are_checked_with_their_key():
    def problems(settings):
        return check_skills(config({**RAW, "skills": {"poll": settings}}))

    assert problems({}) == []
    assert any("skills.poll.max_options" in p and "between 2 and 20" in p for p in problems({"max_options": 30}))
    assert any("skills.poll.duration" in p for p in problems({"duration": "forever"}))
    assert any("skills.poll.duration" in p and "max_duration" in p for p in problems({"duration": "8d"}))
    assert any("skills.poll: unknown key" in p or "max_option" in p for p in problems({"max_option": 3}))


def test_the_skill_imports_only_the_core_storage_and_itself():
    """The layers a skill keeps (docs/developers/writing-a-skill.md): no transport, no other skill, and the fast
    path through storage.fast, never storage.prepared."""
    from tests.test_layers import imports

    ours = [(p, line, name) for p, line, name in imports("skills") if p.startswith("skills/poll/")]
    assert ours, "the walk found no imports"
    wrong = [f"{p}:{line}: {name}" for p, line, name in ours
             if name.split(".")[0] in ("aiohttp", "wechaty", "wechaty_grpc", "grpclib")
             or name.startswith(("bot.transports", "bot.web", "storage.prepared", "storage.sqlite_inline"))
             or (name.startswith("skills") and not name.startswith("skills.poll"))]
    assert wrong == []
