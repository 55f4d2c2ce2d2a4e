"""The welcome skill on the virtual clock: coalesced waves, no bot, no second welcome, templates, DM, referrals."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.config import ConfigError
from bot.events import MessageReceived, Person
from storage.models_points import PointsLedger
from storage.points import balance, ledger_sum
from tests.support import START, Harness, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

M = "\u2005"


def config(**welcome):
    return make_config({
        "bot": {"admins": ["admin1"], "skills": ["ping", "welcome"]},
        "governor": {"min_interval_s": 1.0, "jitter_s": 0.0, "chat_switch_interval_s": 1.0, "warmup_s": 0.0},
        "skills": {"welcome": {"template": "欢迎{names}加入{topic}（{count}位）{rules}", "rules": "群规见公告",
                               **welcome}},
    })


@pytest.fixture
async def h(harness):
    return await harness(config())


def people(*ids):
    return [Person(i, f"名{i}") for i in ids]


async def test_a_wave_of_joins_gets_one_welcome_at_the_window_end(h):
    await h.say("u0", "大家好", room="g1")  # the room's topic is known from its messages
    await h.join("g1", *people("a", "b"), inviter="u0")
    await h.join("g1", *people(*[f"m{i}" for i in range(38)]), after_s=30)
    await h.settle()
    (welcome,) = h.sent
    assert welcome.at == START + timedelta(seconds=60)
    assert welcome.message.mentions == ("a", "b", *[f"m{i}" for i in range(38)])
    assert welcome.text.startswith(f"@名a{M}@名b{M}@名m0{M}")
    assert welcome.text.endswith("加入topic-g1（40位）群规见公告")


async def test_joins_after_the_window_start_a_new_wave(h):
    await h.join("g1", *people("a"))
    await h.join("g1", *people("b"), after_s=61)
    await h.settle()
    assert [s.message.mentions for s in h.sent] == [("a",), ("b",)]


async def test_the_bot_itself_is_not_welcomed(h):
    await h.join("g1", Person("bot", "小助手"))
    await h.settle()
    assert h.sent == []
    await h.join("g2", Person("bot", "小助手"), *people("a"), after_s=5)
    await h.settle()
    assert [s.message.mentions for s in h.sent] == [("a",)]


async def test_leave_and_rejoin_within_a_day_gets_no_second_welcome(h):
    await h.join("g1", *people("a"))
    await h.settle()
    await h.leave("g1", "a", after_s=3600)
    await h.join("g1", *people("a"), after_s=60)
    await h.settle()
    assert len(h.sent) == 1
    await h.leave("g1", "a", after_s=60)
    await h.join("g1", *people("a"), after_s=86400)  # a day later: welcomed again
    await h.settle()
    assert len(h.sent) == 2
    await h.join("g2", *people("a"), after_s=10)  # another room is another welcome
    await h.settle()
    assert [s.message.room_id for s in h.sent] == ["g1", "g1", "g2"]


async def test_a_room_can_have_its_own_words(db_url):
    cfg = config(rooms={"vip": {"rules": "VIP群规"}})
    async with Harness(cfg, db_url) as h:
        await h.join("vip", *people("a"))
        await h.join("g1", *people("b"))
        await h.settle()
        assert [s.text.rsplit("）", 1)[1] for s in h.sent] == ["VIP群规", "群规见公告"]


async def test_dm_follow_up_counts_against_the_daily_dm_cap(db_url):
    async with Harness(config(dm_followup=True, dm_text="你好{names}，欢迎来到{topic}"), db_url) as h:
        await h.join("g1", *people("a"))
        await h.join("g2", *people("a"), after_s=5)  # a second group the same day: the member's cap (1) holds
        await h.settle()
        dms = [s for s in h.sent if s.message.user_id]
        assert [s.text for s in dms] == ["你好名a，欢迎来到本群"]


async def test_bad_template_is_a_clear_config_error(db_url):
    with pytest.raises(ConfigError, match=r"skills\.welcome\.template: bad placeholder 'nmaes'"):
        async with Harness(config(template="欢迎{nmaes}"), db_url):
            pass


async def test_referral_points_once_the_invitee_stays(db_url):
    async with Harness(config(referral_points=20, referral_days=3), db_url) as h:
        await h.join("g1", *people("a", "b"), inviter="u0")
        await h.leave("g1", "b", after_s=86400)  # b leaves on day 2: no points for b
        await h.clock.advance(3 * 86400)
        await h.settle()
        async with h.app.services.sessions() as s:
            assert await balance(s, "u0") == await ledger_sum(s, "u0") == 20
            refs = (await s.execute(select(PointsLedger.ref_id))).scalars().all()
        assert refs == ["referral:g1:a"]
        assert h.sent[-1].message.user_id == "u0" and "20 积分" in h.sent[-1].text


async def test_topic_from_an_earlier_message_fills_a_join_without_one(h):
    await h.handle(MessageReceived(at=h.clock.now(), sender=Person("u0"), text="hi", room_id="g9",
                                   room_topic="新品试用群"))
    await h.join("g9", *people("a"), after_s=1)
    await h.settle()
    assert "加入新品试用群" in h.sent[0].text


def test_referral_keys_fit_their_columns_for_the_longest_ids():
    from skills.welcome import _referral_key

    key = _referral_key("r" * 128, "u" * 128)  # scheduled_jobs.key and points_ledger.ref_id are 200 long
    assert len(key) <= 200 and key == _referral_key("r" * 128, "u" * 128)
    assert key != _referral_key("r" * 128, "u" * 127 + "v")
    assert _referral_key("g1", "u1") == "referral:g1:u1"  # short keys as they always were
