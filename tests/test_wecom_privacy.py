"""/我的数据 and /删除我的数据 for a WeCom customer: the WeCom rows naming them (the staff members who have them as
a contact, their tier tag mark, their monthly 群发 counts, 1-on-1 task targets, 微信客服 rows) are listed, then
deleted; a 1-on-1 task's chat_id gets the pseudonym. Over the mock WeCom API, end to end."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from bot.events import OutgoingMessage, Priority, ProactiveKind
from storage import wecom as store
from storage.models_wecom import (
    MemberIdentity,
    WeComFollow,
    WeComGroupSend,
    WeComKfCustomer,
    WeComQuota,
    WeComTagMark,
    WeComTaskTarget,
)
from tests.support.wecom_mock import Customer, WeComMock
from tests.support.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends

NAMING = (WeComFollow.external_userid, WeComTagMark.external_userid, WeComQuota.target, WeComTaskTarget.target,
          WeComGroupSend.chat_id, WeComKfCustomer.external_userid, MemberIdentity.value)


async def values(h) -> set[str]:
    out: set[str] = set()
    async with h.app.services.sessions() as s:
        for column in NAMING:
            out |= set((await s.execute(select(column))).scalars())
    return out


async def test_a_wecom_customer_sees_then_erases_every_wecom_row_naming_them(db_url):
    mock = await WeComMock().start()
    mock.customers.update({"wmE": Customer("wmE", "要删除的客户"), "wmK": Customer("wmK", "另一位客户")})
    try:
        async with WeComHarness(db_url, mock, wecom_config(mock, skills=("ping",))) as h:
            for customer in ("wmE", "wmK"):
                await h.callbacks.contact_added(customer, "staff_li", "")
            await h.idle()
            for customer in ("wmE", "wmK"):  # a campaign outside the window: one 1-on-1 task for both
                h.app.governor.submit(OutgoingMessage("新品上市", user_id=customer), priority=Priority.SCHEDULED,
                                      kind=ProactiveKind.PROMOTIONAL)
            await h.settle()
            await h.clock.advance(60)
            [task] = mock.templates.values()
            assert task["body"]["external_userid"] == ["wmE", "wmK"]
            async with h.app.services.sessions() as s:
                await store.mark(s, "wmE", "etGold", h.clock.now())
                await store.mark(s, "wmK", "etGold", h.clock.now())
                await s.commit()
            await h.customer("wmE", "/我的数据")
            await h.settle()
            export = h.answers("wmE")[-1]
            assert ("企业微信：微信客服会话 1、添加你为客户的员工 1、会员等级标签 1、群发计数（按月） 1、给你的群发任务 1"
                    in export), export
            assert "wmE" in await values(h)
            await h.customer("wmE", "/删除我的数据", after_s=5)
            await h.customer("wmE", "确认删除", after_s=5)
            await h.settle()
            assert h.answers("wmE")[-1].startswith("已删除你的数据")
            assert "wmE" not in await values(h)  # nothing names them any more
            async with h.app.services.sessions() as s:
                [send] = (await s.execute(select(WeComGroupSend.chat_id))).scalars().all()
                assert send.startswith("erased:")  # the task stays (the staff member's), pseudonymised
                assert await store.member_rows(s, "wmK") == {"kf": 0, "staff": 1, "tag": 1, "quota": 1, "tasks": 1}
            assert {"wmK"} <= await values(h)  # the other customer's rows are untouched
    finally:
        await mock.stop()
