"""Operators in the WeCom mode are staff members (WeCom UserIDs), told through the self-built app's message/send:
a handoff ticket's note reaches them though they never wrote to 微信客服 (the reply window is for customers), an
unknown UserID is dropped with ``invalid_user``, ``[bot] operators_room`` makes no 企业群发 task; an operator's
``/reply`` and ``/close`` written to the app (its callback) reach the dispatcher and answer the customer through
微信客服, the operator through the app; a note held across a restart stays a note to staff; a /reply accepted and
cut off by a stop reaches the customer once after the restart."""

from __future__ import annotations

import asyncio
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.context import Context
from skills.faq.models import Ticket
from storage.models import Activity, OutboxMessage
from tests.support import bridge_skill
from tests.support.faq_support import write_kb
from tests.support.wecom_mock import WeComMock
from tests.support.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends

HANDOFF = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"
UNKNOWN = "你们的咖啡豆是哪里产的"


def config(mock, tmp_path, **bot):
    cfg = wecom_config(mock, skills=("ping", "faq"),
                       skill_settings={"faq": {"knowledge_dir": str(write_kb(tmp_path / "kb")),
                                               "reload_interval_s": 0}})
    return replace(cfg, bot=replace(cfg.bot, operators=bot.get("operators", ("op_wang", "op_gone")),
                                    operators_room=bot.get("operators_room", "wrStaff")))


async def dropped(h) -> list[tuple[str | None, str]]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = await s.execute(select(Activity.member_id, Activity.detail).where(Activity.kind == "send_dropped"))
        return [(m, d.get("reason")) for m, d in rows]


def to_staff(mock, userid: str) -> list[str]:
    return [m["content"] for m in mock.app_messages if m["touser"] == userid]


async def test_operators_are_told_through_the_app_and_answer_from_their_wecom_client(db_url, tmp_path):
    mock = await WeComMock().start()
    mock.staff = {"op_wang"}
    try:
        async with WeComHarness(db_url, mock, config(mock, tmp_path)) as h:
            await h.customer("wmC1", UNKNOWN)
            await h.settle()
            assert h.answers("wmC1")[-1] == HANDOFF
            [note] = to_staff(mock, "op_wang")
            assert note.startswith("【待人工回复 #1】") and UNKNOWN in note and "/reply 1" in note
            sent = [b for p, b in mock.calls if p == "message/send"]
            assert {b["touser"] for b in sent} == {"op_wang", "op_gone"}
            assert all(b["agentid"] == 1000002 and b["msgtype"] == "text" for b in sent)
            # the unknown UserID: dropped with its reason, not retried; the operators' room: no 群发 task
            assert ("op_gone", "invalid_user") in await dropped(h)
            assert mock.count("message/send") == 2
            assert mock.templates == {} and mock.count("externalcontact/groupchat/get") == 0
            # op_wang answers from their WeCom client: the app's callback
            status, _ = await h.callbacks.staff_says("op_wang", "/reply 1 云南保山的小粒咖啡～")
            assert status == 200
            await h.settle()
            assert h.answers("wmC1")[-1] == "【工作人员回复】云南保山的小粒咖啡～"
            assert to_staff(mock, "op_wang")[-1].startswith("已回复 #1")
            for _ in range(2):  # WeCom resends a callback it got no answer to: handled once
                await h.callbacks.staff_says("op_wang", "/close 1", msgid=7001)
            await h.settle()
            assert to_staff(mock, "op_wang")[-1] == "已关闭 #1。"
            assert not any("已经是关闭" in m for m in to_staff(mock, "op_wang"))
            async with h.app.services.sessions() as s:
                [t] = (await s.execute(select(Ticket))).scalars().all()
            assert (t.status, t.replied_by) == ("closed", "op_wang")
            # no operator note went to 微信客服 (nor counted against a customer's window)
            assert {b["touser"] for b in mock.sent} == {"wmC1"}
    finally:
        await mock.stop()


async def test_a_held_note_to_staff_stays_one_after_a_restart(db_url, tmp_path):
    mock = await WeComMock().start()
    mock.staff = {"op_wang"}
    try:
        cfg = config(mock, tmp_path, operators=("op_wang",), operators_room="")
        async with WeComHarness(db_url, mock, cfg) as h:
            await mock.go_down()  # WeCom unreachable: the note waits in the outbox
            ctx = Context(h.app.services)
            assert ctx.notify_operators("新的积分兑换（单号 7）")
            await ctx.commit()
            await ctx.close()
            await h.app.clock.run_pending()
            async with h.app.services.sessions() as s:
                rows = (await s.execute(select(OutboxMessage.user_id, OutboxMessage.audience))).all()
            assert [tuple(r) for r in rows] == [("op_wang", "staff")]
        await mock.come_back()
        async with WeComHarness(db_url, mock, cfg, start=h.clock.now()) as h2:
            await h2.settle()
            await h2.clock.advance(60)
            await h2.settle()
            assert to_staff(mock, "op_wang") == ["新的积分兑换（单号 7）"]
            assert mock.sent == []
    finally:
        await mock.stop()



async def test_a_reply_accepted_before_a_stop_reaches_the_customer_once_after_the_restart(db_url, tmp_path):
    mock = await WeComMock().start()
    mock.staff = {"op_wang"}
    bridge_skill.seen.clear()
    cfg = config(mock, tmp_path, operators=("op_wang",), operators_room="")
    cfg = replace(cfg, bot=replace(cfg.bot, skills=(*cfg.bot.skills, "tests.support.bridge_skill")))
    try:
        try:
            async with WeComHarness(db_url, mock, cfg) as h:
                await h.customer("wmC1", UNKNOWN)
                await h.settle()
                assert h.answers("wmC1") == [HANDOFF]
                bridge_skill.seen.clear()
                entered = bridge_skill.hold()
                # op_wang's first message is held in handling; the /reply waits behind it (one chat, in order)
                assert (await h.callbacks.staff_says("op_wang", "回声 在吗"))[0] == 200
                await asyncio.wait_for(entered.wait(), 10)
                assert (await h.callbacks.staff_says("op_wang", "/reply 1 云南保山的小粒咖啡～"))[0] == 200
                workers = list(h.app.dispatcher._workers)  # cut off as a crash would: nothing of them committed
                for task in workers:
                    task.cancel()
                await asyncio.gather(*workers, return_exceptions=True)
                at = h.clock.now()
        finally:
            bridge_skill.release()
        assert h.answers("wmC1") == [HANDOFF]
        async with WeComHarness(db_url, mock, cfg, start=at + timedelta(seconds=30)) as h:
            await h.settle()
            assert h.bot.callbacks.recovered == 2
            assert [e.text for e in bridge_skill.seen] == ["回声 在吗"]  # oldest first
            assert h.answers("wmC1") == [HANDOFF, "【工作人员回复】云南保山的小粒咖啡～"]
            assert sum(m.startswith("已回复 #1") for m in to_staff(mock, "op_wang")) == 1
        async with WeComHarness(db_url, mock, cfg, start=at + timedelta(seconds=60)) as h:
            await h.settle()
            assert h.bot.callbacks.recovered == 0  # marked handled with the reply: not handed on a second time
        assert h.answers("wmC1") == [HANDOFF, "【工作人员回复】云南保山的小粒咖啡～"]
    finally:
        await mock.stop()
