"""Staff-confirmed broadcasts (企业群发) over the mock WeCom API: a scheduled message to ``tag:vip`` customer
groups becomes one add_msg_template task per owner staff member (``chat_id_list`` with all of that owner's
groups); the results, polled with get_groupmsg_send_result (page by page) once the staff member confirms, reach
the activity store per group; the monthly quota is counted per group, persisted, and a group over it is left out
of the task with ``quota``."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.events import OutgoingMessage, Priority, ProactiveKind
from storage import wecom as store
from storage.models import Activity
from tests.support.wecom_mock import Customer, Group, WeComMock
from tests.support.wecom_support import WeComHarness, dashboard_page, wecom_config

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
        rooms={"wrVip1": {"tags": ["vip"]}, "wrVip2": {"tags": ["vip"]}, "wrVip3": {"tags": ["vip"]},
               "wrVip4": {"tags": ["vip"]}, "wrOther": {"tags": ["new"]}},
        skill_settings={"schedule": {"items": {"周末团": {"daily": "10:00", "targets": ["tag:vip"],
                                                          "text": "本周末团购开团啦～"}}}})


async def dashboard_jobs(h) -> str:
    return await dashboard_page(h, "/jobs", "wecom-dash")


async def test_scheduled_message_to_vip_groups_becomes_per_owner_tasks_with_results(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", "wecom-dash")
    mock = await WeComMock().start()
    mock.result_page = 1  # one row a page: the bot must follow the cursor
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_wu"),
                        "wrVip3": Group("wrVip3", "VIP 三群", "staff_li"),
                        "wrVip4": Group("wrVip4", "VIP 四群", "staff_li"),
                        "wrOther": Group("wrOther", "新人群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            async with h.app.services.sessions() as s:  # wrVip3 had its 群发 this month already
                await store.count_quota(s, "2026-11", "group:wrVip3")
                await s.commit()
            await h.clock.advance(3600 + 5)  # 10:00 local: the schedule runs
            await h.settle()
            assert mock.templates == {}  # still gathering the owners' groups
            await h.clock.advance(60)
            await h.settle()
            tasks = {(t["body"]["sender"], tuple(t["body"]["chat_id_list"])): msgid
                     for msgid, t in mock.templates.items()}
            # one task per owner with all of that owner's vip groups; wrVip3 is left out (quota)
            assert set(tasks) == {("staff_li", ("wrVip1", "wrVip4")), ("staff_wu", ("wrVip2",))}
            assert all(t["body"]["chat_type"] == "group" and t["body"]["text"]["content"] == "本周末团购开团啦～"
                       for t in mock.templates.values())
            created = await activity(h, "group_send_task")
            assert sorted((d["owner"], d["targets"], d["status"]) for _, d in created) == [
                ("staff_li", 2, "waiting"), ("staff_wu", 1, "waiting")]
            assert [(r, d["reason"]) for r, d in await activity(h, "send_dropped")] == [("wrVip3", "quota")]
            # staff_li confirms in their client (wrVip4 has been dissolved meanwhile); staff_wu's stays waiting
            mock.staff_confirms(tasks[("staff_li", ("wrVip1", "wrVip4"))], "staff_li", failed=("wrVip4",))
            await h.clock.advance(600)
            await h.settle()
            results = await activity(h, "group_send_result")
            assert sorted((r, d["owner"], d["status"]) for r, d in results) == [
                ("wrVip1", "staff_li", "sent"), ("wrVip4", "staff_li", "failed")]
            assert mock.count("externalcontact/get_groupmsg_send_result") >= 3  # two pages for staff_li's task
            async with h.app.services.sessions() as s:
                states = {row["owner"]: (row["status"], row["targets"]) for row in await store.group_sends(s)}
                assert await store.quota_used(s, "2026-11", "group:wrVip1") == 1
                # wrVip4 received nothing (WeCom reported it failed): its 群发 is given back
                assert await store.quota_used(s, "2026-11", "group:wrVip4") == 0
            assert states == {"staff_li": ("sent", {"wrVip1": "sent", "wrVip4": "failed"}),
                              "staff_wu": ("waiting", {"wrVip2": "waiting"})}
            # the operators see each task's state per owner on the dashboard
            page = await dashboard_jobs(h)
            assert "企业群发任务" in page
            rows = [r for r in page.split("<tr>") if "wrVip" in r]
            assert any("staff_li" in r and "wrVip1（已发送）" in r and "wrVip4（发送失败）" in r for r in rows)
            assert any("staff_wu" in r and "wrVip2（等待员工确认）" in r for r in rows)
            # and the global admin (a 微信客服 customer whose id is in bot.admins) in /schedule list
            await h.customer("admin1", "/schedule list")
            await h.settle()
            listing = h.answers("admin1")[-1]
            assert "企业群发（群主 staff_li）：等待确认 0，已发送 1，失败 0" in listing
            assert "企业群发（群主 staff_wu）：等待确认 1，已发送 0，失败 0" in listing
        # the next day, after a restart: the month's quota (1 here) is used up, persisted: dropped with quota, but
        # for wrVip4, whose 群发 was given back: it joins a new task
        async with WeComHarness(db_url, mock, broadcast_config(mock), start=h.clock.now()) as h2:
            await h2.clock.advance(24 * 3600)
            await h2.settle()
            await h2.clock.advance(600)
            assert len(mock.templates) == 3
            assert list(mock.templates.values())[-1]["body"]["chat_id_list"] == ["wrVip4"]
            dropped = [d["reason"] for _, d in await activity(h2, "send_dropped")]
            assert dropped.count("quota") == 1 + 3
    finally:
        await mock.stop()


async def test_targets_queued_before_a_restart_become_a_task_after_it(db_url):
    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            for room in ("wrVip1", "wrVip2"):
                h.app.governor.submit(OutgoingMessage("今晚八点直播", room_id=room), priority=Priority.SCHEDULED,
                                      kind=ProactiveKind.LIGHT)
            await h.settle()  # both queued for staff_li; the bot stops before the gathering ends
        assert mock.templates == {}
        async with WeComHarness(db_url, mock, broadcast_config(mock), start=h.clock.now()) as h2:
            await h2.clock.advance(61)
            await h2.settle()
            assert [t["body"]["chat_id_list"] for t in mock.templates.values()] == [["wrVip1", "wrVip2"]]
            await h2.clock.advance(120)
            assert len(mock.templates) == 1  # made once
    finally:
        await mock.stop()


async def test_campaigns_to_customers_outside_the_window_become_one_on_one_tasks(db_url):
    mock = await WeComMock().start()
    mock.customers.update({"wmS": Customer("wmS", "沉默客户"), "wmK": Customer("wmK", "客服客户"),
                           "wmT": Customer("wmT", "另一位沉默客户")})
    try:
        async with WeComHarness(db_url, mock, wecom_config(mock, skills=("ping",))) as h:
            await h.callbacks.contact_added("wmS", "staff_li", "")  # a contact, never wrote to 微信客服
            await h.callbacks.contact_added("wmK", "staff_wu", "")
            await h.customer("wmK", "/ping")  # wmK's window is open
            await h.settle()
            governor = h.app.governor

            def campaign(user: str, text: str, kind=ProactiveKind.PROMOTIONAL) -> None:
                governor.submit(OutgoingMessage(text, user_id=user), priority=Priority.SCHEDULED, kind=kind)

            await h.callbacks.contact_added("wmT", "staff_li", "")
            campaign("wmS", "新品上市，会员专享价")  # no window: a task for the staff member who has them
            campaign("wmT", "新品上市，会员专享价")  # the same staff member: the same task
            campaign("wmK", "新品上市，会员专享价")  # window open: 微信客服 answers it directly
            campaign("wxid_stranger", "新品上市")  # no channel at all
            governor.submit(OutgoingMessage("群公告", room_id="wrGone"), priority=Priority.SCHEDULED,
                            kind=ProactiveKind.LIGHT)  # a group WeCom doesn't know: dropped, not retried
            await h.settle()
            await h.clock.advance(60)  # the gathering ends: one task for staff_li
            singles = [t["body"] for t in mock.templates.values()]
            assert singles == [{"chat_type": "single", "sender": "staff_li", "external_userid": ["wmS", "wmT"],
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
            # a poll WeCom refuses for this task is logged; the next one asks again
            mock.fail_next("externalcontact/get_groupmsg_send_result", 41063)
            await h.clock.advance(600)
            assert await activity(h, "group_send_result") == []
            # staff_li confirms; the result reaches the activity store under the member
            mock.staff_confirms(next(iter(mock.templates)), "staff_li")
            await h.clock.advance(600)
            await h.settle()
            assert [(d["owner"], d["status"]) for _, d in await activity(h, "group_send_result")] == [
                ("staff_li", "sent"), ("staff_li", "sent")]
    finally:
        await mock.stop()


async def test_two_flushes_at_once_make_each_task_once(db_url):
    """The gathering timer can fire again while a slow flush still waits on WeCom: a target still queued must not
    go into a second task (staff would confirm the same 群发 twice)."""
    import asyncio

    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            for room in ("wrVip1", "wrVip2"):
                await h.bot.groups.send(OutgoingMessage("周末团购开团啦～", room_id=room))
            made = await asyncio.gather(h.bot.groups.flush(), h.bot.groups.flush())
            assert sorted(made) == [0, 1]
            assert [t["body"]["chat_id_list"] for t in mock.templates.values()] == [["wrVip1", "wrVip2"]]
    finally:
        await mock.stop()


async def test_a_campaign_message_reads_only_its_customers_follows(db_url):
    """Each 1-on-1 campaign message finds the staff member who has its customer: one indexed lookup, not the whole
    wecom_follows table per message (a campaign to n customers read n × n rows)."""
    from sqlalchemy import event

    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, wecom_config(mock, skills=("ping",))) as h:
            async with h.app.services.sessions() as s:
                for i in range(50):
                    await store.follow(s, f"wmF{i}", "staff_li" if i % 2 else "staff_wu", h.clock.now())
                await s.commit()
            statements: list[str] = []

            def seen(conn, cursor, statement, *args) -> None:
                if "wecom_follows" in statement:
                    statements.append(statement)

            engine = h.app.engine.sync_engine
            event.listen(engine, "before_cursor_execute", seen)
            try:
                target = await h.bot.groups.send(OutgoingMessage("新品上市", user_id="wmF7"))
            finally:
                event.remove(engine, "before_cursor_execute", seen)
            assert target.startswith("task-target:")
            assert statements and all("WHERE" in s.upper() for s in statements)
            async with h.app.services.sessions() as s:
                assert [(o, t) for _, o, _, t, _ in await store.queued_targets(s)] == [("staff_li", "wmF7")]
    finally:
        await mock.stop()


async def test_a_task_wecom_made_while_the_bot_stopped_is_uncertain_never_made_again(db_url, monkeypatch):
    """The process dies after WeCom made the task (add_msg_template) but before its msgid was committed: the next
    start finds the targets ``creating``, marks them ``uncertain`` (dashboard, /schedule list) and never makes the
    task again (staff would confirm the same 群发 twice)."""
    import asyncio

    monkeypatch.setenv("DASHBOARD_TOKEN", "wecom-dash")
    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li"),
                        "wrVip2": Group("wrVip2", "VIP 二群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            for room in ("wrVip1", "wrVip2"):
                await h.bot.groups.send(OutgoingMessage("周末团购开团啦～", room_id=room))
            release = mock.hold_next("externalcontact/add_msg_template")
            flushing = asyncio.ensure_future(h.bot.groups.flush())
            while not mock.templates:  # WeCom has made the task; its answer is held
                await asyncio.sleep(0.01)
            flushing.cancel()  # the process dies here: nothing after the call runs
            await asyncio.gather(flushing, return_exceptions=True)
            release.set()
            async with h.app.services.sessions() as s:
                assert await store.queued_targets(s) == []  # not queued to be made again
        assert len(mock.templates) == 1
        async with WeComHarness(db_url, mock, broadcast_config(mock), start=h.clock.now()) as h2:
            await h2.clock.advance(700)  # past the gathering and a poll
            await h2.settle()
            assert len(mock.templates) == 1 and mock.count("externalcontact/add_msg_template") == 1
            assert sorted(r for r, d in await activity(h2, "send_dropped") if d["reason"] == "uncertain") == [
                "wrVip1", "wrVip2"]
            async with h2.app.services.sessions() as s:
                assert await store.group_send_counts(s) == {("staff_li", "group"): {"uncertain": 1}}
                [task] = await store.group_sends(s)
            assert task["status"] == "uncertain" and task["targets"] == {"wrVip1": "uncertain",
                                                                           "wrVip2": "uncertain"}
            page = await dashboard_jobs(h2)
            assert any("staff_li" in r and "wrVip1（不确定）" in r for r in page.split("<tr>"))
            await h2.customer("admin1", "/schedule list")
            await h2.settle()
            assert "不确定是否已创建 1" in h2.answers("admin1")[-1]
    finally:
        await mock.stop()


async def test_wecom_unreachable_while_making_a_task_leaves_its_groups_queued_then_made_once(db_url):
    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li")})
    try:
        async with WeComHarness(db_url, mock, broadcast_config(mock)) as h:
            await h.bot.groups.send(OutgoingMessage("周末团购开团啦～", room_id="wrVip1"))
            await h.bot.api.access_token()
            await mock.go_down()
            await h.clock.advance(61)  # the gathering ends: WeCom can't be reached
            await h.settle()
            async with h.app.services.sessions() as s:
                assert [t for _, _, _, t, _ in await store.queued_targets(s)] == ["wrVip1"]  # not "creating"
            await mock.come_back()
            await h.clock.advance(121)  # tried again
            await h.settle()
            assert [t["body"]["chat_id_list"] for t in mock.templates.values()] == [["wrVip1"]]
            async with h.app.services.sessions() as s:
                assert await store.group_send_counts(s) == {("staff_li", "group"): {"waiting": 1}}
    finally:
        await mock.stop()


async def test_nothing_sent_gives_the_quota_back_and_an_unconfirmed_task_expires(db_url, monkeypatch):
    """WeCom limits what a group or customer *receives* a month: a task WeCom refuses (45009) gives its groups'
    群发 back; a 1-on-1 task its staff member never confirms is polled ``task_poll_days``, then ``expired``
    (polled no more, its customers' 群发 given back), shown 已过期（员工未确认） under 员工, not 群主."""
    monkeypatch.setenv("DASHBOARD_TOKEN", "wecom-dash")
    mock = await WeComMock().start()
    mock.groups.update({"wrVip1": Group("wrVip1", "VIP 一群", "staff_li")})
    mock.customers.update({"wmS": Customer("wmS", "沉默客户"), "wmX": Customer("wmX", "已删除的客户")})
    config = wecom_config(mock, skills=("ping", "schedule"), monthly_quota=1, task_poll_days=1)
    result = "externalcontact/get_groupmsg_send_result"
    try:
        async with WeComHarness(db_url, mock, config) as h:
            month = h.clock.local_now().strftime("%Y-%m")

            async def used(target: str) -> int:
                async with h.app.services.sessions() as s:
                    return await store.quota_used(s, month, target)

            mock.fail_next("externalcontact/add_msg_template", 45009)
            await h.bot.groups.send(OutgoingMessage("周末团购开团啦～", room_id="wrVip1"))
            assert await used("group:wrVip1") == 1  # counted when queued: a second task can't pass the check
            await h.clock.advance(61)
            await h.settle()
            assert mock.templates == {}
            assert [(r, d["reason"]) for r, d in await activity(h, "send_dropped")] == [("wrVip1", "quota")]
            assert await used("group:wrVip1") == 0  # the task was never made: nothing was sent
            # a customer WeCom puts in the task's fail_list gets nothing either
            await h.callbacks.contact_added("wmX", "staff_li", "")
            await h.settle()
            mock.unsendable.add("wmX")
            await h.bot.groups.send(OutgoingMessage("限时秒杀", user_id="wmX"))
            await h.clock.advance(61)
            await h.settle()
            assert await used("customer:wmX") == 0
            async with h.app.services.sessions() as s:  # nothing in it waits for staff: failed, never polled
                assert [(t["status"], t["targets"]) for t in await store.group_sends(s)] == [
                    ("failed", {"wmX": "failed"})]
            mock.templates.clear()
            # a 1-on-1 task staff_li never confirms
            await h.callbacks.contact_added("wmS", "staff_li", "")
            await h.settle()
            await h.bot.groups.send(OutgoingMessage("新品上市，会员专享价", user_id="wmS"))
            await h.clock.advance(61)
            await h.settle()
            [msgid] = mock.templates
            assert await used("customer:wmS") == 1
            await h.customer("admin1", "/schedule list")
            await h.settle()
            assert "企业群发（员工 staff_li）：等待确认 1，已发送 0，失败 1" in h.answers("admin1")[-1]
            await h.clock.advance(23 * 3600)
            assert mock.count(result) >= 100  # asked about every 10 minutes for the day
            await h.clock.advance(3600)  # a day old: expired
            await h.settle()
            polls = mock.count(result)
            await h.clock.advance(3 * 3600)
            assert mock.count(result) == polls  # polled no more
            assert await used("customer:wmS") == 0
            async with h.app.services.sessions() as s:
                [task] = [t for t in await store.group_sends(s) if t["msgid"] == msgid]
                assert (task["status"], task["targets"]) == ("expired", {"wmS": "expired"})
                assert await store.waiting_group_sends(s) == []
            assert [d["status"] for _, d in await activity(h, "group_send_result")] == ["expired"]
            page = await dashboard_jobs(h)
            assert any("staff_li" in r and "wmS（已过期（员工未确认））" in r for r in page.split("<tr>"))
            await h.customer("admin1", "/schedule list")
            await h.settle()
            listing = h.answers("admin1")[-1]
            assert "企业群发（员工 staff_li）：等待确认 0，已发送 0，失败 1，已过期（员工未确认） 1" in listing
            assert "群主 staff_li" not in listing
    finally:
        await mock.stop()
