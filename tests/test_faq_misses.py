"""Knowledge misses: one grouping (skills/faq/knowledge/misses.py), read by /kb misses and by store.misses (the
dashboard's page) alike."""

import random
import re
from datetime import datetime, timedelta, timezone

import pytest

from skills.faq import store
from skills.faq.knowledge.misses import MissRow, group_misses
from storage.models import Activity
from tests.support.faq_support import faq_config, write_kb


pytestmark = pytest.mark.all_backends  # the store's query: SQLite and PostgreSQL alike

# (hours ago, question, reason)
ASKED = [
    (1, "门店有停车位吗", "handoff"),
    (2, "门店有停车位吗？", "handoff"),  # the same question: its punctuation,
    (3, "门店有停车位吗 ？", "low"),  # spacing
    (4, "门店有没有停车位", "handoff"),  # and particles do not make another one
    (5, "门店停车位在哪", "llm_refused"),
    (6, "可以带宠物吗", "handoff"),
    (7, "可以带宠物进店吗", "low"),
    (8, "ＷｉＦｉ密码是多少", "handoff"),  # full-width and case
    (9, "wifi密码是多少", "handoff"),
    (10, "会员日是哪天", "handoff"),
    (11, "😀😀", "low"),  # nothing left once normalised: the text itself
    (12, "", "handoff"),  # no question: not counted
    (200, "门店有停车位吗", "handoff"),  # more than 7 days ago
]


@pytest.fixture
async def h(harness, tmp_path):
    return await harness(faq_config(write_kb(tmp_path / "kb")))


async def add_misses(h) -> dict[str, list[int]]:
    """The rows as the skill records them (kind faq_miss, detail {q, reason}); question → ids."""
    now = h.clock.now()
    rows = [Activity(at=now - timedelta(hours=ago), kind="faq_miss", skill="faq", member_id=f"u{i}",
                     detail={"q": q, "reason": reason}) for i, (ago, q, reason) in enumerate(ASKED)]
    async with h.app.services.sessions() as s:
        s.add_all(rows)
        await s.commit()
    ids: dict[str, list[int]] = {}
    for row, (_, q, _) in zip(rows, ASKED):
        ids.setdefault(q, []).append(row.id)
    return ids


async def test_kb_misses_and_the_store_give_the_same_groups(h):
    ids = await add_misses(h)
    await h.say("admin1", "/kb misses", room=None)
    await h.settle()
    (report,) = [s.text for s in h.sent if s.message.conversation_id == "admin1"]
    listed = [re.fullmatch(r"\d+\. (.+)（(\d+) 次(?:，(\d+) 种问法)?）#\d+", line).groups()
              for line in report.splitlines()[1:-1]]
    async with h.app.services.sessions() as s:
        groups = await store.misses(s, h.clock.now(), days=7, limit=None)
    assert [(q, int(n), int(v or 1)) for q, n, v in listed] == [(g.question, g.count, g.variants) for g in groups]
    assert report.splitlines()[0] == "最近 7 天没答上来的问题（共 11 次）："

    parking, pets, wifi = groups[:3]
    assert (parking.question, parking.count, parking.variants) == ("门店有停车位吗", 5, 3)
    assert parking.reason == "handoff" and parking.last_at == h.clock.now() - timedelta(hours=1)
    assert parking.ids == tuple(ids["门店有停车位吗"][:1] + ids["门店有停车位吗？"] + ids["门店有停车位吗 ？"]
                                + ids["门店有没有停车位"] + ids["门店停车位在哪"])  # newest first; not the old one
    assert (pets.question, pets.count, pets.variants) == ("可以带宠物吗", 2, 2)
    assert (wifi.question, wifi.count, wifi.variants) == ("ＷｉＦｉ密码是多少", 2, 1)  # the latest of equals
    assert [(g.question, g.count) for g in groups[3:]] == [("会员日是哪天", 1), ("😀😀", 1)]

    async with h.app.services.sessions() as s:  # the dashboard's call: the same groups, over its own window
        assert [g.question for g in await store.misses(s, h.clock.now(), days=30, limit=2)] == ["门店有停车位吗",
                                                                                                 "可以带宠物吗"]
        month = await store.misses(s, h.clock.now(), days=30, limit=None)
    assert month[0].count == 6 and month[1:] == groups[1:]


def test_grouping_is_by_normalised_text_and_similar_terms():
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)
    rows = [MissRow(i, at + timedelta(minutes=i), q, "handoff") for i, q in enumerate(
        ["怎么开发票", "怎么开发票？", "发票怎么开", "能开发票吗", "退款多久到账", "退款 多久到账!", "门店在哪"])]
    groups = group_misses(rows, limit=None)
    assert [(g.question, g.count, g.variants) for g in groups] == [
        ("怎么开发票？", 4, 3), ("退款 多久到账!", 2, 1), ("门店在哪", 1, 1)]  # latest of equal wordings
    assert groups[0].ids == (3, 2, 1, 0) and groups[0].last_at == at + timedelta(minutes=3)
    assert group_misses(rows, limit=1) == groups[:1]
    assert group_misses(reversed(rows), limit=None) == groups  # the order rows come in does not matter
    assert group_misses([]) == []


def test_the_prefix_filter_gives_the_groups_of_comparing_with_every_group():
    """The grouping compares a question only with the groups that share one of its rarest terms; a plain
    comparison with every group, in the same order, must give the same groups."""
    from skills.faq.knowledge.misses import SIMILAR
    from skills.faq.knowledge.text import normalize, plain_chars

    rng = random.Random(7)
    parts = ["门店", "停车位", "发票", "退款", "快递", "会员卡", "积分", "咖啡豆", "冷萃", "怎么", "有没有", "在哪", "多久",
             "吗", "呢", "可以", "到账", "过期", "能", "用", "哪里", "今天", "几点"]
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)
    rows = [MissRow(i, at + timedelta(seconds=rng.randrange(10_000)),
                    "".join(rng.sample(parts, rng.randint(1, 4))) + rng.choice(["", "？", "?"]), "low")
            for i in range(600)]
    got = {frozenset(g.ids) for g in group_misses(rows, limit=None)}

    by_key: dict[str, list[MissRow]] = {}
    for r in rows:
        by_key.setdefault(normalize(r.question), []).append(r)
    order = sorted(sorted(by_key), key=lambda k: (len(by_key[k]), max(r.at for r in by_key[k])), reverse=True)
    terms = dict(zip(order, map(frozenset, plain_chars(order))))
    founders: list[str] = []
    groups: list[set[int]] = []
    for key in order:
        for g, founder in enumerate(founders):
            a, b = terms[key], terms[founder]
            if len(a & b) / len(a | b) >= SIMILAR:
                groups[g] |= {r.id for r in by_key[key]}
                break
        else:
            founders.append(key)
            groups.append({r.id for r in by_key[key]})
    assert got == {frozenset(g) for g in groups}
    assert 20 < len(got) < 300  # some grouping happened, and not everything in one group


def test_past_the_most_asked_questions_only_equal_ones_are_grouped():
    at = datetime(2026, 11, 23, tzinfo=timezone.utc)
    asked = ["怎么开发票"] * 3 + ["退款多久到账"] * 2 + ["发票怎么开", "能开发票吗？"]
    rows = [MissRow(i, at + timedelta(minutes=i), q, "handoff") for i, q in enumerate(asked)]
    assert [(g.question, g.count) for g in group_misses(rows, limit=None)] == [("怎么开发票", 5), ("退款多久到账", 2)]
    assert [(g.question, g.count) for g in group_misses(rows, limit=None, similar_keys=2)] == [
        ("怎么开发票", 3), ("退款多久到账", 2), ("能开发票吗？", 1), ("发票怎么开", 1)]
