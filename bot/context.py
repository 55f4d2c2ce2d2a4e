"""What a handler gets: one :class:`Context` for commands, hooks and jobs — the event (or the job run), one database
session, and the services it may use."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.activity import ActivityLog
from bot.capabilities import Capabilities
from bot.clock import Clock
from bot.config import Config
from bot.events import Event, MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.governor import SendGovernor
from bot.governor_stores import OutboxEntry
from bot.outbox import stage
from bot.parser import ParsedCommand
from storage.transactions import after_commit, discard_pending, has_pending

if TYPE_CHECKING:
    from bot.scheduler import Scheduler
    from bot.skill import CommandSpec, MemberDataSpec, Resolver

# WeChat ends an @-mention with a four-per-em space; clients render the name as a mention only with it.
MENTION_END = "\u2005"


def with_mentions(people: Sequence[Person], text: str) -> str:
    prefix = "".join(f"@{p.name or p.id}{MENTION_END}" for p in people)
    return prefix + text


def acknowledge_batch(room_id: str, items: Sequence[tuple[str, Person, int]], *, done: Callable[[int], str],
                      again: str, again_in_window: bool) -> OutgoingMessage | None:
    """One room message for a coalesced window of sign-ups (lottery entries, votes): ``("new", person, count)``
    items are thanked together with the latest count (``done(count)``), then those who tried again are told it
    didn't count (``again``). ``again_in_window``: also someone who signed up in this same window (a vote for 1 then
    2 must learn that 2 was refused; a lottery keyword sent twice in excitement needs no reminder)."""
    new: dict[str, Person] = {}
    before: dict[str, Person] = {}
    count = 0
    for kind, person, n in items:
        if kind == "new":
            new[person.id] = person
            count = max(count, n)
        elif again_in_window or person.id not in new:
            before[person.id] = person
    parts = []
    if new:
        parts.append(with_mentions(list(new.values()), done(count)))
    if before:
        parts.append(with_mentions(list(before.values()), again))
    if not parts:
        return None
    return OutgoingMessage("\n".join(parts), room_id=room_id, mentions=tuple(dict.fromkeys([*new, *before])))


@dataclass
class SkillRuntime:
    """A loaded skill's validated settings and its state in this process (``Skill.settings_of``/``state_of``)."""

    settings: Any = None
    state: Any = None


@dataclass
class Services:
    config: Config
    clock: Clock
    governor: SendGovernor
    activity: ActivityLog
    scheduler: Scheduler
    sessions: async_sessionmaker[AsyncSession]
    bot_id: str | None = None
    # What the connected platform can do; the transport says so at login.
    capabilities: Capabilities = field(default_factory=Capabilities)
    # Which transport the bot runs on ("bridge", "wechaty", "console", "replay"): the dashboard's account page.
    transport_name: str = ""
    skills: dict[str, SkillRuntime] = field(default_factory=dict)
    # Target prefixes for proactive messages contributed by skills ("tier" → the tiers skill's resolver).
    target_resolvers: dict[str, Resolver] = field(default_factory=dict)
    target_labels: dict[str, dict[str, str]] = field(default_factory=dict)  # prefix → value → display name
    # What each loaded skill keeps about a member (``@skill.member_data``): /我的数据 and /删除我的数据 (bot/privacy.py)
    member_data: list[MemberDataSpec] = field(default_factory=list)

    def runtime(self, skill: str) -> SkillRuntime:
        try:
            return self.skills[skill]
        except KeyError:
            raise LookupError(f"skill {skill!r} is not loaded (is it listed in bot.skills?)") from None

    def has_skill(self, skill: str) -> bool:
        return skill in self.skills


@dataclass(frozen=True)
class JobRun:
    """The scheduled run a job handler is called for."""

    key: str
    payload: dict
    scheduled_for: datetime


class Context:
    """One event's (or one job run's) view of the bot.

    The session is opened on first use and belongs to whoever made the context (the dispatcher for events, the
    scheduler for jobs): it commits or rolls back, and what a handler asked to do ``after_commit`` runs only once its
    writes are committed.
    """

    def __init__(
        self,
        services: Services,
        *,
        event: Event | None = None,
        job: JobRun | None = None,
        skill: str | None = None,
        session: AsyncSession | None = None,
    ) -> None:
        self.services = services
        self.event = event
        self.job = job
        self.skill = skill
        self.stopped = False
        self.addressed = False  # the message was meant for the bot: its full text goes to the activity store
        # set by the command router for a command's handler
        self.command: ParsedCommand | None = None
        self.spec: CommandSpec | None = None
        self.args: tuple[str, ...] = ()  # arguments after the command's own words
        self._session = session
        self._committed = False  # running after-commit work: the transaction that decided it is over

    # -- the database -----------------------------------------------------------------------------------------------

    @property
    def session(self) -> AsyncSession:
        """The one database session, opened on first use (most chatter never needs one)."""
        if self._session is None:
            self._session = self.services.sessions()
        return self._session

    @property
    def has_session(self) -> bool:
        return self._session is not None

    @property
    def has_uncommitted_work(self) -> bool:
        """Writes, staged messages or after-commit work that a commit would make final."""
        s = self._session
        return s is not None and (s.in_transaction() or has_pending(s))

    def after_commit(self, fn: Callable[[], None]) -> None:
        """Call ``fn`` once what this handler wrote is committed, never if it is rolled back: announce only what
        is recorded. (To announce, prefer ``send`` inside the handler: it waits for the commit by itself, and its
        message is committed together with your writes.)"""
        def run() -> None:
            self._committed = True
            try:
                fn()
            finally:
                self._committed = False

        after_commit(self.session, run)

    async def release_session(self) -> None:
        """Commit what was written so far and give the connection back, before awaiting the network (an LLM call):
        on SQLite the process has one connection, and every other chat would wait for this one."""
        if self._session is not None:
            session, self._session = self._session, None
            try:
                await session.commit()
            finally:
                await session.close()

    async def commit(self) -> None:
        """For the context's owner (dispatcher, scheduler): commit (what waited for the commit runs)."""
        if self._session is not None:
            await self._session.commit()

    async def rollback(self) -> None:
        if self._session is not None:
            discard_pending(self._session)
            await self._session.rollback()

    async def close(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            await session.close()

    # -- who and when -------------------------------------------------------------------------------------------------

    @property
    def now(self) -> datetime:
        return self.services.clock.now()

    @property
    def config(self) -> Config:
        return self.services.config

    @property
    def capabilities(self) -> Capabilities:
        return self.services.capabilities

    @property
    def sender(self) -> Person | None:
        return self.event.sender if isinstance(self.event, MessageReceived) else None

    @property
    def room_id(self) -> str | None:
        return self.event.room_id if self.event is not None else None

    @property
    def is_admin(self) -> bool:
        """An admin here: a global admin, or an admin of this room."""
        s = self.sender
        return s is not None and self.config.is_admin(s.id, self.room_id)

    @property
    def is_global_admin(self) -> bool:
        s = self.sender
        return s is not None and self.config.is_admin(s.id)

    def admins_of(self, room_id: str | None = None) -> tuple[str, ...]:
        """Whom to tell about a room (``room_id``, by default this event's): its admins (``[rooms."ID"] admins``),
        else the global admins. Stable ids, to message 1-on-1 — e.g. where the platform can't act itself
        (``ctx.capabilities``: no ``kick``)."""
        room = self.config.rooms.get(room_id or self.room_id or "")
        return room.admins if room is not None and room.admins else self.config.bot.admins

    @property
    def mentioned_ids(self) -> tuple[str, ...]:
        """Ids @-mentioned in the message, the bot itself left out."""
        event = self.event
        if not isinstance(event, MessageReceived):
            return ()
        return tuple(i for i in event.mention_ids if i != self.services.bot_id)

    # jobs
    @property
    def payload(self) -> dict:
        return self.job.payload if self.job is not None else {}

    @property
    def job_key(self) -> str | None:
        return self.job.key if self.job is not None else None

    @property
    def scheduled_for(self) -> datetime | None:
        return self.job.scheduled_for if self.job is not None else None

    def stop(self) -> None:
        """No later handler sees this event."""
        self.stopped = True

    # -- speaking (always through the governor) -----------------------------------------------------------------------

    def reply(self, text: str, *, mention: bool = True) -> asyncio.Future:
        """Answer the sender: in a room with an @-mention (unless ``mention=False``), else 1-on-1."""
        event = self.event
        if not isinstance(event, MessageReceived):
            raise TypeError("reply() needs a message to answer; use send()")
        if event.room_id is None:
            message = OutgoingMessage(text, user_id=event.sender.id, audience=event.audience)
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
        priority: Priority | None = None,
        kind: ProactiveKind | None = None,
        durable: bool | None = None,
    ) -> asyncio.Future:
        """Send ``message``; the future resolves to a ``bot.governor.SendOutcome`` (awaiting it is optional).

        In a job it is bot-initiated (proactive: quiet hours and caps apply, light by default); in answer to an
        event it is a reply unless ``kind`` says otherwise.

        Durable (the default for proactive messages — every send from a job, and any with ``kind=``; ask for it
        with ``durable=True`` for a reply that must not be lost, e.g. a draw's result): the message is written to
        the outbox in this handler's transaction and handed to the governor only once that commits. So it is
        committed together with the work that decided it (a draw, a reminder's claim) and survives a restart — sent
        once after it, or dropped as stale by the governor's ``max_delay_s`` — and if the transaction rolls back it
        is never sent, like everything else the handler did (the future then never resolves). Send from the
        handler itself, not from an ``after_commit`` callback: there the transaction is over, and the message is
        only written behind, moments later. Other replies go straight to the governor, which keeps them in the
        outbox only if it has to hold them back (quiet hours, back-off, the transport offline). See bot/outbox.py.
        """
        if self.job is not None:
            priority = Priority.SCHEDULED if priority is None else priority
            kind = ProactiveKind.LIGHT if kind is None else kind
        elif priority is None:
            priority = Priority.REPLY
        governor = self.services.governor
        if durable is None:
            durable = kind is not None
        if not durable:
            return governor.submit(message, priority=priority, kind=kind, skill=self.skill)
        if self._committed:  # after the commit: no transaction to join; the governor writes it behind
            return governor.submit(message, priority=priority, kind=kind, skill=self.skill, keep=True)
        entry = OutboxEntry(message, priority, kind, self.skill, self.now, self.services.bot_id)
        future = asyncio.get_running_loop().create_future()
        stage(self.session, entry)
        after_commit(self.session, lambda: governor.submit(message, priority=priority, kind=kind, skill=self.skill,
                                                           entry=entry, future=future))
        return future

    def notify_operators(self, text: str) -> bool:
        """Tell the operators (``bot.operators`` 1-on-1 and ``bot.operators_room``) something a person must act on.

        Durable and transactional: committed with this handler's writes, never capped as a broadcast (it is for
        staff, about a member). The 1-on-1 notes are marked ``audience="staff"``: a transport that reaches staff
        another way than customers (WeCom: the app's messages) routes them there. The operators' room only where the
        bot can speak in rooms (``capabilities.room_send``; not in the WeCom mode). False when no operator is
        reachable: then nobody hears it, and the caller must not promise the member that a person will.
        """
        bot = self.config.bot
        targets = [OutgoingMessage(text, user_id=person, audience="staff") for person in bot.operators]
        if bot.operators_room and self.capabilities.room_send:
            targets.append(OutgoingMessage(text, room_id=bot.operators_room))
        for message in targets:
            self.send(message, priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
        return bool(targets)

    @property
    def has_operators(self) -> bool:
        bot = self.config.bot
        return bool(bot.operators or (bot.operators_room and self.capabilities.room_send))

    def coalesce(self, key: str, item: Any, render: Callable[[list[Any]], OutgoingMessage | None], *,
                 window_s: float, priority: Priority = Priority.REPLY, kind: ProactiveKind | None = None) -> None:
        """Gather ``item`` with the others under ``key`` for ``window_s``; then ``render`` them as one message."""
        self.services.governor.coalesce(key, item, render, window_s=window_s, priority=priority, kind=kind,
                                        skill=self.skill)

    def record(self, kind: str, detail: dict | None = None, *, member_id: str | None = None) -> None:
        """Note something in the activity store, attributed to this skill."""
        s = self.sender
        self.services.activity.record(
            kind, room_id=self.room_id, member_id=member_id or (s.id if s else None), skill=self.skill, detail=detail
        )
