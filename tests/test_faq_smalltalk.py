"""Small talk (闲聊): short friendly answers, never the handoff and never a miss; in groups only when @-mentioned;
operator-editable in knowledge/闲聊.txt and checked by `kb check`."""

from __future__ import annotations

from pathlib import Path

import pytest

from skills.faq import check_cli
from skills.faq.smalltalk import DEFAULT_TEXT, is_emoji_only, load, parse
from tests.support.faq_support import M, activity, write_kb
from tests.support import make_config

ROOT = Path(__file__).resolve().parents[1]
HANDOFF = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"
SAYINGS = {  # what members type → the default answer
    "你好": "你好呀～有什么想问的直接发给我就好。", "hi": "你好呀～有什么想问的直接发给我就好。",
    "您好！": "你好呀～有什么想问的直接发给我就好。", "在么？": "你好呀～有什么想问的直接发给我就好。",
    "谢谢": "不客气～还有问题随时问我。", "多谢！": "不客气～还有问题随时问我。", "thx": "不客气～还有问题随时问我。",
    "好的": "好的～", "嗯嗯": "好的～", "收到": "好的～", "OK": "好的～", "好的哈": "好的～",
    "😀": "😊", "👍👍": "😊", "👍🏻": "😊", "[微笑]": "😊",
    "你是机器人吗？": "我是自动回答的小助手（机器人）～常见问题可以直接问我，发 /help 看看我还能做什么。",
    "你是真人吗": "我是自动回答的小助手（机器人）～常见问题可以直接问我，发 /help 看看我还能做什么。",
    "再见": "再见～有需要随时找我。", "拜拜~": "再见～有需要随时找我。",
}


def config(kb: Path, **bot):
    return make_config({
        "bot": {"admins": ["admin1"], "skills": ["faq"], "operators": ["op1"], **bot},
        "governor": {"min_interval_s": 1.0, "jitter_s": 0.0, "chat_switch_interval_s": 1.0, "warmup_s": 0.0},
        "skills": {"faq": {"knowledge_dir": str(kb), "reload_interval_s": 0}},
    })


@pytest.fixture
def kb(tmp_path):
    return write_kb(tmp_path / "kb")


def texts_to(h, chat):
    return [s.text for s in h.sent if s.message.conversation_id == chat]


async def test_small_talk_one_on_one_gets_its_answer_never_a_handoff_or_a_miss(harness, kb):
    h = await harness(config(kb))
    for i, text in enumerate(SAYINGS):
        await h.say(f"u{i}", text, room=None, after_s=1)
    await h.settle()
    assert {text: texts_to(h, f"u{i}") for i, text in enumerate(SAYINGS)} == {t: [a] for t, a in SAYINGS.items()}
    assert texts_to(h, "op1") == []
    assert await activity(h, "faq_miss") == [] and await activity(h, "faq_answer") == []


async def test_in_a_group_small_talk_is_answered_only_when_mentioned(harness, kb):
    h = await harness(config(kb))
    for text in ("你好", "在吗？", "谢谢", "😀", "你是机器人吗"):
        await h.say("u1", text, after_s=1)
    await h.settle()
    assert h.sent == []
    await h.say("u1", f"@小助手{M}谢谢", name="小李", mentions_bot=True, after_s=1)
    await h.settle()
    assert texts_to(h, "g1") == [f"@小李{M}不客气～还有问题随时问我。"]
    assert await activity(h, "faq_miss") == []


async def test_a_greeting_with_a_question_is_a_question(harness, kb):
    h = await harness(config(kb))
    await h.say("u1", "你好，请问什么时候发货", room=None)
    await h.say("u2", "你好，咖啡豆哪里产的", room=None)
    await h.settle()
    assert texts_to(h, "u1") == ["工作日 16:00 前付款当天发出。"]
    assert texts_to(h, "u2") == [HANDOFF]


async def test_the_operators_file_is_used_and_reloaded(harness, kb):
    (kb / "闲聊.txt").write_text("[问候]\n说法：你好；早安\n回答：早呀！\n回答：你好鸭！\n", encoding="utf-8")
    h = await harness(config(kb))
    await h.say("u1", "早安", room=None)
    await h.say("u1", "早安", room=None, after_s=1)  # deterministic: the same member, the same words, the same line
    await h.say("u2", "谢谢", room=None, after_s=1)  # not in the file any more: a question like any other
    await h.settle()
    first = texts_to(h, "u1")
    assert first[0] in ("早呀！", "你好鸭！") and first[0] == first[1]
    assert texts_to(h, "u2") == [HANDOFF]
    (kb / "闲聊.txt").write_text("[感谢]\n说法：谢谢\n回答：客气啦\n[坏]\n回答：没有说法\n", encoding="utf-8")
    await h.say("admin1", "/kb reload", room=None, after_s=1)
    await h.say("u3", "谢谢", room=None, after_s=1)
    await h.settle()
    assert "闲聊文件 闲聊.txt 有 1 处问题" in texts_to(h, "admin1")[-1]
    assert texts_to(h, "u3") == ["客气啦"]


def test_kb_check_validates_the_small_talk_file(kb, capsys):
    assert check_cli(str(kb)) == 0  # no file: the defaults, nothing to check
    (kb / "闲聊.txt").write_text("[问候]\n说法：你好\n回答：嗨\n[感谢]\n说法：你好；谢谢\n回答：不客气\n乱写一行\n",
                                 encoding="utf-8")
    assert check_cli(str(kb)) == 1
    out = capsys.readouterr().out
    assert "闲聊.txt: line 5: 说法 「你好」 is in [问候] too (line 2)" in out
    assert "闲聊.txt: line 7: expected [名称], 说法：… or 回答：…" in out


def test_the_shipped_small_talk_file_is_valid_and_matches_the_defaults():
    shipped, problems = load(ROOT / "knowledge" / "闲聊.txt")
    assert problems == []
    default, _ = parse(DEFAULT_TEXT)
    assert [(g.name, g.phrases, g.answers) for g in shipped.groups] == \
        [(g.name, g.phrases, g.answers) for g in default.groups]


def test_emoji_only():
    assert is_emoji_only("😀") and is_emoji_only("👍🏻 👍") and is_emoji_only("❤️")
    assert not is_emoji_only("好😀") and not is_emoji_only("") and not is_emoji_only("1")
