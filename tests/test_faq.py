"""The FAQ skill on the virtual clock: answering policy, numbered choice, handoff, misses, hot reload, commands."""

import asyncio
import re

import pytest

from bot.events import MessageReceived, Person
from skills.faq import looks_like_question, state
from tests.support.faq_support import M, activity, faq_config, write_kb
from tests.support import Harness


@pytest.fixture
def kb_dir(tmp_path):
    return write_kb(tmp_path / "kb")


@pytest.fixture
async def h(harness, kb_dir):
    return await harness(faq_config(kb_dir))


def texts_to(h, chat):
    return [s.text for s in h.sent if s.message.conversation_id == chat]


async def test_direct_questions_get_the_answer_and_are_recorded(h):
    await h.say("u1", "请问什么时候发货呀？", room=None)
    await h.say("u1", "钱什么时候退回来", room=None, after_s=5)
    await h.settle()
    assert texts_to(h, "u1") == ["工作日 16:00 前付款当天发出。", "验收后 1 个工作日内原路退款。"]
    answers = await activity(h, "faq_answer")
    assert [(a["entry"], a["mode"]) for a in answers] == [("ship-when", "answer"), ("refund-eta", "answer")]
    assert answers[0]["q"] == "请问什么时候发货呀？" and 0.6 <= answers[0]["score"] <= 1


async def test_synonyms_from_the_file_are_used(h):
    await h.say("u1", "我的物流到哪了", room=None)  # 物流 → 快递 (synonyms.txt), the similar question says 快递
    await h.settle()
    assert texts_to(h, "u1") == ["在「我的订单」里看快递单号。"]


async def test_group_chatter_is_never_answered_and_clear_questions_are(h):
    for i, chatter in enumerate(["大家早上好", "今天发货的快递真多哈哈", "收到啦谢谢", "开发票"]):
        await h.say(f"u{i}", chatter, after_s=1)
    await h.settle()
    assert h.sent == []
    assert await activity(h, "faq_miss") == []  # chatter is not a miss either
    await h.say("u9", "请问可以开发票吗？", name="小王", after_s=1)
    await h.settle()
    assert [s.text for s in h.sent] == [f"@小王{M}订单完成后在「我的订单」里申请开票。"]
    assert h.sent[0].message.mentions == ("u9",)


async def test_an_unsure_group_question_without_mention_stays_quiet(h):
    await h.say("u1", "你们店里的猫叫什么名字？")
    await h.settle()
    assert h.sent == []
    assert await activity(h, "faq_miss") == []  # nowhere near an entry: chatter, not a miss


async def test_a_near_miss_in_a_group_is_recorded_for_the_operators(kb_dir, db_url):
    async with Harness(faq_config(kb_dir, group_threshold=0.999, choice_threshold=0.3), db_url) as h:
        await h.say("u1", "请问可以开发票吗？")
        await h.settle()
        assert h.sent == []
        assert await activity(h, "faq_miss") == [{"q": "请问可以开发票吗？", "reason": "low"}]


async def test_mentioned_in_a_group_answers_like_1on1_and_does_not_repeat(h):
    await h.say("u1", "@小助手 怎么申请退货", name="小李", mentions_bot=True)
    await h.say("u2", "可以退货吗？", name="小张", after_s=30)  # the same entry within the window: not again
    # another member asking the bot gets it again, briefly, quoting the entry; the one who asked is pointed up
    await h.say("u3", "@小助手 七天无理由退货", name="小赵", mentions_bot=True, after_s=30)
    await h.say("u1", "@小助手 可以退货吗", name="小李", mentions_bot=True, after_s=30)
    await h.settle()
    assert [s.text for s in h.sent] == [f"@小李{M}支持 7 天无理由退货。",
                                        f"@小赵{M}「可以退货吗？」\n支持 7 天无理由退货。",
                                        f"@小李{M}刚刚在群里回答过「可以退货吗？」啦，往上翻一翻就能看到～"]
    await h.say("u2", "可以退货吗？", name="小张", after_s=301)  # past the window: answered again
    await h.settle()
    assert h.sent[-1].text == f"@小张{M}支持 7 天无理由退货。"
    assert len(await activity(h, "faq_answer")) == 3
    await h.say("u5", "可以退货吗？", room="g2", name="小周", after_s=1)  # another room is another audience
    await h.settle()
    assert h.sent[-1].message.room_id == "g2"


async def test_numbered_choice_when_confidence_is_middling(kb_dir, db_url):
    async with Harness(faq_config(kb_dir, answer_threshold=0.999, choice_threshold=0.01), db_url) as h:
        await h.say("u1", "退货", room=None)
        await h.settle()
        (offer,) = texts_to(h, "u1")
        assert offer.startswith("你是想问：\n1. 可以退货吗？\n2. ")
        options = offer.splitlines()[1:-1]
        await h.say("u1", "5", room=None, after_s=10)  # out of range: asked again, still pending
        await h.say("u1", "第２个", room=None, after_s=10)
        await h.settle()
        second = options[1].split(". ", 1)[1]
        sent = texts_to(h, "u1")
        assert sent[1].startswith("请回复 1 到")
        answers = await activity(h, "faq_answer")
        assert [(a["mode"], a["q"]) for a in answers] == [("choice", "退货")]
        assert 0 < answers[0]["score"] < 0.999  # the retrieval confidence of the entry picked (the second: below the top)
        assert state(h.app.services).kb.entry(answers[0]["entry"]).question == second
        assert sent[2] == state(h.app.services).kb.entry(answers[0]["entry"]).answer
        await h.say("u1", "1", room=None, after_s=10)  # nothing pending any more: "1" is just a question
        await h.settle()
        assert len(await activity(h, "faq_answer")) == 1


async def test_a_choice_expires_and_other_text_cancels_it(kb_dir, db_url):
    async with Harness(faq_config(kb_dir, answer_threshold=0.999, choice_threshold=0.01, choice_ttl_s=60),
                       db_url) as h:
        await h.say("u1", "退货", room=None)
        await h.say("u1", "1", room=None, after_s=61)
        await h.settle()
        assert await activity(h, "faq_answer") == []


async def test_low_confidence_hands_off_and_notifies_the_operators(h):
    await h.say("u1", "你们的咖啡豆是哪里产的", room=None, name="小李")
    await h.say("u2", "@小助手 门店有停车位吗", name="小王", mentions_bot=True, after_s=1)
    await h.settle()
    handoff = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"
    assert texts_to(h, "u1") == [handoff]
    assert texts_to(h, "g1") == [f"@小王{M}{handoff}"]
    notes = texts_to(h, "op1")
    assert [n.split("\n")[:2] for n in notes] == [["【待人工回复 #1】小李（u1）在私聊问：", "你们的咖啡豆是哪里产的"],
                                                ["【待人工回复 #2】小王（u2）在群「topic-g1」问：", "门店有停车位吗"]]
    assert await activity(h, "faq_miss") == [{"q": "你们的咖啡豆是哪里产的", "reason": "handoff"},
                                             {"q": "门店有停车位吗", "reason": "handoff"}]


async def test_kb_misses_groups_this_weeks_similar_questions(h):
    for i, q in enumerate(["门店有停车位吗", "门店有没有停车位", "门店停车位在哪", "可以带宠物吗"]):
        await h.say(f"u{i}", q, room=None, after_s=1)
    await h.say("u1", "老问题", room=None, after_s=1)
    await h.clock.advance(8 * 86400)  # a week later, only the new ones count
    for i, q in enumerate(["门店有停车位吗", "门店有没有停车位", "门店停车位在哪", "可以带宠物吗"]):
        await h.say(f"u{i}", q, room=None, after_s=1)
    h.sent.clear()
    await h.say("admin1", "/kb misses", room=None)
    await h.settle()
    (report,) = texts_to(h, "admin1")
    lines = report.splitlines()
    assert lines[0] == "最近 7 天没答上来的问题（共 4 次）："
    assert lines[1].startswith("1. 门店") and "（3 次，3 种问法）" in lines[1]
    assert re.fullmatch(r"2\. 可以带宠物吗（1 次）#\d+", lines[2])  # the newest miss's id, for /kb link


async def test_kb_add_appends_a_readable_entry_that_answers_at_once(h, kb_dir):
    await h.say("admin1", "/kb add 门店有停车位吗？ | 有的，门店地下车库可以免费停 2 小时。", room=None, name="管理员")
    await h.say("u1", "门店有停车位吗", room=None, after_s=2)
    await h.settle()
    assert texts_to(h, "admin1") == ["已添加「门店有停车位吗？」，现在共 6 条问答。"]
    assert texts_to(h, "u1") == ["有的，门店地下车库可以免费停 2 小时。"]
    text = (kb_dir / "群内添加.md").read_text(encoding="utf-8")
    assert "## 门店有停车位吗？\n" in text and "管理员（admin1）2026-11-23 09:00 用 /kb add 添加" in text
    await h.say("admin1", "/kb add 只有问题", room=None, after_s=1)
    await h.say("admin1", "/kb add 门店有停车位吗？ | 又一个", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "admin1")[1].startswith("问题和答案都要写")
    assert texts_to(h, "admin1")[2].startswith("已经有这个问题了")
    assert (kb_dir / "群内添加.md").read_text(encoding="utf-8") == text  # bad input changes nothing


async def test_kb_commands_are_for_admins_only(h, kb_dir):
    await h.say("u1", "/kb add 问 | 答", room=None)
    await h.say("u1", "/知识库 测试 发货", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "u1") == ["抱歉，这个命令只有管理员可以使用。"] * 2
    assert not (kb_dir / "群内添加.md").exists()


async def test_kb_test_shows_the_top_three_with_scores(h):
    await h.say("admin1", "/kb test 什么时候发货", room=None)
    await h.settle()
    (text,) = texts_to(h, "admin1")
    lines = text.splitlines()
    assert lines[0] == "「什么时候发货」的匹配结果（私聊时会直接回答）："
    assert lines[1].startswith("1. 下单后多久发货？  置信度 0.9") and lines[1].endswith("（编号 ship-when，物流.md:3）")
    assert 2 <= len(lines) <= 4


async def test_hot_reload_picks_up_a_saved_change_within_seconds(h, kb_dir):
    path = kb_dir / "物流.md"
    path.write_text(path.read_text(encoding="utf-8").replace("当天发出", "当天 18:00 前发出"), encoding="utf-8")
    await h.say("u1", "什么时候发货", room=None, after_s=3)  # files are looked at every 2 s (on a message)
    await h.settle()
    assert texts_to(h, "u1") == ["工作日 16:00 前付款当天 18:00 前发出。"]


async def test_a_broken_save_keeps_the_last_good_knowledge_base(h, kb_dir, caplog):
    (kb_dir / "物流.md").write_text("## 下单后多久发货？\n\n## 另一个问题\n答案\n", encoding="utf-8")
    (kb_dir / "售后.csv").write_text("问题,答案\n坏行,a,b\n", encoding="utf-8")
    await h.say("u1", "什么时候发货", room=None, after_s=3)
    assert "物流.md:1: “下单后多久发货？”没有答案" in caplog.text  # logged with file and line
    await h.say("admin1", "/kb reload", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "u1") == ["工作日 16:00 前付款当天发出。"]  # still the last good one
    (report,) = texts_to(h, "admin1")
    assert report.startswith("知识库文件有 2 处问题，仍在使用上一版（5 条）：")
    assert "· 售后.csv:2: 这一行有 3 列" in report and "· 物流.md:1:" in report
    (kb_dir / "物流.md").write_text("## 下单后多久发货？\n马上发。\n", encoding="utf-8")
    (kb_dir / "售后.csv").write_text("问题,答案\n", encoding="utf-8")
    await h.say("admin1", "/kb reload", room=None, after_s=1)
    await h.say("u1", "下单后多久发货", room=None, after_s=1)
    await h.settle()
    assert texts_to(h, "admin1")[-1] == "知识库已更新，共 1 条问答。"
    assert texts_to(h, "u1")[-1] == "马上发。"


async def test_queries_in_flight_during_a_reload_are_answered(h):
    kb = state(h.app.services).kb
    old = kb.current
    reload = asyncio.create_task(kb.reload())
    answers = []
    while not reload.done():  # the build runs in a thread; the loop keeps answering meanwhile
        answers.append(kb.search("什么时候发货", 1)[0].entry.id)
        await asyncio.sleep(0)
    assert (await reload).ok and kb.current is not old
    assert set(answers) == {"ship-when"} and answers


async def test_scoped_entries_answer_only_in_their_rooms(kb_dir, db_url):
    (kb_dir / "vip.md").write_text("## 黑卡会员有什么礼物？\n适用群：vip\n生日礼盒一份。\n", encoding="utf-8")
    raw_cfg = faq_config(kb_dir)
    from dataclasses import replace

    from bot.config import RoomSettings
    cfg = replace(raw_cfg, rooms={"g-vip": RoomSettings(tags=("vip",))})
    async with Harness(cfg, db_url) as h:
        await h.say("u1", "黑卡会员有什么礼物？", room="g-vip", name="甲")
        await h.say("u2", "黑卡会员有什么礼物？", room="g-other", name="乙", after_s=1)
        await h.settle()
        assert texts_to(h, "g-vip") == [f"@甲{M}生日礼盒一份。"]
        assert texts_to(h, "g-other") == []


def test_question_detection():
    assert looks_like_question("请问怎么退货")
    assert looks_like_question("包邮吗")
    assert looks_like_question("运费多少？")
    assert not looks_like_question("哈哈哈哈")
    assert not looks_like_question("好的谢谢")
    assert not looks_like_question("吗")


async def test_the_bot_ignores_its_own_messages(h):
    await h.handle(MessageReceived(at=h.clock.now(), sender=Person("bot", "小助手"), text="什么时候发货？", room_id="g1"))
    await h.settle()
    assert h.sent == []


async def test_kb_add_that_cannot_write_says_so_and_keeps_serving(h, kb_dir):
    (kb_dir / "群内添加.md").mkdir()  # where the entry would go is not a writable file (root ignores modes)
    await h.say("admin1", "/kb add 新问题 | 新答案", room=None)
    await h.say("u1", "什么时候发货", room=None, after_s=3)
    await h.settle()
    assert texts_to(h, "admin1")[0].startswith("写入 群内添加.md 失败")
    assert texts_to(h, "u1") == ["工作日 16:00 前付款当天发出。"]
