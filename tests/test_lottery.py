"""The provably fair lottery, through the whole bot on a virtual clock (and the verify command line)."""

import hashlib
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.config import ConfigError
from bot.events import OutgoingMessage, Priority
from skills.lottery.draw import commitment, draw_winners, parse_duration
from storage.models import ScheduledJob
from skills.lottery.models import Lottery, LotteryEntry
from storage.points import balance, change_points, ledger_sum
from tests.support import START, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

ROOT = Path(__file__).resolve().parents[1]
MENTION = "\u2005"
RAW = {"bot": {"admins": ["admin1"], "skills": ["ping", "lottery"]},
       "skills": {"lottery": {"confirm_window_s": 30.0}}}


def config():
    return make_config(RAW)


@pytest.fixture
async def h(db_url):
    async with Harness(config(), db_url) as harness:
        yield harness


async def texts(h) -> list[str]:
    await h.settle()
    return h.transport.texts()


async def lotteries(h) -> list[Lottery]:
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Lottery).order_by(Lottery.id))).scalars())


async def entries(h, lottery_id=1) -> list[str]:
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(LotteryEntry.member_id).where(LotteryEntry.lottery_id == lottery_id)
                                     .order_by(LotteryEntry.member_id))).scalars())


def to(h, member) -> list[str]:
    """Texts that @-mention only this member: the answers to them."""
    return [x.text for x in h.sent if x.message.mentions == (member,)]


async def give_points(h, member, n):
    async with h.app.services.sessions() as s, s.begin():
        await change_points(s, member, n, reason="测试", source="test", ref_id=f"seed:{member}", at=START)


async def points(h, member) -> tuple[int, int]:
    async with h.app.services.sessions() as s:
        return await balance(s, member), await ledger_sum(s, member)


def reference_draw(seed: str, ids: list[str], k: int) -> list[str]:
    """The procedure as documented in skills/lottery/draw.py, written out again here on purpose."""
    remaining = sorted(set(ids))
    out = []
    for i in range(min(k, len(remaining))):
        n = int(hashlib.sha256(f"{seed}:{i}".encode()).hexdigest(), 16)
        out.append(remaining.pop(n % len(remaining)))
    return out


async def start(h, text="/lottery start 保温杯 winners=2 duration=30m keyword=抽奖"):
    await h.say("admin1", text, name="群主")
    await h.settle()


# -- start --------------------------------------------------------------------------------------------------------


async def test_start_announces_prize_rules_deadline_and_commitment_never_the_seed(h):
    await start(h)
    (text,) = await texts(h)
    (lot,) = await lotteries(h)
    assert lot.status == "open" and lot.winners == 2 and lot.keyword == "抽奖"
    assert lot.deadline == START + timedelta(minutes=30)
    assert "保温杯" in text and "2 名" in text and "「抽奖」" in text and "11月23日 09:30" in text
    assert lot.commitment in text and hashlib.sha256(lot.seed.encode()).hexdigest() == lot.commitment
    assert re.fullmatch(r"[0-9a-f]{64}", lot.seed) and lot.seed not in text
    job = await h.app.scheduler.get("lottery:1:draw")
    assert (job.handler, job.next_run_at, job.payload) == ("lottery.draw", lot.deadline, {"lottery_id": 1})
    assert job.misfire_grace_s >= 86400


async def test_chinese_alias_and_full_width_options(h):
    await h.say("admin1", "/抽奖 开始 「新年 礼盒」 winners：1 duration：2h keyword：我要 cost：5")
    await h.settle()
    (lot,) = await lotteries(h)
    assert (lot.prize, lot.winners, lot.keyword, lot.cost) == ("新年 礼盒", 1, "我要", 5)
    assert lot.deadline == START + timedelta(hours=2)
    assert "参与一次扣 5 积分" in h.transport.texts()[0]


@pytest.mark.parametrize("command, complaint", [
    ("/lottery start 奖品 duration=forever", "duration 请写成"),
    ("/lottery start winners=3", "请写上奖品"),
    ("/lottery start 奖品 winners=0", "中奖人数要在 1 到"),
    ("/lottery start 奖品 winners=three", "winners 请写中奖人数"),
    ("/lottery start 奖品 cost=-5", "cost 不能是负数"),
    ("/lottery start 奖品 duration=30d", "抽奖时长最长"),
    ("/lottery start 奖品 color=red", "不认识的选项"),
])
async def test_bad_input_is_explained_and_changes_nothing(h, command, complaint):
    await h.say("admin1", command)
    (text,) = await texts(h)
    assert complaint in text and "用法：/lottery start 奖品" in text
    assert await lotteries(h) == []
    assert await h.app.scheduler.get("lottery:1:draw") is None


async def test_non_admin_and_private_chat_are_refused(h):
    await h.say("u1", "/lottery start 奖品")
    await h.say("admin1", "/lottery start 奖品", room=None, after_s=5)
    refused, private = await texts(h)
    assert refused.endswith("只有管理员可以使用。")
    assert private == "这个命令需要在群里使用哦。"
    assert await lotteries(h) == []


async def test_two_lotteries_in_one_room_are_refused_other_rooms_are_fine(h):
    await start(h)
    await h.say("admin1", "/lottery start 第二个 winners=1", after_s=5)
    await h.say("admin1", "/lottery start 别的群 winners=1", room="g2", after_s=5)
    texts_ = await texts(h)
    assert "本群已经有一个进行中的抽奖（#1「保温杯」）" in texts_[1]
    assert [(lot.room_id, lot.prize) for lot in await lotteries(h)] == [("g1", "保温杯"), ("g2", "别的群")]


# -- entries ------------------------------------------------------------------------------------------------------


async def test_entries_are_one_per_member_admins_excluded_and_confirmed_together(h):
    await start(h)
    await h.say("u1", "抽奖", name="小李", after_s=1)
    await h.say("u2", "抽奖 ", name="小王", after_s=1)
    await h.say("u1", "抽奖", name="小李", after_s=1)  # again
    await h.say("u3", "我也想抽奖", name="小赵", after_s=1)  # not the keyword
    await h.say("admin1", "抽奖", name="群主", after_s=1)
    await h.say("u4", "抽奖", room="g2", after_s=1)  # no lottery in g2: ordinary chatter
    assert await entries(h) == ["u1", "u2"]
    sent = await texts(h)
    assert sent[1] == f"@群主{MENTION}管理员不参与抽奖哦，感谢组织～"
    # a repeat inside the window is folded into the confirmation the member gets anyway
    (confirmation,) = [s for s in h.sent if "参与成功" in s.text]
    assert confirmation.text == f"@小李{MENTION}@小王{MENTION}参与成功🎉 目前共 2 人参与，祝好运！"
    assert confirmation.message.mentions == ("u1", "u2")
    assert len(sent) == 3
    # a repeat in a later window is told so
    await h.say("u2", "抽奖", name="小王", after_s=60)
    await h.say("u5", "@小助手 抽奖", name="小五", after_s=1)
    assert (await texts(h))[-1] == (f"@小五{MENTION}参与成功🎉 目前共 3 人参与，祝好运！\n"
                                    f"@小王{MENTION}已经参与过啦，每人一次，等开奖就好～")
    assert h.sent[-1].message.mentions == ("u5", "u2")
    assert await entries(h) == ["u1", "u2", "u5"]


async def test_cost_is_deducted_and_insufficient_points_refused(h):
    await give_points(h, "rich", 20)
    await give_points(h, "poor", 3)
    await start(h, "/lottery start 大奖 winners=1 cost=10")
    await h.say("rich", "抽奖", name="富", after_s=1)
    await h.say("poor", "抽奖", name="穷", after_s=1)
    await h.say("nobody", "抽奖", name="零", after_s=1)
    assert await entries(h) == ["rich"]
    assert await points(h, "rich") == (10, 10)
    assert await points(h, "poor") == (3, 3)
    sent = await texts(h)
    assert f"@穷{MENTION}积分不够哦：参加这次抽奖需要 10 积分，你现在有 3 积分。" in sent
    assert f"@零{MENTION}积分不够哦：参加这次抽奖需要 10 积分，你现在有 0 积分。" in sent


# -- the draw -----------------------------------------------------------------------------------------------------


async def enter_all(h, ids):
    for i in ids:
        await h.say(i, "抽奖", name=f"名{i}", after_s=1)


async def test_draw_at_deadline_mentions_winners_reveals_seed_and_is_reproducible(h):
    await start(h, "/lottery start 保温杯 winners=2 duration=30m")
    ids = [f"u{i}" for i in range(7)]
    await enter_all(h, ids)
    await h.settle()
    before = len(h.sent)
    await h.clock.advance_to(START + timedelta(minutes=29, seconds=59))
    assert len(h.sent) == before and (await lotteries(h))[0].status == "open"
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.settle()
    (lot,) = await lotteries(h)
    assert lot.status == "drawn" and lot.drawn_at == START + timedelta(minutes=30)
    expected = reference_draw(lot.seed, ids, 2)
    assert lot.winner_ids == expected == draw_winners(lot.seed, ids, 2)
    (announcement,) = h.sent[before:]
    assert announcement.at >= START + timedelta(minutes=30)
    assert announcement.message.mentions == tuple(expected)
    assert announcement.text.startswith("".join(f"@名{w}{MENTION}" for w in expected) + "恭喜中奖")
    assert lot.seed in announcement.text and lot.commitment in announcement.text
    assert "/lottery verify 1" in announcement.text
    assert h.app.scheduler.fired == [("lottery:1:draw", lot.deadline)]
    await h.say("u9", "抽奖", after_s=5)  # after the draw the keyword is ordinary chatter again
    assert len(await texts(h)) == before + 1


async def test_draw_is_sent_transactional_so_daily_caps_do_not_swallow_it(db_url):
    raw = {**RAW, "governor": {"room_daily_caps": {"total": 0}}}  # not one proactive message a day
    async with Harness(make_config(raw), db_url) as h:
        await start(h)
        await enter_all(h, ["u1"])
        await h.clock.advance_to(START + timedelta(minutes=30))
        sent = await texts(h)
        assert "恭喜中奖" in sent[-1]
        assert h.app.governor.dropped == {}
        h.app.governor.submit(OutgoingMessage("一条普通的定时消息", room_id="g1"), priority=Priority.SCHEDULED)
        await h.settle()
        assert h.app.governor.dropped == {"cap:total": 1}  # the cap is really there


async def test_fewer_entrants_than_winners_all_win(h):
    await start(h, "/lottery start 贴纸 winners=5")
    await enter_all(h, ["b", "a", "c"])
    await h.clock.advance_to(START + timedelta(minutes=30))
    sent = await texts(h)
    (lot,) = await lotteries(h)
    assert sorted(lot.winner_ids) == ["a", "b", "c"]
    assert "全部中奖" in sent[-1] and "抽出 3 名" in sent[-1]


async def test_no_entrants_says_so(h):
    await start(h)
    await h.clock.advance_to(START + timedelta(minutes=30))
    sent = await texts(h)
    (lot,) = await lotteries(h)
    assert lot.status == "drawn" and lot.winner_ids == []
    assert "没有人参与，本次没有中奖者" in sent[-1] and h.sent[-1].message.mentions == ()


async def test_early_draw_by_admin_and_the_deadline_then_does_nothing(h):
    await start(h)
    await enter_all(h, ["u1", "u2", "u3"])
    await h.say("u1", "/lottery draw", after_s=1)
    await h.say("admin1", "/抽奖 开奖", after_s=1)
    await h.settle()
    (lot,) = await lotteries(h)
    assert lot.status == "drawn" and lot.winner_ids == reference_draw(lot.seed, ["u1", "u2", "u3"], 2)
    drawn = [t for t in h.transport.texts() if "恭喜中奖" in t]
    assert len(drawn) == 1
    await h.clock.advance_to(START + timedelta(hours=2))
    await h.settle()
    assert [t for t in h.transport.texts() if "恭喜中奖" in t] == drawn
    assert h.app.scheduler.fired == []
    assert (await h.app.scheduler.get("lottery:1:draw")).status == "cancelled"
    await h.say("admin1", "/lottery draw", after_s=1)
    assert (await texts(h))[-1].endswith("本群现在没有进行中的抽奖。")


async def test_cancel_refunds_exactly_once_and_never_draws(h):
    for m in ("u1", "u2"):
        await give_points(h, m, 15)
    await start(h, "/lottery start 大奖 winners=1 cost=10")
    await enter_all(h, ["u1", "u2"])
    assert await points(h, "u1") == (5, 5)
    await h.say("admin1", "/lottery cancel", after_s=1)
    await h.say("admin1", "/抽奖 取消", after_s=1)
    await h.clock.advance_to(START + timedelta(hours=1))
    sent = await texts(h)
    (lot,) = await lotteries(h)
    assert lot.status == "cancelled" and lot.winner_ids is None
    assert "抽奖 #1「大奖」已取消，不再开奖。已给 2 位参与者退还 10 积分。" in sent
    assert sent.count("@admin1\u2005本群现在没有进行中的抽奖。") == 1  # the second cancel
    for m in ("u1", "u2"):
        assert await points(h, m) == (15, 15)
    assert not any("恭喜中奖" in t or lot.seed in t for t in sent)
    # the room is free again
    await start(h, "/lottery start 下一个")
    assert [x.status for x in await lotteries(h)] == ["cancelled", "open"]


async def test_status_for_everyone(h):
    await h.say("u1", "/lottery status")
    await start(h)
    await enter_all(h, ["u1", "u2"])
    await h.say("u5", "/抽奖 状态", name="小五", after_s=1)
    sent = await texts(h)
    assert sent[0].endswith("本群现在没有进行中的抽奖。")
    assert to(h, "u5")[-1] == (f"@小五{MENTION}抽奖 #1：奖品「保温杯」2 名；已有 2 人参与；发送「抽奖」参与；"
                        "11月23日 09:30 开奖。")


# -- verification -------------------------------------------------------------------------------------------------


async def test_verify_in_chat_before_and_after_and_detects_tampering(h):
    await start(h)
    await enter_all(h, ["u1", "u2", "u3", "u4"])
    await h.say("u1", "/lottery verify 1", after_s=1)
    await h.settle()
    (lot,) = await lotteries(h)
    (early,) = [t for t in h.transport.texts() if "还没开奖" in t]
    assert "种子保密中" in early and lot.commitment in early and lot.seed not in early
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.say("u2", "/抽奖 验证 1", after_s=1)
    sent = await texts(h)
    assert lot.seed in sent[-1] and "结论：验证通过" in sent[-1] and "不一致" not in sent[-1]
    # someone edits the stored winners: verification must say so
    async with h.app.services.sessions() as s, s.begin():
        row = await s.get(Lottery, 1)
        row.winner_ids = ["u4", "u3"] if row.winner_ids != ["u4", "u3"] else ["u1", "u2"]
    await h.say("u2", "/lottery verify", after_s=1)
    sent = await texts(h)
    assert "与公布结果不一致❌" in sent[-1] and "验证未通过" in sent[-1]
    await h.say("u2", "/lottery verify 99", after_s=1)
    assert (await texts(h))[-1].endswith("本群没有编号为 99 的抽奖。")
    await h.say("u2", "/lottery verify 1", room="g2", after_s=1)  # other rooms don't see it
    assert (await texts(h))[-1].endswith("本群没有编号为 1 的抽奖。")


def run_cli(*args):
    return subprocess.run([sys.executable, "-m", "bot", "lottery", "verify", *args], check=False, cwd=ROOT,
                          capture_output=True, text=True, timeout=120)


async def test_verify_command_line(h, db_url, tmp_path):
    await start(h)
    await enter_all(h, ["u1", "u2", "u3"])
    default_config = tmp_path / "empty.toml"  # every setting at its default
    default_config.write_text("", encoding="utf-8")
    default_config = str(default_config)
    early = run_cli("1", "--config", default_config, "--db", db_url)
    assert early.returncode == 2 and "not drawn" in early.stdout
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.settle()
    await h.app.activity.flush()
    (lot,) = await lotteries(h)
    plain_path = db_url.removeprefix("sqlite+aiosqlite:///")
    done = run_cli("1", "--config", default_config, "--db", plain_path)
    assert done.returncode == 0, done.stderr
    assert f"seed: {lot.seed}" in done.stdout and "sha256(seed) == commitment: yes" in done.stdout
    assert f"winners recomputed: {' '.join(lot.winner_ids)}" in done.stdout
    assert done.stdout.strip().endswith("result: MATCH")
    async with h.app.services.sessions() as s, s.begin():
        (await s.get(Lottery, 1)).commitment = commitment("not the seed")
    bad = run_cli("1", "--config", default_config, "--db", db_url)
    assert bad.returncode == 1 and "sha256(seed) == commitment: NO" in bad.stdout and "MISMATCH" in bad.stdout
    gone = run_cli("7", "--config", default_config, "--db", db_url)
    assert gone.returncode == 2 and "not found" in gone.stderr


# -- restarts -----------------------------------------------------------------------------------------------------


async def test_restart_after_the_deadline_draws_once_at_start_and_never_again(db_url):
    async with Harness(config(), db_url) as h1:
        await start(h1)
        await enter_all(h1, ["u1", "u2", "u3"])
        await h1.settle()
    later = START + timedelta(hours=2)
    async with Harness(config(), db_url, start=later) as h2:
        await h2.say("u4", "抽奖", after_s=1)  # before the catch-up ran: too late to enter
        await h2.settle()
        (lot,) = await lotteries(h2)
        assert lot.status == "drawn" and lot.winner_ids == reference_draw(lot.seed, ["u1", "u2", "u3"], 2)
        assert h2.app.scheduler.fired == [("lottery:1:draw", START + timedelta(minutes=30))]
        draws = [t for t in h2.transport.texts() if "恭喜中奖" in t]
        assert len(draws) == 1 and lot.seed in draws[0]
        assert await entries(h2) == ["u1", "u2", "u3"]
    async with Harness(config(), db_url, start=later + timedelta(hours=1)) as h3:
        await h3.clock.advance(3600)
        await h3.settle()
        assert h3.app.scheduler.fired == [] and h3.sent == []
        assert (await lotteries(h3))[0].drawn_at == lot.drawn_at
        async with h3.app.services.sessions() as s:
            job = (await s.execute(select(ScheduledJob).where(ScheduledJob.key == "lottery:1:draw"))).scalar_one()
        assert (job.status, job.run_count) == ("done", 1)


async def test_restart_before_the_deadline_keeps_the_keyword_working(db_url):
    async with Harness(config(), db_url) as h1:
        await start(h1)
        await enter_all(h1, ["u1"])
        await h1.settle()
    async with Harness(config(), db_url, start=START + timedelta(minutes=10)) as h2:
        await h2.say("u2", "抽奖", name="小王")
        await h2.clock.advance_to(START + timedelta(minutes=30))
        await h2.settle()
        (lot,) = await lotteries(h2)
        assert await entries(h2) == ["u1", "u2"] and lot.status == "drawn"
        assert any("参与成功" in t for t in h2.transport.texts())


# -- pure parts ---------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("text, minutes", [("30m", 30), ("2h", 120), ("1h30m", 90), ("1d", 1440), ("45", 45),
                                           ("30分钟", 30), ("2小时", 120), ("1天", 1440), ("90s", 1.5)])
def test_durations(text, minutes):
    assert parse_duration(text) == timedelta(minutes=minutes)


@pytest.mark.parametrize("text", ["forever", "-5m", "", "m", "5x", "30m!", "1.5h"])
def test_bad_durations(text):
    assert parse_duration(text) is None


def test_draw_depends_on_seed_only_through_the_documented_procedure():
    ids = [f"wxid_{i}" for i in range(50)]
    seed = "ab" * 32
    assert draw_winners(seed, ids, 5) == reference_draw(seed, ids, 5)
    assert draw_winners(seed, list(reversed(ids)) + ids[:3], 5) == draw_winners(seed, ids, 5)  # order, duplicates
    assert draw_winners("cd" * 32, ids, 5) != draw_winners(seed, ids, 5)
    assert len(set(draw_winners(seed, ids, 50))) == 50 and draw_winners(seed, [], 3) == []


async def test_settings_give_the_defaults_and_bad_settings_stop_the_start(db_url):
    raw = {**RAW, "skills": {"lottery": {"keyword": "参加", "duration": "1h", "max_winners": 2}}}
    async with Harness(make_config(raw), db_url) as h:
        await start(h, "/lottery start 奖品")
        await h.say("admin1", "/lottery start 奖品 winners=3", room="g2")
        sent = await texts(h)
        (lot,) = await lotteries(h)
        assert (lot.keyword, lot.deadline, lot.winners) == ("参加", START + timedelta(hours=1), 1)
        assert "中奖人数要在 1 到 2 之间" in sent[-1]
    bad = {**RAW, "skills": {"lottery": {"duration": "forever"}}}
    with pytest.raises(ConfigError, match="skills.lottery.duration"):
        async with Harness(make_config(bad), db_url):
            pass


# -- minimum tier -------------------------------------------------------------------------------------------------


async def test_a_minimum_tier_admits_that_tier_and_above_only(db_url):
    from skills.tiers.models import MemberTier

    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "lottery", "tiers"]},
           "skills": {"lottery": {"confirm_window_s": 30.0}}}
    async with Harness(make_config(raw), db_url) as h:
        async with h.app.services.sessions() as s, s.begin():
            for member, tier in (("core1", "core"), ("act1", "active"), ("quiet1", "silent")):
                s.add(MemberTier(member_id=member, tier=tier, since=START))
        await start(h, "/抽奖 开始 保温杯 winners=2 duration=30m keyword=抽奖 等级=活跃")
        (lot,) = await lotteries(h)
        assert lot.min_tier == "active" and "仅限「活跃」及以上等级的会员" in (await texts(h))[0]
        for member in ("core1", "act1", "quiet1", "nobody"):
            await h.say(member, "抽奖", name=member, after_s=1)
        assert await entries(h) == ["act1", "core1"]
        await texts(h)
        for member in ("quiet1", "nobody"):
            assert to(h, member) == ["@" + member + MENTION + "这次抽奖仅限「活跃」及以上等级的会员参与，多多参与群里的活动就能升级哦～"]


async def test_a_minimum_tier_needs_the_tiers_skill_and_a_known_tier(h):
    await start(h, "/lottery start 保温杯 tier=vip")
    await start(h, "/lottery start 保温杯 tier=active")  # tiers is not enabled in this bot
    sent = await texts(h)
    assert "tier 请写最低会员等级" in sent[0] and "需要先启用会员分层" in sent[1]
    assert await lotteries(h) == []
