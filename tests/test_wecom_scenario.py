"""The WeCom mode end to end, in one flow over the mock WeCom API (the issue's "done when"): a new contact welcomed
within its window; a 微信客服 question answered from the knowledge base, a 签到 and a /积分 1-on-1; a 6th message
inside 48 h dropped with ``window``; a scheduled message to ``tag:vip`` groups becoming one task per owner staff
member, whose send results reach the dashboard (over real HTTP); a customer who is both a WeCom external contact
and a shop member having one wallet."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.events import OutgoingMessage
from skills.orders import bind_member
from storage import identity
from storage.models import Activity
from storage.points import balance, ledger_sum
from tests.support.faq_support import write_kb
from tests.support.wecom_mock import Customer, Group, WeComMock
from tests.support.wecom_support import WeComHarness, dashboard_page, wecom_config

pytestmark = pytest.mark.all_backends


async def activity(h, kind: str) -> list[tuple[str | None, str | None, dict]]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = await s.execute(select(Activity.room_id, Activity.member_id, Activity.detail)
                               .where(Activity.kind == kind).order_by(Activity.id))
        return [tuple(r) for r in rows]


async def test_the_wecom_mode_in_one_flow(db_url, tmp_path, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", "scenario-dash")
    mock = await WeComMock().start()
    mock.customers["wmAlice"] = Customer("wmAlice", "Alice", "UNION-ALICE")
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_li"),
                        "wrVip3": Group("wrVip3", "VIP 三群", "staff_wu"),
                        "wrNew": Group("wrNew", "新人群", "staff_li")})
    config = wecom_config(
        mock, skills=("ping", "checkin", "faq", "orders", "schedule"), welcome="你好，我是品牌小助手～",
        rooms={"wrVip1": {"tags": ["vip"]}, "wrVip2": {"tags": ["vip"]}, "wrVip3": {"tags": ["vip"]},
               "wrNew": {"tags": ["new"]}},
        skill_settings={"faq": {"knowledge_dir": str(write_kb(tmp_path / "kb"))},
                        "schedule": {"items": {"会员日": {"daily": "10:00", "targets": ["tag:vip"],
                                                          "text": "今天会员日，全场九折～"}}}})
    try:
        async with WeComHarness(db_url, mock, config) as h:
            # Alice is a shop member (the shop gave her unionid), with points from the shop
            await bind_member(h.app.services, "SHOP-0042", "wxid_alice")
            async with h.app.services.sessions() as s:
                await identity.link(s, "unionid", "UNION-ALICE", "wxid_alice", h.clock.now())
                await s.commit()

            # 1. she adds staff_li as a WeCom contact: welcomed with the event's code, within its 20 s
            code = mock.new_welcome_code()
            assert (await h.callbacks.contact_added("wmAlice", "staff_li", code))[0] == 200
            await h.idle()
            assert [(w["welcome_code"], w["text"]["content"]) for w in mock.welcomes] == [
                (code, "你好，我是品牌小助手～")]

            # 2. 微信客服: a question from the knowledge base, a 签到, a /积分 — each one round trip
            await h.customer("wmAlice", "下单后多久发货？", unionid="UNION-ALICE", after_s=30)
            await h.settle()
            assert "16:00" in h.answers("wmAlice")[-1]
            await h.customer("wmAlice", "签到", after_s=5)
            await h.settle()
            assert "签到" in h.answers("wmAlice")[-1]
            await h.customer("wmAlice", "/积分", after_s=5)
            await h.settle()
            # 6. one wallet: the external contact and the shop member are one member
            async with h.app.services.sessions() as s:
                assert await identity.resolve(s, "external_userid", "wmAlice") == "wxid_alice"
                points = await balance(s, "wxid_alice")
                assert points > 0 and await balance(s, "wmAlice") == 0
                assert await ledger_sum(s, "wxid_alice") == points
            assert str(points) in h.answers("wmAlice")[-1]
            assert mock.count("kf/send_msg") == len(h.answers("wmAlice")) == 3

            # 3. the reply window: /积分's answer was the 1st since her last message; four more go, a 6th doesn't
            for i in range(5):
                h.app.governor.submit(OutgoingMessage(f"订单提醒 {i}", user_id="wxid_alice"))
            await h.settle()
            assert len(h.answers("wmAlice")) == 3 + 4
            assert [d["reason"] for _, m, d in await activity(h, "send_dropped")] == ["window"]

            # 4. 10:00: the schedule to tag:vip becomes one task per owner (not one per group)
            await h.clock.advance_to(h.clock.now().replace(hour=2, minute=0, second=5))  # 10:00 in Shanghai
            await h.settle()
            await h.clock.advance(60)  # the owners' groups gathered
            await h.settle()
            tasks = {t["body"]["sender"]: (msgid, t["body"]["chat_id_list"]) for msgid, t in mock.templates.items()}
            assert {owner: groups for owner, (_, groups) in tasks.items()} == {
                "staff_li": ["wrVip1", "wrVip2"], "staff_wu": ["wrVip3"]}
            mock.staff_confirms(tasks["staff_li"][0], "staff_li")
            await h.clock.advance(600)  # the results are polled
            await h.settle()
            assert sorted((r, d["owner"], d["status"]) for r, _, d in await activity(h, "group_send_result")) == [
                ("wrVip1", "staff_li", "sent"), ("wrVip2", "staff_li", "sent")]
            page = await dashboard_page(h, "/jobs", "scenario-dash")
            rows = [r for r in page.split("<tr>") if "wrVip" in r]
            assert any("staff_li" in r and "wrVip1（已发送）" in r and "wrVip2（已发送）" in r for r in rows)
            assert any("staff_wu" in r and "wrVip3（等待员工确认）" in r for r in rows)
    finally:
        await mock.stop()
