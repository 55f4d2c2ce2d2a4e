"""Members' own data (PIPL): /我的数据 shows what the bot keeps, /删除我的数据 + 「确认删除」 erases it, through every
skill's ``member_data`` and the core's tables, keeping what bookkeeping must keep under a pseudonym."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from dataclasses import replace
from datetime import timedelta

import re

import pytest
from sqlalchemy import String, cast, func, select

import skills
from bot.commands import ONLY_DIRECT
from bot.events import Person
from skills.checkin.models import Checkin, Redemption
from skills.lottery import verify
from skills.lottery.models import Lottery, LotteryEntry
from skills.orders import apply_order, bind_member
from skills.orders.input import parse_order
from skills.orders.models import MemberBinding, Order
from skills.tiers import run_pass
from skills.tiers.models import MemberDay, MemberTier, MemberWindow, TierOrder
from skills.welcome.models import Welcome
from storage.members import ERASED_NAME
from storage.models import Activity, Member, MemberName, RoomMember, ScheduledJob
from storage.models_gentle import MemberOptOut
from storage.models_points import PointsBalance, PointsLedger
from storage.points import balance, ledger_sum
from tests.support import Harness, fast_governor, make_config

pytestmark = pytest.mark.all_backends

M = "\u2005"
ME, OTHER = "wxid_erase_me", "wxid_stays"


def config(tmp_path):
    raw = {"bot": {"admins": ["boss"], "skills": ["checkin", "lottery", "orders", "tiers", "welcome"]},
           "skills": {"checkin": {"rewards": {"贴纸": {"cost": 5, "stock": 10}}},
                      "welcome": {"referral_points": 20, "referral_days": 3},
                      "tiers": {"export_dir": str(tmp_path / "exports")}}}
    return replace(make_config(raw), governor=fast_governor())


@pytest.fixture
async def h(harness, tmp_path):
    return await harness(config(tmp_path))


async def replies_to(h: Harness, user: str) -> list[str]:
    await h.settle()
    return [s.text for s in h.sent if s.message.user_id == user]


async def stand_ins(h: Harness) -> list[str]:
    """The pseudonyms erasures used, in order: each records itself under its own."""
    await h.app.activity.flush()
    return await all_rows(h, select(Activity.member_id).where(Activity.kind == "erasure").order_by(Activity.id))


async def all_rows(h: Harness, stmt) -> list:
    async with h.app.services.sessions() as s:
        return list((await s.execute(stmt)).all())


async def one(h: Harness, stmt):
    async with h.app.services.sessions() as s:
        return await s.scalar(stmt)


async def a_member_with_history(h: Harness) -> int:
    """ME: joined g1 invited by OTHER, chats under two names in two rooms, checks in, gets admin points, redeems,
    enters a lottery that is drawn and one still open (with a cost), has an order with tracking, invited someone,
    opted out; OTHER: some data of their own. Returns the drawn lottery's id."""
    await h.join("g1", Person(ME, "小王"), inviter=OTHER)
    await h.say(OTHER, "大家好", room="g1", name="老李")
    await h.say(ME, "签到", room="g1", name="小王", after_s=1)
    await h.say(ME, "我来了", room="g2", name="王二", after_s=1)
    await h.say(OTHER, "签到", room="g1", name="老李", after_s=1)
    await h.say("boss", f"/points add {ME} 30 活动奖励", room=None, after_s=1)
    await h.say(ME, "/兑换 贴纸", room=None, after_s=1)
    await h.say(ME, "确认", room=None, after_s=1)
    await h.say("boss", "/lottery start 保温杯 winners=1 duration=10m", room="g1", after_s=1)
    await h.say(ME, "抽奖", room="g1", name="小王", after_s=1)
    await h.say(OTHER, "抽奖", room="g1", name="老李", after_s=1)
    await h.clock.advance_to(h.clock.now() + timedelta(minutes=10))  # drawn at its deadline (never early)
    await h.say("boss", "/lottery start 雨伞 winners=1 duration=1d cost=3", room="g2", after_s=1)
    await h.say(ME, "抽奖", room="g2", name="王二", after_s=1)
    await h.join("g2", Person("wxid_friend", "小张"), inviter=ME, after_s=1)
    await h.say(ME, "/退订", room=None, after_s=1)
    now = h.clock.now()
    await apply_order(h.app.services, parse_order({
        "order_id": "A1", "member_id": ME, "status": "created", "amount": 59.9, "items": ["草莓 x2"],
        "external_member_id": "shop-77", "pay_by": (now + timedelta(hours=3)).isoformat()}))
    await apply_order(h.app.services, parse_order({"order_id": "A1", "status": "shipped", "tracking": "顺丰 SF1 上海市某路 1 号"}))
    await apply_order(h.app.services, parse_order({"order_id": "A2", "member_id": ME, "status": "created",
                                                   "amount": 10, "pay_by": (now + timedelta(hours=5)).isoformat()}))
    await bind_member(h.app.services, "shop-77", ME)
    await h.settle()
    await h.app.activity.flush()
    await run_pass(h.app.services)
    return await one(h, select(Lottery.id).where(Lottery.status == "drawn"))


async def test_my_data_shows_what_is_kept_in_private_chat_only(h):
    await a_member_with_history(h)
    await h.say(ME, "/我的数据", room="g1", after_s=1)
    await h.say(ME, "/mydata", room=None, after_s=1)
    await h.settle()
    assert h.sent[-2].message.room_id == "g1" and h.sent[-2].text.endswith(ONLY_DIRECT)
    summary = (await replies_to(h, ME))[-1]
    for expected in (f"账号：{ME}；昵称：小王、王二", "所在群 2 个：topic-g1、topic-g2",
                     "积分：余额 27，流水 4 笔（获得 35，使用 8）", "退订：已退订通知和活动私信",
                     "签到：共 1 次", "积分兑换：共 1 次：贴纸（待发放）", "抽奖：参与 2 次", "1 次等待开奖",
                     "订单：共 2 单，其中进行中 2 单", "订单提醒：收到过 1 条", "商城会员绑定：1 个会员号",
                     "入群欢迎：在 1 个群被欢迎过", "邀请奖励：1 个待发放", "成员分层：", "互动记录 "):
        assert expected in summary, (expected, summary)
    assert "老李" not in summary and OTHER not in summary  # nothing about anyone else
    assert summary.endswith("如需删除这些数据，请发送 /删除我的数据。")


async def test_erasure_waits_for_the_confirmation_within_five_minutes(h):
    await h.say(ME, "大家好", room="g1", name="小王")
    await h.say(ME, "确认删除", room=None, after_s=1)  # nothing asked yet
    await h.say(ME, "/删除我的数据", room=None, after_s=1)
    await h.say(ME, "确认删除", room=None, after_s=301)  # too late
    await h.say(ME, "/deletemydata", room="g1", after_s=1)  # in a group: not here
    texts = await replies_to(h, ME)
    assert texts[0].startswith("现在没有等待确认的删除请求") and texts[2].startswith("现在没有等待确认的删除请求")
    assert "5 分钟内回复「确认删除」" in texts[1]
    assert h.sent[-1].text.endswith(ONLY_DIRECT)
    await h.app.activity.flush()
    assert await one(h, select(MemberName.name).where(MemberName.member_id == ME, MemberName.name == "小王")) \
        == "小王"  # nothing was erased


async def test_erasure_deletes_or_pseudonymises_and_bookkeeping_still_adds_up(h, caplog):
    drawn = await a_member_with_history(h)
    their_balance = await one(h, select(PointsBalance.balance).where(PointsBalance.member_id == OTHER))
    ledger_rows = await one(h, select(func.count()).select_from(PointsLedger).where(PointsLedger.member_id == ME))
    my_balance = await one(h, select(PointsBalance.balance).where(PointsBalance.member_id == ME))
    await h.say(ME, "/删除我的数据", room=None, after_s=1)
    with caplog.at_level(logging.INFO, logger="bot.privacy"):
        await h.say(ME, "确认删除", room=None, after_s=60)
        await h.settle()
    done = (await replies_to(h, ME))[-1]
    assert done.startswith("已删除你的数据（共处理 ") and "你的退订设置保留着" in done
    await h.app.activity.flush()
    [STAND_IN] = [row for (row,) in await stand_ins(h)]
    assert re.fullmatch(r"erased:[0-9a-f]{16}", STAND_IN)

    # the directory: gone
    for table, column in ((Member, Member.id), (MemberName, MemberName.member_id),
                          (RoomMember, RoomMember.member_id)):
        assert await one(h, select(func.count()).select_from(table).where(column == ME)) == 0, table
    # the activity log: kept under the pseudonym, without typed text; others' rows no longer name the member
    assert await one(h, select(func.count()).select_from(Activity).where(Activity.member_id == ME)) == 0
    assert await one(h, select(func.count()).select_from(Activity).where(
        cast(Activity.detail, String).like(f"%{ME}%"))) == 0
    mine = await all_rows(h, select(Activity.kind, Activity.detail).where(Activity.member_id == STAND_IN))
    assert {"message", "checkin", "command", "join", "erasure"} <= {k for k, _ in mine}
    assert not [d for _, d in mine if isinstance(d, dict) and ("text" in d or "q" in d)]
    erasure = next(d for k, d in mine if k == "erasure")
    assert erasure["rows"] > 0 and set(erasure["by"]) >= {"checkin", "lottery", "orders", "tiers", "welcome",
                                                           "points", "core"}
    assert not [r for r in caplog.records if ME in r.getMessage() or "小王" in r.getMessage()]
    assert any("member data erased" in r.getMessage() for r in caplog.records)
    # points: the ledger whole under the pseudonym, balance = ledger
    assert await one(h, select(func.count()).select_from(PointsLedger).where(PointsLedger.member_id == ME)) == 0
    assert await one(h, select(func.count()).select_from(PointsLedger).where(
        PointsLedger.member_id == STAND_IN)) == ledger_rows
    assert await one(h, select(func.count()).select_from(PointsLedger).where(PointsLedger.ref_id.like(f"%{ME}%"))) == 0
    async with h.app.services.sessions() as s:
        assert await balance(s, ME) == 0
        assert await balance(s, STAND_IN) == await ledger_sum(s, STAND_IN) == my_balance
        assert await balance(s, OTHER) == await ledger_sum(s, OTHER) == their_balance
    # check-ins deleted; the redemption kept for the operators, without the name
    assert await one(h, select(func.count()).select_from(Checkin).where(Checkin.member_id == ME)) == 0
    assert await all_rows(h, select(Redemption.member_id, Redemption.member_name)) == [(STAND_IN, ERASED_NAME)]
    # lotteries: out of the open one; in the drawn one only the name goes, and the draw still verifies
    entries = await all_rows(h, select(LotteryEntry.lottery_id, LotteryEntry.member_id, LotteryEntry.name)
                             .order_by(LotteryEntry.lottery_id, LotteryEntry.member_id))
    assert entries == [(drawn, ME, ERASED_NAME), (drawn, OTHER, "老李")]
    async with h.app.services.sessions() as s:
        assert (await verify(s, drawn)).ok
    # orders: kept under the pseudonym, no tracking text or shop number; their reminders cancelled
    assert await all_rows(h, select(Order.id, Order.member_id, Order.external_member_id, Order.tracking)
                          .order_by(Order.id)) == [("A1", STAND_IN, None, None), ("A2", STAND_IN, None, None)]
    assert await one(h, select(func.count()).select_from(MemberBinding)) == 0
    reminders = await all_rows(h, select(ScheduledJob.key, ScheduledJob.status).where(
        ScheduledJob.key.like("order:%")))
    assert reminders and all(status != "active" for _, status in reminders)
    # welcome: gone; the referral reward due to the member cancelled
    assert await one(h, select(func.count()).select_from(Welcome).where(Welcome.member_id == ME)) == 0
    assert await one(h, select(ScheduledJob.status).where(ScheduledJob.key == "referral:g2:wxid_friend")) \
        == "cancelled"
    # tiers: the member's tier and rollups gone, the orders projection pseudonymised
    for table in (MemberTier, MemberDay, MemberWindow):
        assert await one(h, select(func.count()).select_from(table).where(table.member_id == ME)) == 0, table
    assert await one(h, select(func.count()).select_from(TierOrder).where(TierOrder.member_id == ME)) == 0
    # kept as it was: the opt-out; and the other member's records
    assert await one(h, select(MemberOptOut.member_id).where(MemberOptOut.member_id == ME)) == ME
    assert await one(h, select(Member.name).where(Member.id == OTHER)) == "老李"
    # another tier pass runs on the erased data
    await run_pass(h.app.services)

    # back later: a new member
    await h.say(ME, "我又来了", room="g1", name="新名字", after_s=3600)
    await h.app.activity.flush()
    assert await one(h, select(Member.name).where(Member.id == ME)) == "新名字"


async def test_a_second_erasure_of_the_same_id_gets_a_pseudonym_of_its_own(h):
    """Erased, back the same day, checks in again (the day's reference is free again), erased again: each erasure's
    pseudonym keeps its own ledger and balance, and nothing links the two."""
    for _ in range(2):
        await h.say(ME, "签到", room=None, after_s=1)
        await h.say(ME, "/删除我的数据", room=None, after_s=1)
        await h.say(ME, "确认删除", room=None, after_s=1)
        await h.settle()
    assert (await replies_to(h, ME))[-1].startswith("已删除你的数据")
    first, second = [row for (row,) in await stand_ins(h)]
    assert first != second
    async with h.app.services.sessions() as s:
        for stand_in in (first, second):
            assert await balance(s, stand_in) == await ledger_sum(s, stand_in) == 5
        refs = sorted((await s.execute(select(PointsLedger.ref_id))).scalars())
    day = h.clock.local(h.clock.now()).date().isoformat()
    assert refs == sorted([f"{first}:{day}", f"{second}:{day}"])


def test_every_skill_with_member_tables_declares_member_data():
    """A skill keeping rows about members must say how to export and erase them."""
    for info in pkgutil.iter_modules(skills.__path__):
        try:
            models = importlib.import_module(f"skills.{info.name}.models")
        except ModuleNotFoundError:
            continue
        tables = [t for t in vars(models).values() if hasattr(t, "__table__") and t.__module__ == models.__name__]
        holds = [t.__tablename__ for t in tables if {"member_id", "wechat_id"} & set(t.__table__.c.keys())]
        skill = importlib.import_module(f"skills.{info.name}").skill
        assert not holds or skill.member_data_specs, f"skill {info.name} keeps {holds} but declares no member_data"


async def test_a_failing_erasure_changes_nothing_and_says_so(tmp_path, db_url):
    cfg = config(tmp_path)
    cfg = replace(cfg, bot=replace(cfg.bot, skills=(*cfg.bot.skills, "tests.support.privacy_broken_skill")))
    async with Harness(cfg, db_url) as h:
        await h.say(ME, "签到", room="g1", name="小王")
        await h.say(ME, "/我的数据", room=None, after_s=1)
        await h.say(ME, "/删除我的数据", room=None, after_s=1)
        await h.say(ME, "确认删除", room=None, after_s=1)
        texts = await replies_to(h, ME)
        assert "· 测试数据：1 条" in texts[0]
        assert texts[-1] == "抱歉，删除时出了点问题，你的数据没有改动。请稍后重新发送 /删除我的数据。"
        assert h.app.errors.count == 1
        await h.say(ME, "还在吗", room="g1", name="小王", after_s=1)  # recorded as ME again, not the pseudonym
        await h.app.activity.flush()
        assert await one(h, select(func.count()).select_from(Checkin).where(Checkin.member_id == ME)) == 1
        assert await one(h, select(Member.name).where(Member.id == ME)) == "小王"
        async with h.app.services.sessions() as s:
            assert await balance(s, ME) == await ledger_sum(s, ME) == 5
        assert await one(h, select(func.count()).select_from(Activity).where(
            Activity.member_id.like("erased:%"))) == 0
