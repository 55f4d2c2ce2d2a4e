"""Staff-confirmed broadcasts (企业群发) over the mock WeCom API: a scheduled message to ``tag:vip`` customer
groups becomes one add_msg_template task per group for its owner staff member; the results, polled with
get_groupmsg_send_result once the staff member confirms, reach the activity store; the monthly quota is counted,
persisted, and a message over it is dropped with ``quota``."""

from __future__ import annotations

import pytest
import aiohttp
from sqlalchemy import select

from bot.events import OutgoingMessage, Priority, ProactiveKind
from storage import wecom as store
from storage.models import Activity
from tests.wecom_mock import Customer, Group, WeComMock
from tests.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends


async def activity(h, kind: str) -> list[tuple[str | None, dict]]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = await s.execute(select(Activity.room_id, Activity.detail).where(Activity.kind == kind)
                               .order_by(Activity.id))
        return [tuple(r) for r in rows]


def broadcast_config(mock):
    return wecom_config(
        mock, skills=("ping", "schedule"), monthly_quota=1,
        rooms={"wrVip1": {"tags": ["vip"]}, "wrVip2": {"tags": ["vip"]}, "wrOther": {"tags": ["new"]}},
        skill_settings={"schedule": {"items": {"周末团": {"daily": "10:00", "targets": ["tag:vip"],
                                                          "text": "本周末团购开团啦～"}}}})


async def dashboard_jobs(h) -> str:
    base = f"http://127.0.0.1:{h.app.web.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(base + "/dashboard/login", data={"token": "wecom-dash"}, allow_redirects=False):
            pass
        async with client.get(base + "/dashboard/jobs") as r:
            assert r.status == 200
            return await r.text()


async def test_scheduled_message_to_vip_groups_becomes_per_owner_tasks_with_results(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", "wecom-dash")
    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_wu"),
                        "wrOther": Group("wrOther", "新人群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            await h.clock.advance(3600 + 5)  # 10:00 local: the schedule runs
            await h.settle()
            tasks = {(t["body"]["sender"], tuple(t["body"]["chat_id_list"])): msgid
                     for msgid, t in mock.templates.items()}
            assert set(tasks) == {("staff_li", ("wrVip1",)), ("staff_wu", ("wrVip2",))}
            assert all(t["body"]["text"]["content"] == "本周末团购开团啦～" for t in mock.templates.values())
            created = await activity(h, "group_send_task")
            assert sorted((r, d["owner"], d["status"]) for r, d in created) == [
                ("wrVip1", "staff_li", "waiting"), ("wrVip2", "staff_wu", "waiting")]
            # staff_li confirms in their client; the next poll records it, staff_wu's stays waiting
            mock.staff_confirms(tasks[("staff_li", ("wrVip1",))], "staff_li")
            await h.clock.advance(600)
            await h.settle()
            results = await activity(h, "group_send_result")
            assert [(r, d["owner"], d["status"]) for r, d in results] == [("wrVip1", "staff_li", "sent")]
            async with h.app.services.sessions() as s:
                states = {row["chat_id"]: row["status"] for row in await store.group_sends(s)}
                assert await store.quota_used(s, "2026-11", "group:wrVip1") == 1
            assert states == {"wrVip1": "sent", "wrVip2": "waiting"}
            # the operators see each task's state per owner on the dashboard
            page = await dashboard_jobs(h)
            assert "企业群发任务" in page
            rows = [r for r in page.split("<tr>") if "wrVip" in r]
            assert any("wrVip1" in r and "staff_li" in r and "已发送" in r for r in rows)
            assert any("wrVip2" in r and "staff_wu" in r and "等待群主确认" in r for r in rows)
            # and the global admin (a 微信客服 customer whose id is in bot.admins) in /schedule list
            await h.customer("admin1", "/schedule list")
            await h.settle()
            listing = h.answers("admin1")[-1]
            assert "企业群发（群主 staff_li）：等待确认 0，已发送 1，失败 0" in listing
            assert "企业群发（群主 staff_wu）：等待确认 1，已发送 0，失败 0" in listing
        # the next day, after a restart: the month's quota (1 here) is used up, persisted: dropped with quota
        async with WeComHarness(db_url, mock, broadcast_config(mock), start=h.clock.now()) as h2:
            await h2.clock.advance(24 * 3600)
            await h2.settle()
            assert len(mock.templates) == 2
            dropped = [d["reason"] for _, d in await activity(h2, "send_dropped")]
            assert dropped.count("quota") == 2
    finally:
        await mock.stop()


async def test_campaigns_to_customers_outside_the_window_become_one_on_one_tasks(db_url):
    mock = await WeComMock().start()
    mock.customers.update({"wmS": Customer("wmS", "沉默客户"), "wmK": Customer("wmK", "客服客户")})
    try:
        async with WeComHarness(db_url, mock, wecom_config(mock, skills=("ping",))) as h:
            await h.callbacks.contact_added("wmS", "staff_li", "")  # a contact, never wrote to 微信客服
            await h.callbacks.contact_added("wmK", "staff_wu", "")
            await h.customer("wmK", "/ping")  # wmK's window is open
            await h.settle()
            governor = h.app.governor

            def campaign(user: str, text: str, kind=ProactiveKind.PROMOTIONAL) -> None:
                governor.submit(OutgoingMessage(text, user_id=user), priority=Priority.SCHEDULED, kind=kind)

            campaign("wmS", "新品上市，会员专享价")  # no window: a task for the staff member who has them
            campaign("wmK", "新品上市，会员专享价")  # window open: 微信客服 answers it directly
            campaign("wxid_stranger", "新品上市")  # no channel at all
            governor.submit(OutgoingMessage("群公告", room_id="wrGone"), priority=Priority.SCHEDULED,
                            kind=ProactiveKind.LIGHT)  # a group WeCom doesn't know: dropped, not retried
            await h.settle()
            singles = [t["body"] for t in mock.templates.values()]
            assert singles == [{"chat_type": "single", "sender": "staff_li", "external_userid": ["wmS"],
                                "text": {"content": "新品上市，会员专享价"}}]
            assert h.answers("wmK")[-1] == "新品上市，会员专享价"
            dropped = [d["reason"] for _, d in await activity(h, "send_dropped")]
            assert sorted(dropped) == ["no_channel", "unknown_group"]
            assert mock.count("externalcontact/groupchat/get") == 1
            # an order reminder (transactional) to a customer outside the window: the window, not a task
            await h.clock.advance(49 * 3600)
            governor.submit(OutgoingMessage("您的订单可以提货了", user_id="wmK"), priority=Priority.TRANSACTIONAL,
                            kind=ProactiveKind.TRANSACTIONAL)
            await h.settle()
            assert [d["reason"] for _, d in await activity(h, "send_dropped")][-1] == "window"
            assert len(mock.templates) == 1
            # staff_li confirms; the result reaches the activity store under the member
            mock.staff_confirms(next(iter(mock.templates)), "staff_li")
            await h.clock.advance(600)
            await h.settle()
            assert [(d["owner"], d["status"]) for _, d in await activity(h, "group_send_result")] == [
                ("staff_li", "sent")]
    finally:
        await mock.stop()
