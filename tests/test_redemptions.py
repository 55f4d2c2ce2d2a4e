"""Redemptions operators see and act on: confirmed first, operators told with each one (or no person promised),
admins list, hand out and refuse them (points returned exactly once, under real concurrency too), the member
told 1-on-1, the dashboard's page. SQLite and PostgreSQL alike."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select

from bot.events import MessageReceived, Person
from skills.checkin import store
from skills.checkin.models import Redemption, RewardStock
from storage.models_points import PointsLedger
from storage.points import balance, change_points, ledger_sum
from tests.support import START, Harness, fast_governor, make_config
from tests.support.tiers_support import serve

pytestmark = pytest.mark.all_backends

M = "\u2005"
TOKEN = "test-token-0123456789"


def config(operators=("op1",), operators_room=""):
    raw = {"bot": {"admins": ["boss"], "skills": ["ping", "checkin"], "operators": list(operators),
                   "operators_room": operators_room},
           "rooms": {"g1": {"admins": ["a1"]}, "g2": {"admins": ["a2"]}},
           "skills": {"checkin": {"rewards": {"帆布袋": {"cost": 50, "stock": 3}, "贴纸": {"cost": 10, "stock": 1}}}}}
    return replace(make_config(raw), governor=fast_governor())


async def texts_to(h: Harness, *, user: str | None = None, room: str | None = None) -> list[str]:
    await h.settle()
    return [s.text for s in h.sent if (user and s.message.user_id == user) or (room and s.message.room_id == room)]


async def redeem(h: Harness, member: str, what: str, room: str | None = "g1", points: int = 100) -> None:
    await h.say("boss", f"/points add {member} {points}", room=None, after_s=1)
    await h.say(member, f"/兑换 {what}", room=room, name=f"名{member}", after_s=1)
    await h.say(member, "确认", room=room, name=f"名{member}", after_s=1)


async def one(h: Harness, stmt):
    async with h.app.services.sessions() as s:
        return (await s.execute(stmt)).one()


async def test_operators_are_told_and_the_member_is_promised_a_person(harness):
    h = await harness(config(operators=("op1", "op2"), operators_room="staff"))
    await redeem(h, "u1", "1")
    told = "新的积分兑换（单号 1）：名u1（u1）在「topic-g1」群用 50 积分兑换「帆布袋」。\n" \
           "发放后请回复 /兑换 发放 1；不能发放请回复 /兑换 拒绝 1 原因（积分会退回）。"
    assert await texts_to(h, user="op1") == [told]
    assert await texts_to(h, user="op2") == [told]
    assert await texts_to(h, room="staff") == [told]
    assert (await texts_to(h, room="g1"))[-1] == \
        f"@名u1{M}兑换成功！「帆布袋」-50 积分，剩余 50 分。已通知工作人员，会尽快联系你发放（兑换单号 1）。"


async def test_an_unconfirmed_or_late_confirmation_spends_nothing(harness):
    h = await harness(config())
    await h.say("boss", "/points add u1 100", room=None, after_s=1)
    await h.say("u1", "确认", room=None, after_s=1)  # nothing waits: not the skill's business, no answer
    await h.say("u1", "/兑换 贴纸", room=None, after_s=1)
    await h.say("u1", "确认", room="g1", after_s=1)  # the wrong chat: the request waits in the 1-on-1
    await h.say("u1", "确认", room=None, after_s=301)
    sent = await texts_to(h, user="u1")
    assert sent[-2:] == ["确认用 10 积分兑换「贴纸」吗？回复「确认」兑换（5 分钟内有效）。",
                         "兑换确认已超时，积分没有变动。需要的话请重新发送 /兑换。"]
    assert not await texts_to(h, room="g1")
    assert not await texts_to(h, user="op1")
    async with h.app.services.sessions() as s:
        assert await balance(s, "u1") == 100
        assert (await s.execute(select(Redemption.id))).all() == []


async def test_pending_hand_out_and_refuse_tell_the_member_once(harness):
    h = await harness(config())
    await redeem(h, "u1", "帆布袋")
    await redeem(h, "u2", "贴纸", room="g2")
    await h.say("boss", "/兑换 待处理", room=None, after_s=1)
    listing = (await texts_to(h, user="boss"))[-1]
    assert listing.startswith("待处理的兑换（共 2 单）：\n1. 名u1 · 帆布袋 · 50 分 · ")
    assert "「topic-g1」群" in listing and "2. 名u2 · 贴纸 · 10 分" in listing

    await h.say("boss", "/兑换 发放 1", room=None, after_s=1)
    await h.say("boss", "/兑换 发放 1", room=None, after_s=1)
    assert (await texts_to(h, user="boss"))[-2:] == ["已将兑换单 1（名u1 · 帆布袋）标为已发放，已通知成员。",
                                                     "兑换单 1 已经处理过了（已发放）。"]
    assert (await texts_to(h, user="u1"))[-1] == "你兑换的「帆布袋」（兑换单号 1）已发放，请留意查收～"

    await h.say("boss", "/兑换 拒绝 2 这款贴纸 已停产", room=None, after_s=1)
    await h.say("boss", "/兑换 拒绝 2 再来一次", room=None, after_s=1)
    assert (await texts_to(h, user="boss"))[-2:] == ["已拒绝兑换单 2（名u2 · 贴纸），10 积分已退回，已通知成员。",
                                                     "兑换单 2 已经处理过了（已拒绝）。"]
    assert (await texts_to(h, user="u2"))[-1] == \
        "抱歉，你兑换的「贴纸」（兑换单号 2）没能发放：这款贴纸 已停产\n10 积分已退回，当前积分 100。"
    row = await one(h, select(Redemption.status, Redemption.handled_by, Redemption.reason).where(Redemption.id == 2))
    assert tuple(row) == ("refused", "boss", "这款贴纸 已停产")
    assert (await one(h, select(RewardStock.stock).where(RewardStock.item == "贴纸")))[0] == 1  # back in stock
    refunds = (await one(h, select(PointsLedger.delta, PointsLedger.ref_id).where(
        PointsLedger.source == "redeem_refund")))
    assert tuple(refunds) == (10, "redemption:2")
    await h.say("boss", "/兑换 待处理", room=None, after_s=1)
    assert (await texts_to(h, user="boss"))[-1] == "没有待处理的兑换 👍"


async def test_a_rooms_admin_handles_his_rooms_redemptions_only(harness):
    h = await harness(config())
    await redeem(h, "u1", "帆布袋", room="g1")
    await redeem(h, "u2", "帆布袋", room="g2")
    await h.say("a1", "/兑换 待处理", room="g1", after_s=1)
    await h.say("a1", "/兑换 发放 2", room="g1", after_s=1)
    await h.say("a1", "/兑换 拒绝 2", room="g1", after_s=1)
    await h.say("a1", "/兑换 发放 99", room="g1", after_s=1)
    await h.say("a1", "/兑换 拒绝 1", room="g1", after_s=1)
    g1 = [t.split(M, 1)[-1] for t in (await texts_to(h, room="g1"))[-5:]]
    assert g1[0].startswith("待处理的兑换（共 1 单）：\n1. 名u1 · 帆布袋") and "名u2" not in g1[0]
    # another room's redemption and one that doesn't exist get the same answer
    assert g1[1] == g1[2] == "没有找到本群的兑换单 2（发送 /兑换 待处理 查看）。"
    assert g1[3] == "没有找到本群的兑换单 99（发送 /兑换 待处理 查看）。"
    assert g1[4] == "已拒绝兑换单 1（名u1 · 帆布袋），50 积分已退回，已通知成员。"
    assert tuple(await one(h, select(Redemption.status).where(Redemption.id == 2))) == ("pending",)
    await h.say("u1", "/兑换 待处理", room="g1", after_s=1)  # a member: the router refuses
    assert (await texts_to(h, room="g1"))[-1].endswith("抱歉，这个命令只有管理员可以使用。")


async def test_bad_numbers_are_explained(harness):
    h = await harness(config())
    for text in ("/兑换 发放", "/兑换 发放 abc", "/兑换 拒绝 ١٢", "/兑换 发放 " + "9" * 40):
        await h.say("boss", text, room=None, after_s=1)
    sent = await texts_to(h, user="boss")
    assert sent[0].startswith("请写上兑换单号，比如 12。\n用法：/兑换 发放 单号")
    assert all(t.startswith("兑换单号是一个数字，比如 12") for t in sent[1:])
    assert h.app.errors.count == 0


async def test_racing_refusals_return_the_points_once(sessions):
    """Two admins refuse the same redemption at the same instant (two transactions): one wins, the points and the
    stock come back once."""
    async with sessions() as s, s.begin():
        await store.seed_stock(s, {"帆布袋": 1}, START)
        await change_points(s, "u1", 50, reason="测试", source="test", ref_id="seed", at=START)
        redemption, _ = await store.redeem(s, "u1", "帆布袋", 50, at=START, room_id="g1", member_name="小李")
    async with sessions() as s:
        found = await store.redemption(s, redemption.id)

    async def refuse(actor: str):
        async with sessions() as s, s.begin():
            return await store.refuse(s, found, actor, START + timedelta(seconds=1), "缺货")

    async def fulfil(actor: str):
        async with sessions() as s, s.begin():
            return await store.fulfil(s, found.id, actor, START + timedelta(seconds=1))

    results = await asyncio.gather(refuse("a1"), refuse("boss"), refuse("a1"), fulfil("boss"))
    refused = [r for r in results[:3] if r is not None]
    assert len(refused) + results[3] == 1  # exactly one of the four acted
    async with sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == (50 if refused else 0)
        assert (await store.stock_of(s, ["帆布袋"]))["帆布袋"] == (1 if refused else 0)
        refunds = (await s.execute(select(PointsLedger.id).where(PointsLedger.source == "redeem_refund"))).all()
        assert len(refunds) == len(refused)
    # and a refusal after that finds nothing to do
    assert await refuse("boss") is None


async def test_racing_refusals_over_the_bot(harness):
    h = await harness(config())
    await redeem(h, "u1", "帆布袋")
    when = h.clock.now() + timedelta(seconds=1)
    await h.clock.advance_to(when)
    await asyncio.gather(*(h.app.dispatcher.handle(MessageReceived(
        at=when, sender=Person(a, a), text="/兑换 拒绝 1", room_id=room, room_topic="topic-g1"))
        for a, room in (("boss", None), ("a1", "g1"), ("boss", "g1"))))
    await h.settle()
    sent = [t.split(M, 1)[-1] for t in h.transport.texts()]
    assert sum(t.startswith("已拒绝兑换单 1") for t in sent) == 1
    assert sum(t.startswith("兑换单 1 ") and "处理过了" in t for t in sent) == 2
    assert sum(t.startswith("抱歉，你兑换的「帆布袋」") for t in sent) == 1
    async with h.app.services.sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == 100


async def test_the_dashboard_lists_pending_and_handled(harness, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    h = await harness(config())
    await redeem(h, "u1", "帆布袋")
    await redeem(h, "u2", "贴纸", room="g2")
    await h.say("u3", "/兑换", room=None)
    await h.say("boss", "/兑换 拒绝 2 <script>x</script>", room=None, after_s=1)
    await h.settle()
    await h.app.activity.flush()  # the rooms' topics (written within a second live)
    async with serve(h.app.services, h.app.skills) as base, aiohttp.ClientSession() as c:
        async with c.get(base + "/dashboard/redemptions") as r:
            assert r.status == 401
        async with c.get(base + "/dashboard/redemptions", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert r.status == 200
            body = await r.text()
        async with c.get(base + "/dashboard", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
            assert "/dashboard/redemptions" in await r.text()
    pending, handled = body.split("最近处理的兑换")
    assert "待发放的积分兑换（1）" in pending and "名u1" in pending and "topic-g1" in pending
    assert "名u2" in handled and "已拒绝（积分已退回）" in handled
    assert "<script>x" not in body and "&lt;script&gt;x" in body


async def test_erasure_keeps_the_redemption_under_pseudonyms(harness):
    """A member's redemption is kept for the books without their id or name; an admin who handled one is replaced
    by his pseudonym too."""
    from storage.members import ERASED_NAME

    raw = {"bot": {"admins": ["boss", "a9"], "skills": ["ping", "checkin"]},
           "skills": {"checkin": {"rewards": {"帆布袋": {"cost": 50, "stock": 3}}}}}
    h = await harness(replace(make_config(raw), governor=fast_governor()))
    await redeem(h, "u1", "帆布袋")
    await h.say("a9", "/兑换 发放 1", room=None, after_s=1)
    for who in ("u1", "a9"):
        await h.say(who, "/删除我的数据", room=None, after_s=1)
        await h.say(who, "确认删除", room=None, after_s=1)
    await h.settle()
    member, name, handled_by, status = await one(h, select(Redemption.member_id, Redemption.member_name,
                                                          Redemption.handled_by, Redemption.status))
    assert member.startswith("erased:") and handled_by.startswith("erased:") and member != handled_by
    assert (name, status) == (ERASED_NAME, "done")


async def test_confirming_with_the_bot_mentioned_in_a_group(harness):
    h = await harness(config())
    await h.say("boss", "/points add u1 100", room=None, after_s=1)
    await h.say("u1", f"@小助手{M}/兑换 贴纸", room="g1", name="小李", mention_ids=("bot",), after_s=1)
    await h.say("u1", f"@小助手{M}确认", room="g1", name="小李", mention_ids=("bot",), after_s=1)
    assert (await texts_to(h, room="g1"))[-1] == \
        f"@小李{M}兑换成功！「贴纸」-10 积分，剩余 90 分。已通知工作人员，会尽快联系你发放（兑换单号 1）。"
