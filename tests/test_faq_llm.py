"""The optional LLM path against a real local OpenAI-compatible server: phrasing, refusal, timeout, dense fusion."""

import asyncio

import pytest

from bot.events import MessageReceived, Person
from tests.support.faq_support import M, activity, faq_config, write_kb
from tests.support.openai_server import FakeOpenAI
from tests.support import Harness


@pytest.fixture
async def server():
    s = FakeOpenAI()
    await s.start()
    yield s
    await s.stop()


@pytest.fixture
def kb_dir(tmp_path):
    return write_kb(tmp_path / "kb")


def llm_config(kb_dir, server, faq=None, **llm):
    return faq_config(kb_dir, **(faq or {}), llm={"enabled": True, "base_url": server.url, "model": "test-model",
                                   "api_key_env": "FAQ_TEST_KEY", "timeout_s": 5.0, **llm})


async def test_the_llm_phrases_the_answer_from_the_retrieved_entries(kb_dir, server, db_url, monkeypatch):
    monkeypatch.setenv("FAQ_TEST_KEY", "sk-test")
    async with Harness(llm_config(kb_dir, server), db_url) as h:
        await h.say("u1", "什么时候发货", room=None)
        await h.settle()
        assert [s.text for s in h.sent] == ["亲，工作日 16:00 前付款当天发出。"]
        (request,) = server.chat_requests
        assert request["model"] == "test-model" and request["temperature"] == 0
        assert "只根据下面给出的知识条目回答" in request["messages"][0]["content"]
        assert "【条目1】问题：下单后多久发货？" in request["messages"][1]["content"]
        (answer,) = await activity(h, "faq_answer")
        assert answer["mode"] == "llm" and answer["entry"] == "ship-when"


async def test_a_refusal_hands_off(kb_dir, server, db_url):
    async with Harness(llm_config(kb_dir, server, faq={"choice_threshold": 0.01}), db_url) as h:
        await h.say("u1", "@小助手 什么时候开门店", name="小李", mentions_bot=True)  # retrieval half-matches 什么时候
        await h.settle()
        assert len(server.chat_requests) == 1  # the model was asked, and said the entries don't cover it
        assert h.sent[0].text == f"@小李{M}这个问题我先记下了，已转人工客服，稍后会有同事回复你～"
        assert await activity(h, "faq_miss") == [{"q": "什么时候开门店", "reason": "llm_refused"}]
        assert [s.message.user_id for s in h.sent[1:]] == ["op1"]


async def test_on_timeout_the_retrieved_answer_goes_out_and_other_chats_are_not_held(kb_dir, server, db_url):
    async with Harness(llm_config(kb_dir, server, timeout_s=1.0), db_url) as h:
        now = h.clock.now()
        slow = asyncio.create_task(h.app.dispatcher.handle(
            MessageReceived(at=now, sender=Person("u1", "甲"), text="慢慢问：什么时候发货")))
        while not server.chat_requests:  # the slow chat's model call is under way
            await asyncio.sleep(0.01)
        await h.app.dispatcher.handle(MessageReceived(at=now, sender=Person("u2", "乙"), text="怎么开发票"))
        assert not slow.done()  # the other chat was answered meanwhile
        await slow  # gives up after timeout_s
        await h.settle()
        by_user = {s.message.user_id: s.text for s in h.sent}
        assert by_user["u2"] == "亲，订单完成后在「我的订单」里申请开票。"
        assert by_user["u1"].startswith("你是想问：\n1. 下单后多久发货？")  # what retrieval alone decides
        assert [a["mode"] for a in await activity(h, "faq_answer")] == ["llm"]


async def test_an_unreachable_endpoint_falls_back_to_retrieval(kb_dir, db_url):
    cfg = faq_config(kb_dir, llm={"enabled": True, "base_url": "http://127.0.0.1:9/v1", "model": "m",
                                  "timeout_s": 2.0, "embeddings_model": "e"})
    async with Harness(cfg, db_url) as h:  # the embeddings at start fail too: lexical index only
        await h.say("u1", "什么时候发货", room=None)
        await h.settle()
        assert [s.text for s in h.sent] == ["工作日 16:00 前付款当天发出。"]


async def test_dense_retrieval_finds_what_words_miss(kb_dir, server, db_url):
    question = "东西多会儿能寄出"  # shares no word with 下单后多久发货 / 什么时候发货 / 几天能发货
    async with Harness(faq_config(kb_dir), db_url) as h:
        await h.say("u1", question, room=None)
        await h.settle()
        assert h.sent[0].text.startswith("这个问题我先记下了")
    cfg = llm_config(kb_dir, server, embeddings_model="test-embed")
    async with Harness(cfg, db_url) as h:
        assert "下单后多久发货？" in server.embedding_inputs  # every question embedded at load
        await h.say("u2", question, room=None)
        await h.settle()
        assert h.sent[0].text == "亲，工作日 16:00 前付款当天发出。"
        assert server.embedding_inputs[-1] == question


def test_settings_need_an_endpoint_when_enabled():
    from bot.config import ConfigError, skill_settings
    from skills.faq import FaqSettings

    with pytest.raises(ConfigError) as info:
        skill_settings(faq_config("kb", llm={"enabled": True}), "faq", FaqSettings)
    assert "skills.faq.llm.base_url" in str(info.value)
