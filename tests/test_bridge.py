"""The bridge transport over real HTTP on loopback: the bot's POST /bridge/events answers every status of the
contract, replies go out through the provider's POST /send, and the session's health (logout, login requests,
silence, a refused token, 503) holds the messages and alerts the operators once per incident."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest

from bot.health import CHECK_EVERY_S, GATHER_S, SILENCE_S
from bot.transports.bridge_inbox import MAX_BODY_BYTES
from tests.support import bridge_skill
from tests.support.bridge_provider import MockProvider, signature
from tests.support.bridge_support import ROOM, AlertReceiver, BridgeHarness, bridge_config

MENTION_END = "\u2005"


@pytest.fixture
async def provider():
    p = await MockProvider().start()
    yield p
    await p.stop()


@pytest.fixture
async def alerts(monkeypatch):
    receiver = await AlertReceiver().start()
    monkeypatch.setenv("TEST_ALERT_WEBHOOK", receiver.url)
    yield receiver
    await receiver.stop()


@pytest.fixture
async def h(db_url, provider, alerts):
    bridge_skill.seen.clear()
    async with BridgeHarness(db_url, provider, config=bridge_config(skills=("ping", "tests.support.bridge_skill"))) as harness:
        yield harness


def sends_of(provider: MockProvider) -> list[dict]:
    return [c.body for c in provider.calls_to("/send")]


# -- events in ------------------------------------------------------------------------------------------------------

async def test_a_room_command_is_answered_through_send_with_the_mention(h, provider):
    status, body = await h.say("u1", "/ping", name="小李")
    assert (status, body) == (200, {"ok": True})
    await h.settle()
    (sent,) = provider.sends
    assert {k: v for k, v in sent.items() if k != "client_id"} == {
        "room": ROOM, "text": f"@小李{MENTION_END}在的～", "mentions": ["u1"]}
    assert len(sent["client_id"]) == 32
    assert {c.authorization for c in provider.calls} == {f"Bearer {provider.token}"}  # on every call


async def test_a_direct_message_is_answered_one_on_one(h, provider):
    await h.say("u1", "在吗", room=None)
    await h.settle()
    assert [{k: v for k, v in s.items() if k != "client_id"} for s in provider.sends] == [
        {"user": "u1", "text": "在的～"}]


async def test_every_refusal_has_its_status_and_nothing_reaches_the_skills(h, provider):
    good = h.event("message", user="u1", text="/ping", room=ROOM)
    body = json.dumps(good).encode()
    now = int(h.clock.now().timestamp())
    post = h.post
    assert (await post(raw=body, sign=False))[0] == 401  # no signature
    assert (await post(raw=body, signature_value="sha256=" + "0" * 64))[0] == 401  # wrong one
    assert (await post(raw=body, signature_value=signature("another-secret", str(now), body)))[0] == 401
    assert (await post(raw=body, timestamp="yesterday"))[0] == 401
    assert (await post(raw=body, timestamp=str(now - 301)))[0] == 401  # too old
    assert (await post(raw=body, timestamp=str(now + 301)))[0] == 401  # from the future
    assert (await post(raw=b"{not json"))[0] == 400
    assert (await post(raw=b'[{"id": "x"}]'))[0] == 400  # JSON, but not an object
    assert (await post(raw=b"\xff\xfe"))[0] == 400
    for event, field in (
        ({**good, "mentions_bot": "yes"}, "mentions_bot"),
        ({k: v for k, v in good.items() if k != "user"}, "user"),
        ({**good, "kind": "reaction"}, "kind"),
        ({**good, "at": "1999-12-31T23:59:59+08:00"}, "at"),
        ({**good, "at": "2026-12-01T09:00:05"}, "at"),  # no offset
        ({**good, "id": "x" * 129}, "id"),
        ({**good, "user": "u\x001"}, "user"),
        ({**good, "type": "sticker"}, "type"),
        (h.event("join", room=ROOM, users=[]), "users"),
        (h.event("join", room=ROOM, users=[{"name": "小王"}]), "users[0].id"),
        (h.event("login", account={"name": "x"}), "account.id"),
    ):
        status, answer = await post(event)
        assert (status, answer.get("field")) == (422, field), event
        assert answer["error"]
    huge = {**good, "text": "字" * MAX_BODY_BYTES}
    assert (await post(huge))[0] == 413
    assert h.app.dispatcher.handled == 0 and h.bot.inbox.accepted == 0
    # at the edge of the clock window, and then the real thing: accepted
    assert (await post(raw=body, timestamp=str(now - 299)))[0] == 200
    await h.settle()
    assert len(provider.sends) == 1


async def test_an_event_sent_again_is_answered_200_and_changes_nothing(h, provider):
    event = h.event("message", user="u1", text="/ping", room=ROOM)
    assert await h.post(event) == (200, {"ok": True})
    assert await h.post(event) == (200, {"ok": True})
    await h.settle()
    assert h.app.dispatcher.handled == 1 and h.bot.inbox.duplicates == 1
    assert len(provider.sends) == 1


async def test_input_is_cleaned_where_it_enters(h):
    await h.say("u1", "签\x00到\ud800!", name="长" * 300 + "\x07", room_topic="会员\n群")
    (event,) = bridge_skill.seen
    assert event.text == "签到\ufffd!"
    assert event.sender.name == "长" * 256
    assert event.room_topic == "会员 群"
    assert event.message_id is not None and event.type == "text" and event.url is None


async def test_non_text_messages_reach_skills_with_their_type_and_url(h, provider):
    await h.say("u1", "春季新品 https://shop.example/spring", type="link", url="https://shop.example/spring")
    await h.post(h.event("message", user="u2", room=ROOM, type="image", url="https://cdn.example/a.jpg"))
    await h.settle()
    link, image = bridge_skill.seen
    assert (link.type, link.url) == ("link", "https://shop.example/spring")
    assert (image.type, image.text, image.url) == ("image", "", "https://cdn.example/a.jpg")
    assert [s["text"].split(MENTION_END)[-1] for s in provider.sends] == [
        "收到link：https://shop.example/spring", "收到image：https://cdn.example/a.jpg"]


async def test_joins_and_leaves_reach_skills(h):
    await h.post(h.event("join", room=ROOM, users=[{"id": "u2", "name": "小王"}], inviter="u1"))
    await h.post(h.event("leave", room=ROOM, users=["u2"]))
    joined, left = bridge_skill.seen
    assert (joined.room_id, [(p.id, p.name) for p in joined.members], joined.inviter_id) == (
        ROOM, [("u2", "小王")], "u1")
    assert (left.room_id, left.member_ids) == (ROOM, ("u2",))


async def test_the_bots_own_messages_are_not_handled(h, provider):
    await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
    await h.say("wxid_bot", "/ping")
    await h.settle()
    assert bridge_skill.seen == [] and provider.sends == []


async def test_capabilities_are_learnt_at_start_and_at_every_login(h, provider):
    caps = h.app.services.capabilities
    assert (caps.send_text, caps.mention, caps.kick, caps.image, caps.invite) == (True, True, True, False, False)
    provider.capabilities = {"send_text": True, "image": True}  # missing means false
    await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
    await provider.wait_for(lambda: len(provider.calls_to("/capabilities")) == 2)
    await asyncio.gather(*h.bot.transport.learning)  # the answer read and applied
    caps = h.app.services.capabilities
    assert (caps.image, caps.mention, caps.kick) == (True, False, False)


# -- offline: held, alerted once, sent once at login ----------------------------------------------------------------

async def test_logout_holds_replies_until_login_with_one_alert_each_way(h, provider, alerts):
    await h.post(h.event("logout", reason="kicked by the platform"))
    await h.say("u1", "/ping")
    await h.say("u2", "在吗", room=None)
    await h.clock.advance(60)  # the governor probes; the transport holds without calling the provider
    await h.app.health.settle()
    assert provider.calls_to("/send") == []
    assert alerts.events() == ["offline"]
    assert "kicked by the platform" in alerts.received[0]["text"]
    await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
    await h.settle()
    await h.app.health.settle()
    assert [s.get("room") or s.get("user") for s in sends_of(provider)] == [ROOM, "u2"]  # each once
    assert alerts.events() == ["offline", "online"]


async def test_503_holds_until_login_then_each_message_goes_once(h, provider, alerts):
    provider.then(503, times=5)
    await h.say("u1", "/ping")
    await h.clock.run_pending()
    assert h.app.governor.offline and len(provider.calls_to("/send")) == 1
    await h.clock.advance(30)  # one probe: answered 503 again → two "not connected" in a row: an incident
    await h.clock.advance(GATHER_S)
    await h.app.health.settle()
    assert len(provider.calls_to("/send")) == 2
    assert alerts.events() == ["offline"]
    provider._script.clear()
    await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
    await h.settle()
    await h.app.health.settle()
    assert len(provider.sends) == 1 and len(provider.calls_to("/send")) == 3
    assert alerts.events() == ["offline", "online"]


async def test_login_needed_forwards_the_qr_code_and_note_in_one_alert(h, alerts):
    await h.post(h.event("logout", reason="session expired"))
    await h.post(h.event("login_needed", qr_url="https://qr.example/abc", note="scan, or verify your face"))
    await h.post(h.event("login_needed", qr_url="https://qr.example/def", note="scan again"))  # refreshed code
    await h.clock.advance(60)
    await h.app.health.settle()
    (alert,) = alerts.received
    assert alert["event"] == "login_needed"
    assert (alert["qr_url"], alert["note"]) == ("https://qr.example/abc", "scan, or verify your face")
    assert "https://qr.example/abc" in alert["text"] and "verify your face" in alert["text"]


async def test_no_event_for_180_s_is_an_outage_noticed_within_a_minute(h, provider, alerts):
    await h.post(h.event("heartbeat"))
    await h.clock.advance(SILENCE_S - 1)
    await h.app.health.settle()
    assert alerts.received == [] and not h.app.health.offline
    await h.clock.advance(CHECK_EVERY_S + 1)
    assert h.app.health.offline
    await h.say("u1", "/ping")  # this message ends the silence: the account is back
    await h.settle()
    await h.app.health.settle()
    assert alerts.events() == ["offline", "online"]
    assert len(provider.sends) == 1
    # silence again, the account stays silent: still one alert for the whole incident
    await h.clock.advance(SILENCE_S + 10 * CHECK_EVERY_S)
    await h.app.health.settle()
    assert alerts.events() == ["offline", "online", "offline"]


# -- what the provider answers to /send ------------------------------------------------------------------------------

async def an_hour_of_heartbeats(h: BridgeHarness) -> None:
    for _ in range(60):
        await h.post(h.event("heartbeat"))
        await h.clock.advance(60)
    await h.app.health.settle()


async def test_a_wrong_token_gives_one_alert_and_no_retry_storm(db_url, provider, alerts):
    async with BridgeHarness(db_url, provider, token="not-the-token") as h:
        await h.say("u1", "/ping")
        await h.say("u2", "/ping")
        await an_hour_of_heartbeats(h)
        assert [c.path for c in provider.calls] == ["/capabilities"]  # refused once; nothing more is tried
        assert alerts.events() == ["refused"]
        assert "BOT_BRIDGE_TOKEN" in alerts.received[0]["text"]
        assert "not-the-token" not in json.dumps(alerts.received)
        assert h.app.governor.halted and h.app.governor.pending == 2


async def test_a_token_refused_at_send_stops_sending_until_login(h, provider, alerts):
    provider.then(401, times=3)
    await h.say("u1", "/ping")
    await h.say("u2", "/ping")
    await an_hour_of_heartbeats(h)
    assert len(provider.calls_to("/send")) == 1 and alerts.events() == ["refused"]
    provider._script.clear()
    await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))  # the provider was fixed
    await h.say("u3", "/ping")
    await h.settle()
    await h.app.health.settle()
    assert h.app.governor.dropped == {"stale": 2}  # held an hour: too late for a reply (reply_max_delay_s)
    assert [s["mentions"] for s in provider.sends] == [["u3"]]
    assert alerts.events() == ["refused", "resumed"]


async def test_risk_control_backs_off_before_the_message_goes(h, provider):
    provider.then(429)
    provider.then("risk_control")
    await h.say("u1", "/ping")
    await h.clock.run_pending()
    first = h.clock.now()
    await h.settle()
    calls = provider.calls_to("/send")
    assert len(calls) == 3 and len(provider.sends) == 1
    assert h.clock.now() - first >= timedelta(seconds=60 + 120)  # backoff_initial_s, then doubled
    assert h.app.governor.dropped == {}


@pytest.mark.parametrize("answer", ["timeout", "disconnect"])
async def test_a_send_that_may_have_arrived_is_never_sent_again(db_url, provider, answer):
    async with BridgeHarness(db_url, provider, timeout_s=0.3) as h:
        provider.then(answer)
        await h.say("u1", "/ping")
        await h.settle()
        await h.clock.advance(600)
        assert len(provider.calls_to("/send")) == 1
        assert h.app.governor.dropped == {"uncertain": 1}


async def test_other_failures_are_retried_with_the_same_client_id_then_dropped(h, provider):
    provider.then(500, times=10)
    await h.say("u1", "/ping")
    await h.settle()
    calls = provider.calls_to("/send")
    assert len(calls) == 1 + h.config.governor.retry_attempts
    assert len({c.body["client_id"] for c in calls}) == 1
    assert h.app.governor.dropped == {"transport_error": 1}
    provider._script.clear()
    await h.say("u1", "/ping")
    await h.settle()
    assert provider.sends[0]["client_id"] != calls[0].body["client_id"]  # another message, another id


# -- restarts -------------------------------------------------------------------------------------------------------

async def test_ids_are_remembered_across_a_restart_and_an_outage_survives_it(db_url, provider, alerts):
    first = None
    async with BridgeHarness(db_url, provider) as h:
        first = h.event("message", user="u1", text="/ping", room=ROOM)
        assert (await h.post(first))[0] == 200
        await h.settle()
        await h.post(h.event("logout", reason="phone offline"))
        now = h.clock.now()
    assert len(provider.sends) == 1
    # a new process on the same database file, the account still offline (503)
    provider.then(503, times=3)
    async with BridgeHarness(db_url, provider, start=now + timedelta(seconds=5)) as h:
        assert await h.post(first) == (200, {"ok": True})  # already accepted before the restart
        assert h.app.dispatcher.handled == 0
        await h.say("u2", "/ping")
        await h.clock.run_pending()
        assert h.app.governor.offline and len(provider.sends) == 1
        provider._script.clear()
        await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
        await h.settle()
        await h.clock.advance(600)
        assert [s.get("mentions") for s in provider.sends] == [["u1"], ["u2"]]  # each reply once


async def test_a_restart_during_an_outage_sends_each_held_message_once_with_one_alert_each_way(db_url, provider,
                                                                                                 alerts):
    """The Wechaty e2e test's twin (tests/e2e/test_offline_restart.py) on the bridge: the account logs out, replies
    decided meanwhile are held in the outbox, the bot restarts during the outage, the account logs in again."""
    async with BridgeHarness(db_url, provider) as h:
        await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
        await h.post(h.event("logout", reason="kicked by the platform"))
        await h.say("u1", "/ping")
        await h.say("u2", "在吗", room=None)
        await h.clock.advance(GATHER_S + 30)
        await h.app.health.settle()
        assert alerts.events() == ["offline"] and provider.sends == []
        now = h.clock.now()
    # a new process on the same database, the account still out: nothing sent, no second alert
    async with BridgeHarness(db_url, provider, start=now + timedelta(seconds=30)) as h:
        assert h.app.health.offline
        await h.clock.advance(120)  # the governor probes; the transport holds without calling the provider
        await h.app.health.settle()
        assert provider.calls_to("/send") == [] and alerts.events() == ["offline"]
        await h.post(h.event("login", account={"id": "wxid_bot", "name": "小助手"}))
        await h.settle()
        await h.app.health.settle()
        assert sorted(s.get("room") or s.get("user") for s in provider.sends) == sorted([ROOM, "u2"])  # each once
        assert alerts.events() == ["offline", "online"]
    async with BridgeHarness(db_url, provider, start=now + timedelta(hours=1)) as h:  # the incident is over
        assert not h.app.health.offline and h.app.health.offline_incident is None


async def test_a_login_missed_during_a_restart_is_inferred_from_the_next_event(db_url, provider, alerts):
    """The account came back while the bot was down (the provider's login event found nobody): providers send
    events only while logged in, so the first one after the restart ends the outage taken back at start."""
    async with BridgeHarness(db_url, provider) as h:
        await h.post(h.event("logout", reason="phone offline"))
        await h.say("u1", "/ping")
        await h.clock.advance(GATHER_S + 1)
        await h.app.health.settle()
        now = h.clock.now()
    async with BridgeHarness(db_url, provider, start=now + timedelta(seconds=30)) as h:
        assert h.app.health.offline
        await h.post(h.event("heartbeat"))
        await h.settle()
        await h.app.health.settle()
        assert not h.app.health.offline and [s["room"] for s in provider.sends] == [ROOM]
        assert alerts.events() == ["offline", "online"]


# -- accepted, not handled: a stop or crash in between -----------------------------------------------------------

async def stopped_under_an_accepted_event(db_url, provider, config) -> tuple[dict, object]:
    """A link accepted (200), the bot stopped while its handling is under way: the probe skill holds it, the
    handling is cut off (as a crash would: nothing of it committed), and the bot stops. The event and the time."""
    entered = bridge_skill.hold()
    try:
        async with BridgeHarness(db_url, provider, config=config) as h:
            event = h.event("message", user="u1", name="小李", text="活动页", type="link", url="https://x.cn/a",
                            room=ROOM, room_topic="会员群")
            assert await h.poster.post(event) == (200, {"ok": True})
            await asyncio.wait_for(entered.wait(), 10)
            workers = list(h.app.dispatcher._workers)
            for task in workers:
                task.cancel()
            await asyncio.gather(*workers, return_exceptions=True)
            now = h.clock.now()
    finally:
        bridge_skill.release()
    assert bridge_skill.seen == [] and sends_of(provider) == []
    return event, now


async def test_an_event_accepted_before_a_stop_is_handled_once_after_the_restart(db_url, provider, alerts):
    bridge_skill.seen.clear()
    config = bridge_config(skills=("ping", "tests.support.bridge_skill"))
    event, now = await stopped_under_an_accepted_event(db_url, provider, config)
    async with BridgeHarness(db_url, provider, config=config, start=now + timedelta(seconds=30)) as h:
        await h.app.dispatcher.join()
        assert h.app.bridge.recovered == 1
        assert await h.post(event) == (200, {"ok": True})  # the provider's resend changes nothing
        await h.settle()
        assert [(e.message_id, e.text, e.url) for e in bridge_skill.seen] == [(event["id"], "活动页", "https://x.cn/a")]
        assert [s["text"] for s in sends_of(provider)] == [f"@小李{MENTION_END}收到link：https://x.cn/a"]
    async with BridgeHarness(db_url, provider, config=config, start=now + timedelta(seconds=60)) as h:
        await h.app.dispatcher.join()
        await h.settle()
        assert h.app.bridge.recovered == 0  # marked handled: not handed on a second time
    assert len(bridge_skill.seen) == 1 and len(sends_of(provider)) == 1


async def test_an_event_accepted_two_hours_before_the_restart_is_dropped_as_stale(db_url, provider, alerts, caplog):
    bridge_skill.seen.clear()
    config = bridge_config(skills=("ping", "tests.support.bridge_skill"))
    event, now = await stopped_under_an_accepted_event(db_url, provider, config)
    caplog.set_level("INFO", logger="bot.transports.bridge_inbox")
    async with BridgeHarness(db_url, provider, config=config, start=now + timedelta(hours=2)) as h:
        await h.app.dispatcher.join()
        await h.settle()
        assert h.app.bridge.recovered == 0 and h.app.bridge.dropped_stale == 1
    assert bridge_skill.seen == [] and sends_of(provider) == []
    lines = [r.getMessage() for r in caplog.records if "not handled before the restart" in r.getMessage()]
    assert lines == ["bridge events accepted but not handled before the restart: 0 handed on, 1 dropped as older "
                     "than 1:00:00, 0 unreadable dropped"]
    assert event["id"] not in lines[0] and "活动页" not in lines[0]  # counts only
    async with BridgeHarness(db_url, provider, config=config, start=now + timedelta(hours=2, seconds=5)) as h:
        assert h.app.bridge.dropped_stale == 0  # dropped once, for good
