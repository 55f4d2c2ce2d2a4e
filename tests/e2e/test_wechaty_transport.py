"""WechatyTransport against the real Node gateway (wechaty-puppet-mock behind a gRPC PuppetServer).

One mock gateway per module (node takes ~2 s to start); each test gets its own transport and its own rooms.
Nothing sleeps to synchronise: events are awaited on a queue with a timeout.
"""

from __future__ import annotations

import asyncio
import itertools
from datetime import UTC, datetime

import pytest
import pytest_asyncio

from bot.events import MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.transports.base import RiskControlError, TransportError
from bot.transports.wechaty_transport import WechatyTransport

try:  # tests/ may or may not become a package
    from tests.e2e.gateway_harness import MockGateway, node_missing_reason
except ImportError:  # pragma: no cover
    from gateway_harness import MockGateway, node_missing_reason  # type: ignore[no-redef]

_skip_reason = node_missing_reason()
pytestmark = [
    pytest.mark.skipif(_skip_reason is not None, reason=_skip_reason or ""),
    pytest.mark.asyncio(loop_scope="module"),
]

TIMEOUT = 20
BOT_ID, BOT_NAME = "wxid_bot", "小助手"
FIXED_NOW = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
_room_numbers = itertools.count(1)


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway():
    gw = MockGateway()
    await gw.start()
    await gw.login(BOT_ID, BOT_NAME)
    for cid, name in [("wxid_alice", "Alice"), ("wxid_bob", "Bob"), ("wxid_carol", "Carol"), ("wxid_dan", "Dan")]:
        await gw.create_contact(cid, name)
    yield gw
    await gw.stop()


class Events:
    """The sink handed to the transport; tests await the next event."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue = asyncio.Queue()

    async def __call__(self, event) -> None:
        await self.queue.put(event)

    async def next(self):
        return await asyncio.wait_for(self.queue.get(), timeout=TIMEOUT)


@pytest_asyncio.fixture(loop_scope="module")
async def connected(gateway):
    events = Events()
    transport = WechatyTransport(gateway.endpoint, gateway.token, lambda: FIXED_NOW, login_timeout=TIMEOUT)
    await transport.start(events)
    await gateway.reset_sent()
    yield transport, events
    await transport.stop()


async def new_room(gateway, topic: str, members=("wxid_alice", "wxid_bob")) -> str:
    room = await gateway.create_room(f"e2e{next(_room_numbers)}", topic, list(members))
    return room["id"]


async def test_start_sets_self_id(connected):
    transport, _ = connected
    assert transport.self_id == BOT_ID
    assert transport.self_name == BOT_NAME


async def test_room_message_arrives_with_ids_and_topic(gateway, connected):
    _, events = connected
    room_id = await new_room(gateway, "品牌粉丝群 1")

    said = await gateway.say("wxid_alice", "今天有活动吗", room_id=room_id)

    event = await events.next()
    assert event == MessageReceived(
        at=FIXED_NOW,
        sender=Person(id="wxid_alice", name="Alice"),
        text="今天有活动吗",
        room_id=room_id,
        room_topic="品牌粉丝群 1",
        mentions_bot=False,
        mention_ids=(),
        message_id=said["message_id"],
    )
    assert event.chat_key == f"room:{room_id}"


async def test_room_message_mentioning_the_bot(gateway, connected):
    _, events = connected
    room_id = await new_room(gateway, "fans")

    said = await gateway.say("wxid_bob", "怎么下单?", room_id=room_id, mention_bot=True)

    event = await events.next()
    assert said["text"] == f"@{BOT_NAME}\u2005怎么下单?"
    assert event.text == said["text"]
    assert event.mentions_bot is True
    assert event.mention_ids == (BOT_ID,)


async def test_mentioning_someone_else_is_not_a_mention_of_the_bot(gateway, connected):
    _, events = connected
    room_id = await new_room(gateway, "fans")

    await gateway.say("wxid_bob", "看这个", room_id=room_id, mention_ids=["wxid_alice"])

    event = await events.next()
    assert event.mentions_bot is False
    assert event.mention_ids == ("wxid_alice",)


async def test_direct_message_has_no_room(gateway, connected):
    _, events = connected

    await gateway.say("wxid_carol", "你好")

    event = await events.next()
    assert isinstance(event, MessageReceived)
    assert event.room_id is None and event.room_topic is None
    assert event.is_direct and event.chat_key == "user:wxid_carol"
    assert event.sender == Person(id="wxid_carol", name="Carol")
    assert event.text == "你好"


async def test_non_text_and_own_messages_are_skipped_and_order_is_kept(gateway, connected):
    transport, events = connected
    room_id = await new_room(gateway, "fans")

    await gateway.say("wxid_alice", "", room_id=room_id, type="image")
    await transport.send(OutgoingMessage(text="bot speaking", room_id=room_id))  # echoed back by the mock
    for i in range(5):
        await gateway.say("wxid_bob", f"m{i}", room_id=room_id)

    texts = [(await events.next()).text for _ in range(5)]
    assert texts == [f"m{i}" for i in range(5)]
    assert events.queue.empty()


async def test_members_join_with_inviter(gateway, connected):
    _, events = connected
    room_id = await new_room(gateway, "新人群")

    await gateway.join(room_id, ["wxid_carol", "wxid_dan"], inviter_id="wxid_alice")

    event = await events.next()
    assert event == MembersJoined(
        at=FIXED_NOW,
        room_id=room_id,
        members=(Person("wxid_carol", "Carol"), Person("wxid_dan", "Dan")),
        room_topic="新人群",
        inviter_id="wxid_alice",
    )


async def test_member_leaves(gateway, connected):
    _, events = connected
    room_id = await new_room(gateway, "fans")

    await gateway.leave(room_id, ["wxid_bob"])

    event = await events.next()
    assert event == MembersLeft(at=FIXED_NOW, room_id=room_id, member_ids=("wxid_bob",), room_topic="fans")


async def test_send_to_room_with_mentions_reaches_the_gateway(gateway, connected):
    transport, _ = connected
    room_id = await new_room(gateway, "fans")
    text = "@Alice\u2005@Bob\u2005欢迎! 有问题随时问我"

    message_id = await transport.send(OutgoingMessage(text=text, room_id=room_id, mentions=("wxid_alice", "wxid_bob")))

    assert message_id is None  # the mock puppet returns no id: that still counts as sent
    sent = await gateway.sent()
    assert [(s["conversation_id"], s["text"], s["mention_ids"]) for s in sent] == [
        (room_id, text, ["wxid_alice", "wxid_bob"])
    ]


async def test_send_direct(gateway, connected):
    transport, _ = connected

    await transport.send(OutgoingMessage(text="您的订单已发货", user_id="wxid_carol"))

    sent = await gateway.sent()
    assert [(s["conversation_id"], s["text"], s["mention_ids"]) for s in sent] == [("wxid_carol", "您的订单已发货", [])]


async def test_send_risk_control_and_other_failures(gateway, connected):
    transport, _ = connected

    await gateway.fail_sends("操作过于频繁，请稍后再试")
    with pytest.raises(RiskControlError, match="操作过于频繁"):
        await transport.send(OutgoingMessage(text="hi", user_id="wxid_carol"))

    with pytest.raises(TransportError) as info:
        await transport.send(OutgoingMessage(text="hi", user_id="wxid_nobody"))
    assert not isinstance(info.value, RiskControlError)
    assert "\n" not in str(info.value)  # the gateway's stack trace is trimmed

    assert await gateway.sent() == []


async def test_wrong_token_fails_start_without_leaking_it(gateway):
    wrong = "insecure_wrong_token_1234"
    transport = WechatyTransport(gateway.endpoint, wrong, lambda: FIXED_NOW, login_timeout=TIMEOUT)
    with pytest.raises(TransportError) as info:
        await transport.start(Events())
    assert wrong not in str(info.value)
    await transport.stop()


async def test_unreachable_gateway_fails_start():
    transport = WechatyTransport("127.0.0.1:1", "insecure_x", lambda: FIXED_NOW, login_timeout=5)
    with pytest.raises(TransportError, match="unreachable"):
        await transport.start(Events())


async def test_reconnects_after_the_gateway_restarts():
    first = MockGateway()
    await first.start()
    second = None
    transport = None
    try:
        await first.login(BOT_ID, BOT_NAME)
        events = Events()
        transport = WechatyTransport(first.endpoint, first.token, lambda: FIXED_NOW, login_timeout=TIMEOUT)
        await transport.start(events)
        logins = transport.login_count

        await first.stop()
        second = MockGateway(token=first.token, puppet_port=first.puppet_port)
        await second.start()
        await second.login(BOT_ID, BOT_NAME)
        await second.create_contact("wxid_alice", "Alice")
        room_id = (await second.create_room("again", "after restart", ["wxid_alice"]))["id"]

        await asyncio.wait_for(transport.wait_for_login(logins + 1), timeout=TIMEOUT)  # back-off: 1 s, 2 s, ...
        await second.say("wxid_alice", "还在吗", room_id=room_id)
        event = await events.next()
        assert (event.text, event.room_topic) == ("还在吗", "after restart")

        await transport.send(OutgoingMessage(text="在的", room_id=room_id))
        assert [s["text"] for s in await second.sent()] == ["在的"]
    finally:
        if transport is not None:
            await transport.stop()
        await first.stop()
        if second is not None:
            await second.stop()


async def test_events_are_cleaned_where_they_enter(gateway, connected, caplog):
    """NUL bytes and CR line endings from the platform never reach the bot; an over-long name is cut to its
    column; an event with an id the store can't hold is dropped (with a warning naming the field), and the
    events after it still arrive."""
    _, events = connected
    await gateway.create_contact("wxid_nul", "小\x00李" + "名" * 300)
    await gateway.create_contact("x" * 200, "长 id")
    room_id = await new_room(gateway, "福利\x00群", members=("wxid_nul", "x" * 200))

    await gateway.say("wxid_nul", "第一行\r\n第二行\x00", room_id=room_id)
    await gateway.say("x" * 200, "我的 id 太长", room_id=room_id)
    await gateway.say("wxid_nul", "还在", room_id=room_id)

    first = await events.next()
    assert first.text == "第一行\n第二行" and first.room_topic == "福利群"
    assert first.sender.name == "小李" + "名" * 254 and len(first.sender.name) == 256
    assert (await events.next()).text == "还在"  # the long id's message was dropped in between
    assert "dropped a wechaty MessageReceived event: sender.id: is longer than 128 characters" in caplog.text
    assert "x" * 200 not in caplog.text  # ids are member data
