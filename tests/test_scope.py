"""Every command keeps its effect in its scope: a room's admin acts in his room, on his room's members.

The walk runs every command the router knows, with every skill of skills/ loaded, as a room's admin where he is
not one (the admin of g2 in g1), as the admin of g1 in g1 aimed at a member of g2 and at himself, and as that admin
in private chat; after each message, nothing outside g1 may have changed (balances, admin ledger rows, knowledge
files, schedules and other rooms' jobs, lotteries, opt-outs, exports) and no reply may show another room's data.
A command nobody has decided on fails ``test_every_command_has_a_reviewed_scope``: add it to REVIEWED with the
scope it should have and the messages that try to get out of it.
"""

from __future__ import annotations

import csv
import pkgutil
from dataclasses import dataclass, replace
from pathlib import Path

import pytest
from sqlalchemy import select

import skills
from bot.commands import ONLY_GLOBAL, REFUSED
from skills.checkin.models import Redemption
from skills.lottery.models import Lottery
from storage.models import RoomMember, ScheduledJob
from storage.models_gentle import MemberOptOut
from storage.models_points import PointsBalance, PointsLedger
from tests.support.faq_support import write_kb
from tests.support import Harness, fast_governor, make_config

M = "\u2005"
OUT, OUT_NAME = "wxid_outsider", "外群成员乙"  # a member of g2 only, with points and secrets
IN = "wxid_insider"  # a member of g1
# what no reply in g1 (or to g1's admin) may show: g2's member, their balance, g2's questions, schedules, lottery
LEAKS = (OUT, OUT_NAME, "4321", "乙群暗号", "总部早安暗号", "乙群日程暗号", "乙群奖品")


@dataclass(frozen=True)
class Reviewed:
    scope: str
    tries: tuple[str, ...]  # {self}: the acting admin; {out}: g2's member; {lottery}, {redemption}: g2's open ones


# Every command, with the scope decided for it and what is tried with it. Keys are the commands' names.
REVIEWED: dict[str, Reviewed] = {
    "help": Reviewed("member", ("/help", "/help points add", "/help kb add")),
    "ping": Reviewed("member", ("/ping",)),
    "echo": Reviewed("room", ("/echo 你好",)),
    "unsubscribe": Reviewed("member", ("/退订",)),
    "subscribe": Reviewed("member", ("/订阅",)),
    "mydata": Reviewed("member", ("/我的数据",)),
    "deletemydata": Reviewed("member", ("/删除我的数据",)),
    "checkin": Reviewed("member", ("/签到",)),
    "points": Reviewed("member", ("/积分",)),
    "rank": Reviewed("member", ("/排行",)),
    "redeem": Reviewed("member", ("/兑换",)),
    "redeem pending": Reviewed("room", ("/兑换 待处理",)),
    "redeem fulfil": Reviewed("room", ("/兑换 发放 {redemption}",)),
    "redeem refuse": Reviewed("room", ("/兑换 拒绝 {redemption} 无效",)),
    "points add": Reviewed("room", ("/points add {self} 1000000", "/points add {out} 100",
                                    f"/积分 加 @{OUT_NAME}{M} 5", "/points add wxid_nobody 5")),
    "points sub": Reviewed("room", ("/points sub {out} 100", "/积分 扣 {self} 1")),
    "kb reload": Reviewed("global", ("/kb reload",)),
    "member bind": Reviewed("global", ("/绑定会员 {out} SHOP-1", "/member bind {self} SHOP-2")),
    "kb test": Reviewed("room", ("/kb test 下单后多久发货",)),
    "kb misses": Reviewed("room", ("/kb misses",)),
    "kb add": Reviewed("global", ("/kb add 怎么付款 | 找群主私下转账即可",)),
    # the operators' handoff commands: "member" for the router (operators are not admins), and the handler lets
    # only global admins, bot.operators and the operators' room through (skills/faq/handoff.py)
    "reply": Reviewed("member", ("/reply 1 你好", "/回复 #1 乙群暗号")),
    "close": Reviewed("member", ("/close 1", "/关闭 1")),
    "tickets": Reviewed("member", ("/tickets", "/工单")),
    "kb link": Reviewed("global", ("/kb link 1 ship-when", "/知识库 关联 1 return-policy")),
    "kb candidates": Reviewed("global", ("/kb candidates",)),
    "kb accept": Reviewed("global", ("/kb accept 1", "/知识库 采纳 1")),
    "poll start": Reviewed("room", ("/poll start 本群问题 | 甲 | 乙",)),
    "poll close": Reviewed("room", ("/poll close",)),
    "poll vote": Reviewed("member", ("/poll vote 1", "/投票")),
    "poll results": Reviewed("member", ("/poll results",)),
    "lottery start": Reviewed("room", ("/lottery start 本群奖品 winners=1 duration=1h",)),
    "lottery draw": Reviewed("room", ("/lottery draw",)),
    "lottery cancel": Reviewed("room", ("/lottery cancel",)),
    "lottery status": Reviewed("member", ("/lottery status",)),
    "lottery": Reviewed("member", ("/抽奖",)),
    "lottery verify": Reviewed("member", ("/lottery verify {lottery}",)),
    "lottery entrants": Reviewed("member", ("/lottery entrants {lottery}",)),
    "orders": Reviewed("member", ("/orders",)),
    "schedule add": Reviewed("room", ("/schedule add 早安 daily=10:00 target=all 抢占",
                                      "/schedule add 早安 daily=10:00 本群早安",
                                      "/schedule add 乙 daily=10:00 target=room:g2 x",
                                      "/schedule add 丙 daily=10:00 target=tag:vip x",
                                      "/schedule add 丁 daily=10:00 target=tier:active x",
                                      "/schedule add 二群通知 daily=10:00 target=here 改掉")),
    "schedule list": Reviewed("room", ("/schedule list",)),
    "schedule remove": Reviewed("room", ("/schedule remove 早安", "/schedule remove 二群通知")),
    "schedule pause": Reviewed("room", ("/schedule pause 早安", "/schedule pause 二群通知", "/schedule pause 配置早安")),
    "schedule resume": Reviewed("room", ("/schedule resume 早安", "/schedule resume 总部暂停")),
    "stats": Reviewed("room", ("/stats",)),
    "tier": Reviewed("room", ("/tier {out}", f"/tier {OUT_NAME}", f"/tier @{OUT_NAME}{M}")),
    "export": Reviewed("room", ("/export members",)),
}


def all_skills() -> list[str]:
    return sorted(m.name for m in pkgutil.iter_modules(skills.__path__) if m.ispkg)


def config(tmp_path: Path):
    raw = {"bot": {"admins": ["boss"], "skills": all_skills()},
           "rooms": {"g1": {"admins": ["a1"], "tags": ["vip"]}, "g2": {"admins": ["a2"], "tags": ["vip"]}},
           "skills": {"faq": {"knowledge_dir": str(write_kb(tmp_path / "knowledge")), "reload_interval_s": 0},
                      "tiers": {"export_dir": str(tmp_path / "exports")},
                      "checkin": {"rewards": {"保温杯": {"cost": 100, "stock": 5}}},
                      "schedule": {"items": {"配置早安": {"daily": "08:00", "targets": ["all"], "text": "早"}}}}}
    return replace(make_config(raw), governor=fast_governor())


@pytest.fixture
async def h(harness, tmp_path):
    h = await harness(config(tmp_path))
    h.tmp = tmp_path
    await setup_world(h)
    return h


async def setup_world(h: Harness) -> None:
    await h.say(OUT, "大家好", room="g2", name=OUT_NAME)
    await h.say(IN, "大家好", room="g1", name="群一成员")
    await h.say("a1", "早", room="g1", after_s=1)
    await h.say("a2", "早", room="g2", after_s=1)
    await h.say(OUT, f"@小助手{M}乙群暗号是什么呢", room="g2", name=OUT_NAME, mentions_bot=True,
                after_s=1)  # a miss of g2
    await h.say("boss", f"/points add {OUT} 4321", room=None, after_s=1)
    await h.say("boss", "/schedule add 早安 daily=23:30 target=all 总部早安暗号", room=None, after_s=1)
    await h.say("boss", "/schedule add 总部暂停 daily=23:30 target=all 总部早安暗号", room=None, after_s=1)
    await h.say("boss", "/schedule pause 总部暂停", room=None, after_s=1)
    await h.say("a2", "/schedule add 二群通知 daily=23:00 乙群日程暗号", room="g2", after_s=1)
    await h.say("a2", "/lottery start 乙群奖品 winners=1 duration=2d", room="g2", after_s=1)
    await h.say(OUT, "/兑换 保温杯", room="g2", name=OUT_NAME, after_s=1)
    await h.say(OUT, "确认", room="g2", name=OUT_NAME, after_s=1)
    await h.say(OUT, "/退订", room=None, after_s=1)
    await h.settle()
    h.lottery = await scalar(h, select(Lottery.id).where(Lottery.room_id == "g2"))
    assert h.lottery is not None
    h.redemption = await scalar(h, select(Redemption.id).where(Redemption.room_id == "g2"))
    assert h.redemption is not None


async def scalar(h: Harness, stmt):
    async with h.app.services.sessions() as s:
        return await s.scalar(stmt)


async def rows(h: Harness, stmt) -> list[tuple]:
    async with h.app.services.sessions() as s:
        return [tuple(r) for r in (await s.execute(stmt)).all()]


async def members_of(h: Harness, room: str) -> set[str]:
    return {m for (m,) in await rows(h, select(RoomMember.member_id).where(RoomMember.room_id == room))}


async def outside(h: Harness, room: str | None, actor: str) -> dict:
    """Everything a command by ``actor`` in ``room`` must leave alone: what belongs to other rooms and members."""
    await h.app.activity.flush()
    mine = await members_of(h, room) if room else set()
    mine_if_admin = mine if room and h.app.config.is_admin(actor, room) else set()

    def foreign(member_id: str) -> bool:
        return member_id != actor and member_id not in mine_if_admin

    balances = {m: b for m, b in await rows(h, select(PointsBalance.member_id, PointsBalance.balance)) if foreign(m)}
    admin_changes = [r for r in await rows(h, select(PointsLedger.member_id, PointsLedger.delta).where(
        PointsLedger.source == "admin").order_by(PointsLedger.id)) if r[0] not in mine_if_admin or r[0] == actor]
    jobs = await rows(h, select(ScheduledJob.key, ScheduledJob.status, ScheduledJob.spec, ScheduledJob.payload,
                                ScheduledJob.room_id).order_by(ScheduledJob.key))
    theirs = [j for j in jobs if not (room and h.app.config.is_admin(actor, room) and (
        j[4] == room or j[0].startswith(f"schedule:room:{room}:")))]
    knowledge = {p.name: p.read_bytes() for p in sorted((h.tmp / "knowledge").iterdir())}
    exported = set()
    for path in (h.tmp / "exports").glob("*.csv"):
        with path.open(encoding="utf-8-sig") as f:
            exported |= {r["member_id"] for r in csv.DictReader(f)} - mine
    return {"balances": balances, "admin changes": admin_changes, "jobs": [j[:4] for j in theirs],
            "knowledge": knowledge, "exported outsiders": sorted(exported),
            "lotteries": await rows(h, select(Lottery.id, Lottery.status).where(Lottery.room_id != (room or ""))),
            "redemptions": await rows(h, select(Redemption.id, Redemption.status)
                                      .where(Redemption.room_id != (room or "")).order_by(Redemption.id)),
            "opt-outs": {m for (m,) in await rows(h, select(MemberOptOut.member_id)) if m != actor}}


def tries(spec_name: str, actor: str, lottery: int, redemption: int) -> list[tuple[str, tuple[str, ...]]]:
    """(text, mention ids): an @-mention of g2's member carries their id, as WeChat sends it."""
    out = []
    for text in REVIEWED[spec_name].tries:
        text = text.format(self=actor, out=OUT, lottery=lottery, redemption=redemption)
        out.append((text, (OUT,) if f"@{OUT_NAME}{M}" in text else ()))
    return out


def test_every_command_has_a_reviewed_scope(tmp_path):
    """A command added without a decision about its scope fails here."""
    from bot.app import load_skill
    from bot.commands import CommandRouter

    router = CommandRouter()
    for name in ("bot.optout", "bot.privacy", *all_skills()):
        router.add_skill(load_skill(name))
    decided = {spec.name: spec.scope for spec in router.specs}
    assert set(decided) == set(REVIEWED), "decide the scope of new commands in tests/test_scope.py REVIEWED"
    assert decided == {name: r.scope for name, r in REVIEWED.items()}


SCENARIOS = [
    ("a2", "g1"),  # an admin of g2, in g1: not an admin here
    ("a1", "g1"),  # g1's admin, aiming at g2's member, at himself, at everyone
    ("a1", None),  # g1's admin in private chat: an admin of no room there
]


@pytest.mark.parametrize("actor, room", SCENARIOS)
async def test_no_command_reaches_outside_the_room(h, actor, room):
    specs = h.app.router.specs
    assert {s.name for s in specs} == set(REVIEWED)
    admin_here = room is not None and h.app.config.is_admin(actor, room)
    for spec in specs:
        for text, mentions in tries(spec.name, actor, h.lottery, h.redemption):
            before = await outside(h, room, actor)
            start = len(h.sent)
            await h.say(actor, text, room=room, mention_ids=mentions, after_s=2)
            await h.settle()
            replies = [s.text for s in h.sent[start:]]
            where = f"{text!r} by {actor} in {room or 'private chat'}"
            assert await outside(h, room, actor) == before, where
            assert not [r for r in replies if any(leak in r for leak in LEAKS)], where
            if spec.scope == "global" or (spec.scope == "room" and not admin_here):
                expected = ONLY_GLOBAL if spec.scope == "global" and admin_here else REFUSED
                assert replies and all(r.endswith(expected) for r in replies), (where, replies)


async def test_the_walk_sees_what_a_global_admin_changes(h):
    """The check itself: the same commands from a global admin do reach other rooms, and ``outside`` says so."""
    for text, room in [(f"/points add {OUT} 1", "g1"), ("/kb add 怎么付款 | 找客服", "g1"),
                       ("/schedule pause 二群通知", "g2"), ("/schedule pause 早安", "g1"), ("/export members", "g1"),
                       ("/lottery cancel", "g2"), ("/兑换 拒绝 1 无效", "g1")]:
        before = await outside(h, "g1", "a1")
        await h.say("boss", text, room=room, after_s=2)
        await h.settle()
        assert await outside(h, "g1", "a1") != before, text
    await h.say("boss", "/kb misses", room="g1", after_s=2)
    await h.settle()
    assert "乙群暗号" in h.transport.texts()[-1]


async def test_a_room_admin_keeps_what_he_may_do_in_his_room(h):
    await h.say("a1", f"/points add {IN} 5", room="g1", after_s=1)
    await h.say("a1", "/schedule add 早安 daily=10:00 本群早安", room="g1", after_s=1)
    await h.say("a1", "/schedule list", room="g1", after_s=1)
    await h.say("a1", f"/tier {IN}", room="g1", after_s=1)
    await h.say("a1", "/export members", room="g1", after_s=1)
    await h.say("a1", "/kb add 怎么付款 | 找群主私下转账即可", room="g1", after_s=1)
    await h.say("a1", "/kb misses", room="g1", after_s=1)
    await h.settle()
    texts = [t.split(M, 1)[-1] for t in h.transport.texts()[-7:]]
    assert texts[0] == "已为 群一成员 增加 5 积分，当前积分 5。"
    assert texts[1].startswith("已添加定时消息「早安」：每天 10:00 · room:g1")
    assert texts[2].startswith("定时消息：\n· 早安（群管理员添加）") and texts[2].count("\n· ") == 1
    assert texts[3].startswith("群一成员 的成员档案")
    assert texts[4].startswith("已导出 2 位本群成员：")
    assert texts[5] == ONLY_GLOBAL
    assert texts[6] == "最近 7 天没有没答上来的问题 👍"  # g2's miss is g2's business
    exported = next((h.tmp / "exports").glob("members-g1-*.csv"))
    with exported.open(encoding="utf-8-sig") as f:
        assert {r["member_id"] for r in csv.DictReader(f)} == await members_of(h, "g1")
    assert await scalar(h, select(ScheduledJob.status).where(ScheduledJob.key == "schedule:早安")) == "active"
