"""The account's sending rhythm, for the send governor: the gaps between sends (any two, a switch of chat, the
same chat), the random jitter on them, and the cap per minute. Warm-up after a login stretches the gaps by a
factor the governor passes in.

A send takes its place in the rhythm when the governor releases it to the transport (``reserve``), not when the
transport answers: several sends may be under way at once (different chats), and each must be paced against
those already released. A send that did not go (the transport raised) gives its place back (``give_back``) when
nothing has been paced against it since, so a failure costs the rhythm nothing, as if it had never been tried;
once a later send was released, its place stays taken (the later one already waited for it).
"""

from __future__ import annotations

import random
from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.config import GovernorSettings


@dataclass(slots=True)
class Slot:
    """One released send's place in the rhythm, with what it replaced (to give it back)."""

    number: int
    at: datetime
    chat: str
    prev_last_at: datetime | None
    prev_last_chat: str | None
    prev_chat_at: datetime | None
    prev_jitter: float
    prev_rng: object | None  # the jitter generator's state before this slot drew (None: jitter off)


class Pacing:
    def __init__(self, rng: random.Random) -> None:
        self._rng = rng
        self._last_at: datetime | None = None
        self._last_chat: str | None = None
        self._chat_last: dict[str, datetime] = {}
        self._recent: deque[datetime] = deque()  # slots within the last minute
        self._number = 0  # slots reserved so far
        self.jitter = 0.0

    def draw_jitter(self, settings: GovernorSettings) -> None:
        self.jitter = round(self._rng.uniform(0, settings.jitter_s), 3)  # milliseconds are plenty

    def earliest(self, chat: str, t: datetime, settings: GovernorSettings, factor: float) -> datetime:
        """The first instant from ``t`` on when a send to ``chat`` keeps the rhythm."""
        s = settings
        if self._last_at is not None:
            gap = s.min_interval_s + self.jitter
            if chat != self._last_chat:
                gap = max(gap, s.chat_switch_interval_s + self.jitter)
            t = max(t, self._last_at + timedelta(seconds=gap * factor))
        last_here = self._chat_last.get(chat)
        if last_here is not None:
            t = max(t, last_here + timedelta(seconds=s.per_chat_interval_s * factor))
        if s.max_per_minute and len(self._recent) >= s.max_per_minute:
            t = max(t, self._recent[-s.max_per_minute] + timedelta(seconds=60))
        return t

    def reserve(self, chat: str, now: datetime, settings: GovernorSettings) -> Slot:
        """A send to ``chat`` is released at ``now``: later sends are paced against it."""
        self._number += 1
        slot = Slot(self._number, now, chat, self._last_at, self._last_chat, self._chat_last.get(chat), self.jitter,
                    self._rng.getstate() if settings.jitter_s else None)
        self._last_at = now
        self._last_chat = chat
        self._chat_last[chat] = now
        self._recent.append(now)
        cutoff = now - timedelta(seconds=60)
        while self._recent and self._recent[0] <= cutoff:
            self._recent.popleft()
        self.draw_jitter(settings)
        return slot

    def give_back(self, slot: Slot) -> None:
        """``slot``'s send did not go: undo it, unless a later send was paced against it already."""
        if slot.number != self._number:
            return
        self._number -= 1
        self._last_at, self._last_chat = slot.prev_last_at, slot.prev_last_chat
        if slot.prev_chat_at is None:
            self._chat_last.pop(slot.chat, None)
        else:
            self._chat_last[slot.chat] = slot.prev_chat_at
        if self._recent and self._recent[-1] == slot.at:
            self._recent.pop()
        self.jitter = slot.prev_jitter
        if slot.prev_rng is not None:
            self._rng.setstate(slot.prev_rng)
