"""The bridge transport, provider → bot: ``POST /bridge/events`` on the bot's HTTP server (mounted by
bot/web/server.py while the bot runs on the bridge).

Answers, in the order they are checked: 413 over ``MAX_BODY_BYTES`` (the server, before reading); 401 for a
missing or wrong ``X-Bridge-Signature`` (``sha256=`` + hex HMAC-SHA256 with the secret over
``<X-Bridge-Timestamp>.<raw body>``) or a timestamp more than 300 s away from the bot's clock; 400 for a body that
is not a JSON object; 422 ``{"error", "field"}`` for a bad or missing field (bridge_events.py); 200 ``{"ok": true}``
once accepted — and for an id accepted before, which changes nothing. The id is committed (table ``bridge_events``)
before the answer, so a provider's resend is recognised even after a restart; ids of concurrent requests share one
transaction and one multi-row insert (group commit: a 200 still means the id is committed). Handling goes on after the answer: the event is only queued for the dispatcher here. Should the
database keep the answer past ``REMEMBER_WITHIN_S``, the event is refused with 503 (nothing changed: the provider
sends it again).
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
from bot.transports.bridge_events import BridgeEvent, parse_event
from storage import bridge_events

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 256 * 1024
MAX_SKEW_S = 300
REMEMBER_WITHIN_S = 1.5  # the contract's answer comes within 2 s
KEEP_IDS = timedelta(days=3)  # a provider resends within minutes; the ids are kept a few days
PRUNE_EVERY_S = 6 * 3600
_TIMESTAMP = re.compile(r"\d{1,12}(\.\d{1,9})?")

OK = HttpResponse(200, {"ok": True})

EventHandler = Callable[[BridgeEvent], None]


def sign(secret: str, timestamp: str, body: bytes) -> str:
    """The ``X-Bridge-Signature`` header's value for ``body`` sent at ``timestamp`` (providers copy this)."""
    mac = hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256)
    return "sha256=" + mac.hexdigest()


class BridgeInbox:
    """Receives the provider's events; ``on_event`` gets each accepted one (once) and must be quick."""

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
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[int, int] = {}  # answers other than 200, by status

    def __repr__(self) -> str:
        return "BridgeInbox()"

    async def start(self) -> None:
        await self.prune()

    async def stop(self) -> None:
        if self._prune_timer is not None:
            self._prune_timer.cancel()
            self._prune_timer = None
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

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

    def _accept(self, event: BridgeEvent) -> None:
        self.accepted += 1
        try:
            self._on_event(event)
        except Exception:  # accepted already: a bug in handling must not turn into a resend
            log.exception("bridge event %s (%s) failed in handling", event.id, event.kind)

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
            try:
                async with self._sessions() as session:
                    found = await bridge_events.remember_many(session, [event.id for event, _ in batch],
                                                              self._clock.now())
                    await session.commit()
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (event, future), new in zip(batch, found, strict=True):
                if not future.done():
                    future.set_result(new)
                elif new:  # its request answered 503 meanwhile, yet the id is recorded: handle it now, once
                    self._accept(event)

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
