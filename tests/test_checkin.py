"""The check-in and points skill on the real bot (virtual clock, real SQLite file, recording transport)."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import datetime, timedelta

import pytest
from sqlalchemy import func, select

from bot.app import check_skills
from bot.config import ConfigError
from bot.events import MessageReceived, Person
from storage.models import Activity
from skills.checkin.models import Checkin, Redemption, RewardStock
from storage.models_points import PointsBalance, PointsLedger
from tests.support import START, TZ, Harness, fast_governor, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

WINDOW = 30.0


def config(**checkin):
    settings = {"base_points": 5, "streak_bonus": {"3": 10, "7": 30}, "coalesce_window_s": WINDOW,
                "rewards": {"帆布袋": {"cost": 50, "stock": 3}, "贴纸": {"cost": 10, "stock": 1}}}
    settings.update(checkin)
    raw = {"bot": {"admins": ["admin1"], "skills": ["ping", "checkin"]},
           "rooms": {"g2": {"admins": ["roomadmin", "coadmin"]}, "g3": {"admins": ["otheradmin"]}},
           "skills": {"checkin": settings}}
    return replace(make_config(raw), governor=fast_governor())


@pytest.fixture
async def h(harness):
    return await harness(config())


def local(day: int, hour: int, minute: int = 0, second: int = 0) -> datetime:
    return datetime(2026, 11, day, hour, minute, second, tzinfo=TZ)


async def at(h: Harness, when: datetime, user: str, text: str, *, room: str | None = "g1", name: str | None = None,
             mention_ids: tuple[str, ...] = ()) -> None:
    await h.handle(MessageReceived(at=when, sender=Person(user, name or user), text=text, room_id=room,
                                   room_topic=f"topic-{room}" if room else None, mention_ids=mention_ids))


def msg(user: str, text: str, when: datetime, room: str | None = None) -> MessageReceived:
    return MessageReceived(at=when, sender=Person(user, user), text=text, room_id=room)


async def texts(h: Harness) -> list[str]:
    await h.settle()
    return h.transport.texts()


async def query(h: Harness, stmt):
    async with h.app.services.sessions() as s:
        return (await s.execute(stmt)).all()


async def balance(h: Harness, member: str) -> int:
    rows = await query(h, select(PointsBalance.balance).where(PointsBalance.member_id == member))
    return rows[0][0] if rows else 0


async def ledger(h: Harness, member: str | None = None) -> list[PointsLedger]:
    stmt = select(PointsLedger).order_by(PointsLedger.id)
    if member:
        stmt = stmt.where(PointsLedger.member_id == member)
    return [r[0] for r in await query(h, stmt)]


async def assert_balances_match_ledger(h: Harness) -> None:
    sums = dict(await query(h, select(PointsLedger.member_id, func.sum(PointsLedger.delta))
                            .group_by(PointsLedger.member_id)))
    balances = dict(await query(h, select(PointsBalance.member_id, PointsBalance.balance)))
    assert balances == sums
    assert all(v >= 0 for v in balances.values())


async def activity(h: Harness, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    return [r[0] for r in await query(h, select(Activity).where(Activity.kind == kind).order_by(Activity.id))]


# -- check-in ----------------------------------------------------------------------------------------------------

async def test_private_checkin_answers_directly_with_points_and_streak(h):
    await h.say("u1", "签到", room=None)
    assert await texts(h) == ["签到成功！+5 积分，已连续签到 1 天，当前积分 5。"]
    assert h.sent[0].message.user_id == "u1"
    (row,) = await ledger(h, "u1")
    assert (row.delta, row.source, row.ref_id) == (5, "checkin", "u1:2026-11-23")


async def test_all_three_spellings_check_in_once_per_day(h):
    await h.say("u1", "/checkin", room=None)
    await h.say("u1", "/签到", room=None, after_s=5)
    await h.say("u1", "签到", room=None, after_s=5)
    first, second, third = await texts(h)
    assert first.startswith("签到成功")
    assert second == third == "今天已经签过到啦，已连续签到 1 天，明天再来哦～"
    assert await balance(h, "u1") == 5


async def test_streak_bonuses_and_reset_after_a_missed_day(h):
    # days 23..26 in a row (bonus on day 3), skip the 27th, back on the 28th: the streak starts over
    for day in (23, 24, 25, 26, 28):
        await at(h, local(day, 10), "u1", "签到", room=None)
    assert await texts(h) == [
        "签到成功！+5 积分，已连续签到 1 天，当前积分 5。",
        "签到成功！+5 积分，已连续签到 2 天，当前积分 10。",
        "签到成功！+15 积分（含连续签到奖励 10），已连续签到 3 天，当前积分 25。",
        "签到成功！+5 积分，已连续签到 4 天，当前积分 30。",
        "签到成功！+5 积分，已连续签到 1 天，当前积分 35。",
    ]
    streaks = await query(h, select(Checkin.local_date, Checkin.streak).order_by(Checkin.local_date))
    assert [tuple(r) for r in streaks] == [("2026-11-23", 1), ("2026-11-24", 2), ("2026-11-25", 3),
                                           ("2026-11-26", 4), ("2026-11-28", 1)]
    await assert_balances_match_ledger(h)


async def test_seventh_day_bonus(h):
    for day in range(23, 30):
        await at(h, local(day, 9), "u1", "签到", room=None)
    assert (await texts(h))[-1] == "签到成功！+35 积分（含连续签到奖励 30），已连续签到 7 天，当前积分 75。"


async def test_local_midnight_not_utc_decides_the_day(h):
    # 23:59 and 00:01 Shanghai time are two days (one UTC day); 07:59 and 08:01 are one day (two UTC days)
    await at(h, local(23, 23, 59), "u1", "签到", room=None)
    await at(h, local(24, 0, 1), "u1", "签到", room=None)
    await at(h, local(25, 7, 59), "u2", "签到", room=None)
    await at(h, local(25, 8, 1), "u2", "签到", room=None)
    u1_first, u1_second, u2_first, u2_second = await texts(h)
    assert "已连续签到 1 天" in u1_first and "已连续签到 2 天" in u1_second and u1_second.startswith("签到成功")
    assert u2_first.startswith("签到成功") and u2_second.startswith("今天已经签过到啦")
    dates = await query(h, select(Checkin.member_id, Checkin.local_date).order_by(Checkin.id))
    assert [tuple(r) for r in dates] == [("u1", "2026-11-23"), ("u1", "2026-11-24"), ("u2", "2026-11-25")]


async def test_one_wallet_across_rooms_and_private_chat(h):
    await h.say("u1", "签到", room="g1", name="小李")
    await h.say("u1", "签到", room="g2", name="小李", after_s=1)
    await h.say("u1", "签到", room=None, after_s=1)
    sent = await texts(h)
    assert sent.count("今天已经签过到啦，已连续签到 1 天，明天再来哦～") == 1  # the 1-on-1 answer
    assert "小李 今天已经签过到啦，明天再来哦～" in sent  # g2, coalesced
    assert await balance(h, "u1") == 5
    assert len(await ledger(h, "u1")) == 1


async def test_group_confirmations_in_a_window_are_one_message(h):
    await h.say("u1", "签到", name="小李")
    await h.say("u2", "/签到", name="小王", after_s=10)
    await h.say("u3", "/checkin", name="小张", after_s=10)
    await h.say("u4", "签到", room="g2", name="小赵", after_s=1)  # another room: its own message
    await h.say("u5", "签到", name="小钱", after_s=15)  # 36 s after the first: the next window
    await h.settle()
    g1 = [s for s in h.sent if s.message.room_id == "g1"]
    g2 = [s for s in h.sent if s.message.room_id == "g2"]
    assert len(g1) == 2 and len(g2) == 1
    assert g1[0].text == ("签到成功 ✅\n小李 +5（连续 1 天），共 5 分\n小王 +5（连续 1 天），共 5 分\n"
                          "小张 +5（连续 1 天），共 5 分")
    assert g1[0].at == START + timedelta(seconds=WINDOW)
    assert g1[1].text == "签到成功 ✅\n小钱 +5（连续 1 天），共 5 分"
    assert g2[0].text == "签到成功 ✅\n小赵 +5（连续 1 天），共 5 分"


async def test_group_confirmation_shows_streak_and_bonus(h):
    for day in (23, 24, 25):
        await at(h, local(day, 9), "u1", "签到", name="小李")
        await h.settle()
    assert h.transport.texts()[-1] == "签到成功 ✅\n小李 +15（连续 3 天，含奖励 10），共 25 分"


async def test_already_checked_in_answers_are_coalesced_too(h):
    await h.say("u1", "签到", name="小李")
    await h.say("u2", "签到", name="小王", after_s=1)
    await h.settle()
    await h.say("u1", "签到", name="小李", after_s=60)
    await h.say("u2", "签到", name="小王", after_s=5)
    await h.say("u1", "签到", name="小李", after_s=5)  # asked twice: listed once
    sent = await texts(h)
    assert len(sent) == 2
    assert sent[1] == "小李、小王 今天已经签过到啦，明天再来哦～"
    assert await balance(h, "u1") == await balance(h, "u2") == 5


async def test_two_checkins_at_the_same_instant_award_once(h):
    when = START + timedelta(seconds=1)
    await h.clock.advance_to(when)
    await asyncio.gather(h.app.dispatcher.handle(msg("u1", "签到", when)),
                         h.app.dispatcher.handle(msg("u1", "/签到", when)))
    sent = await texts(h)
    assert sorted(t[:4] for t in sent) == ["今天已经", "签到成功"]
    assert await balance(h, "u1") == 5
    assert len(await ledger(h, "u1")) == 1
    assert len(await query(h, select(Checkin.id))) == 1
    assert h.app.errors.count == 0


async def test_many_members_checking_in_at_once_in_one_room(h):
    when = START + timedelta(seconds=1)
    await h.clock.advance_to(when)
    await asyncio.gather(*(h.app.dispatcher.handle(msg(f"u{i}", "签到", when, room="g1")) for i in range(8)))
    (text,) = await texts(h)
    assert text.count("+5（连续 1 天）") == 8
    await assert_balances_match_ledger(h)


# -- balance, rank, leaderboard -----------------------------------------------------------------------------------

async def test_points_shows_balance_streak_and_rank(h):
    for day in (23, 24):
        for user in ("u1", "u2"):
            await at(h, local(day, 9), user, "签到", room=None)
    await at(h, local(24, 9), "u3", "签到", room=None)
    await at(h, local(24, 10), "u2", "/积分", room=None)
    await at(h, local(24, 10), "u3", "/points", room=None)
    await at(h, local(24, 10), "u4", "/积分", room=None)
    await at(h, local(26, 10), "u1", "/积分", room=None)  # missed the 25th: the streak is gone
    sent = await texts(h)
    assert sent[-4] == "你的积分：10，连续签到 2 天，总排名第 1 名。今天已签到。"  # tied with u1
    assert sent[-3] == "你的积分：5，连续签到 1 天，总排名第 3 名。今天已签到。"
    assert sent[-2] == "你还没有积分哦。今天还没签到，发送「签到」领积分。"
    assert sent[-1] == "你的积分：10，连续签到 0 天，总排名第 1 名。今天还没签到，发送「签到」领积分。"


async def test_rank_lists_this_rooms_top_ten(h):
    for i in range(12):
        await h.say(f"m{i}", "签到", name=f"会员{i}", after_s=1)
    await h.say("x", "签到", room="g2", name="外人", after_s=1)
    await h.say("gone", "签到", name="走了", after_s=1)
    await h.leave("g1", "gone", after_s=1)
    await h.settle()
    for i in range(12):
        await h.say("admin1", f"/points add m{i} {i * 10}", room=None, after_s=1)
    await h.say("admin1", "/points add x 1000", room=None, after_s=1)
    await h.say("admin1", "/points add gone 1000", room=None, after_s=1)
    await h.settle()
    await h.app.activity.flush()  # the room directory rides on the activity batches
    before = len(h.sent)
    await h.say("m0", "/排行", after_s=1)
    await texts(h)
    (board,) = h.transport.texts()[before:]
    lines = board.split("\n")
    assert lines[0] == "本群积分排行榜（前 10 名）："
    assert lines[1:] == [f"{n}. 会员{i} {i * 10 + 5} 分" for n, i in enumerate(range(11, 1, -1), start=1)]
    assert "外人" not in board and "走了" not in board


async def test_rank_needs_a_group(h):
    await h.say("u1", "/rank", room=None)
    assert await texts(h) == ["这个命令需要在群里使用哦。"]


# -- rewards -------------------------------------------------------------------------------------------------------

async def give(h: Harness, member: str, amount: int) -> None:
    await h.say("admin1", f"/points add {member} {amount} 测试", room=None, after_s=1)


async def test_redeem_without_an_item_lists_the_catalog(h):
    await give(h, "u1", 30)
    await h.say("u1", "/兑换", room=None, after_s=1)
    assert (await texts(h))[-1] == ("可兑换的奖品：\n1. 帆布袋 — 50 积分（剩 3 件）\n2. 贴纸 — 10 积分（剩 1 件）\n"
                                    "你的积分：30。发送「/兑换 编号」或「/兑换 奖品名」兑换。")


async def test_redeem_takes_points_and_stock_and_records_it(h):
    await give(h, "u1", 120)
    await h.say("u1", "/兑换 帆布袋", room="g1", name="小李", after_s=1)
    assert (await texts(h))[-1] == "@小李\u2005确认用 50 积分兑换「帆布袋」吗？回复「确认」兑换（5 分钟内有效）。"
    assert await balance(h, "u1") == 120  # nothing spent before the confirmation
    await h.say("u1", "确认", room="g1", name="小李", after_s=1)
    # no operators configured: nobody would hear of it, so no person is promised
    assert (await texts(h))[-1] == "@小李\u2005兑换成功！「帆布袋」-50 积分，剩余 70 分。请凭兑换单号 1 联系群管理员领取。"
    assert await balance(h, "u1") == 70
    assert (await query(h, select(RewardStock.stock).where(RewardStock.item == "帆布袋")))[0][0] == 2
    (r,) = [row[0] for row in await query(h, select(Redemption))]
    assert (r.member_id, r.member_name, r.room_id, r.item, r.cost, r.status) == ("u1", "小李", "g1", "帆布袋", 50,
                                                                                "pending")
    spend = (await ledger(h, "u1"))[-1]
    assert (spend.delta, spend.source, spend.ref_id) == (-50, "redeem", "redemption:1")
    (rec,) = await activity(h, "redeem")
    assert rec.detail == {"item": "帆布袋", "cost": 50, "redemption": 1, "balance": 70}


async def test_redeem_by_catalog_number(h):
    await give(h, "u1", 10)
    await h.say("u1", "/redeem 2", room=None, after_s=1)
    assert (await texts(h))[-1] == "确认用 10 积分兑换「贴纸」吗？回复「确认」兑换（5 分钟内有效）。"
    await h.say("u1", "确认", room=None, after_s=1)
    assert (await texts(h))[-1].startswith("兑换成功！「贴纸」-10 积分，剩余 0 分")


async def test_redeem_refusals_change_nothing(h):
    await give(h, "u1", 40)
    await give(h, "u2", 100)
    await h.say("u2", "/兑换 贴纸", room=None, after_s=1)
    await h.say("u2", "确认", room=None, after_s=1)
    await h.say("u1", "/兑换 帆布袋", room=None, after_s=1)  # 40 < 50
    await h.say("u1", "/兑换 贴纸", room=None, after_s=1)  # gone
    await h.say("u1", "/兑换 金条", room=None, after_s=1)  # no such thing
    sent = await texts(h)
    assert sent[-3] == "积分还不够哦：兑换「帆布袋」需要 50 分，你现在有 40 分。多多签到攒积分吧～"
    assert sent[-2] == "抱歉，「贴纸」已经兑完了，看看其他奖品吧（发送 /兑换 查看）。"
    assert sent[-1] == ("没有找到「金条」这个奖品，发送 /兑换 查看可兑换的奖品。\n"
                        "用法：/兑换 奖品名或编号（只发 /兑换 查看可兑换的奖品）")
    assert await balance(h, "u1") == 40
    stock = dict(await query(h, select(RewardStock.item, RewardStock.stock)))
    assert stock == {"帆布袋": 3, "贴纸": 0}
    assert len(await query(h, select(Redemption.id))) == 1


async def test_racing_redemptions_of_the_last_one(h):
    members = [f"u{i}" for i in range(8)]
    for m in members:
        await give(h, m, 25)
    when = h.clock.now() + timedelta(seconds=1)
    await h.clock.advance_to(when)
    for m in members:  # each asks while one is left, then all confirm at once
        await h.app.dispatcher.handle(msg(m, "/兑换 贴纸", when))
    await asyncio.gather(*(h.app.dispatcher.handle(msg(m, "确认", when)) for m in members))
    sent = (await texts(h))[2 * len(members):]
    assert sum(t.startswith("兑换成功") for t in sent) == 1
    assert sum(t == "抱歉，「贴纸」已经兑完了，看看其他奖品吧（发送 /兑换 查看）。" for t in sent) == 7
    assert (await query(h, select(RewardStock.stock).where(RewardStock.item == "贴纸")))[0][0] == 0
    assert len(await query(h, select(Redemption.id))) == 1
    assert sorted([await balance(h, m) for m in members]) == [15] + [25] * 7
    await assert_balances_match_ledger(h)
    assert h.app.errors.count == 0


async def test_racing_redemptions_never_overdraw_points(h):
    await give(h, "u1", 120)  # enough for two bags, not three
    when = h.clock.now() + timedelta(seconds=1)
    await h.clock.advance_to(when)
    chats = ("g1", "g2", None)  # one request waits per chat: the same member confirms in three at once
    for room in chats:
        await h.app.dispatcher.handle(msg("u1", "/兑换 帆布袋", when, room))
    await asyncio.gather(*(h.app.dispatcher.handle(msg("u1", "确认", when, room)) for room in chats))
    sent = (await texts(h))[4:]
    assert sum("兑换成功" in t for t in sent) == 2  # in a group with the member's @-mention first
    assert sum("积分还不够哦" in t for t in sent) == 1
    assert await balance(h, "u1") == 20
    assert (await query(h, select(RewardStock.stock).where(RewardStock.item == "帆布袋")))[0][0] == 1
    assert len(await query(h, select(Redemption.id))) == 2
    await assert_balances_match_ledger(h)


async def test_stock_survives_a_restart(db_url):
    async with Harness(config(), db_url) as h:
        await give(h, "u1", 50)
        await h.say("u1", "/兑换 帆布袋", room=None, after_s=1)
        await h.say("u1", "确认", room=None, after_s=1)
        await h.settle()
    # restarted with a bigger configured stock and a new item: redeemed stock stays used, the new item is seeded
    rewards = {"帆布袋": {"cost": 50, "stock": 10}, "贴纸": {"cost": 10, "stock": 1}, "水杯": {"cost": 80, "stock": 4}}
    async with Harness(config(rewards=rewards), db_url) as h:
        stock = dict(await query(h, select(RewardStock.item, RewardStock.stock)))
        assert stock == {"帆布袋": 2, "贴纸": 1, "水杯": 4}


# -- admin adjustments ---------------------------------------------------------------------------------------------

async def test_admin_adds_and_subtracts_by_mention_with_audit(h):
    await h.say("admin1", "/points add @小李\u2005 50 活动奖励", mention_ids=("u1",))
    await h.say("admin1", "/points sub @小李\u2005 20 违规发广告", mention_ids=("u1",), after_s=1)
    sent = await texts(h)
    assert sent == ["@admin1\u2005已为 u1 增加 50 积分（原因：活动奖励），当前积分 50。",
                    "@admin1\u2005已为 u1 扣除 20 积分（原因：违规发广告），当前积分 30。"]
    rows = await ledger(h, "u1")
    assert [(r.delta, r.reason, r.source, r.actor_id) for r in rows] == [
        (50, "活动奖励", "admin", "admin1"), (-20, "违规发广告", "admin", "admin1")]
    audit = await activity(h, "points_admin")
    assert [(a.member_id, a.detail) for a in audit] == [
        ("admin1", {"member": "u1", "delta": 50, "reason": "活动奖励", "actor": "admin1", "balance": 50}),
        ("admin1", {"member": "u1", "delta": -20, "reason": "违规发广告", "actor": "admin1", "balance": 30}),
    ]


async def test_mention_of_a_name_with_spaces_and_the_bot_itself(h):
    # "@小助手 /points add @Tom Lee 5": the bot's own mention is ignored; the member comes from the ids
    await h.say("admin1", "@小助手\u2005/points add @Tom Lee\u2005 5 欢迎", mention_ids=("bot", "u9"))
    assert (await texts(h)) == ["@admin1\u2005已为 u9 增加 5 积分（原因：欢迎），当前积分 5。"]


async def test_admin_by_raw_wxid_and_chinese_alias(h):
    await h.say("admin1", "/积分 加 wxid_abc 8", room=None)
    await h.say("admin1", "/积分 扣 wxid_abc 3 补录", room=None, after_s=1)
    assert (await texts(h))[-1] == "已为 wxid_abc 扣除 3 积分（原因：补录），当前积分 5。"
    assert [r.reason for r in await ledger(h, "wxid_abc")] == ["管理员调整", "补录"]


async def test_room_admin_only_in_their_room_and_members_refused(h):
    await h.say("u1", "大家好", room="g2")  # a member of g2 now
    await h.say("roomadmin", "/points add u1 10", room="g2", after_s=1)
    await h.say("roomadmin", "/points add u1 10", room="g1", after_s=1)
    await h.say("u1", "/points add u1 1000", room="g1", after_s=1)
    await h.say("u1", "/积分 加 u1 1000", room=None, after_s=1)
    sent = await texts(h)
    assert sent[0].endswith("已为 u1 增加 10 积分，当前积分 10。")
    assert all(t.endswith("抱歉，这个命令只有管理员可以使用。") for t in sent[1:])
    assert await balance(h, "u1") == 10
    refused = await activity(h, "refused")
    assert [r.detail["command"] for r in refused] == ["points add"] * 3


async def test_room_admin_adjusts_only_members_of_the_room_and_never_himself(h):
    """The wallet is shared by every room: a room's admin may not mint points for himself, nor touch members the
    bot has never seen in his room (a member of another room)."""
    await h.say("u1", "大家好", room="g1")  # u1 is in g1 only
    await h.say("roomadmin", "/points add roomadmin 1000000", room="g2", after_s=1)
    await h.say("roomadmin", "/points sub u1 5", room="g2", after_s=1)
    await h.say("roomadmin", "/积分 加 u9 5", room="g2", mention_ids=(), after_s=1)  # never seen anywhere
    assert [t.split("\u2005", 1)[1] for t in await texts(h)] == [
        "不能调整自己的积分哦，如有需要请联系总管理员。",
        "只能调整本群成员的积分：这位成员还没有在本群出现过。",
        "只能调整本群成员的积分：这位成员还没有在本群出现过。",
    ]
    assert [await balance(h, m) for m in ("roomadmin", "u1", "u9")] == [0, 0, 0]
    assert [r.detail["reason"] for r in await activity(h, "refused")] == ["own_points", "not_in_room", "not_in_room"]
    # a global admin is not limited to a room
    await h.say("admin1", "/points add u1 7", room="g2", after_s=1)
    assert await balance(h, "u1") == 7


async def test_room_admins_never_adjust_an_admins_points(h):
    """Wallets are shared by every room: two room admins topping each other up would mint points; only global
    admins adjust an admin's points."""
    for who in ("coadmin", "otheradmin", "u1"):
        await h.say(who, "大家好", room="g2")
    await h.say("roomadmin", "/points add coadmin 500", room="g2", after_s=1)
    await h.say("roomadmin", "/points add otheradmin 500", room="g2", after_s=1)  # an admin of another room
    await h.say("roomadmin", "/points add u1 5", room="g2", after_s=1)
    replies = [t.split("\u2005", 1)[1] for t in await texts(h)]
    assert replies[:2] == ["管理员的积分只能由总管理员调整哦。"] * 2
    assert replies[2].startswith("已为 ")
    assert [await balance(h, m) for m in ("coadmin", "otheradmin", "u1")] == [0, 0, 5]
    await h.say("admin1", "/points add coadmin 7", room="g2", after_s=1)  # a global admin may
    assert await balance(h, "coadmin") == 7


@pytest.mark.parametrize("text, answer", [
    ("/points add", "请 @ 要调整积分的成员（或写上成员的 wxid）。"),
    ("/points add u1", "请写上积分数量，比如 50。"),
    ("/points add u1 abc", "积分数量要写成 1 到 1000000 之间的整数，比如 50。"),
    ("/points add u1 -5", "积分数量要写成 1 到 1000000 之间的整数，比如 50。"),
    ("/points sub u1 0", "积分数量要写成 1 到 1000000 之间的整数，比如 50。"),
    ("/points add u1 ５０", "积分数量要写成 1 到 1000000 之间的整数，比如 50。"),
    ("/points add @小李 10", "请 @ 要调整积分的成员（或写上成员的 wxid）。"),  # typed, not a real mention: no id
])
async def test_bad_admin_input_is_explained_and_changes_nothing(h, text, answer):
    await give(h, "u1", 7)
    await h.say("admin1", text, room=None, after_s=1)
    reply = (await texts(h))[-1]
    op = "sub" if " sub " in text else "add"
    assert reply == f"{answer}\n用法：/points {op} @成员 数量 [原因]（或用成员的 wxid 代替 @）"
    assert await balance(h, "u1") == 7
    assert len(await ledger(h)) == 1


async def test_two_mentions_at_once_are_refused(h):
    await h.say("admin1", "/points add @a\u2005@b\u2005 5", mention_ids=("u1", "u2"))
    assert (await texts(h))[-1].startswith("@admin1\u2005一次只能调整一位成员的积分哦。")
    assert await ledger(h) == []


async def test_subtracting_more_than_the_balance_is_refused(h):
    await give(h, "u1", 7)
    await h.say("admin1", "/points sub u1 8", room=None, after_s=1)
    assert (await texts(h))[-1] == "u1 只有 7 分，不能扣 8 分，积分没有变动。"
    assert await balance(h, "u1") == 7


# -- points for chatting -------------------------------------------------------------------------------------------

async def test_activity_points_are_off_by_default(h):
    for i in range(3):
        await h.say("u1", f"聊天{i}", after_s=1)
    assert await ledger(h) == []


async def test_activity_points_first_messages_of_a_local_day(db_url):
    cfg = config(activity_points_enabled=True, activity_points_per_message=2, activity_messages_per_day=3)
    async with Harness(cfg, db_url, start=local(23, 23, 58)) as h:
        for i in range(5):
            await h.say("u1", f"聊天{i}", after_s=1)
        await h.say("u1", "私聊不算", room=None, after_s=1)
        await at(h, local(24, 0, 1), "u1", "新的一天")
        assert await balance(h, "u1") == 3 * 2 + 2
        refs = [r.ref_id for r in await ledger(h, "u1")]
        assert refs == ["u1:2026-11-23:1", "u1:2026-11-23:2", "u1:2026-11-23:3", "u1:2026-11-24:1"]
    # after a restart the day's count is read back, not started over
    async with Harness(cfg, db_url, start=local(24, 0, 2)) as h:
        for i in range(4):
            await h.say("u1", f"又来{i}", after_s=1)
        assert [r.ref_id for r in await ledger(h, "u1")][-2:] == ["u1:2026-11-24:2", "u1:2026-11-24:3"]
        assert await balance(h, "u1") == 6 * 2


# -- settings --------------------------------------------------------------------------------------------------------

async def test_bad_settings_stop_the_start_with_the_key_named(db_url):
    with pytest.raises(ConfigError) as info:
        async with Harness(config(streak_bonus={"three": 5}, rewards={"帆布袋": {"cost": "很多"}}), db_url):
            pass
    assert "skills.checkin.rewards.帆布袋.cost" in str(info.value)
    with pytest.raises(ConfigError) as info:
        async with Harness(config(streak_bonus={"three": 5}), db_url):
            pass
    assert "skills.checkin.streak_bonus.three" in str(info.value)


def test_check_config_reports_the_skills_problems():
    problems = check_skills(config(streak_bonus={"3": 5, "第七天": 9}))
    assert problems == ['skills.checkin.streak_bonus.第七天: the keys are streak days ("3", "7", ...)']
    problems = check_skills(config(rewards={"大 礼包": {"cost": 1, "stock": 1}}, base_points=-1))
    assert problems == ["skills.checkin.base_points: must be a whole number ≥ 0, not -1",
                        "skills.checkin.rewards.大 礼包: a reward name is 1–64 characters without spaces"]
    assert check_skills(config()) == []


async def test_streak_bonus_cycle(db_url):
    async with Harness(config(streak_bonus={"2": 1}, streak_cycle_days=2), db_url) as h:
        for day in (23, 24, 25, 26):
            await at(h, local(day, 9), "u1", "签到", room=None)
        assert [r.delta for r in await ledger(h, "u1")] == [5, 6, 5, 6]


async def test_help_lists_member_commands_and_admin_ones_only_for_admins(h):
    await h.say("u1", "/help", room=None)
    await h.say("admin1", "/help", room=None, after_s=1)
    member, admin = await texts(h)
    for name in ("/checkin /签到", "/points /积分", "/rank /排行", "/redeem /兑换"):
        assert name in member
    assert "/points add" not in member
    assert "/points add /积分 加 给成员加积分（管理员）" in admin
