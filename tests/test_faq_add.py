"""/kb add: the entry is checked and the knowledge base as it would be is parsed before anything is written."""

import asyncio
from datetime import timedelta

import pytest

from bot.events import MessageReceived, Person
from skills.faq import check_cli
from skills.faq.knowledge.adding import MAX_ANSWER, Refused, check_entry, prepare, render_block
from skills.faq.knowledge.files import load_knowledge
from tests.support.faq_support import faq_config, write_kb
from tests.support import Harness

ADDED = "群内添加.md"


@pytest.fixture
def kb_dir(tmp_path):
    return write_kb(tmp_path / "kb")


@pytest.fixture
async def h(harness, kb_dir):
    return await harness(faq_config(kb_dir))


def replies(h, chat="admin1"):
    return [s.text for s in h.sent if s.message.conversation_id == chat]


@pytest.mark.parametrize("answer, refusal", [
    ("# 本周活动", "答案不能以“#”开头：在知识库文件里会被当成标题"),
    ("#话题# 每周三上新", "答案不能以“#”开头"),
    ("<!-- 内部备注 会员价 39 元", "答案不能以“<!--”开头：在知识库文件里会被当成注释，成员看不到"),
    ("| 规格 | 价格 |", "答案不能以“|”开头：在知识库文件里会被当成表格"),
    ("第一行\n## 第二行", "答案第 2 行不能以“#”开头"),
    ("编号: vip-1 会员卡在个人中心", "答案不能以“编号：”开头"),
    ("很" * (MAX_ANSWER + 1), f"答案太长了（{MAX_ANSWER + 1} 个字）"),
])
def test_an_answer_the_file_would_misread_is_refused(answer, refusal):
    with pytest.raises(Refused) as refused:
        check_entry("会员卡在哪里看", answer)
    assert str(refused.value).startswith(refusal)


def test_control_characters_and_lone_surrogates_are_cleaned_out():
    question, answer = check_entry(" 门店\x00几点开门？ ", "早上\ud8009 点\x07开门\u2028晚上 9 点关门  ")
    assert question == "门店几点开门？"
    assert answer == "早上9 点开门\n晚上 9 点关门"  # U+2028 is a line break to the loader: made an honest one
    answer.encode("utf-8")  # writable (a lone surrogate is not)
    with pytest.raises(Refused, match="问题和答案都要写"):
        check_entry("\x00\x01", "答案")
    with pytest.raises(Refused, match="问题要写在一行里"):
        check_entry("问" * 101, "答案")


def test_the_would_be_file_is_parsed_with_the_loader_before_writing(kb_dir):
    """The line checks are the first guard; parsing the whole knowledge base with the new text is the last: a
    block that slipped past them (here, built from an unchecked answer) is caught and nothing is written."""
    bad = render_block("新问题", "答案\n<!-- 没关上", "店长", "admin1", "2026-11-23 09:00")
    content, problems = prepare(kb_dir, ADDED, bad, "新问题", "答案\n<!-- 没关上", 2_000_000)
    assert [(p.file, p.line) for p in problems] == [(ADDED, 8)] and "没有用“-->”结束" in problems[0].message
    assert not (kb_dir / ADDED).exists()
    good = render_block("新问题", "答案", "店长 -->\n## 注入", "admin1", "2026-11-23 09:00")  # a hostile name
    content, problems = prepare(kb_dir, ADDED, good, "新问题", "答案", 2_000_000)
    assert problems == [] and "-->\n## 注入" not in content
    (kb_dir / ADDED).write_text(content, encoding="utf-8")
    kb = load_knowledge(kb_dir)
    assert kb.problems == [] and [e.answer for e in kb.entries if e.question == "新问题"] == ["答案"]


@pytest.mark.parametrize("answer", ["# 本周活动", "<!-- 内部备注", "| 规格 | 价格 |"])
async def test_a_refused_add_changes_nothing_and_later_adds_still_work(h, kb_dir, answer):
    await h.say("admin1", f"/kb add 本周有什么活动 | {answer}", room=None)
    await h.settle()
    (refusal,) = replies(h)
    assert "不能以" in refusal and "用法：/kb add 问题 | 答案" in refusal
    assert not (kb_dir / ADDED).exists()
    await h.say("admin1", "/kb add 本周有什么活动 | 周三上新，会员 9 折。", room=None, after_s=1)
    await h.say("u1", "本周有什么活动", room=None, after_s=1)
    await h.settle()
    assert replies(h)[1] == "已添加「本周有什么活动」，现在共 6 条问答。"
    assert replies(h, "u1") == ["周三上新，会员 9 折。"]
    assert check_cli(str(kb_dir)) == 0  # the file still parses: later edits and adds are not blocked


async def test_a_cleaned_answer_is_added_and_served(h, kb_dir):
    await h.say("admin1", "/kb add 门店几点开门 | 早上\x009 点\ud800开门", room=None)
    await h.say("u1", "门店几点开门", room=None, after_s=1)
    await h.settle()
    assert replies(h) == ["已添加「门店几点开门」，现在共 6 条问答。"]
    assert replies(h, "u1") == ["早上9 点开门"]
    assert "早上9 点开门\n" in (kb_dir / ADDED).read_text(encoding="utf-8")


async def test_a_very_long_answer_is_refused(h, kb_dir):
    await h.say("admin1", "/kb add 冲泡方法 | " + "先" * 1200, room=None)
    await h.settle()
    assert replies(h)[0].startswith("答案太长了（1200 个字）")
    assert not (kb_dir / ADDED).exists()


async def test_with_a_problem_elsewhere_nothing_is_written_and_the_admin_is_told_where(h, kb_dir):
    (kb_dir / "活动.md").write_text("## 有答案\n答案\n<!-- 没关上的注释\n## 被吞掉的问题\n答案\n", encoding="utf-8")
    await h.say("admin1", "/kb add 新问题 | 新答案", room=None)
    await h.settle()
    (refusal,) = replies(h)
    assert refusal.startswith("知识库文件里现在有 1 处问题，先修好再添加（这一条没有写入）：")
    assert "· 活动.md:3: 注释“<!--”没有用“-->”结束" in refusal
    assert not (kb_dir / ADDED).exists()


async def test_an_add_that_would_make_the_file_too_big_is_refused(kb_dir, db_url):
    (kb_dir / ADDED).write_text("## 老问题\n" + "答" * 300 + "\n", encoding="utf-8")  # ~900 bytes
    before = (kb_dir / ADDED).read_bytes()
    async with Harness(faq_config(kb_dir, max_file_bytes=1000), db_url) as h:
        await h.say("admin1", "/kb add 新问题 | " + "很长的答案" * 20, room=None)
        await h.settle()
        (refusal,) = replies(h)
        assert refusal.startswith(f"这一条没有添加：写进 {ADDED} 后知识库会读不通（1 处问题）：")
        assert f"· {ADDED}: 文件太大" in refusal
    assert (kb_dir / ADDED).read_bytes() == before


async def test_two_adds_at_once_both_land(h, kb_dir):
    """Each add reads the file, checks it and replaces it: without one add at a time, the second would replace
    the file with a copy that lacks the first."""
    at = h.clock.now() + timedelta(seconds=1)
    await h.clock.advance_to(at)
    await asyncio.gather(*(h.app.dispatcher.handle(MessageReceived(
        at=at, sender=Person("admin1", "店长"), text=f"/kb add 第{n}个问题 | 第{n}个答案", room_id=None))
        for n in "一二三"))
    await h.settle()
    kb = load_knowledge(kb_dir)
    assert kb.problems == [] and {e.question for e in kb.entries} >= {"第一个问题", "第二个问题", "第三个问题"}
