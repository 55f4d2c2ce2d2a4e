"""The send governor: the only way anything leaves the bot.

Why one place: WeChat restricts accounts that send in bursts, so pacing, quiet hours, daily caps and back-off
must hold for every skill at once. Skills call ``submit`` (or ``coalesce``) and never touch the transport.

Order of sending: by priority (reply, then transactional, then scheduled), then first come first served;
messages deferred by quiet hours or a retry wait aside until their time. Everything waits on the injectable clock, never on real sleeps.

Several sends may be under way at once, so one slow call to the platform holds up only its own chat: at most one
per chat (a chat's messages go strictly in queue order, each after the one before has finished) and at most
``max_in_flight`` for the account. The pacing (bot/pacing.py) counts a send from when it is released to the
transport, so the gaps, the per-minute cap and the warm-up hold exactly as with one send at a time. The next
message released is always the first in the queue whose chat is free: a chat with a send under way is passed
over, never a message that merely waits for its pacing.

Release policies, checked in order when a message is about to go (``_policies``; each a small method that says
go, hold until an instant, or drop): staleness, quiet hours, for light and promotional messages the gentle rules
below, then a channel's reply window (``ReplyWindow``, when a transport sets one). A new rule is one more method
in that list.

Gentleness for proactive (bot-initiated) messages, checked when a message is about to go, in this order:
quiet hours (defer or drop, per kind) → opt-out (no light/promotional 1-on-1 message to a member who sent
/退订) → daily caps per room and per member (drop) → the minimum gap between a room's proactive messages and a
lively conversation in the room (defer). Transactional messages keep quiet hours only.

Held messages survive a restart (bot/outbox.py): a message that arrives with an outbox row (decided in a
transaction, ``entry=``) or that the governor holds back — quiet hours, a room's gap, a lively room, back-off, the
transport offline — has a row; so has everything still waiting at stop (``keep_all``). Such a row is marked
``sending`` (committed) before the transport is called, so a message is never sent twice; ``restore`` takes the
rows a previous run left pending. Replies that can go at once never touch the database.

Offline and login (the transports' contract): a send that raises ``NotConnectedError`` means "not sent, the
transport is disconnected": the governor then holds every message (kept in the outbox), probing once every
``OFFLINE_PROBE_S``, until ``on_login`` reports the transport back (or a probe gets through); then each goes out
once, or is dropped as stale. ``UncertainDeliveryError`` means "may have arrived": never retried.
"""

from __future__ import annotations

import asyncio
import bisect
import heapq
import itertools
import logging
import random
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta
from typing import TypeAlias

from bot.backoff import backoff_delay
from bot.clock import Clock, TimerHandle
from bot.config import GovernorSettings, KindPolicy
from bot.events import OutgoingMessage, Priority, ProactiveKind
from bot.governor_stores import ActivityRecorder, GovernorCapStore, GovernorOutbox, OutboxEntry
from bot.pacing import Pacing, Slot
from bot.transports.base import (
    FatalTransportError,
    NotConnectedError,
    RefusedError,
    RiskControlError,
    UncertainDeliveryError,
)

log = logging.getLogger(__name__)

OFFLINE_PROBE_S = 30.0  # while the transport is down and no login is reported, try one send this often
RETRY_INITIAL_S = 2  # the first wait after an ordinary send failure; doubles with each further attempt

SendFn = Callable[[OutgoingMessage], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class SendOutcome:
    sent: bool
    at: datetime
    reason: str | None = None  # why it was dropped
    platform_id: str | None = None


@dataclass(slots=True)
class _Queued:
    message: OutgoingMessage
    priority: Priority
    kind: ProactiveKind | None  # None: a reply, never capped, never held by quiet hours
    skill: str | None
    created_at: datetime
    not_before: datetime
    expires_at: datetime | None
    seq: int
    future: asyncio.Future | None
    attempts: int = 0
    retrying: bool = False  # waiting after a failure, not for quiet hours
    held_since: datetime | None = None  # first held back for a lively conversation (the wait is limited)
    entry: OutboxEntry | None = None  # its outbox row, once it has one

    @property
    def order(self) -> tuple[int, int]:
        return (int(self.priority), self.seq)


@dataclass(frozen=True, slots=True)
class Hold:
    """A release policy's answer: not now; back in the queue (with its outbox row) until ``until``."""

    until: datetime
    reason: str | None = None  # counted in SendGovernor.held ("gap", "lively"); None: not counted


@dataclass(frozen=True, slots=True)
class Drop:
    """A release policy's answer: never; dropped and recorded with ``reason``."""

    reason: str


Verdict: TypeAlias = Hold | Drop | None  # None: this policy lets it go


@dataclass(slots=True)
class _Bucket:
    items: list = field(default_factory=list)
    timer: TimerHandle | None = None


class ReplyWindow:
    """A channel's reply-window policy (WeCom 微信客服): per customer, at most ``limit`` messages within ``window``
    of their last message, nothing outside it — order reminders included. Inactive unless a transport sets
    ``SendGovernor.reply_window`` (bot/transports/wecom/wiring.py). The channel cannot answer in groups (WeCom
    external groups): a reply to a room is dropped (``no_group_send``) instead of retried; with ``group_sends`` a
    campaign goes on to the transport, which makes it a task a staff member confirms (``refuse``).
    The transport persists the windows and gives them back at start (``restore``); WeCom's own refusal (95xxx →
    dropped with ``window``) is the backstop."""

    def __init__(self, limit: int = 5, window: timedelta = timedelta(hours=48), *, group_sends: bool = False) -> None:
        self.limit = limit
        self.window = window
        self.group_sends = group_sends
        self._last_in: dict[str, datetime] = {}  # customer → their last message
        self._sent: dict[str, int] = {}  # customer → messages sent since then

    def saw(self, member_id: str, at: datetime) -> None:
        """The customer wrote: the window opens (again) from ``at``."""
        last = self._last_in.get(member_id)
        if last is None or at >= last:
            self._last_in[member_id] = at
            self._sent[member_id] = 0

    def restore(self, member_id: str, last_in: datetime, sent: int) -> None:
        if member_id not in self._last_in or last_in > self._last_in[member_id]:
            self._last_in[member_id], self._sent[member_id] = last_in, sent

    def open(self, member_id: str, now: datetime) -> bool:
        """The customer's window is open and not used up."""
        last = self._last_in.get(member_id)
        return last is not None and now <= last + self.window and self._sent.get(member_id, 0) < self.limit

    def refuse(self, message: OutgoingMessage, now: datetime, kind: ProactiveKind | None = None) -> str | None:
        """Why ``message`` may not go now (the drop reason), or None. With ``group_sends``, a proactive message to a
        room, and a campaign (light or promotional) to a customer whose window is closed, go on: they become tasks
        staff confirm. Replies never do, nor 1-on-1 transactional messages (order reminders: the window only).
        Notes to staff (``audience="staff"``) are not customers': no window applies."""
        if message.to_staff:
            return None
        if message.room_id is not None:
            return None if self.group_sends and kind is not None else "no_group_send"
        campaign = self.group_sends and kind in (ProactiveKind.LIGHT, ProactiveKind.PROMOTIONAL)
        if self.open(message.user_id, now) or campaign:  # type: ignore[arg-type]
            return None
        return "window"

    def sent(self, message: OutgoingMessage) -> None:
        if message.user_id is not None and not message.to_staff:
            self._sent[message.user_id] = self._sent.get(message.user_id, 0) + 1


def in_quiet_hours(local: time, start: time, end: time) -> bool:
    if start == end:
        return False
    if start < end:
        return start <= local < end
    return local >= start or local < end  # the window spans midnight


class SendGovernor:
    def __init__(
        self,
        send: SendFn,
        clock: Clock,
        settings: GovernorSettings,
        caps: GovernorCapStore,
        activity: ActivityRecorder,
        rng: random.Random | None = None,
        outbox: GovernorOutbox | None = None,
    ) -> None:
        self._send = send
        self._clock = clock
        self.settings = settings
        self._caps = caps
        self._activity = activity
        self._outbox = outbox  # None: nothing survives a restart (the governor's own tests)
        self.account_id: str | None = None  # written on the rows it keeps (the app sets it at login)
        self._seq = itertools.count()
        self._ready: list[tuple[tuple[int, int], _Queued]] = []  # sorted by (priority, seq)
        self._deferred: list[tuple[datetime, int, _Queued]] = []  # heap by not_before
        self._buckets: dict[str, _Bucket] = {}
        self._timer: TimerHandle | None = None
        self._timer_at: datetime | None = None
        self._drain_task: asyncio.Task | None = None  # a drain started at once, not through a timer
        self._draining = False
        self._pacing = Pacing(rng or random.Random())
        self._pacing.draw_jitter(settings)
        self._in_flight: dict[str, _Queued] = {}  # chat key -> its message being sent now
        self._released = 0  # sends released so far: tells a send released before a back-off from one after it
        self._login_at: datetime | None = None
        self._backoff_level = 0
        self._backoff_until: datetime | None = None
        self._backoff_mark = 0  # sends released before the back-off began: their outcomes don't change it
        self._offline_since: datetime | None = None  # the transport said it is disconnected: hold until login
        self._offline_mark = 0  # likewise for the offline state
        self._halted_since: datetime | None = None  # the platform refused our credentials: try nothing until login
        self._probe_at = self._clock.now()
        self._room_msgs: dict[str, deque[datetime]] = {}  # room -> its latest member messages' instants
        self.sent_count = 0
        self.dropped: dict[str, int] = {}
        self.held: dict[str, int] = {}  # deferrals by reason: "gap", "lively"
        self.reply_window: ReplyWindow | None = None  # a channel's reply-window policy (WeCom 微信客服)
        # the release policies, in order (built once: _judge runs for every message released)
        self._policies: tuple[Callable[[_Queued, datetime], Awaitable[Verdict]], ...] = (
            self._policy_fresh, self._policy_quiet_hours, self._policy_gentle, self._policy_reply_window)

    # -- public API ---------------------------------------------------------------------------------------------

    def on_login(self, at: datetime | None = None) -> None:
        """The transport (re)logged in: start the warm-up period (slower pacing) and release what was held while
        offline. Transports call it (through ``BotApp.logged_in``) after every login, the first included."""
        self._login_at = at or self._clock.now()
        if self._halted_since is not None:
            log.info("login: trying to send again after the platform refused our credentials")
            self._halted_since = None
            self._schedule()
        if self._offline_since is not None:
            log.info("transport back after %.0f s: %d messages waiting go out now (stale ones are dropped)",
                     (self._login_at - self._offline_since).total_seconds(), self.pending)
            self._offline_since = None
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._schedule()

    @property
    def offline(self) -> bool:
        return self._offline_since is not None

    @property
    def backoff(self) -> tuple[int, datetime | None]:
        """Read-only (the dashboard): the risk-control back-off's level and its end, None when not backing off."""
        until = self._backoff_until
        return self._backoff_level, until if until is not None and until > self._clock.now() else None

    @property
    def halted(self) -> bool:
        """The platform refused our credentials: everything is held, nothing is tried until the next login."""
        return self._halted_since is not None

    def submit(
        self,
        message: OutgoingMessage,
        *,
        priority: Priority = Priority.REPLY,
        kind: ProactiveKind | None = None,
        skill: str | None = None,
        entry: OutboxEntry | None = None,
        keep: bool = False,
        future: asyncio.Future | None = None,
    ) -> asyncio.Future:
        """Queue a message; the returned future (``future``, if given) resolves to a SendOutcome (awaiting it is
        optional). ``entry``: its outbox row, written already (bot.context stages it in the deciding transaction);
        ``keep``: give it a row now even if it can go at once (it was decided after a commit)."""
        if kind is None and priority != Priority.REPLY:
            kind = ProactiveKind.TRANSACTIONAL if priority == Priority.TRANSACTIONAL else ProactiveKind.LIGHT
        now = self._clock.now()
        if future is None:
            future = asyncio.get_running_loop().create_future()
        policy = self._policy(kind)
        item = _Queued(
            message=message,
            priority=priority,
            kind=kind,
            skill=skill,
            created_at=now,
            not_before=now,
            expires_at=now + timedelta(seconds=policy.max_delay_s if policy else self.settings.reply_max_delay_s),
            seq=next(self._seq),
            future=future,
            entry=entry,
        )
        if keep:
            self._keep(item)
        self._admit(item, now)
        return future

    def restore(self, entries: list[OutboxEntry]) -> None:
        """Take back the messages a previous run left in the outbox (``Outbox.resume``): each is sent once, or
        dropped as stale (``max_delay_s`` from when it was decided) or by quiet hours, like any other."""
        now = self._clock.now()
        for entry in entries:
            policy = self._policy(entry.kind)
            max_delay = policy.max_delay_s if policy else self.settings.reply_max_delay_s
            item = _Queued(
                message=entry.message,
                priority=entry.priority,
                kind=entry.kind,
                skill=entry.skill,
                created_at=entry.decided_at,
                not_before=now,
                expires_at=entry.decided_at + timedelta(seconds=max_delay),
                seq=next(self._seq),
                future=None,
                attempts=entry.attempts,
                entry=entry,
            )
            if now > item.expires_at:
                self._drop(item, "stale")
                continue
            self._admit(item, now)

    def keep_all(self) -> int:
        """At stop: give every message still waiting a row, so the next start sends it (or drops it as stale).
        Returns how many are waiting."""
        self._keep_waiting()
        return self.pending

    def saw_message(self, room_id: str, at: datetime) -> None:
        """A member spoke in a room (the dispatcher calls this): how the governor knows a room is lively."""
        n = self.settings.lively_messages
        if n:
            recent = self._room_msgs.get(room_id)
            if recent is None:
                recent = self._room_msgs[room_id] = deque(maxlen=n)
            recent.append(at)

    async def set_opt_out(self, member_id: str, opted_out: bool) -> bool:
        """/退订 (True) or /订阅 (False): from now on, and for messages already queued. True if it changed."""
        return await self._caps.set_opted_out(member_id, opted_out, self._clock.now())

    async def opted_out(self, member_id: str) -> bool:
        return await self._caps.opted_out(member_id)

    def coalesce(
        self,
        key: str,
        item: object,
        render: Callable[[list], OutgoingMessage | None],
        *,
        window_s: float,
        priority: Priority = Priority.REPLY,
        kind: ProactiveKind | None = None,
        skill: str | None = None,
    ) -> None:
        """Collect small items under ``key``; ``window_s`` after the first, render them into one message."""
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = _Bucket()

            async def flush() -> None:
                done = self._buckets.pop(key, None)
                if done and done.items:
                    message = render(done.items)
                    if message is not None:
                        self.submit(message, priority=priority, kind=kind, skill=skill)

            bucket.timer = self._clock.call_later(window_s, flush, name=f"coalesce:{key}")
        bucket.items.append(item)

    async def flush_coalesced(self) -> None:
        """Render every open coalescing window now (at shutdown: better early than lost)."""
        for key in list(self._buckets):
            bucket = self._buckets.get(key)
            if bucket is not None and bucket.timer is not None:
                bucket.timer.cancel()
                await bucket.timer.callback()

    def _admit(self, item: _Queued, now: datetime) -> None:
        """Quiet hours, then the queue; a message that will wait gets its outbox row."""
        policy = self._policy(item.kind)
        if policy and self._quiet(now):
            if policy.quiet_hours == "drop":
                self._drop(item, "quiet_hours")
                return
            item.not_before = self.quiet_hours_end(now)
            if item.expires_at is not None and item.not_before > item.expires_at:
                self._drop(item, "stale")
                return
        if (item.not_before > now or self._offline_since is not None
                or (self._backoff_until is not None and self._backoff_until > now)):
            self._keep(item)
        self._enqueue(item)
        self._schedule()

    def _keep(self, item: _Queued) -> None:
        """The message is held back (or the process is stopping): make sure it has an outbox row."""
        if self._outbox is None or item.entry is not None:
            return
        item.entry = OutboxEntry(item.message, item.priority, item.kind, item.skill, item.created_at,
                                 self.account_id, attempts=item.attempts)
        self._outbox.keep(item.entry)

    def _keep_waiting(self) -> None:
        """Everything waits now (back-off, offline, stop): every queued message gets its row."""
        if self._outbox is not None:
            for _, item in self._ready:
                self._keep(item)
            for entry in self._deferred:
                self._keep(entry[2])

    def _unsent(self, item: _Queued) -> None:
        """The transport said it sent nothing: the row goes back from sending to pending."""
        if self._outbox is not None and item.entry is not None:
            self._outbox.mark(item.entry, "pending")

    @property
    def busy(self) -> bool:
        """True while something may still be sent without a quiet-hours wait (replay runs until this is False)."""
        if self._in_flight:
            return True
        if self._halted_since is not None:
            return False  # nothing goes out before an operator acts and the account logs in again
        return bool(self._ready or self._buckets or self._draining or any(e[2].retrying for e in self._deferred))

    @property
    def in_flight(self) -> int:
        """Sends under way now (released to the transport, no answer yet)."""
        return len(self._in_flight)

    @property
    def pending(self) -> int:
        return len(self._ready) + len(self._deferred) + sum(len(b.items) for b in self._buckets.values())

    def quiet_hours_end(self, now: datetime) -> datetime:
        local = self._clock.local(now)
        end = self.settings.quiet_hours.end
        candidate = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if candidate <= local:
            candidate += timedelta(days=1)
        return candidate.astimezone(now.tzinfo)

    # -- internals ----------------------------------------------------------------------------------------------

    def _policy(self, kind: ProactiveKind | None) -> KindPolicy | None:
        return None if kind is None else getattr(self.settings, kind.value)

    def _quiet(self, now: datetime) -> bool:
        qh = self.settings.quiet_hours
        return in_quiet_hours(self._clock.local(now).time(), qh.start, qh.end)

    def _enqueue(self, item: _Queued) -> None:
        if item.not_before > self._clock.now():
            heapq.heappush(self._deferred, (item.not_before, item.seq, item))
        else:
            bisect.insort(self._ready, (item.order, item), key=lambda e: e[0])

    def _promote_deferred(self, now: datetime) -> None:
        while self._deferred and self._deferred[0][0] <= now:
            _, _, item = heapq.heappop(self._deferred)
            bisect.insort(self._ready, (item.order, item), key=lambda e: e[0])

    def _factor(self, now: datetime) -> float:
        s = self.settings
        if self._login_at is not None and now < self._login_at + timedelta(seconds=s.warmup_s):
            return s.warmup_factor
        return 1.0

    def _earliest(self, item: _Queued, now: datetime) -> datetime:
        t = max(now, item.not_before)
        if self._backoff_until is not None:
            t = max(t, self._backoff_until)
        if self._offline_since is not None:  # no login since: only a probe now and then, in case none is reported
            t = max(t, self._probe_at)
        return self._pacing.earliest(item.message.chat_key, t, self.settings, self._factor(now))

    def _head(self) -> int | None:
        """Where in the ready queue the next message to release is: strictly by priority, then first come first
        served, passing over only chats with a send under way (skipping ahead to a chat whose pacing is cheaper
        would let one busy room starve everyone else). None: nothing may start now."""
        if len(self._in_flight) >= max(1, self.settings.max_in_flight):
            return None
        if self._in_flight and (self._backoff_until is not None or self._offline_since is not None):
            return None  # after a push-back or while offline one send tries the water; the rest wait for it
        busy = self._in_flight
        for index, (_, item) in enumerate(self._ready):
            if item.message.chat_key not in busy:
                return index
        return None

    def _pick(self, now: datetime) -> datetime | None:
        """When the next message to release may go."""
        index = self._head()
        return None if index is None else self._earliest(self._ready[index][1], now)

    def _schedule(self) -> None:
        if self._draining:
            return  # the running drain reschedules when it finishes
        if self._halted_since is not None:
            return  # held until on_login: no timer, no retries
        now = self._clock.now()
        self._promote_deferred(now)
        candidates = []
        if (head_at := self._pick(now)) is not None:
            candidates.append(head_at)
        if self._deferred:
            candidates.append(self._deferred[0][0])
        if not candidates:
            return
        when = min(candidates)
        if when <= now and self._in_flight:
            # at once, beside the sends under way (on the virtual clock a timer would wait until they end)
            if self._timer is not None:
                self._timer.cancel()
                self._timer = self._timer_at = None
            if self._drain_task is None or self._drain_task.done():
                self._drain_task = self._clock.spawn(self._drain, name="governor-drain")
            return
        if self._timer is not None and not self._timer.cancelled:
            if self._timer_at is not None and self._timer_at <= when:
                return
            self._timer.cancel()
        self._timer_at = when
        self._timer = self._clock.call_at(when, self._drain, name="governor-drain")

    async def _drain(self) -> None:
        """Release every message that may go now, each to a send of its own (``_transmit``)."""
        if self._timer is not None and self._timer.when <= self._clock.now():
            self._timer = self._timer_at = None
        if self._draining:
            return
        self._draining = True
        try:
            while self._halted_since is None:
                now = self._clock.now()
                self._promote_deferred(now)
                index = self._head()
                if index is None or self._earliest(self._ready[index][1], now) > now:
                    break
                _, item = self._ready.pop(index)
                await self._release(item, now)
        finally:
            self._draining = False
            self._schedule()  # even if a release raised: the rest of the queue must not stall

    async def _release(self, item: _Queued, now: datetime) -> None:
        """The policies, then (if it may go) its place in the rhythm and a send of its own."""
        try:
            verdict = await self._judge(item, now)
        except Exception as exc:  # the cap store is unreachable: don't send blind, don't lose it either
            self._retry_or_drop(item, now, exc, "caps", "cap_error")
            return
        if isinstance(verdict, Drop):
            self._drop(item, verdict.reason)
            return
        if isinstance(verdict, Hold):
            item.not_before = verdict.until
            if verdict.reason is not None:
                self.held[verdict.reason] = self.held.get(verdict.reason, 0) + 1
            self._keep(item)
            self._enqueue(item)
            return
        slot = self._pacing.reserve(item.message.chat_key, now, self.settings)
        self._released += 1
        number = self._released
        self._in_flight[item.message.chat_key] = item

        async def transmit() -> None:
            try:
                await self._transmit(item, now, slot, number)
            finally:
                self._in_flight.pop(item.message.chat_key, None)
                self._schedule()  # its chat is free again; so is a place for the account

        self._clock.spawn(transmit, name=f"send:{item.message.chat_key}")

    # -- release policies: each says go (None), hold until, or drop ------------------------------------------------

    async def _judge(self, item: _Queued, now: datetime) -> Verdict:
        for policy in self._policies:
            verdict = await policy(item, now)
            if verdict is not None:
                return verdict
        return None

    async def _policy_fresh(self, item: _Queued, now: datetime) -> Verdict:
        """Too late is worse than never (a reply after the conversation moved on): dropped as stale."""
        if item.expires_at is not None and now > item.expires_at:
            return Drop("stale")
        return None

    async def _policy_quiet_hours(self, item: _Queued, now: datetime) -> Verdict:
        """Pacing pushed a proactive message into quiet hours: the same rule as at submit time."""
        if item.kind is None or not self._quiet(now):
            return None
        if self._policy(item.kind).quiet_hours == "drop":
            return Drop("quiet_hours")
        return Hold(self.quiet_hours_end(now))

    async def _policy_gentle(self, item: _Queued, now: datetime) -> Verdict:
        """Light and promotional messages: opt-out, the daily caps, a room's gap and a lively room."""
        if item.kind is None or item.kind == ProactiveKind.TRANSACTIONAL:
            return None
        user_id = item.message.user_id
        if user_id is not None and await self._caps.opted_out(user_id):
            return Drop("opted_out")
        over = await self._caps.over_cap(self._clock.local(now).date(), item.message, item.kind, self.settings)
        if over:
            return Drop(f"cap:{over}")
        hold = await self._hold_until(item, now)
        return None if hold is None else Hold(hold[1], hold[0])

    async def _policy_reply_window(self, item: _Queued, now: datetime) -> Verdict:
        """A channel's reply window (WeCom 微信客服, ``ReplyWindow``): nothing outside it. Its count per customer is
        safe with sends under way at once: a customer's messages share one chat, one send at a time."""
        if self.reply_window is None:
            return None
        closed = self.reply_window.refuse(item.message, now, item.kind)
        return Drop(closed) if closed else None

    # -- one send ------------------------------------------------------------------------------------------------

    async def _transmit(self, item: _Queued, now: datetime, slot: Slot, number: int) -> None:
        """Send one released message (its outbox row marked ``sending`` first) and act on the outcome.
        ``number``: its place in the order of releases (outcomes of sends released before a back-off or a
        disconnection began belong to that same incident)."""
        if item.entry is not None and self._outbox is not None:
            try:  # committed before the transport is called: after a crash it is "uncertain", never resent
                await self._outbox.sending(item.entry)
            except Exception as exc:
                self._pacing.give_back(slot)
                self._retry_or_drop(item, now, exc, "outbox", "outbox_error")
                return
        try:
            platform_id = await self._send(item.message)
        except RiskControlError as exc:
            self._pacing.give_back(slot)
            if self._backoff_until is None or number > self._backoff_mark:  # not one already answered for
                self._backoff_level += 1
                delay = backoff_delay(self._backoff_level, self.settings.backoff_initial_s,
                                      self.settings.backoff_max_s)
                self._backoff_until = now + timedelta(seconds=delay)
                self._backoff_mark = self._released
                log.warning("risk control from the platform (%s): pausing all sends for %.0f s", exc, delay)
            else:
                delay = (self._backoff_until - now).total_seconds()
            self._activity.record(
                "send_failed", **self._where(item), skill=item.skill,
                detail={"reason": "risk_control", "error": str(exc)[:200], "backoff_s": delay},
            )
            self._unsent(item)
            self._enqueue_front(item)
            self._keep_waiting()
            return
        except FatalTransportError as exc:  # a wrong token: retrying would only repeat the refusal
            self._pacing.give_back(slot)
            if self._halted_since is None:
                self._halted_since = now
                log.error("sending stopped (%s): %d messages held until the next login", exc, self.pending + 1)
            self._unsent(item)
            self._enqueue_front(item)
            self._keep_waiting()
            return
        except NotConnectedError as exc:
            self._pacing.give_back(slot)
            if self._offline_since is None:
                self._offline_since = now
                log.warning("transport disconnected (%s): holding messages until it logs in again", exc)
            self._offline_mark = self._released
            self._probe_at = now + timedelta(seconds=OFFLINE_PROBE_S)
            self._unsent(item)
            self._enqueue_front(item)
            self._keep_waiting()
            return
        except RefusedError as exc:  # refused for good (a quota, a closed window): retrying would only repeat it
            self._pacing.give_back(slot)
            self._unsent(item)
            self._drop(item, exc.reason)
            return
        except UncertainDeliveryError as exc:  # it may have arrived: a retry could send it twice
            self._pacing.give_back(slot)
            log.error("send to %s may or may not have arrived (%s): not retried", item.message.chat_key, exc)
            self._activity.record("send_failed", **self._where(item), skill=item.skill,
                                  detail={"reason": "uncertain", "error": str(exc)[:200]})
            self._drop(item, "uncertain")
            return
        except Exception as exc:  # any other transport failure: retry a few times, then give up loudly
            self._pacing.give_back(slot)
            self._unsent(item)
            self._retry_or_drop(item, now, exc, "transport", "transport_error")
            return
        if number > self._offline_mark:  # a send released before the disconnection proves nothing about now
            self._offline_since = None
        if number > self._backoff_mark:  # likewise: only a send released after the push-back ends it
            self._backoff_level = 0
            self._backoff_until = None
        if self.reply_window is not None:
            self.reply_window.sent(item.message)
        self._after_send(item, now, platform_id)
        if item.kind is not None:
            try:
                await self._caps.count_sent(self._clock.local(now).date(), item.message, item.kind, at=now)
            except Exception:  # sent already; the in-memory count still holds the cap in this process
                log.exception("could not persist the daily count for %s", item.message.chat_key)

    async def _hold_until(self, item: _Queued, now: datetime) -> tuple[str, datetime] | None:
        """Why and until when a light/promotional room message must wait: the room's minimum gap since its last
        proactive message, or (scheduled messages) a lively conversation, for at most lively_max_defer_s."""
        room_id = item.message.room_id
        if room_id is None:
            return None
        s = self.settings
        if s.room_min_gap_s:
            last = await self._caps.last_proactive(item.message.chat_key)
            if last is not None and now < last + timedelta(seconds=s.room_min_gap_s):
                return "gap", last + timedelta(seconds=s.room_min_gap_s)
        if item.priority == Priority.SCHEDULED and s.lively_messages:
            recent = self._room_msgs.get(room_id)
            window = timedelta(seconds=s.lively_window_s)
            if recent is not None and len(recent) == s.lively_messages and recent[0] > now - window:
                if item.held_since is None:
                    item.held_since = now
                limit = item.held_since + timedelta(seconds=s.lively_max_defer_s)
                if now < limit:
                    # calm again when the oldest of the last N messages leaves the window (if nobody speaks)
                    return "lively", min(recent[0] + window, limit)
        return None

    def _retry_or_drop(self, item: _Queued, now: datetime, exc: Exception, failure: str, reason: str) -> None:
        item.attempts += 1
        if item.entry is not None:
            item.entry.attempts = item.attempts
        self._activity.record(
            "send_failed", **self._where(item), skill=item.skill,
            detail={"reason": failure, "error": str(exc)[:200], "attempt": item.attempts},
        )
        if item.attempts > self.settings.retry_attempts:
            log.error("giving up on a message to %s after %d attempts: %s", item.message.chat_key, item.attempts, exc)
            self._drop(item, reason)
            return
        log.warning("send to %s failed (attempt %d, %s): %s", item.message.chat_key, item.attempts, failure, exc)
        item.not_before = now + timedelta(seconds=backoff_delay(item.attempts, RETRY_INITIAL_S))
        item.retrying = True
        self._keep(item)
        self._enqueue(item)

    def _enqueue_front(self, item: _Queued) -> None:
        bisect.insort(self._ready, (item.order, item), key=lambda e: e[0])

    def _after_send(self, item: _Queued, now: datetime, platform_id: str | None) -> None:
        self.sent_count += 1
        detail = {"text": item.message.text, "priority": item.priority.name.lower()}
        if item.kind is not None:
            detail["proactive"] = item.kind.value
        if item.message.mentions:
            detail["mentions"] = list(item.message.mentions)
        self._activity.record("sent", **self._where(item), skill=item.skill, detail=detail, at=now)
        if self._outbox is not None and item.entry is not None:
            self._outbox.mark(item.entry, "sent", at=now)
        if item.future is not None and not item.future.done():
            item.future.set_result(SendOutcome(True, now, platform_id=platform_id))

    def _drop(self, item: _Queued, reason: str) -> None:
        now = self._clock.now()
        self.dropped[reason] = self.dropped.get(reason, 0) + 1
        log.info("not sending to %s: %s", item.message.chat_key, reason)
        self._activity.record(
            "send_dropped", **self._where(item), skill=item.skill,
            detail={"reason": reason, "text": item.message.text[:200], "kind": item.kind.value if item.kind else "reply"},
        )
        if self._outbox is not None and item.entry is not None:
            self._outbox.mark(item.entry, "uncertain" if reason == "uncertain" else "dropped", reason=reason)
        if item.future is not None and not item.future.done():
            item.future.set_result(SendOutcome(False, now, reason=reason))

    @staticmethod
    def _where(item: _Queued) -> dict:
        return {"room_id": item.message.room_id, "member_id": item.message.user_id}
