"""微信客服 self-service end to end over the mock WeCom API: a customer's message arrives as a callback, is synced
from the persisted cursor, answered by the skills through kf/send_msg within the reply window; the token is cached
(one round trip per answer) and refreshed once when WeCom says it is invalid; quota and window errors drop the
message with their reason; an unreachable WeCom is retried with back-off and nothing is sent twice."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.commands import REFUSED
from bot.events import OutgoingMessage
from skills.orders import bind_member
from storage import identity
from storage.models import Activity
from storage.points import balance, change_points, ledger_sum
from tests.support import bridge_skill
from tests.support.faq_support import write_kb
from tests.support.wecom_mock import WeComMock
from tests.support.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends


async def dropped(h, reason: str) -> list[dict]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = (await s.execute(select(Activity.detail).where(Activity.kind == "send_dropped"))).scalars().all()
    return [d for d in rows if d.get("reason") == reason]


def kf_config(mock, tmp_path):
    return wecom_config(mock, skills=("ping", "checkin", "faq", "orders"),
                        skill_settings={"faq": {"knowledge_dir": str(write_kb(tmp_path / "kb"))}})


async def test_faq_checkin_and_points_answered_one_on_one(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await h.customer("wmC1", "下单后多久发货？")
            await h.settle()
            assert h.answers("wmC1") and "16:00" in h.answers("wmC1")[-1]
            await h.customer("wmC1", "签到", after_s=5)
            await h.settle()
            assert "签到" in h.answers("wmC1")[-1]
            await h.customer("wmC1", "/积分", after_s=5)
            await h.settle()
            assert "积分" in h.answers("wmC1")[-1]
            async with h.app.services.sessions() as s:
                earned = await balance(s, "wmC1")
            assert earned > 0 and str(earned) in h.answers("wmC1")[-1]
            # one gettoken for all of it: each answer was one round trip (kf/send_msg)
            assert mock.count("gettoken") == 1 and mock.count("kf/send_msg") == len(h.answers("wmC1")) == 3
            assert h.bot.api.calls["/cgi-bin/kf/send_msg"] == 3
            # the cursor is persisted: after a restart nothing is fetched or answered again
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            status, _ = await h.callbacks.kf_event()
            assert status == 200
            await h.settle()
            assert len(mock.sent) == 3
            assert mock.calls[-1][0] == "kf/sync_msg" and mock.calls[-1][1]["cursor"] == "3"
            assert mock.count("gettoken") == 1  # the token came from the database, not from WeCom again
    finally:
        await mock.stop()


async def test_a_sixth_message_inside_48_hours_is_dropped_with_window(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await h.customer("wmW", "/ping")
            await h.settle()
            governor = h.app.governor
            for i in range(5):  # four more proactive-style messages, then a sixth
                governor.submit(OutgoingMessage(f"提醒 {i}", user_id="wmW"))
            await h.settle()
            assert len(h.answers("wmW")) == 5
            assert len(await dropped(h, "window")) == 1
            assert mock.count("kf/send_msg") == 5  # the sixth never reached WeCom
        # the count survives a restart
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path), start=h.clock.now()) as h:
            governor = h.app.governor
            governor.submit(OutgoingMessage("重启后的提醒", user_id="wmW"))
            await h.settle()
            assert len(await dropped(h, "window")) == 2 and mock.count("kf/send_msg") == 5
            # the customer writes again: the window opens again
            await h.customer("wmW", "/ping", after_s=60)
            await h.settle()
            assert len(h.answers("wmW")) == 6
            # 48 h after their last message: nothing
            await h.clock.advance(48 * 3600 + 1)
            governor.submit(OutgoingMessage("迟到的提醒", user_id="wmW"))
            await h.settle()
            assert len(h.answers("wmW")) == 6 and len(await dropped(h, "window")) == 3
            # and nothing in an external group
            governor.submit(OutgoingMessage("群里说话", room_id="wrChat1"))
            await h.settle()
            assert len(await dropped(h, "no_group_send")) == 1
    finally:
        await mock.stop()


async def test_invalid_token_refreshed_once_quota_and_window_errors_dropped(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await h.customer("wmT", "/ping")
            await h.settle()
            assert len(h.answers("wmT")) == 1 and mock.count("gettoken") == 1
            mock.expire_tokens()  # WeCom says 42001: one refresh, the call tried once more
            await h.customer("wmT", "/ping", after_s=5)
            await h.settle()
            assert len(h.answers("wmT")) == 2 and mock.count("gettoken") == 2
            mock.fail_next("kf/send_msg", 45009)
            await h.customer("wmT", "/ping", after_s=5)
            await h.settle()
            mock.fail_next("kf/send_msg", 95018)
            await h.customer("wmT", "/ping", after_s=5)
            await h.settle()
            assert len(h.answers("wmT")) == 2
            assert len(await dropped(h, "quota")) == 1 and len(await dropped(h, "window")) == 1
            assert mock.count("kf/send_msg") == 4  # each refused once, never again
            # renewed 5 minutes before it expires (7200 s), never used expired: WeCom never says 42001 here
            expires = max(mock.tokens.values())  # the token in use (mock seconds)
            await h.customer("wmT", "/ping", after_s=expires - 310 - h.clock.now().timestamp())
            await h.settle()
            assert mock.count("gettoken") == 2
            await h.customer("wmT", "/ping", after_s=20)  # now within 5 minutes of its expiry
            await h.settle()
            assert mock.count("gettoken") == 3 and len(h.answers("wmT")) == 4
    finally:
        await mock.stop()


async def test_unreachable_wecom_is_retried_with_backoff_and_nothing_sent_twice(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await h.customer("wmN", "/ping")
            await h.settle()
            await mock.go_down()  # WeCom unreachable: the message is held (outbox), not lost
            # an outage outlasts aiohttp's 15 s keep-alive: the client's pooled connection is gone (a send on a
            # connection that breaks mid-way is "uncertain", tested below)
            await h.bot.api.stop()
            await h.bot.api.start()
            h.app.governor.submit(OutgoingMessage("稍后送达", user_id="wmN"))
            await h.clock.advance(2)  # one try (settle would run the clock on until the message is stale)
            assert h.app.governor.offline and h.app.governor.pending == 1
            await mock.come_back()
            await h.clock.advance(31)  # the governor probes again
            await h.settle()
            assert h.answers("wmN").count("稍后送达") == 1 and h.app.governor.pending == 0
            # a send whose answer never came may have arrived: not sent again
            mock.drop_next("kf/send_msg")
            h.app.governor.submit(OutgoingMessage("只发一次", user_id="wmN"))
            await h.settle()
            assert len(await dropped(h, "uncertain")) == 1 and mock.count("kf/send_msg") == 3
            # a sync that fails is retried with back-off from the saved cursor
            mock.fail_next("kf/sync_msg", -1)
            await h.customer("wmN", "在吗？", after_s=5)
            assert mock.count("kf/sync_msg") == 2 and h.bot.kf.delivered == 1
            await h.clock.advance(5)
            await h.idle()
            assert mock.count("kf/sync_msg") == 3 and h.bot.kf.delivered == 2
            assert "token" not in mock.calls[-1][1]  # the retry went without the callback's short-lived token
    finally:
        await mock.stop()


async def test_alerts_in_the_wecom_mode_name_wecom_not_a_wechat_account(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await h.customer("wmA", "/ping")
            await h.settle()
            await mock.go_down()
            await h.bot.api.stop()
            await h.bot.api.start()
            h.app.governor.submit(OutgoingMessage("稍后送达", user_id="wmA"))
            await h.clock.advance(2)
            await h.clock.advance(31)  # the probe fails too: WeCom is unreachable, the operators hear it
            await h.clock.advance(10)
            texts = [a.text for a in h.app.health.alerts]
            assert len(texts) == 1 and "企业微信" in texts[0] and "微信账号" not in texts[0]
            await mock.come_back()
            await h.clock.advance(31)
            await h.settle()
            texts = [a.text for a in h.app.health.alerts]
            assert len(texts) == 2 and "企业微信" in texts[1] and "微信账号" not in texts[1]
            assert h.answers("wmA").count("稍后送达") == 1
    finally:
        await mock.stop()


async def test_an_external_contact_and_a_shop_member_share_one_wallet(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            # the shop member: bound by the orders skill, their unionid known from the shop
            await bind_member(h.app.services, "SHOP-0042", "wxid_alice")
            async with h.app.services.sessions() as s:
                member = await identity.resolve(s, "shop", "SHOP-0042")
                await identity.link(s, "unionid", "UNION-ALICE", member, h.clock.now())
                await s.commit()
            assert member == "wxid_alice"
            # she writes to 微信客服 as an external contact; WeCom gives her unionid
            await h.customer("wmAlice", "签到", unionid="UNION-ALICE", name="Alice")
            await h.settle()
            await h.customer("wmAlice", "/积分", after_s=5)
            await h.settle()
            async with h.app.services.sessions() as s:
                assert await identity.resolve(s, "external_userid", "wmAlice") == "wxid_alice"
                assert await balance(s, "wmAlice") == 0
                points = await balance(s, "wxid_alice")
            assert points > 0 and str(points) in h.answers("wmAlice")[-1]
            # her own data lists the linked ids; erasing it removes the links (PIPL)
            await h.customer("wmAlice", "/我的数据", after_s=5)
            await h.settle()
            assert "关联账号 3 个" in h.answers("wmAlice")[-1]  # shop, unionid and external_userid
            await h.customer("wmAlice", "/删除我的数据", after_s=5)
            await h.settle()
            await h.customer("wmAlice", "确认删除", after_s=5)
            await h.settle()
            assert "已删除" in h.answers("wmAlice")[-1]
            async with h.app.services.sessions() as s:
                assert await identity.of_member(s, "wxid_alice") == []
    finally:
        await mock.stop()


async def test_an_operator_links_a_customer_to_a_shop_member_and_their_wallets_merge_once(db_url, tmp_path):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            await bind_member(h.app.services, "SHOP-7", "wxid_bob")  # the shop member, with points of their own
            async with h.app.services.sessions() as s:
                await change_points(s, "wxid_bob", 30, reason="商城赠送", source="admin", at=h.clock.now(),
                                    ref_id="gift-bob")
                await s.commit()
            await h.customer("wmBob", "签到")  # the same person on 微信客服, no unionid: a wallet of their own
            await h.settle()
            async with h.app.services.sessions() as s:
                earned = await balance(s, "wmBob")
            assert earned > 0
            # a member can't link anyone; an unknown customer gets a polite answer
            await h.customer("wmBob", "/绑定会员 wmBob SHOP-9", after_s=5)
            await h.customer("admin1", "/绑定会员 wmNobody SHOP-7", after_s=5)
            await h.settle()
            assert h.answers("wmBob")[-1] == REFUSED
            assert "没有找到客户「wmNobody」" in h.answers("admin1")[-1]
            # a global admin links them: one wallet, through the ledger, in one transaction
            await h.customer("admin1", "/绑定会员 wmBob SHOP-7", after_s=5)
            await h.settle()
            assert f"转入 {earned} 积分，现有 {30 + earned} 积分" in h.answers("admin1")[-1]
            async with h.app.services.sessions() as s:
                assert (await balance(s, "wmBob"), await balance(s, "wxid_bob")) == (0, 30 + earned)
                for member in ("wmBob", "wxid_bob"):
                    assert await ledger_sum(s, member) == await balance(s, member)
                assert await identity.resolve(s, "external_userid", "wmBob") == "wxid_bob"
                again = await identity.merge(s, "wmBob", "wxid_bob", h.clock.now())  # idempotent
                await s.commit()
            assert again.moved == 0 and again.balance == 30 + earned
            await h.customer("admin1", "/绑定会员 wmBob SHOP-7", after_s=5)
            await h.settle()
            assert "已经是同一位会员" in h.answers("admin1")[-1]
            # the customer now sees the one wallet (the transport's cache of links lasts a minute at most)
            await h.customer("wmBob", "/积分", after_s=60)
            await h.settle()
            assert str(30 + earned) in h.answers("wmBob")[-1]
            async with h.app.services.sessions() as s:
                assert await balance(s, "wmBob") == 0
    finally:
        await mock.stop()


async def test_a_message_with_an_unstorable_customer_id_does_not_stick_the_inbox(db_url, tmp_path):
    """A page with a customer id the tables can't hold (NUL, too long) is still handled: that message is skipped,
    the others on the page answered and the cursor saved, so the next message is answered too."""
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, kf_config(mock, tmp_path)) as h:
            mock.customer_says("wm\x00bad", "签到")
            mock.customer_says("wm" + "x" * 200, "签到")
            await h.customer("wmGood", "签到")
            await h.settle()
            assert len(h.answers("wmGood")) == 1
            await h.customer("wmGood", "/积分", after_s=5)
            await h.settle()
            assert len(h.answers("wmGood")) == 2 and "积分" in h.answers("wmGood")[-1]
            assert {b["touser"] for b in mock.sent} == {"wmGood"}
    finally:
        await mock.stop()


# -- fetched, not handled: a stop or crash in between ----------------------------------------------------------------

async def stopped_under_a_kf_message(db_url, mock, config):
    """A customer's message synced (its msgid and the cursor committed), the bot stopped while the dispatcher handles
    it: the probe skill holds it, the handling is cut off (as a crash would: nothing of it committed)."""
    entered = bridge_skill.hold()
    try:
        async with WeComHarness(db_url, mock, config) as h:
            mock.customer_says("wmC1", "回声 你好")
            status, _ = await h.callbacks.kf_event()
            assert status == 200
            await asyncio.wait_for(entered.wait(), 10)
            await h.bot.kf.idle()
            workers = list(h.app.dispatcher._workers)
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            now = h.clock.now()
    finally:
        bridge_skill.release()
    assert bridge_skill.seen == [] and mock.sent == []
    return now


async def test_a_kf_message_fetched_before_a_stop_is_handled_once_after_the_restart(db_url):
    mock = await WeComMock().start()
    bridge_skill.seen.clear()
    config = wecom_config(mock, skills=("ping", "tests.support.bridge_skill"))
    try:
        now = await stopped_under_a_kf_message(db_url, mock, config)
        async with WeComHarness(db_url, mock, config, start=now + timedelta(seconds=30)) as h:
            await h.settle()
            assert h.bot.kf.recovered == 1
            assert [(e.text, e.sender.id) for e in bridge_skill.seen] == [("回声 你好", "wmC1")]
            status, _ = await h.callbacks.kf_event()  # WeCom says again: the cursor is past it
            assert status == 200
            await h.settle()
            assert h.answers("wmC1") == ["收到：回声 你好"]
        async with WeComHarness(db_url, mock, config, start=now + timedelta(seconds=60)) as h:
            await h.settle()
            assert h.bot.kf.recovered == 0  # marked handled: not handed on a second time
        assert len(mock.sent) == 1 and len(bridge_skill.seen) == 1
    finally:
        await mock.stop()


async def test_a_kf_message_fetched_two_hours_before_the_restart_is_dropped_as_stale(db_url, caplog):
    mock = await WeComMock().start()
    bridge_skill.seen.clear()
    config = wecom_config(mock, skills=("ping", "tests.support.bridge_skill"))
    try:
        now = await stopped_under_a_kf_message(db_url, mock, config)
        caplog.set_level("INFO", logger="bot.transports.wecom.kf")
        async with WeComHarness(db_url, mock, config, start=now + timedelta(hours=2)) as h:
            await h.settle()
            assert h.bot.kf.recovered == 0 and h.bot.kf.dropped_stale == 1
        assert bridge_skill.seen == [] and mock.sent == []
        lines = [r.getMessage() for r in caplog.records if "not handled before the restart" in r.getMessage()]
        assert lines == ["微信客服 messages fetched but not handled before the restart: 0 handed on, 1 dropped as "
                         "older than 1:00:00"]
        async with WeComHarness(db_url, mock, config, start=now + timedelta(hours=2, seconds=5)) as h:
            assert h.bot.kf.dropped_stale == 0  # dropped once, for good
    finally:
        await mock.stop()
