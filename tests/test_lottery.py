"""The provably fair lottery, through the whole bot on a virtual clock (and the verify command line)."""

import ast
import hashlib
import hmac
import logging
import os
import re
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select, update

from bot.config import ConfigError
from bot.events import OutgoingMessage, Priority
from skills.lottery.draw import commitment, draw_winners, parse_duration, parse_id
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
async def h(harness):
    return await harness(config())


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


async def aliases(h, lottery_id=1) -> dict[str, str]:
    """member id → alias"""
    async with h.app.services.sessions() as s:
        rows = await s.execute(select(LotteryEntry.member_id, LotteryEntry.alias)
                               .where(LotteryEntry.lottery_id == lottery_id))
        return {r.member_id: r.alias for r in rows}


def seed_of(lot: Lottery) -> str:
    """The seed as documented in skills/lottery/draw.py, from the key in the environment (tests/conftest.py)."""
    key = os.environ["BOT_LOTTERY_KEY"].encode()
    return hmac.new(key, f"{lot.nonce}:{lot.id}".encode(), hashlib.sha256).hexdigest()


async def reference_winners(h, lot: Lottery) -> list[str]:
    """The winners, as member ids, redone from the seed and the published aliases."""
    by_alias = {a: m for m, a in (await aliases(h, lot.id)).items()}
    return [by_alias[a] for a in reference_draw(seed_of(lot), list(by_alias), lot.winners)]


def list_hash(alias_list) -> str:
    return hashlib.sha256("\n".join(sorted(alias_list)).encode()).hexdigest()


def no_errors(h, caplog) -> None:
    assert h.app.errors.count == 0
    assert [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR] == []


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
    assert "保温杯" in text and "2 名" in text and "「抽奖」" in text and "11月23日 09:30（到点自动开奖，不会提前）" in text
    assert lot.commitment in text and hashlib.sha256(seed_of(lot).encode()).hexdigest() == lot.commitment
    assert lot.seed is None and re.fullmatch(r"[0-9a-f]{64}", lot.nonce) and seed_of(lot) not in text
    assert "/lottery entrants 1" in text and "/lottery verify 1" in text
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
    assert lot.seed == seed_of(lot)  # revealed with the draw
    listed = await aliases(h)
    assert sorted(listed) == sorted(ids) and all(re.fullmatch(r"[0-9a-f]{8}", a) for a in listed.values())
    expected = await reference_winners(h, lot)
    assert lot.winner_ids == expected and len(expected) == 2
    assert lot.entrants_hash == list_hash(listed.values())
    (announcement,) = h.sent[before:]
    assert announcement.at >= START + timedelta(minutes=30)
    assert announcement.message.mentions == tuple(expected)
    assert announcement.text.startswith("".join(f"@名{w}{MENTION}" for w in expected) + "恭喜中奖")
    assert lot.seed in announcement.text and lot.commitment in announcement.text
    assert f"参与名单（7 人）的 SHA-256：{lot.entrants_hash}" in announcement.text
    assert f"名{expected[0]}（{listed[expected[0]]}）" in announcement.text
    assert not any(i in announcement.text.replace(f"@名{i}", "").replace(f"名{i}（", "") for i in ids)
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


async def test_no_draw_before_the_announced_deadline(h):
    """An admin can't pick the moment (one second after a friend entered): /lottery draw is refused until the
    deadline, and the draw happens then, once."""
    await start(h)
    await enter_all(h, ["u1"])
    await h.say("u1", "/lottery draw", after_s=1)
    await h.say("admin1", "/抽奖 开奖", after_s=1)
    await texts(h)
    assert any(t.endswith("只有管理员可以使用。") for t in to(h, "u1"))
    assert to(h, "admin1")[-1] == ("@admin1\u2005抽奖 #1 的开奖时间是开始时公布的 11月23日 09:30，为了公平不能提前开奖，到点会自动开奖。"
                        "如需中止，可以用 /lottery cancel 取消（退还积分）。")
    (lot,) = await lotteries(h)
    assert lot.status == "open" and lot.winner_ids is None and lot.seed is None
    assert (await h.app.scheduler.get("lottery:1:draw")).status == "active"
    await enter_all(h, ["u2", "u3"])  # the others still get in
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.settle()
    (lot,) = await lotteries(h)
    assert lot.status == "drawn" and lot.winner_ids == await reference_winners(h, lot)
    assert await entries(h) == ["u1", "u2", "u3"]
    assert h.app.scheduler.fired == [("lottery:1:draw", lot.deadline)]
    await h.say("admin1", "/lottery draw", after_s=1)
    assert (await texts(h))[-1].endswith("本群现在没有进行中的抽奖。")
    assert sum("恭喜中奖" in t for t in h.transport.texts()) == 1


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
    # a cancelled lottery reveals its seed: a cancel-and-restart can be checked afterwards
    assert lot.seed == seed_of(lot) and lot.entrants_hash == list_hash((await aliases(h)).values())
    assert (f"抽奖 #1「大奖」已取消，不再开奖。已给 2 位参与者退还 10 积分。\n公开随机种子：{lot.seed}，取消时 2 人参与，"
            f"名单 SHA-256：{lot.entrants_hash}。可用 /lottery verify 1 核对。") in sent
    assert sent.count("@admin1\u2005本群现在没有进行中的抽奖。") == 1  # the second cancel
    for m in ("u1", "u2"):
        assert await points(h, m) == (15, 15)
    assert not any("恭喜中奖" in t for t in sent)
    await h.say("u1", "/lottery verify 1", after_s=1)
    verified = (await texts(h))[-1]
    assert "SHA-256(种子) 与开始时的承诺一致✅" in verified and "与取消时公布的一致✅" in verified
    assert "本会中奖：" in verified and "种子和名单都与公布的一致" in verified
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
    assert "种子保密中" in early and lot.commitment in early and seed_of(lot) not in early
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.say("u2", "/抽奖 验证 1", after_s=1)
    sent = await texts(h)
    (lot,) = await lotteries(h)
    assert lot.seed in sent[-1] and "结论：验证通过" in sent[-1] and "不一致" not in sent[-1]
    assert f"参与名单 4 人，SHA-256 {lot.entrants_hash}，与开奖时公布的一致✅" in sent[-1]
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
    assert f"sha256(entrants) == announced: yes ({lot.entrants_hash})" in done.stdout
    assert done.stdout.strip().endswith("result: MATCH")
    async with h.app.services.sessions() as s, s.begin():
        (await s.get(Lottery, 1)).commitment = commitment("not the seed")
    bad = run_cli("1", "--config", default_config, "--db", db_url)
    assert bad.returncode == 1 and "sha256(seed) == commitment: NO" in bad.stdout and "MISMATCH" in bad.stdout
    gone = run_cli("7", "--config", default_config, "--db", db_url)
    assert gone.returncode == 2 and "not found" in gone.stderr
    for bad_id in ("³", "99999999999999999999"):
        refused = run_cli(bad_id, "--config", default_config, "--db", db_url)
        assert refused.returncode == 2 and "invalid" in refused.stderr and "Traceback" not in refused.stderr


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
        assert lot.status == "drawn" and lot.winner_ids == await reference_winners(h2, lot)
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


# -- the key ------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [None, "too-short"])
async def test_without_the_key_no_lottery_starts(db_url, monkeypatch, caplog, value):
    if value is None:
        monkeypatch.delenv("BOT_LOTTERY_KEY")
    else:
        monkeypatch.setenv("BOT_LOTTERY_KEY", value)
    with caplog.at_level(logging.WARNING, logger="skills.lottery"):
        async with Harness(config(), db_url) as h:
            await start(h)
            (text,) = await texts(h)
            assert await lotteries(h) == [] and await h.app.scheduler.get("lottery:1:draw") is None
            assert "暂时不能发起抽奖：服务器还没有配置抽奖密钥（环境变量 BOT_LOTTERY_KEY）" in text
            no_errors(h, caplog)
    (warning,) = [r.getMessage() for r in caplog.records if "BOT_LOTTERY_KEY" in r.getMessage()]
    assert ("is not set" if value is None else "shorter than 32 characters") in warning


async def test_the_database_alone_does_not_tell_the_seed(h):
    """Everything stored about an open lottery, read by someone with the database: no seed, nor anything that
    gives it without the key; the commitment is to the seed derived with the key."""
    await start(h)
    await enter_all(h, ["u1", "u2"])
    (lot,) = await lotteries(h)
    seed = seed_of(lot)
    assert commitment(seed) == lot.commitment
    async with h.app.services.sessions() as s:
        stored = [*(await s.execute(select(Lottery.__table__))).one(),
                  *(v for row in (await s.execute(select(LotteryEntry.__table__))).all() for v in row),
                  *(v for row in (await s.execute(select(ScheduledJob.__table__))).all() for v in row)]
    assert not any(seed in str(v) for v in stored)
    # the seed depends on the key: another key gives another seed, which the commitment rules out
    other = hmac.new(b"another key, same nonce, same id.", f"{lot.nonce}:{lot.id}".encode(), hashlib.sha256)
    assert commitment(other.hexdigest()) != lot.commitment


async def test_a_changed_key_never_draws_with_another_seed_and_a_restart_with_the_key_draws(db_url, monkeypatch,
                                                                                           caplog):
    async with Harness(config(), db_url) as h1:
        await start(h1)
        await enter_all(h1, ["u1", "u2", "u3"])
        await h1.settle()
    right = os.environ["BOT_LOTTERY_KEY"]
    monkeypatch.setenv("BOT_LOTTERY_KEY", "a-different-key-of-enough-length-0123456789")
    async with Harness(config(), db_url, start=START + timedelta(minutes=20)) as h2:
        await h2.clock.advance_to(START + timedelta(minutes=31))
        await h2.say("admin1", "/lottery draw")
        sent = await texts(h2)
        assert sent == ["@admin1\u2005暂时无法开奖：服务器的抽奖密钥缺失或已更换，算不出开始时承诺的随机种子。请联系运维恢复密钥，"
                        "或用 /lottery cancel 取消（退还积分）。"]
        (lot,) = await lotteries(h2)
        assert lot.status == "open" and lot.seed is None
        no_errors(h2, caplog)
        assert any("can't be derived" in r.getMessage() for r in caplog.records if r.levelno == logging.WARNING)
    monkeypatch.setenv("BOT_LOTTERY_KEY", right)
    async with Harness(config(), db_url, start=START + timedelta(hours=3)) as h3:
        await h3.settle()
        (lot,) = await lotteries(h3)
        assert lot.status == "drawn" and lot.seed == seed_of(lot) and lot.winner_ids == await reference_winners(h3, lot)
        assert h3.app.scheduler.fired == [("lottery:1:draw", lot.deadline)]
        assert sum("恭喜中奖" in t for t in h3.transport.texts()) == 1


# -- the published entrant list -------------------------------------------------------------------------------------


async def test_entrants_are_published_by_alias_and_name_never_by_wechat_id_and_the_draw_uses_that_list(h):
    await start(h, "/lottery start 保温杯 winners=3 duration=30m")
    ids = [f"wxid_{i:02d}" for i in range(35)]
    for n, i in enumerate(ids):
        await h.say(i, "抽奖", name=f"会员{n}", after_s=1)
    await h.say("faceless", "抽奖", name="", after_s=1)  # no display name: stored as the id, never shown
    await h.say("u1", "/lottery entrants 1", after_s=1)
    await h.say("u1", "/抽奖 名单 1 2", after_s=1)
    await h.say("u1", "/lottery entrants", after_s=1)  # the room's latest
    await texts(h)
    page1, page2, latest = [s.text for s in h.sent if "参与名单：共" in s.text]
    assert page1 == latest
    listed = await aliases(h)
    shown = re.findall(r"^([0-9a-f]{8}) (.+)$", page1 + "\n" + page2, re.MULTILINE)
    assert sorted(a for a, _ in shown) == [a for a, _ in shown] == sorted(listed.values())
    assert {a: n for a, n in shown} == ({listed[i]: f"会员{n}" for n, i in enumerate(ids)}
                                        | {listed["faceless"]: "（未显示昵称）"})
    assert "共 36 人，按编号排序，第 1/2 页" in page1 and "下一页：/lottery entrants 1 2" in page1
    assert "第 2/2 页" in page2 and "下一页" not in page2 and "名单的 SHA-256 在开奖时公布" in page2
    assert not any(i in page1 + page2 for i in (*ids, "faceless"))
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.say("u1", "/lottery entrants 1 2", after_s=1)
    await texts(h)
    (lot,) = await lotteries(h)
    (drawn,) = [s.text for s in h.sent if "恭喜中奖" in s.text]
    assert lot.entrants_hash == list_hash(a for a, _ in shown)
    assert f"参与名单（36 人）的 SHA-256：{lot.entrants_hash}" in drawn
    assert lot.entrants_hash in h.sent[-1].text  # the list afterwards names the announced hash
    by_alias = {a: m for m, a in listed.items()}
    assert lot.winner_ids == [by_alias[a] for a in reference_draw(lot.seed, [a for a, _ in shown], 3)]


async def test_two_entrants_with_the_same_alias_get_distinct_ones(h):
    """Aliases are 8 hex characters: two entrants may share one (a birthday search finds a pair in a moment);
    the later gets the next attempt's, so the published list still names everyone once."""
    from skills.lottery.draw import alias

    await start(h)
    salt = "00" * 16
    async with h.app.services.sessions() as s, s.begin():
        await s.execute(update(Lottery).values(alias_salt=salt))
    seen: dict[str, str] = {}
    i = 0
    while True:
        member = f"m{i}"
        a = alias(salt, member)
        if a in seen:
            first, second = seen[a], member
            break
        seen[a] = member
        i += 1
    await enter_all(h, [first, second])
    listed = await aliases(h)
    assert listed == {first: alias(salt, first), second: alias(salt, second, 1)}
    assert len(set(listed.values())) == 2
    await h.clock.advance_to(START + timedelta(minutes=30))
    await h.settle()
    (lot,) = await lotteries(h)
    assert sorted(lot.winner_ids) == sorted([first, second])


# -- a draw missed for too long ---------------------------------------------------------------------------------------


async def test_a_draw_missed_beyond_the_grace_is_cancelled_with_refunds_and_said_so(db_url, caplog):
    async with Harness(config(), db_url) as h1:
        for m in ("u1", "u2"):
            await give_points(h1, m, 15)
        await start(h1, "/lottery start 大奖 winners=1 cost=10")
        await enter_all(h1, ["u1", "u2"])
        await h1.settle()
    back = START + timedelta(minutes=30) + timedelta(days=8, hours=3, minutes=20)  # grace: 7 days
    async with Harness(config(), db_url, start=back) as h2:
        await h2.settle()
        (lot,) = await lotteries(h2)
        assert lot.status == "cancelled" and lot.winner_ids is None and lot.seed == seed_of(lot)
        for m in ("u1", "u2"):
            assert await points(h2, m) == (15, 15)
        (text,) = h2.transport.texts()
        assert text.startswith("抽奖 #1「大奖」原定的开奖时间已过去 8天3小时（机器人停机，错过了开奖），为公平起见本次抽奖取消，"
                               "不再开奖。已给 2 位参与者退还 10 积分。")
        assert lot.seed in text
        assert h2.sent[0].message.room_id == "g1"
        assert (await h2.app.scheduler.get("lottery:1:draw")).status == "cancelled"  # not skipped as "missed"
        no_errors(h2, caplog)
        await start(h2, "/lottery start 下一个")  # the room is free again
        assert [x.status for x in await lotteries(h2)] == ["cancelled", "open"]
    async with Harness(config(), db_url, start=back + timedelta(hours=1)) as h3:  # nothing twice
        await h3.settle()
        assert not any("#1" in t for t in h3.transport.texts()) and await points(h3, "u1") == (15, 15)
        assert [x.status for x in await lotteries(h3)] == ["cancelled", "drawn"]


async def test_a_lottery_whose_draw_was_skipped_before_is_drawn_late_within_the_grace(db_url):
    """A database from before: the scheduler had skipped the draw (status "missed") and the lottery stayed open.
    Within the grace it is drawn at the next start; the room is not blocked forever."""
    async with Harness(config(), db_url) as h1:
        await start(h1)
        await enter_all(h1, ["u1", "u2", "u3"])
        await h1.settle()
    async with Harness(config(), db_url, start=START + timedelta(hours=1)) as h0:
        async with h0.app.services.sessions() as s, s.begin():
            await s.execute(update(ScheduledJob).where(ScheduledJob.key == "lottery:1:draw").values(status="missed"))
    async with Harness(config(), db_url, start=START + timedelta(hours=2)) as h2:
        await h2.settle()
        (lot,) = await lotteries(h2)
        assert lot.status == "drawn" and lot.winner_ids == await reference_winners(h2, lot)
        assert sum("恭喜中奖" in t for t in h2.transport.texts()) == 1


# -- input that once made tracebacks -----------------------------------------------------------------------------------


@pytest.mark.parametrize("command, answer", [
    ("/lottery verify ³", "请写抽奖编号（数字），例如 /lottery verify 12。"),
    ("/lottery verify 99999999999999999999", "请写抽奖编号（数字），例如 /lottery verify 12。"),
    ("/抽奖 验证 ＃³", "请写抽奖编号（数字），例如 /lottery verify 12。"),
    ("/lottery entrants 99999999999999999999", "请写抽奖编号（数字），例如 /lottery entrants 12。"),
    ("/lottery entrants 1 ³", "页码请写正整数"),
    ("/lottery start 奖品 winners=³", "winners 请写中奖人数"),
    ("/lottery start 奖品 cost=³", "cost 请写参与要扣的积分"),
    ("/lottery start 奖品 cost=99999999999999999999", "cost 请写参与要扣的积分"),
    ("/lottery start 奖品 duration=³", "duration 请写成"),
])
async def test_odd_numbers_get_a_polite_usage_answer_and_no_traceback(h, caplog, command, answer):
    await h.say("admin1", command)
    (text,) = await texts(h)
    assert answer in text and "用法：" in text
    no_errors(h, caplog)
    assert await lotteries(h) == []


@pytest.mark.parametrize("raw, value", [("12", 12), ("#12", 12), ("＃7", 7), ("³", None), ("-1", None), ("0", None),
                                        ("1" * 20, None), ("١٢", None), ("", None)])
def test_parse_id(raw, value):
    assert parse_id(raw) == value


# -- upgrading with a lottery open ------------------------------------------------------------------------------------


async def test_a_lottery_open_before_the_upgrade_draws_by_the_legacy_procedure(db_url):
    from alembic import command

    from storage.db import create_engine
    from storage.migrate import alembic_config

    engine = create_engine(db_url)

    def to_0007(conn) -> None:
        cfg = alembic_config()
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "0007")

    legacy_seed = "ab" * 32
    async with engine.begin() as conn:
        await conn.run_sync(to_0007)
        columns = {c["name"] for c in await conn.run_sync(
            lambda c: __import__("sqlalchemy").inspect(c).get_columns("lotteries"))}
        assert "nonce" not in columns  # really the schema from before
        # the columns of revision 0007 only (SQLAlchemy sends no others: the new ones have no defaults)
        await conn.execute(Lottery.__table__.insert().values(
            room_id="g1", prize="旧奖品", winners=2, keyword="抽奖", cost=0, commitment=commitment(legacy_seed),
            seed=legacy_seed, status="open", created_by="admin1", created_at=START,
            deadline=START + timedelta(minutes=30)))
    await engine.dispose()
    async with Harness(config(), db_url, start=START + timedelta(minutes=5)) as h:
        await enter_all(h, ["u1", "u2", "u3"])
        await h.say("u1", "/lottery entrants 1", after_s=1)
        await h.clock.advance_to(START + timedelta(minutes=30))
        await h.settle()
        (lot,) = await lotteries(h)
        assert lot.nonce is None and lot.seed == legacy_seed and lot.status == "drawn"
        assert lot.winner_ids == reference_draw(legacy_seed, ["u1", "u2", "u3"], 2)
        assert any("是升级前发起的，按旧规则开奖" in t for t in h.transport.texts())
        (drawn,) = [t for t in h.transport.texts() if "恭喜中奖" in t]
        assert legacy_seed in drawn and "把参与者 id 排序" in drawn
        await h.say("u1", "/lottery verify 1", after_s=1)
        assert "结论：验证通过" in (await texts(h))[-1]


# -- no SQL in the handlers -------------------------------------------------------------------------------------------


def test_the_handlers_hold_no_sql_and_the_skill_no_storage_internals():
    """Queries live in skills/lottery/store.py (the hot ones through storage.fast); the handlers import no query
    builder, and nothing in the skill imports storage.prepared."""
    package = ROOT / "skills" / "lottery"

    def imported(path):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module:
                yield from (f"{node.module}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                yield from (a.name for a in node.names)

    handlers = set(imported(package / "__init__.py"))
    assert {n for n in handlers if n.startswith("sqlalchemy") and not n.startswith("sqlalchemy.exc")
            and not n.startswith("sqlalchemy.ext.asyncio")} == set()
    assert not any(n.startswith("storage.prepared") for p in package.rglob("*.py") for n in imported(p))
    assert "storage.fast" in set(imported(package / "store.py"))
