"""The FAQ's handoff to people (人工接管): tickets, the operators' /reply and /close, staying quiet while a person
has the question, the honest answer without operators, the re-notification, the dashboard page, a member's data."""

from __future__ import annotations

import random
from dataclasses import replace

import aiohttp
import pytest

from bot.app import BotApp, check_skills
from bot.config import HttpSettings
from skills.faq.models import Ticket
from tests.support.faq_support import M, activity, write_kb
from tests.support import Harness, RecordingTransport, make_config

pytestmark = pytest.mark.all_backends

HANDOFF = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"
HONEST = "抱歉，这个问题我暂时答不上来。可以发 /help 看看我能做什么，或者问问群管理员～"
UNKNOWN = "你们的咖啡豆是哪里产的"  # nothing in the knowledge base comes close
TOKEN = "dash-token-0123456789"


def config(kb, *, operators=("op1",), operators_room="", faq=None, **bot):
    return make_config({
        "bot": {"admins": ["admin1"], "skills": ["ping", "faq"], "operators": list(operators),
                "operators_room": operators_room, **bot},
        "governor": {"min_interval_s": 1.0, "jitter_s": 0.0, "chat_switch_interval_s": 1.0, "warmup_s": 0.0},
        "skills": {"faq": {"knowledge_dir": str(kb), "reload_interval_s": 0, **(faq or {})}},
    })


@pytest.fixture
def kb(tmp_path):
    return write_kb(tmp_path / "kb")


def texts_to(h, chat):
    return [s.text for s in h.sent if s.message.conversation_id == chat]


async def tickets(h) -> list[Ticket]:
    async with h.app.services.sessions() as s:
        from sqlalchemy import select
        return list((await s.execute(select(Ticket).order_by(Ticket.id))).scalars())


async def test_a_one_on_one_round_trip_member_ticket_reply_member(harness, kb):
    h = await harness(config(kb))
    await h.say("u1", "你好", room=None, name="小李")  # small talk: answered, and a line of the chat
    await h.say("u1", UNKNOWN, room=None, name="小李", after_s=5)
    await h.settle()
    assert texts_to(h, "u1")[-1] == HANDOFF
    [note] = texts_to(h, "op1")
    lines = note.split("\n")
    assert lines[0] == "【待人工回复 #1】小李（u1）在私聊问：" and lines[1] == UNKNOWN
    assert lines[2] == "最近的聊天：" and lines[3].endswith("小李：你好")
    assert lines[4].endswith("机器人：你好呀～有什么想问的直接发给我就好。")
    assert lines[-1] == "回复：/reply 1 回复内容；关闭：/close 1"
    await h.say("op1", "/reply 1 云南保山的小粒咖啡～\n产地：保山  海拔：1200 米", room=None, after_s=60)
    await h.settle()
    assert texts_to(h, "u1")[-1] == "【工作人员回复】云南保山的小粒咖啡～\n产地：保山  海拔：1200 米"  # as typed
    assert texts_to(h, "op1")[-1].startswith("已回复 #1（小李，私聊）")
    [t] = await tickets(h)
    assert (t.status, t.replied_by) == ("answered", "op1")
    assert 60 <= (t.first_reply_at - t.created_at).total_seconds() <= 62  # the settle's pacing in between
    await h.say("op1", "/关闭 1", room=None, after_s=1)
    await h.say("op1", "/close 1", room=None, after_s=1)
    await h.say("op1", "/reply 1 还有", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "op1")[-3:] == ["已关闭 #1。", "#1 已经是关闭的了。", "#1 已经关闭了，没有发送。"]
    assert texts_to(h, "u1")[-1].startswith("【工作人员回复】云南保山")  # nothing after the close
    assert [e["event"] for e in await activity(h, "faq_ticket")] == ["opened", "replied", "closed"]


async def test_a_room_question_is_answered_in_the_room_with_an_at(harness, kb):
    h = await harness(config(kb))
    await h.say("u2", f"@小助手{M}门店有停车位吗", name="小王", mentions_bot=True)
    await h.say("op1", "/回复 #1 有的，地下一层免费停车", room=None, after_s=30)
    await h.settle()
    assert texts_to(h, "op1")[0].startswith("【待人工回复 #1】小王（u2）在群「topic-g1」问：\n门店有停车位吗")
    reply = [s for s in h.sent if s.message.conversation_id == "g1"][-1]
    assert reply.text == f"@小王{M}【工作人员回复】有的，地下一层免费停车"
    assert reply.message.mentions == ("u2",)


async def test_while_a_ticket_is_open_the_member_gets_no_guess_and_no_second_handoff(harness, kb):
    h = await harness(config(kb))
    await h.say("u1", UNKNOWN, room=None, name="小李")
    await h.say("u1", "是阿拉比卡吗", room=None, name="小李", after_s=10)  # unanswerable: to the ticket
    await h.say("u1", "退款", room=None, name="小李", after_s=10)  # a guess (a choice) would come: to the ticket
    await h.say("u1", "请问什么时候发货呀？", room=None, name="小李", after_s=10)  # answered outright: answered
    await h.say("u3", "退款", room=None, name="小赵", after_s=10)  # another member: the guess
    await h.say("u3", "是阿拉比卡吗", room=None, name="小赵", after_s=10)  # and their own ticket
    await h.settle()
    assert texts_to(h, "u1") == [HANDOFF, "工作日 16:00 前付款当天发出。"]
    assert texts_to(h, "u3")[0].startswith("你是想问：\n1. 退款多久到账？")
    notes = texts_to(h, "op1")
    assert [n.split("\n")[0] for n in notes] == ["【待人工回复 #1】小李（u1）在私聊问：", "【#1 补充】小李 又问：",
                                                 "【#1 补充】小李 又问：", "【待人工回复 #2】小赵（u3）在私聊问："]
    t1, t2 = await tickets(h)
    assert [f["text"] for f in t1.follow_ups] == ["是阿拉比卡吗", "退款"]
    assert t2.member_id == "u3"
    misses = await activity(h, "faq_miss")
    assert [m["reason"] for m in misses] == ["handoff", "follow_up", "follow_up", "handoff"]
    # after the reply the member's next question still goes to the person (follow_up_window), and waits again
    await h.say("op1", "/reply 1 是的", room=None, after_s=10)
    await h.say("u1", "那烘焙度呢", room=None, name="小李", after_s=60)
    await h.settle()
    assert texts_to(h, "op1")[-1].startswith("【#1 补充】小李 又问：\n那烘焙度呢")
    t1 = (await tickets(h))[0]
    assert t1.status == "open"
    # closed: the next question is a new handoff
    await h.say("op1", "/close 1", room=None, after_s=10)
    await h.say("u1", "那烘焙度呢", room=None, name="小李", after_s=10)
    await h.settle()
    assert texts_to(h, "u1")[-1] == HANDOFF
    assert texts_to(h, "op1")[-1].startswith("【待人工回复 #3】")


async def test_an_answered_ticket_stops_holding_the_member_after_the_follow_up_window(harness, kb):
    h = await harness(config(kb, faq={"handoff": {"follow_up_window": "1h"}}))
    await h.say("u1", UNKNOWN, room=None)
    await h.say("op1", "/reply 1 云南", room=None, after_s=10)
    await h.say("u1", "门店有停车位吗", room=None, after_s=3601)
    await h.settle()
    assert texts_to(h, "u1")[-1] == HANDOFF
    assert len(await tickets(h)) == 2


async def test_without_operators_the_bot_says_so_and_promises_nobody(harness, kb):
    h = await harness(config(kb, operators=()))
    await h.say("u1", UNKNOWN, room=None)
    await h.say("u2", f"@小助手{M}门店有停车位吗", name="小王", mentions_bot=True, after_s=1)
    await h.settle()
    assert texts_to(h, "u1") == [HONEST]
    assert texts_to(h, "g1") == [f"@小王{M}{HONEST}"]
    assert not any("人工" in s.text or "同事" in s.text for s in h.sent)
    assert await tickets(h) == []
    assert [m["reason"] for m in await activity(h, "faq_miss")] == ["handoff", "handoff"]  # still in /kb misses


async def test_only_operators_admins_and_the_operators_room_handle_tickets(harness, kb):
    h = await harness(config(kb, operators_room="staff"))
    await h.say("u1", UNKNOWN, room=None, name="小李")
    await h.settle()
    assert [s.message.conversation_id for s in h.sent if "待人工回复" in s.text] == ["op1", "staff"]
    assert "在运营群里发 #1 回复内容" in texts_to(h, "staff")[0]
    await h.say("u2", "/help", room=None, after_s=1)
    for who, text in (("u2", "/reply 1 我来冒充"), ("u2", "/close 1"), ("u2", "/tickets")):
        await h.say(who, text, room="g1", after_s=1)
    await h.settle()
    assert "/kb" not in texts_to(h, "u2")[0] and "/reply" not in texts_to(h, "u2")[0]  # not offered to members
    assert texts_to(h, "g1")[-3:] == [f"@u2{M}只有运营同学（bot.operators）和总管理员可以处理人工接管的问题。"] * 3
    await h.say("admin1", "/tickets", room=None, after_s=1)
    await h.say("staff9", "#1 产地是云南", room="staff", name="客服小美", after_s=1)  # anyone in the staff room
    await h.settle()
    assert texts_to(h, "admin1")[-1].startswith("等待人工回复的问题（最早的在前）：\n#1 小李（私聊，等了 0 分钟）")
    assert texts_to(h, "u1")[-1] == "【工作人员回复】产地是云南"
    assert "我来冒充" not in "".join(texts_to(h, "u1"))
    [t] = await tickets(h)
    assert (t.status, t.replied_by) == ("answered", "staff9")
    await h.say("staff9", "#9 没有这个单", room="staff", after_s=1)
    await h.say("staff9", f"@小助手{M}＃1 补充：中深烘焙", room="staff", mentions_bot=True, after_s=1)
    await h.say("staff9", "大家下午好，退货怎么处理？", room="staff", after_s=1)  # staff talk: no FAQ there
    await h.say("op1", "好的我知道这个客人了", room=None, after_s=1)  # an operator: no ticket to themselves
    await h.settle()
    assert texts_to(h, "staff")[-2].endswith("没有 #9 这个问题单。")
    assert texts_to(h, "staff")[-1].endswith("已回复 #1（小李，私聊）。问题解决了就 /close 1。")
    assert texts_to(h, "u1")[-1] == "【工作人员回复】补充：中深烘焙"
    assert texts_to(h, "op1")[-1].startswith("这句话知识库里没有答案。回复转人工的问题请用 /reply 编号 内容")
    assert len(await tickets(h)) == 1


async def test_a_waiting_ticket_is_renotified_once_and_an_answered_one_never(harness, kb):
    h = await harness(config(kb, faq={"handoff": {"renotify_after": "30m"}}))
    await h.say("u1", UNKNOWN, room=None, name="小李")
    await h.say("u2", "门店有停车位吗", room=None, name="小王", after_s=60)
    await h.say("op1", "/reply 2 有的", room=None, after_s=60)
    await h.clock.advance(29 * 60 - 120)
    await h.settle()
    assert not any(t.startswith("【仍在等待") for t in texts_to(h, "op1"))
    await h.clock.advance(3 * 3600)
    await h.settle()
    again = [t for t in texts_to(h, "op1") if t.startswith("【仍在等待")]
    assert again == [f"【仍在等待 #1】小李（私聊）已经等了 30 分钟：\n{UNKNOWN}\n回复：/reply 1 回复内容；关闭：/close 1"]
    t1 = (await tickets(h))[0]
    assert t1.renotified_at is not None and t1.status == "open"


async def test_the_deprecated_faq_operators_key_still_tells_them_and_warns(harness, kb, caplog):
    cfg = config(kb, operators=(), faq={"operators": ["old_op"]})
    assert check_skills(cfg) == []
    assert "skills.faq.operators is deprecated" in caplog.text
    h = await harness(cfg)
    await h.say("u1", UNKNOWN, room=None)
    await h.say("old_op", "/reply 1 好的我看看", room=None, after_s=5)
    await h.settle()
    assert texts_to(h, "u1") == [HANDOFF, "【工作人员回复】好的我看看"]
    assert texts_to(h, "old_op")[0].startswith("【待人工回复 #1】")


async def test_settings_are_checked(kb):
    problems = check_skills(config(kb, faq={"handoff": {"renotify_after": "soon", "chat_lines": 50}}))
    assert len(problems) == 1 and "skills.faq.handoff.renotify_after" in problems[0], problems


async def test_a_members_tickets_are_in_their_data_and_erased(harness, kb):
    h = await harness(config(kb))
    await h.say("u1", UNKNOWN, room=None)
    await h.say("u1", "/我的数据", room=None, after_s=5)
    await h.settle()
    assert "转人工的问题：1 个" in texts_to(h, "u1")[-1]
    from skills.faq import privacy
    async with h.app.services.sessions() as s:
        assert await privacy.erase(s, "u1", "erased-1") == 1
        await s.commit()
    assert await tickets(h) == []


async def test_the_dashboard_shows_waiting_tickets_the_oldest_and_reply_times(db_url, kb, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    cfg = replace(config(kb), http=HttpSettings(port=0))
    cfg = replace(cfg, bot=replace(cfg.bot, skills=(*cfg.bot.skills, "tiers")))
    h = Harness(cfg, db_url)
    transport = h.transport
    h.app = BotApp(cfg, h.clock, transport.send, db_url=db_url, rng=random.Random(0), web=True)
    async with h:
        await h.say("u1", UNKNOWN, room=None, name="小李<b>")
        await h.say("u2", "门店有停车位吗", room=None, name="小王", after_s=60)
        await h.say("u3", "能带狗吗", room=None, name="小赵", after_s=60)
        await h.say("op1", "/reply 2 有的", room=None, after_s=300)
        await h.clock.advance(600)
        await h.settle()
        base = f"http://127.0.0.1:{h.app.web.port}"
        async with aiohttp.ClientSession() as c:
            async with c.get(base + "/dashboard/tickets", headers={"Authorization": f"Bearer {TOKEN}"}) as r:
                assert r.status == 200
                page = await r.text()
            async with c.get(base + "/dashboard/tickets") as r:
                assert r.status in (302, 401, 303) or "login" in str(r.url)
    assert "<tr><th>等待回复</th><td>2</td></tr>" in page
    assert "#1（小李&lt;b&gt;）17 分钟" in page  # the oldest waiting, its name escaped
    assert "6 分钟（1 个已回复，最慢 6 分钟）" in page  # #2: asked 09:01, replied 09:07
    assert "<td>#3</td>" in page and "<td>#2</td>" in page



async def test_the_renotification_survives_a_restart(db_url, kb):
    from datetime import timedelta

    cfg = config(kb)
    async with Harness(cfg, db_url) as h:
        await h.say("u1", UNKNOWN, room=None, name="小李")
        await h.settle()
        stopped_at = h.clock.now()
    async with Harness(cfg, db_url, start=stopped_at + timedelta(hours=2)) as h2:  # down past the 30 minutes
        await h2.clock.advance(60)
        await h2.settle()
        assert [t.split("\n")[0] for t in texts_to(h2, "op1")] == ["【仍在等待 #1】小李（私聊）已经等了 120 分钟："]
        await h2.clock.advance(3600)
        await h2.settle()
        assert len(texts_to(h2, "op1")) == 1  # once
