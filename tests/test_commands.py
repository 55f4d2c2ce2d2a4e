import pytest
from sqlalchemy import select

from bot.capabilities import Capabilities
from bot.commands import CommandRouter
from bot.skill import Skill
from storage.models import Activity
from tests.support import dispatch_skill as probe
from tests.support import Harness, make_config


@pytest.fixture
async def h(db_url):
    probe.reset()
    cfg = make_config({
        "bot": {"admins": ["admin1"], "skills": ["ping", "tests.support.dispatch_skill"]},
        "rooms": {"g2": {"admins": ["roomadmin"]}},
    })
    async with Harness(cfg, db_url) as harness:
        yield harness


async def replies(h) -> list[str]:
    await h.settle()
    return [s.text for s in h.sent]


async def activity(h, kind: str) -> list[Activity]:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return list((await s.execute(select(Activity).where(Activity.kind == kind))).scalars())


async def test_admin_is_recognised_by_stable_id(h):
    await h.say("admin1", "/secret", name="随便什么名字")
    assert (await replies(h))[-1].endswith("ok")


async def test_non_admin_is_refused_politely_even_with_an_admin_display_name(h):
    await h.say("impostor", "/secret", name="admin1")
    assert (await replies(h)) == ["@admin1\u2005抱歉，这个命令只有管理员可以使用。"]
    (row,) = await activity(h, "refused")
    assert (row.member_id, row.room_id, row.detail["command"]) == ("impostor", "g1", "secret")


async def test_room_admin_only_in_their_room(h):
    await h.say("roomadmin", "/秘密", room="g2")
    await h.say("roomadmin", "/secret", room="g1", after_s=5)
    texts = await replies(h)
    assert texts[0].endswith("ok")
    assert texts[1].endswith("只有管理员可以使用。")


async def test_help_lists_only_what_the_asker_may_use(h):
    await h.say("u1", "/help", room=None)
    await h.say("admin1", "/帮助", room=None, after_s=5)
    member_help, admin_help = await replies(h)
    assert "/ping" in member_help and "/secret" not in member_help and "/echo" not in member_help
    assert "/secret" in admin_help and "（管理员）" in admin_help
    assert "/save" not in admin_help  # hidden commands stay hidden


async def test_help_tells_admins_what_the_account_can_do(h):
    h.app.services.capabilities = Capabilities(image=True, kick=False)  # as a transport learns it at login
    await h.say("u1", "/help", room="g2")
    await h.say("roomadmin", "/help", room="g2", after_s=5)
    await h.say("admin1", "/help", room=None, after_s=5)
    member_help, room_admin_help, admin_help = await replies(h)
    assert "能力" not in member_help and "不支持" not in member_help
    for text in (room_admin_help, admin_help):
        last = text.splitlines()[-1]
        assert last.startswith("能力：文字、@提醒、群内发言、图片 / 不支持：")
        assert "踢人" in last.split("不支持：")[1] and "图片" not in last.split("不支持：")[1]


async def test_help_for_one_command(h):
    await h.say("u1", "/help ping", room=None)
    (text,) = await replies(h)
    assert text.startswith("/ping：看看我在不在")
    assert "/在吗" in text and "在吗" in text


async def test_keyword_with_trailing_mention_runs_the_command(h):
    await h.say("u1", "在吗 @小助手\u2005", mentions_bot=True)
    assert (await replies(h))[-1].endswith("在的～")


async def test_unknown_command_gets_a_suggestion(h):
    await h.say("u1", "/pnig")
    (text,) = await replies(h)
    assert "没有 /pnig 这个命令" in text and "/ping" in text
    (row,) = await activity(h, "command")
    assert row.detail == {"command": "pnig", "outcome": "unknown"}


async def test_usage_error_shows_usage(h):
    await h.say("u1", "/add 1 x", room=None)
    await h.say("u1", "/add 2 3", room=None, after_s=5)
    usage, ok = await replies(h)
    assert usage == "需要两个数字。\n用法：/add 数字 数字"
    assert ok == "5"
    outcomes = [r.detail["outcome"] for r in await activity(h, "command")]
    assert outcomes == ["usage", "ok"]


async def test_where_a_command_may_be_used(h):
    await h.say("u1", "/add 1 2", room="g1")
    await h.say("u1", "/roomonly", room=None, after_s=5)
    texts = await replies(h)
    assert texts[0].endswith("这个命令请私聊我使用哦。")
    assert texts[1] == "这个命令需要在群里使用哦。"


async def test_full_text_of_commands_is_logged_but_not_of_chatter(h):
    await h.say("u1", "今天天气不错")
    await h.say("u1", "/ping", after_s=1)
    rows = await activity(h, "message")
    assert rows[0].detail == {"len": 6}
    assert rows[1].detail == {"text": "/ping", "len": 5, "to_bot": True}


def test_a_name_can_only_be_taken_once():
    router = CommandRouter()
    a, b = Skill("a"), Skill("b")
    a.command("x", help="x")(lambda ctx: None)
    b.command("y", aliases=("X",), help="y")(lambda ctx: None)
    router.add_skill(a)
    with pytest.raises(ValueError, match="already taken"):
        router.add_skill(b)


async def test_admins_of_a_room_for_skills_that_degrade(h):
    from bot.context import Context
    from bot.events import MessageReceived, Person

    def ctx_in(room):
        return Context(h.app.services, event=MessageReceived(at=h.clock.now(), sender=Person("u1", "小李"),
                                                             text="x", room_id=room))

    assert ctx_in("g2").admins_of() == ("roomadmin",)  # the room's own admins
    assert ctx_in("g1").admins_of() == ("admin1",)  # none named for the room: the global admins
    assert ctx_in(None).admins_of("g2") == ("roomadmin",)  # a job names the room


def test_every_capability_has_a_label_for_admins_and_operators():
    from dataclasses import fields

    from bot.capabilities import LABELS
    assert list(LABELS) == [f.name for f in fields(Capabilities)]  # /help and the 账号状态 page read them in order
