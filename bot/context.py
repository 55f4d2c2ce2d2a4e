"""What a handler gets: the event, its one database session, and the services it may use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.activity import ActivityLog
from bot.clock import Clock
from bot.config import Config
from bot.events import Event, MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.governor import SendGovernor
from bot.parser import ParsedCommand

if TYPE_CHECKING:
    from bot.scheduler import Scheduler
    from bot.skill import CommandSpec

# WeChat ends an @-mention with a four-per-em space; clients render the name as a mention only with it.
MENTION_END = "\u2005"


def with_mentions(people: list[Person] | tuple[Person, ...], text: str) -> str:
    prefix = "".join(f"@{p.name or p.id}{MENTION_END}" for p in people)
    return prefix + text


@dataclass
class Services:
    config: Config
    clock: Clock
    governor: SendGovernor
    activity: ActivityLog
    scheduler: Scheduler
    sessions: async_sessionmaker[AsyncSession]
    bot_id: str | None = None
    # Per-skill state set up at start (typed settings, caches), keyed by skill name: no module globals.
    skill_state: dict[str, Any] = field(default_factory=dict)
    # Pluggable target prefixes for proactive messages ("tier" → a function a tiers skill registers at start);
    # see bot/targets.py. Built-in prefixes (all, room, tag) need no entry.
    target_resolvers: dict[str, Any] = field(default_factory=dict)
    # Set by the orders skill at start: how orders from the HTTP API and replay get in (bot/orders_input.py).
    order_handler: Any = None


@dataclass
class EventContext:
    event: Event
    services: Services
    skill: str | None = None
    stopped: bool = False
    addressed: bool = False  # the message was meant for the bot: its full text goes to the activity store
    extra: dict = field(default_factory=dict)
    _session: AsyncSession | None = None

    @property
    def session(self) -> AsyncSession:
        """The event's one database session, opened on first use (most chatter never needs one)."""
        if self._session is None:
            self._session = self.services.sessions()
        return self._session

    async def release_session(self) -> None:
        """Commit what this event wrote so far and give the connection back, before awaiting the network (an
        LLM call): on SQLite the process has one connection, and every other chat would wait for this one."""
        if self._session is not None:
            session, self._session = self._session, None
            try:
                await session.commit()
            finally:
                await session.close()

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def sender(self) -> Person | None:
        return self.event.sender if isinstance(self.event, MessageReceived) else None

    @property
    def room_id(self) -> str | None:
        return self.event.room_id

    @property
    def is_admin(self) -> bool:
        s = self.sender
        return s is not None and self.config.is_admin(s.id, self.room_id)

    def stop(self) -> None:
        """No later handler sees this event."""
        self.stopped = True

    def reply(self, text: str, *, mention: bool = True) -> asyncio.Future:
        """Answer the sender: in a room with an @-mention (unless ``mention=False``), else 1-on-1."""
        event = self.event
        if not isinstance(event, MessageReceived):
            raise TypeError("reply() needs a message to answer; use send()")
        if event.room_id is None:
            message = OutgoingMessage(text, user_id=event.sender.id)
        elif mention:
            message = OutgoingMessage(with_mentions([event.sender], text), room_id=event.room_id,
                                      mentions=(event.sender.id,))
        else:
            message = OutgoingMessage(text, room_id=event.room_id)
        return self.services.governor.submit(message, priority=Priority.REPLY, skill=self.skill)

    def send(
        self,
        message: OutgoingMessage,
        *,
        priority: Priority = Priority.REPLY,
        kind: ProactiveKind | None = None,
    ) -> asyncio.Future:
        return self.services.governor.submit(message, priority=priority, kind=kind, skill=self.skill)

    def record(self, kind: str, detail: dict | None = None, *, member_id: str | None = None) -> None:
        s = self.sender
        self.services.activity.record(
            kind, room_id=self.room_id, member_id=member_id or (s.id if s else None), skill=self.skill, detail=detail
        )


@dataclass
class CommandContext(EventContext):
    command: ParsedCommand | None = None
    spec: CommandSpec | None = None
    args: tuple[str, ...] = ()  # arguments after the command's own words

    @property
    def mentioned_ids(self) -> tuple[str, ...]:
        """Ids @-mentioned in the command, the bot itself left out."""
        event = self.event
        if not isinstance(event, MessageReceived):
            return ()
        return tuple(i for i in event.mention_ids if i != self.services.bot_id)


@dataclass
class JobContext:
    job_key: str
    payload: dict
    scheduled_for: datetime
    session: AsyncSession
    services: Services
    skill: str | None = None  # the skill whose handler runs: sends and records are attributed to it
    _after_commit: list[Callable[[], None]] = field(default_factory=list)

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once the run's transaction is committed (never if it rolls back): announce only what is
        recorded. The scheduler calls these right after its commit."""
        self._after_commit.append(fn)

    def send(
        self,
        message: OutgoingMessage,
        *,
        priority: Priority = Priority.SCHEDULED,
        kind: ProactiveKind = ProactiveKind.LIGHT,
    ) -> asyncio.Future:
        """Jobs are bot-initiated: proactive by default, so quiet hours and caps apply."""
        return self.services.governor.submit(message, priority=priority, kind=kind, skill=self.skill)
