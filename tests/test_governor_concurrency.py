"""The send governor with several sends under way at once: a slow send holds up only its own chat, a chat's
messages still go one after another in order, and the account-wide rules (the gaps, the per-minute cap,
``max_in_flight``, back-off) count every send from when it was released, answered or not.

The platform edge here is the recorder behind a gate per chat: a send to a held chat begins (``began``) and then
waits until the test opens its gate; the governor, its stores (in memory) and the virtual clock are the real ones.
Nothing sleeps: the tests run the clock in a task of its own (it waits for the sends under way) and wait for the
edge's own events.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from datetime import datetime, timedelta

from bot.events import OutgoingMessage
from bot.transports.base import RiskControlError
from tests.support.governor_memory import GovernorRig
from tests.support import START, RecordingTransport, make_config

# A guard, not synchronisation: a regression that never releases a send fails the test instead of hanging CI.
GUARD_S = 30.0
NO_PACING = dict(min_interval_s=0.0, chat_switch_interval_s=0.0, per_chat_interval_s=0.0)


def room(text: str, room_id: str) -> OutgoingMessage:
    return OutgoingMessage(text, room_id=room_id)


def s(seconds: float) -> datetime:
    return START + timedelta(seconds=seconds)


class GatedPlatform:
    """Sends to a held chat wait for its gate; ``fail`` makes a chat's next sends raise. Everything that gets
    through is recorded by the recorder, in the order the sends finish."""

    def __init__(self, recorder: RecordingTransport) -> None:
        self.recorder = recorder
        self.gates: dict[str, asyncio.Event] = {}
        self.fail: dict[str, list[Exception]] = defaultdict(list)
        self.started: list[str] = []  # texts, in the order their sends began
        self._began: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._ended: dict[str, asyncio.Event] = defaultdict(asyncio.Event)
        self._another = asyncio.Event()  # set whenever a send begins

    def hold(self, *room_ids: str) -> None:
        for room_id in room_ids:
            self.gates[f"room:{room_id}"] = asyncio.Event()

    def open(self, room_id: str) -> None:
        self.gates[f"room:{room_id}"].set()

    async def began(self, text: str) -> None:
        async with asyncio.timeout(GUARD_S):
            await self._began[text].wait()

    async def ended(self, text: str) -> None:
        async with asyncio.timeout(GUARD_S):
            await self._ended[text].wait()

    async def sends_began(self, n: int) -> None:
        """Until ``n`` sends have begun in all (tries of one message count each)."""
        async with asyncio.timeout(GUARD_S):
            while len(self.started) < n:
                self._another.clear()
                await self._another.wait()

    async def send(self, message: OutgoingMessage) -> str | None:
        self.started.append(message.text)
        self._began[message.text].set()
        self._another.set()
        try:
            gate = self.gates.get(message.chat_key)
            if gate is not None:
                await gate.wait()
            failures = self.fail[message.chat_key]
            if failures:
                raise failures.pop(0)
            return await self.recorder.send(message)
        finally:
            self._ended[message.text].set()


def rig(**governor) -> tuple[GovernorRig, GatedPlatform]:
    platforms: list[GatedPlatform] = []

    def edge(recorder: RecordingTransport):
        platforms.append(GatedPlatform(recorder))
        return platforms[0].send

    h = GovernorRig(make_config(**governor), edge=edge)
    return h, platforms[0]


async def test_a_slow_send_holds_up_only_its_own_room():
    h, platform = rig(**NO_PACING)
    async with h:
        g = h.governor
        platform.hold("g1")
        g.submit(room("a1", "g1"))
        g.submit(room("a2", "g1"))
        g.submit(room("b1", "g2"))
        running = asyncio.create_task(h.clock.run_pending())  # until every send started now has ended
        await platform.ended("b1")  # g2's reply went while g1's first send hangs
        assert h.transport.texts() == ["b1"]
        g.submit(room("c1", "g3"))  # arrives while g1 still waits: goes at once too
        await platform.ended("c1")
        assert h.transport.texts() == ["b1", "c1"]
        assert platform.started == ["a1", "b1", "c1"]  # a2 waits behind a1: one send per room at a time
        assert g.in_flight == 1 and g.pending == 1
        platform.open("g1")
        await running
        await h.settle()
        assert h.transport.texts() == ["b1", "c1", "a1", "a2"]
        assert platform.started == ["a1", "b1", "c1", "a2"]  # a2 began only after a1 was answered
        assert g.in_flight == 0 and not g.busy


async def test_a_rooms_messages_keep_their_order_behind_a_slow_one():
    h, platform = rig(**NO_PACING)
    async with h:
        platform.hold("g1")
        for i in range(4):
            h.governor.submit(room(f"a{i}", "g1"))
            h.governor.submit(room(f"b{i}", "g2"))
        running = asyncio.create_task(h.clock.run_pending())
        await platform.ended("b3")
        assert h.transport.texts() == ["b0", "b1", "b2", "b3"]
        platform.open("g1")
        await running
        await h.settle()
        assert [t for t in h.transport.texts() if t.startswith("a")] == ["a0", "a1", "a2", "a3"]
        assert platform.started.index("a1") > platform.started.index("b3")  # each waited for the one before


async def test_the_gap_between_sends_counts_from_the_release_not_the_answer():
    h, platform = rig(min_interval_s=2.0, chat_switch_interval_s=2.0, per_chat_interval_s=0.0)
    async with h:
        platform.hold("g1")
        for room_id in ("g1", "g2", "g3"):
            h.governor.submit(room(room_id, room_id))
        running = asyncio.create_task(h.clock.run_pending())
        await platform.began("g1")
        # g1 hangs; g2's chat is free and the account has room, yet it waits for the account's 2 s gap
        assert platform.started == ["g1"] and h.governor.in_flight == 1
        assert h.clock.next_due() == s(2)
        platform.open("g1")
        await running
        await h.settle()
        assert [(x.text, x.at) for x in h.sent] == [("g1", s(0)), ("g2", s(2)), ("g3", s(4))]


async def test_sends_under_way_count_towards_the_per_minute_cap():
    h, platform = rig(max_per_minute=3, **NO_PACING)
    async with h:
        rooms = [f"g{i}" for i in range(5)]
        platform.hold(*rooms)
        for room_id in rooms:
            h.governor.submit(room(room_id, room_id))
        running = asyncio.create_task(h.clock.run_pending())
        await platform.began("g2")
        assert platform.started == ["g0", "g1", "g2"]  # none answered yet: still 3 this minute
        assert h.governor.in_flight == 3 and h.clock.next_due() == s(60)
        for room_id in rooms:
            platform.open(room_id)
        await running
        await h.settle()
        assert [x.at for x in h.sent] == [s(0), s(0), s(0), s(60), s(60)]


async def test_at_most_max_in_flight_sends_at_once():
    h, platform = rig(max_in_flight=2, **NO_PACING)
    async with h:
        platform.hold("g1", "g2", "g3")
        for room_id in ("g1", "g2", "g3", "g4"):
            h.governor.submit(room(room_id, room_id))
        running = asyncio.create_task(h.clock.run_pending())
        await platform.began("g2")
        assert platform.started == ["g1", "g2"] and h.governor.in_flight == 2
        platform.open("g2")
        await platform.began("g3")  # g2's answer freed a place: the next in the queue takes it
        assert platform.started == ["g1", "g2", "g3"] and h.transport.texts() == ["g2"]
        platform.open("g1")
        platform.open("g3")
        await running
        await h.settle()
        assert sorted(h.transport.texts()) == ["g1", "g2", "g3", "g4"]


async def test_risk_control_with_sends_under_way_is_one_back_off():
    h, platform = rig(backoff_initial_s=60.0, **NO_PACING)
    async with h:
        platform.hold("g1", "g2", "g3")
        platform.fail["room:g2"].append(RiskControlError("slow down"))
        platform.fail["room:g3"].append(RiskControlError("slow down"))
        for room_id in ("g1", "g2", "g3"):
            h.governor.submit(room(room_id, room_id))
        running = asyncio.create_task(h.clock.run_pending())
        await platform.began("g3")
        platform.open("g2")
        platform.open("g3")
        await platform.ended("g3")
        platform.open("g1")  # released before the push-back: its success does not end the back-off
        await running
        await h.settle()
        failed = h.activity.rows("send_failed")
        assert [r.detail["backoff_s"] for r in failed] == [60, 60]  # the second is the same incident, no doubling
        assert [(x.text, x.at) for x in h.sent] == [("g1", s(0)), ("g2", s(60)), ("g3", s(60))]


async def test_after_a_back_off_one_send_tries_the_water_before_the_rest_go():
    h, platform = rig(backoff_initial_s=60.0, **NO_PACING)
    async with h:
        platform.fail["room:g1"].append(RiskControlError("slow down"))
        h.governor.submit(room("g1", "g1"))
        await h.clock.run_pending()  # pushed back: everything waits 60 s
        platform.hold("g1")
        for room_id in ("g2", "g3"):
            h.governor.submit(room(room_id, room_id))
        advancing = asyncio.create_task(h.clock.advance(60))
        await platform.sends_began(2)
        assert platform.started == ["g1", "g1"] and h.governor.in_flight == 1  # the probe alone
        platform.open("g1")
        await advancing
        await h.settle()
        assert [(x.text, x.at) for x in h.sent] == [("g1", s(60)), ("g2", s(60)), ("g3", s(60))]
        assert platform.started == ["g1", "g1", "g2", "g3"]
