"""Customer-contact callbacks and staff messages to the app, kept until handled: the decrypted, parsed callback
is committed as ``wecom_callbacks.payload`` with its key (callbacks.py), pending until its handling is over
(``mark_in``: in the dispatcher's transaction for an event it dispatched; ``handled``: in batches just after, for
one handled without it). At start, ``WeComCallbacks.recover`` hands the pending ones on again, oldest first, before
any new callback; those received more than ``STALE_AFTER`` before are dropped (``dropped = 'stale'``)."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TypeVar

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock
from bot.transports.base import Done, Mark
from storage import wecom as store

log = logging.getLogger(__name__)

STALE_AFTER = timedelta(hours=1)  # still pending after this long at start: dropped, not handled
KEPT_EVENTS = frozenset({"change_external_contact", "change_external_chat"})

T = TypeVar("T")


def kept(fields: dict[str, str]) -> bool:
    """Whether a callback is kept until handled: a customer-contact event or a staff member's text to the app
    (微信客服 wake-ups keep their messages themselves: kf.py)."""
    kind = fields.get("MsgType")
    return kind == "text" or (kind == "event" and fields.get("Event") in KEPT_EVENTS)


def payload(fields: dict[str, str], items: dict[str, tuple[str, ...]]) -> str:
    return json.dumps({"fields": fields, "items": {k: list(v) for k, v in items.items()}}, ensure_ascii=False)


def from_payload(raw: str | None) -> tuple[dict[str, str], dict[str, tuple[str, ...]]] | None:
    try:
        data = json.loads(raw or "null")
        fields = {str(k): str(v) for k, v in data["fields"].items()}
        items = {str(k): tuple(str(x) for x in v) for k, v in data["items"].items()}
        return fields, items
    except (TypeError, ValueError, KeyError, AttributeError):  # not ours to read: never handed on
        return None


async def take_pending(sessions: async_sessionmaker[AsyncSession], now: datetime, prefixes: tuple[str, ...],
                       read: Callable[[str | None], T | None]) -> tuple[list[tuple[str, datetime, T]], int]:
    """At start: the kept callbacks whose keys start with one of ``prefixes`` and not handled yet, each read from its
    payload with ``read`` — (key, received_at, what was read); those received more than STALE_AFTER before ``now``,
    or unreadable (``read`` gives None), dropped as stale. (Those to hand on, how many were dropped.)"""
    async with sessions() as session:
        rows = [row for prefix in prefixes for row in await store.pending(session, prefix)]
    fresh: list[tuple[str, datetime, T]] = []
    stale: list[str] = []
    for key, received_at, raw in rows:
        item = read(raw) if received_at >= now - STALE_AFTER else None
        if item is None:
            stale.append(key)
        else:
            fresh.append((key, received_at, item))
    if stale:
        async with sessions() as session:
            await store.drop(session, stale, now, "stale")
            await session.commit()
    return fresh, len(stale)


class HandledMarks:
    """Notes kept callbacks handled: in the handling transaction, or in batches just after."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], clock: Clock) -> None:
        self._sessions = sessions
        self._clock = clock
        self._marks: list[str] = []
        self._marker: asyncio.Task | None = None

    def mark_in(self, key: str) -> Mark:
        async def mark(session: AsyncSession) -> None:
            await store.mark_handled(session, [key], self._clock.now())
        return mark

    def done_with(self, key: str) -> Done:
        """The dispatcher's ``done``: marked apart when handled and not marked in its own transaction."""
        def done(handled: bool, marked: bool) -> None:
            if handled and not marked:
                self.handled(key)
        return done  # cut off (not handled): still pending, handed on after the restart

    def handled(self, key: str) -> None:
        self._marks.append(key)
        if self._marker is None or self._marker.done():
            self._marker = asyncio.get_running_loop().create_task(self._mark(), name="wecom-callback-marks")

    async def _mark(self) -> None:
        while self._marks:
            batch, self._marks = self._marks, []
            try:
                async with self._sessions() as session:
                    await store.mark_handled(session, batch, self._clock.now())
                    await session.commit()
            except Exception as exc:  # they stay pending: handled once more after a restart
                log.warning("WeCom: could not mark %d callbacks handled (%s)", len(batch), type(exc).__name__)

    async def flush(self) -> None:
        """At stop, once the handling is idle: the last marks written."""
        if self._marker is not None:
            await asyncio.gather(self._marker, return_exceptions=True)
