"""The bridge transport, provider → bot: ``POST /bridge/events`` on the bot's HTTP server (mounted by
bot/web/server.py while the bot runs on the bridge).

Answers, in the order they are checked: 413 over ``MAX_BODY_BYTES`` (the server, before reading); 401 for a
missing or wrong ``X-Bridge-Signature`` (``sha256=`` + hex HMAC-SHA256 with the secret over
``<X-Bridge-Timestamp>.<raw body>``) or a timestamp more than 300 s away from the bot's clock; 400 for a body that
is not a JSON object; 422 ``{"error", "field"}`` for a bad or missing field (bridge_events.py); 200 ``{"ok": true}``
once accepted — and for an id accepted before, which changes nothing. The id is committed (table ``bridge_events``)
before the answer, so a provider's resend is recognised even after a restart; ids of concurrent requests share one
transaction and one multi-row insert (group commit: a 200 still means the id is committed). Handling goes on after
the answer: the event is only queued for the dispatcher here. Should the database keep the answer past
``REMEMBER_WITHIN_S``, the event is refused with 503 (nothing changed: the provider sends it again).

At least once, handled once: a message, join or leave is committed with its cleaned payload, pending until the
dispatcher has handled it: the mark is written in the transaction that handles the event (its replies committed
with it), or, for an event whose handling failed and was rolled back or that was not dispatched, in batches just
after (``_mark``). At start, before any
new event, the pending ones are handed on again, oldest first — or dropped (``dropped = 'stale'``) when accepted
more than ``STALE_AFTER`` ago, an answer that late being worse than none. Only in that second case can a crash between
handling and the mark hand the event on once more.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import re
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, TimerHandle
from bot.http import FieldError, HttpResponse
from bot.transports.base import Done, Mark
from bot.transports.bridge_events import BridgeEvent, parse_event, to_payload
from storage import bridge_events

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_SKEW_S = 300
REMEMBER_WITHIN_S = 1.5  # the contract's answer comes within 2 s
KEEP_IDS = timedelta(days=3)  # a provider resends within minutes; the ids are kept a few days
PRUNE_EVERY_S = 6 * 3600
STALE_AFTER = timedelta(hours=1)  # an event still pending after this long at start is dropped, not handled
_TIMESTAMP = re.compile(r"\d{1,12}(\.\d{1,9})?")

OK = HttpResponse(200, {"ok": True})

# (event, done, mark, replayed): runs mark(session) in the transaction that handles the event, and calls
# done(handled, marked) once the event's turn is over; replayed when handed on again after a restart (not news of
# the session)
EventHandler = Callable[[BridgeEvent, Done, Mark | None, bool], None]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Bridge-Signature`` header's value for ``body`` sent at ``timestamp`` (providers copy this)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class BridgeInbox:
    """Receives the provider's events; ``on_event`` gets each accepted one (once) and must be quick; it calls
    ``done(handled)`` when the event's handling is over (at once for what it does not hand on)."""

    max_body_bytes = MAX_BODY_BYTES

    def __init__(self, secret: str, clock: Clock, sessions: async_sessionmaker[AsyncSession],
                 on_event: EventHandler) -> None:
        if not secret:
            raise ValueError("the bridge inbox needs the signing secret")
        self._secret = secret  # never logged
        self._clock = clock
        self._sessions = sessions
        self._on_event = on_event
        self._waiting: list[tuple[BridgeEvent, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self._prune_timer: TimerHandle | None = None
        self._marks: list[str] = []  # handled, their marks not written yet
        self._marker: asyncio.Task | None = None
        self._open = 0  # handed on, not done yet
        self._all_done = asyncio.Event()
        self._all_done.set()
        self.recovered = 0
        self.dropped_stale = 0
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[int, int] = {}  # answers other than 200, by status

    def __repr__(self) -> str:
        return "BridgeInbox()"

    async def start(self) -> None:
        await self.prune()
        await self.recover()

    async def stop(self) -> None:
        """After the HTTP server stopped: the last ids written, the events handed on handled (the dispatcher is
        still running), their marks written."""
        if self._prune_timer is not None:
            self._prune_timer.cancel()
            self._prune_timer = None
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)
        await self._all_done.wait()
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)

    async def recover(self) -> None:
        """Hand on again the events accepted but not handled (a crash, a stop under them), oldest first; drop the
        ones accepted more than STALE_AFTER ago."""
        now = self._clock.now()
        async with self._sessions() as session:
            rows = await bridge_events.pending(session)
        if not rows:
            return
        fresh: list[tuple] = []
        stale: list[str] = []
        unreadable: list[str] = []
        for event_id, received_at, payload in rows:
            if received_at < now - STALE_AFTER:
                stale.append(event_id)
                continue
            try:
                fresh.append((received_at, parse_event(json.loads(payload or "null"))))
            except (TypeError, ValueError, FieldError):  # written by an older or broken version: never handled
                unreadable.append(event_id)
        if stale or unreadable:
            async with self._sessions() as session:
                await bridge_events.drop(session, stale, now, "stale")
                await bridge_events.drop(session, unreadable, now, "unreadable")
                await session.commit()
            self.dropped_stale += len(stale)
        log.info("bridge events accepted but not handled before the restart: %d handed on, %d dropped as older "
                 "than %s, %d unreadable dropped", len(fresh), len(stale), STALE_AFTER, len(unreadable))
        fresh.sort(key=lambda row: (row[0], row[1].at))  # one group commit shares received_at: then their own time
        for _, event in fresh:
            self.recovered += 1
            self._accept(event, replayed=True)

    # -- one request ----------------------------------------------------------------------------------------------

    async def receive(self, timestamp: str | None, signature: str | None, body: bytes) -> HttpResponse:
        answer = await self._receive(timestamp, signature, body)
        if answer.status != 200:
            self.refused[answer.status] = self.refused.get(answer.status, 0) + 1
        return answer

    async def _receive(self, timestamp: str | None, signature: str | None, body: bytes) -> HttpResponse:
        if not self._signed(timestamp, signature, body):
            log.warning("bridge event refused: missing or wrong signature")
            return HttpResponse.error(401, "missing or wrong X-Bridge-Signature")
        skew = abs(self._clock.now().timestamp() - float(timestamp))  # type: ignore[arg-type]
        if skew > MAX_SKEW_S:
            log.warning("bridge event refused: its timestamp is %.0f s away from our clock", skew)
            return HttpResponse.error(401, f"X-Bridge-Timestamp is more than {MAX_SKEW_S} s from the bot's clock")
        try:
            raw = json.loads(body)
        except (UnicodeDecodeError, ValueError, RecursionError):
            return HttpResponse.error(400, "the body is not JSON")
        if not isinstance(raw, dict):
            return HttpResponse.error(400, "the body must be one JSON object")
        try:
            event = parse_event(raw)
        except FieldError as exc:
            return HttpResponse.error(422, exc.message, field=exc.field)
        try:
            async with asyncio.timeout(REMEMBER_WITHIN_S):  # cheaper than wait_for: no task of its own
                new = await self._remember(event)
        except Exception as exc:  # the database is slow or down: not accepted, the provider resends
            log.error("bridge event %s not accepted in time: its id could not be recorded (%s)", event.kind,
                      type(exc).__name__)
            return HttpResponse.error(503, "the bot cannot record events right now; send it again")
        if new:
            self._accept(event)
        else:
            self.duplicates += 1
        return OK

    def _accept(self, event: BridgeEvent, replayed: bool = False) -> None:
        self.accepted += 1
        mark: Mark | None = None
        if event.event is None:  # the session's events: handled here, at once (nothing pending in the table)
            done: Done = _nothing
        else:
            done, mark = self._done_with(event.id), self._mark_in(event.id)
        try:
            self._on_event(event, done, mark, replayed)
        except Exception:  # accepted already: a bug in handling must not turn into a resend
            log.exception("bridge event %s (%s) failed in handling", event.id, event.kind)
            done(True, False)

    def _mark_in(self, event_id: str) -> Mark:
        async def mark(session: AsyncSession) -> None:
            await bridge_events.mark_handled(session, [event_id], self._clock.now())
        return mark

    def _done_with(self, event_id: str) -> Done:
        self._open += 1
        self._all_done.clear()
        called = False

        def done(handled: bool, marked: bool) -> None:
            nonlocal called
            if called:
                return
            called = True
            self._open -= 1
            if self._open == 0:
                self._all_done.set()
            if handled and not marked:  # no transaction of its own, or rolled back (reported): marked apart
                self._marks.append(event_id)
                self._start_marker()
        return done

    def _start_marker(self) -> None:
        """Marks go with the next batch of ids when one is being written (one commit for both), else on their
        own."""
        if self._writer is None or self._writer.done():
            self._mark_soon()

    def _mark_soon(self) -> None:
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._mark(), name="bridge-marks")

    async def _mark(self) -> None:
        """The handled marks, in batches: those that came while one batch was written go in the next."""
        while self._marks:
            batch, self._marks = self._marks, []
            try:
                async with self._sessions() as session:
                    await bridge_events.mark_handled(session, batch, self._clock.now())
                    await session.commit()
            except Exception as exc:  # they stay pending: handed on once more after a restart
                log.warning("could not mark %d bridge events handled (%s)", len(batch), type(exc).__name__)

    def _signed(self, timestamp: str | None, signature: str | None, body: bytes) -> bool:
        if not timestamp or not signature or not _TIMESTAMP.fullmatch(timestamp):
            return False
        expected = sign(self._secret, timestamp, body)
        return hmac.compare_digest(signature.strip().lower().encode("utf-8", "surrogateescape"), expected.encode())

    # -- accepted ids: one transaction for the ids of concurrent requests ----------------------------------------

    def _remember(self, event: BridgeEvent) -> asyncio.Future:
        """Whether ``event`` is new, once its id is committed (cancelling the wait leaves the write going)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((event, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="bridge-event-ids")
        return future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            marks, self._marks = self._marks, []
            try:
                async with self._sessions() as session:
                    now = self._clock.now()
                    found = await bridge_events.remember_many(session, [event.id for event, _ in batch], now,
                                                              [to_payload(event) for event, _ in batch])
                    if marks:
                        await bridge_events.mark_handled(session, marks, now)
                    await session.commit()
            except Exception as exc:
                self._marks[:0] = marks
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (event, future), new in zip(batch, found, strict=True):
                if not future.done():
                    future.set_result(new)
                elif new:  # its request answered 503 meanwhile, yet the id is recorded: handle it now, once
                    self._accept(event)
        if self._marks:  # came during the last commit
            self._mark_soon()

    async def prune(self) -> None:
        """Forget ids older than KEEP_IDS; again every PRUNE_EVERY_S."""
        self._prune_timer = self._clock.call_later(PRUNE_EVERY_S, self.prune, name="bridge-prune")
        try:
            async with self._sessions() as session:
                gone = await bridge_events.prune(session, self._clock.now() - KEEP_IDS)
                await session.commit()
        except Exception as exc:
            log.warning("could not prune old bridge event ids: %s", type(exc).__name__)
            return
        if gone:
            log.info("forgot %d bridge event ids older than %s", gone, KEEP_IDS)


def _nothing(handled: bool, marked: bool) -> None:
    pass
