"""客户联系 over the mock WeCom API: a new contact welcomed with its welcome code (template by channel state, then by
staff member), recorded like a join; removals recorded; customer-group changes fill the room directory and record
joins (with the inviter) and leaves; the bot itself never speaks in those groups. A callback accepted and cut off
by a stop is handled once after the restart (its welcome code too late to use), or dropped when over an hour old."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.transports.wecom.handled import payload
from storage.models import Activity, Room, RoomMember
from storage import wecom as store
from tests.support import bridge_skill
from tests.support.wecom_mock import Customer, Group, WeComMock
from tests.support.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends


async def activity(h, kind: str) -> list[tuple[str | None, str | None, dict]]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        rows = await s.execute(select(Activity.room_id, Activity.member_id, Activity.detail)
                               .where(Activity.kind == kind).order_by(Activity.id))
        return [tuple(r) for r in rows]


def contacts_config(mock):
    return wecom_config(mock, skills=("ping", "welcome"), welcome="你好，我是品牌小助手～",
                        welcome_by_state={"store-sh": "欢迎来自上海门店的朋友！"},
                        welcome_by_staff={"staff_li": "我是店长小李，有事随时找我。"})


async def test_a_new_contact_is_welcomed_within_its_window(db_url):
    mock = await WeComMock().start()
    mock.customers.update({"wmNew1": Customer("wmNew1", "小王", "UNION-1"), "wmNew2": Customer("wmNew2", "小张"),
                           "wmNew3": Customer("wmNew3", "小赵"), "wmLate": Customer("wmLate", "小钱")})
    try:
        async with WeComHarness(db_url, mock, contacts_config(mock)) as h:
            cb = h.callbacks
            codes = [mock.new_welcome_code() for _ in range(3)]
            assert (await cb.contact_added("wmNew1", "staff_li", codes[0], state="store-sh"))[0] == 200
            assert (await cb.contact_added("wmNew2", "staff_li", codes[1]))[0] == 200
            assert (await cb.contact_added("wmNew3", "staff_wu", codes[2]))[0] == 200
            await h.idle()
            # handled concurrently: each with its own code and text
            assert {w["welcome_code"]: w["text"]["content"] for w in mock.welcomes} == {
                codes[0]: "欢迎来自上海门店的朋友！", codes[1]: "我是店长小李，有事随时找我。", codes[2]: "你好，我是品牌小助手～"}
            # the code is valid 20 s: an event handled later is recorded, not welcomed
            code = mock.new_welcome_code()
            encrypted, body = cb.envelope({"FromUserName": "sys", "MsgType": "event",
                                           "Event": "change_external_contact", "ChangeType": "add_external_contact",
                                           "UserID": "staff_wu", "ExternalUserID": "wmLate", "WelcomeCode": code,
                                           "CreateTime": int(h.clock.now().timestamp()) - 25})
            assert (await cb.post({}, query=cb.signed(encrypted), body=body))[0] == 200
            await h.idle()
            assert len(mock.welcomes) == 3
            added = sorted(await activity(h, "contact_added"), key=lambda row: row[1])
            assert [(m, d["welcomed"], d.get("reason")) for _, m, d in added] == [
                ("wmLate", False, "expired"), ("wmNew1", True, None), ("wmNew2", True, None), ("wmNew3", True, None)]
            assert added[1][2]["staff"] == "staff_li" and added[1][2]["state"] == "store-sh"
            # removals, either way round
            await cb.post({"FromUserName": "sys", "MsgType": "event", "Event": "change_external_contact",
                           "ChangeType": "del_follow_user", "UserID": "staff_li", "ExternalUserID": "wmNew2"})
            await cb.post({"FromUserName": "sys", "MsgType": "event", "Event": "change_external_contact",
                           "ChangeType": "del_external_contact", "UserID": "staff_wu", "ExternalUserID": "wmNew3"})
            await h.idle()
            assert sorted((m, d["by"]) for _, m, d in await activity(h, "contact_removed")) == [
                ("wmNew2", "customer"), ("wmNew3", "staff")]
    finally:
        await mock.stop()


async def test_customer_group_changes_fill_the_directory_and_record_joins_and_leaves(db_url):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock, contacts_config(mock)) as h:
            now = int(h.clock.now().timestamp())
            mock.groups["wrGroup1"] = Group("wrGroup1", "VIP 客户群", "staff_li", [
                {"userid": "staff_li", "type": 1, "join_time": now - 86400, "join_scene": 1, "name": "小李"},
                {"userid": "wmOld", "type": 2, "join_time": now - 3600, "join_scene": 1, "name": "老客户",
                 "invitor": {"userid": "staff_li"}},
                {"userid": "wmJoin", "type": 2, "join_time": now, "join_scene": 3, "name": "新客户",
                 "invitor": {"userid": "staff_li"}}])
            assert (await h.callbacks.chat_changed("wrGroup1", "add_member", ["wmJoin"]))[0] == 200
            await h.settle()
            joins = await activity(h, "join")
            assert [(r, m) for r, m, _ in joins] == [("wrGroup1", "wmJoin")]
            async with h.app.services.sessions() as s:
                topic = await s.scalar(select(Room.topic).where(Room.id == "wrGroup1"))
                members = set((await s.execute(select(RoomMember.member_id, RoomMember.inviter_id)
                                               .where(RoomMember.room_id == "wrGroup1"))).all())
            assert topic == "VIP 客户群"
            assert {m for m, _ in members} == {"staff_li", "wmOld", "wmJoin"}
            assert ("wmJoin", "staff_li") in members
            # the welcome skill's greeting in the group is not sent: WeCom groups take no bot messages
            assert h.app.governor.sent_count == 0
            assert [d["reason"] for _, _, d in await activity(h, "send_dropped")] == ["no_group_send"]
            assert h.app.services.capabilities.room_send is False
            mock.groups["wrGroup1"].members.pop()
            await h.callbacks.chat_changed("wrGroup1", "del_member", ["wmJoin"])
            await h.idle()
            leaves = await activity(h, "leave")
            assert [(r, m) for r, m, _ in leaves] == [("wrGroup1", "wmJoin")]
    finally:
        await mock.stop()


async def test_tiers_become_corp_tags_made_once_renamed_safely_and_marked_once(db_url):
    from skills.tiers.models import MemberTier

    mock = await WeComMock().start()
    mock.customers.update({"wmT1": Customer("wmT1", "甲"), "wmT2": Customer("wmT2", "乙"),
                           "wmT3": Customer("wmT3", "丙")})
    core_by_hand = mock.tag_made_by_hand("会员等级", "核心")  # made in the admin console before the bot came

    def config(**renames):
        return wecom_config(mock, skills=("ping", "tiers"), tier_tags=renames)

    try:
        async with WeComHarness(db_url, mock, config(silent="沉默客户")) as h:
            for ext, staff in (("wmT1", "staff_li"), ("wmT2", "staff_wu"), ("wmT3", "staff_li")):
                await h.callbacks.contact_added(ext, staff, "")
            await h.idle()

            async def set_tier(member_id: str, tier: str) -> None:
                async with h.app.services.sessions() as s:
                    await s.merge(MemberTier(member_id=member_id, tier=tier, since=h.clock.now()))
                    await s.commit()

            await set_tier("wmT1", "core")
            await set_tier("wmT2", "silent")
            await set_tier("wmT3", "lost")
            assert await h.bot.tags.run() == 3
            # one group, one tag per tier, named after the tiers (silent renamed by the config); 核心 adopted
            [group] = mock.tag_groups
            assert group["group_name"] == "会员等级"
            assert sorted(t["name"] for t in group["tag"]) == sorted(
                ["核心", "新成员", "活跃", "一般", "沉默客户", "流失"])
            assert mock.count("externalcontact/add_corp_tag") == 1
            async with h.app.services.sessions() as s:
                ids = {tier: tag_id for tier, (tag_id, _, _) in (await store.corp_tags(s)).items()}
            assert ids["core"] == core_by_hand
            names = mock.tag_ids()
            assert sorted((t["userid"], t["external_userid"], names[t["add_tag"][0]], len(t["remove_tag"]))
                          for t in mock.tags) == [("staff_li", "wmT1", "核心", 5), ("staff_li", "wmT3", "流失", 5),
                                                  ("staff_wu", "wmT2", "沉默客户", 5)]
            assert await h.bot.tags.run() == 0 and len(mock.tags) == 3  # nothing changed: nothing sent
            assert mock.count("externalcontact/get_corp_tag_list") == 1  # known tags aren't looked up again
            await set_tier("wmT1", "silent")
            assert await h.bot.tags.run() == 1
            assert mock.tags[-1]["add_tag"] == [ids["silent"]] and ids["core"] in mock.tags[-1]["remove_tag"]
        # an operator renames the tier's tag: the same tag is renamed (customers keep it), nothing is made again
        async with WeComHarness(db_url, mock, config(silent="沉默会员"), start=h.clock.now()) as h2:
            assert await h2.bot.tags.run() == 0
            assert mock.count("externalcontact/edit_corp_tag") == 1
            assert mock.count("externalcontact/add_corp_tag") == 1
            assert mock.tag_ids()[ids["silent"]] == "沉默会员"
            assert len(mock.tag_groups[0]["tag"]) == 6
            async with h2.app.services.sessions() as s:
                assert (await store.corp_tags(s))["silent"][:2] == (ids["silent"], "沉默会员")
    finally:
        await mock.stop()


def test_tier_tags_take_names_not_the_ids_they_once_took():
    from bot.config import ConfigError, parse_config

    assert parse_config({"wecom": {"tier_tags": {"silent": "沉默会员"}}}).wecom.tier_tags == {"silent": "沉默会员"}
    for bad, problem in (("etCORE_ID_123", "not its id"), ("一" * 31, "at most 30")):
        with pytest.raises(ConfigError, match=problem):
            parse_config({"wecom": {"tier_tags": {"core": bad}}})


async def test_nicknames_from_wecom_are_cleaned_before_the_directory(db_url):
    """A nickname is the customer's own text: a NUL or half an emoji (a lone surrogate, as WeChat nicknames cut
    short carry) is removed where it enters, so the member's name is kept, not set aside by the database."""
    from storage.models import Member

    mock = await WeComMock().start()
    mock.customers["wmOdd"] = Customer("wmOdd", "小\x00王\ud83d", "UNION-ODD")
    try:
        async with WeComHarness(db_url, mock, contacts_config(mock)) as h:
            now = int(h.clock.now().timestamp())
            mock.groups["wrOdd"] = Group("wrOdd", "VIP\x00群\udc00", "staff_li", [
                {"userid": "wmOdd2", "type": 2, "join_time": now, "join_scene": 3, "name": "阿\ud83d花",
                 "unionid": "U" * 200, "invitor": {"userid": "staff_li"}},
                {"userid": "bad\x00id", "type": 2, "join_time": now, "join_scene": 3, "name": "坏"}])
            assert (await h.callbacks.contact_added("wmOdd", "staff_li", mock.new_welcome_code()))[0] == 200
            assert (await h.callbacks.chat_changed("wrOdd", "add_member", ["wmOdd2"]))[0] == 200
            await h.idle()
            await h.app.activity.flush()
            assert h.app.activity.set_aside_count == 0
            async with h.app.services.sessions() as s:
                names = dict((await s.execute(select(Member.id, Member.name))).all())
                topic = await s.scalar(select(Room.topic).where(Room.id == "wrOdd"))
            assert names["wmOdd"] == "小王" and names["wmOdd2"] == "阿花" and "bad\x00id" not in names
            assert topic == "VIP群"
            assert [m for _, m, _ in await activity(h, "join")] == ["wmOdd2"]
    finally:
        await mock.stop()


# -- accepted, not handled: a stop or crash in between ---------------------------------------------------------------

async def test_a_group_join_accepted_before_a_stop_is_recorded_once_after_the_restart(db_url):
    mock = await WeComMock().start()
    bridge_skill.seen.clear()
    config = wecom_config(mock, skills=("ping", "tests.support.bridge_skill"))
    try:
        async with WeComHarness(db_url, mock, config) as h:
            now = int(h.clock.now().timestamp())
            mock.groups["wrGroup1"] = Group("wrGroup1", "VIP 客户群", "staff_li", [
                {"userid": "staff_li", "type": 1, "join_time": now - 86400, "join_scene": 1, "name": "小李"},
                {"userid": "wmJoin", "type": 2, "join_time": now, "join_scene": 3, "name": "新客户",
                 "invitor": {"userid": "staff_li"}}])
            release = mock.hold_next("externalcontact/groupchat/get")
            try:
                assert (await h.callbacks.chat_changed("wrGroup1", "add_member", ["wmJoin"]))[0] == 200
                # cut off as a crash would: accepted, not handled (groupchat/get's answer, if asked, held back)
                tasks = list(h.bot.contacts._tasks)
                assert len(tasks) == 1
                for task in tasks:
                    task.cancel()
                await asyncio.gather(*tasks, return_exceptions=True)
            finally:
                release.set()
            at = h.clock.now()
        assert bridge_skill.seen == []
        async with WeComHarness(db_url, mock, config, start=at + timedelta(seconds=30)) as h:
            await h.settle()
            assert h.bot.callbacks.recovered == 1
            assert [(e.room_id, [p.id for p in e.members]) for e in bridge_skill.seen] == [("wrGroup1", ["wmJoin"])]
            assert [(r, m) for r, m, _ in await activity(h, "join")] == [("wrGroup1", "wmJoin")]
        async with WeComHarness(db_url, mock, config, start=at + timedelta(seconds=60)) as h:
            await h.settle()
            assert h.bot.callbacks.recovered == 0  # marked handled with the join: not handed on a second time
            assert [(r, m) for r, m, _ in await activity(h, "join")] == [("wrGroup1", "wmJoin")]
        assert len(bridge_skill.seen) == 1
    finally:
        await mock.stop()


async def test_a_contact_event_accepted_two_hours_before_the_restart_is_dropped_and_a_late_code_not_used(db_url,
                                                                                                       caplog):
    mock = await WeComMock().start()
    mock.customers["wmNew1"] = Customer("wmNew1", "小王")
    try:
        async with WeComHarness(db_url, mock, contacts_config(mock)) as h:
            at = h.clock.now()
            async with h.app.services.sessions() as s:  # as a crash just after the accept leaves them
                for key, code in (("evt:old", "CODE-OLD"), ("evt:late", "CODE-LATE")):
                    assert await store.remember(s, key, at)
                    fields = {"MsgType": "event", "Event": "change_external_contact", "UserID": "staff_li",
                              "ChangeType": "add_external_contact", "ExternalUserID": "wmNew1",
                              "WelcomeCode": code, "CreateTime": str(int(at.timestamp()))}
                    await store.keep_payload(s, key, payload(fields, {}))
                await s.execute(store._CALLBACKS.update().where(store._CALLBACKS.c.key == "evt:old")
                                .values(received_at=at - timedelta(hours=2)))
                await s.commit()
        caplog.set_level("INFO", logger="bot.transports.wecom.callbacks")
        async with WeComHarness(db_url, mock, contacts_config(mock), start=at + timedelta(seconds=30)) as h:
            await h.settle()
            assert (h.bot.callbacks.recovered, h.bot.callbacks.dropped_stale) == (1, 1)
            # handed on 30 s after it came: recorded, its welcome code (valid 20 s) not used
            assert mock.welcomes == []
            assert [(m, d["welcomed"], d.get("reason")) for _, m, d in await activity(h, "contact_added")] == [
                ("wmNew1", False, "expired")]
        lines = [r.getMessage() for r in caplog.records if "not handled before the restart" in r.getMessage()]
        assert lines == ["WeCom callbacks received but not handled before the restart: 1 handed on, 1 dropped as "
                         "older than 1:00:00"]
        async with WeComHarness(db_url, mock, contacts_config(mock), start=at + timedelta(seconds=60)) as h:
            await h.settle()
            assert (h.bot.callbacks.recovered, h.bot.callbacks.dropped_stale) == (0, 0)
            assert len(await activity(h, "contact_added")) == 1
    finally:
        await mock.stop()
