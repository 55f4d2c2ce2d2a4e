"""Test support: the whole bot on a virtual clock, with an in-memory transport that records every send.

Not a mock of our code: the real app, dispatcher, governor, scheduler and SQLite database run; only the
platform at the edge is an in-memory recorder (like Errbot's test backend).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.config import Config, GovernorSettings, parse_config
from bot.events import MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.transports.base import NotConnectedError

TZ = ZoneInfo("Asia/Shanghai")
START = datetime(2026, 11, 23, 9, 0, tzinfo=TZ)


@dataclass
class Sent:
    at: datetime
    message: OutgoingMessage

    @property
    def text(self) -> str:
        return self.message.text


@dataclass
class RecordingTransport:
    """The platform edge for tests: records sends; ``fail_with`` makes the next sends raise."""

    clock: VirtualClock
    sent: list[Sent] = field(default_factory=list)
    fail_with: list[Exception] = field(default_factory=list)
    self_id: str = "bot"
    offline: bool = False  # disconnected: every send raises NotConnectedError

    async def send(self, message: OutgoingMessage) -> str | None:
        if self.offline:
            raise NotConnectedError("gateway down (test)")
        if self.fail_with:
            raise self.fail_with.pop(0)
        self.sent.append(Sent(self.clock.now(), message))
        return f"m{len(self.sent)}"

    def texts(self) -> list[str]:
        return [s.text for s in self.sent]


def fast_governor(**overrides) -> GovernorSettings:
    """Pacing small enough that tests read clearly; each test overrides what it checks (the room gap and the
    lively-room hold are off here: tests of them turn them on)."""
    base = GovernorSettings(min_interval_s=1.0, jitter_s=0.0, chat_switch_interval_s=1.0, per_chat_interval_s=1.0,
                            max_per_minute=1000, warmup_s=0.0, room_min_gap_s=0.0, lively_messages=0)
    return replace(base, **overrides)


def make_config(raw: dict | None = None, **governor) -> Config:
    cfg = parse_config(raw or {"bot": {"admins": ["admin1"], "skills": ["ping"]}})
    return replace(cfg, governor=fast_governor(**governor)) if governor or raw is None else cfg


class Harness:
    """A started BotApp on a virtual clock. ``await h.say(...)`` handles one message to completion."""

    def __init__(self, config: Config, db_url: str, start: datetime = START, seed: int = 0) -> None:
        self.clock = VirtualClock(start, config.tz)
        self.transport = RecordingTransport(self.clock)
        self.app = BotApp(config, self.clock, self.transport.send, db_url=db_url, rng=random.Random(seed))

    async def __aenter__(self) -> Harness:
        await self.app.start()
        self.app.services.bot_id = self.transport.self_id
        return self

    async def __aexit__(self, *exc) -> None:
        await self.app.stop()

    @property
    def sent(self) -> list[Sent]:
        return self.transport.sent

    async def handle(self, event) -> None:
        await self.clock.advance_to(event.at)
        await self.app.dispatcher.handle(event)
        await self.clock.run_pending()

    async def say(self, user: str, text: str, *, room: str | None = "g1", name: str | None = None,
                  mentions_bot: bool = False, mention_ids: tuple[str, ...] = (), after_s: float = 0.0) -> None:
        at = self.clock.now() + timedelta(seconds=after_s)
        await self.handle(MessageReceived(at=at, sender=Person(user, name or user), text=text, room_id=room,
                                          room_topic=f"topic-{room}" if room else None, mentions_bot=mentions_bot,
                                          mention_ids=mention_ids))

    async def join(self, room: str, *people: Person, inviter: str | None = None, after_s: float = 0.0) -> None:
        await self.handle(MembersJoined(at=self.clock.now() + timedelta(seconds=after_s), room_id=room,
                                        members=people, inviter_id=inviter))

    async def leave(self, room: str, *ids: str, after_s: float = 0.0) -> None:
        await self.handle(MembersLeft(at=self.clock.now() + timedelta(seconds=after_s), room_id=room, member_ids=ids))

    async def settle(self) -> None:
        await self.app.settle()
