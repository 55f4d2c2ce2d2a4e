import asyncio
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.events import MessageReceived, Person
from storage.models import MemberName
from tests.support import dispatch_skill as probe
from tests.support import Harness, make_config


@pytest.fixture
async def h(db_url):
    probe.reset()
    cfg = make_config({"bot": {"admins": ["admin1"], "skills": ["ping", "tests.support.dispatch_skill"]}})
    async with Harness(cfg, db_url) as harness:
        yield harness


async def names(h) -> list[str]:
    async with h.app.services.sessions() as s:
        return [n for (n,) in (await s.execute(select(MemberName.name).where(MemberName.name.like("write%"))))]


async def test_hooks_run_by_priority_and_a_blocking_hook_ends_the_chain(h):
    await h.say("u1", "hello")
    assert probe.calls == ["first:hello", "second:hello", "last:hello"]


async def test_ctx_stop_ends_the_chain(h):
    await h.say("u1", "stop")
    assert probe.calls == ["first:stop"]


async def test_commands_are_not_seen_by_message_hooks(h):
    await h.say("u1", "/ping")
    assert probe.calls == []


async def test_one_session_per_event_shared_by_its_hooks_and_committed(h):
    await h.say("u1", "write-1")
    await h.say("u1", "write-2", after_s=1)
    # first and second note their session: one per event, shared by both hooks
    assert probe.sessions[0] is probe.sessions[1]
    assert probe.sessions[2] is probe.sessions[3]
    assert probe.sessions[0] is not probe.sessions[2]
    assert await names(h) == ["write-1", "write-2"]


async def test_a_failing_hook_is_reported_and_the_others_still_run(h):
    await h.say("u1", "boom-second")
    assert probe.calls == ["first:boom-second", "second:boom-second", "last:boom-second"]
    assert h.app.errors.count == 1
    await h.say("u2", "/ping", after_s=1)  # the bot keeps working
    await h.settle()
    assert h.sent[-1].text.endswith("在的～")


async def test_a_failing_hook_undoes_only_its_own_writes(h):
    await h.say("u1", "write-boom")  # first writes, then second writes and fails
    assert h.app.errors.count == 1
    assert probe.calls == ["first:write-boom", "second:write-boom", "last:write-boom"]
    assert await names(h) == ["write-boom"]  # first's write kept, second's undone


async def test_a_failing_first_hook_rolls_back_its_write(h, monkeypatch):
    original = probe.first

    async def write_and_fail(ctx):
        ctx.session.add(MemberName(member_id="u1", name="write-lost", first_seen=ctx.now))
        await ctx.session.flush()
        raise RuntimeError("bug after write")

    spec = next(hk for hk in h.app.dispatcher._hooks["message"] if hk.handler is original)
    index = h.app.dispatcher._hooks["message"].index(spec)
    h.app.dispatcher._hooks["message"][index] = type(spec)(spec.event, write_and_fail, spec.skill, spec.priority)
    await h.say("u1", "anything")
    assert h.app.errors.count == 1
    assert await names(h) == []
    assert probe.calls == ["second:anything", "last:anything"]


async def test_command_failure_rolls_back_answers_politely_and_reports(h):
    await h.say("u1", "/save")
    await h.say("u1", "/count", after_s=1)
    await h.settle()
    assert h.app.errors.count == 1
    assert h.sent[0].text.endswith("抱歉，处理时出了点问题，请稍后再试。")
    assert h.sent[1].text.endswith("0 条")  # the failed command's write was rolled back


async def test_live_submit_keeps_each_chat_in_order_and_chats_independent(h):
    gate = asyncio.Event()
    probe.gates["a1"] = gate
    now = h.clock.now()

    def msg(room, text, i):
        return MessageReceived(at=now + timedelta(seconds=i), sender=Person("u1"), text=text, room_id=room)

    d = h.app.dispatcher
    d.submit(msg("A", "a1", 0))  # blocks until the gate opens
    d.submit(msg("A", "a2", 1))
    d.submit(msg("B", "b1", 2))
    d.submit(msg("B", "b2", 3))

    async def until(pred):
        while not pred():
            await asyncio.sleep(0)

    await asyncio.wait_for(until(lambda: "last:b2" in probe.calls), 5)
    assert "first:a2" not in probe.calls  # room A waits behind its first message
    gate.set()
    await asyncio.wait_for(d.join(), 5)
    firsts = [c for c in probe.calls if c.startswith("first:")]
    assert firsts.index("first:a1") < firsts.index("first:a2")
    assert firsts.index("first:b1") < firsts.index("first:b2")


async def test_operators_are_told_1_on_1_and_in_their_room_once_committed(harness, db_url):
    probe.reset()
    cfg = make_config({"bot": {"admins": ["admin1"], "skills": ["tests.support.dispatch_skill"],
                               "operators": ["op1", "op2"], "operators_room": "staff@chatroom"}})
    h = await harness(cfg)
    await h.say("u1", "ops:请处理兑换单 7")
    await h.say("u1", "ops:回滚了!")  # the hook that decided it failed: nobody is told
    await h.say("u1", "ops:后面的钩子失败#")  # a later hook failed: what this one decided still goes
    await h.settle()
    told = sorted((s.message.user_id or s.message.room_id, s.text) for s in h.sent)
    assert told == [("op1", "后面的钩子失败#"), ("op1", "请处理兑换单 7"), ("op2", "后面的钩子失败#"),
                    ("op2", "请处理兑换单 7"), ("staff@chatroom", "后面的钩子失败#"), ("staff@chatroom", "请处理兑换单 7")]
    assert probe.calls.count("told:True") == 3


async def test_with_no_operators_nobody_is_told_and_the_caller_knows(h):
    await h.say("u1", "ops:请处理")
    await h.settle()
    assert "told:False" in probe.calls
    assert h.sent == []
