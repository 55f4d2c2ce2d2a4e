"""The lottery's pure logic: the commitment, the documented draw procedure, durations. No I/O, no clock.

How a draw is made, so that anyone can check it (``python -m bot lottery verify <id>`` or ``/lottery verify <id>``):

1. At the start the bot picks a secret ``seed``: 64 lowercase hex characters (``secrets.token_hex(32)``), and
   announces the **commitment** ``SHA-256(seed)`` — the hex digest of the seed's 64 ASCII characters. The seed
   itself is kept secret until the draw, so nobody (the admins included) can predict or steer the result, and
   the bot can't change the seed afterwards without the commitment giving it away.
2. At the draw, the entrants' WeChat ids are sorted (plain string order: by Unicode code point, which is the
   same as the byte order of their UTF-8), duplicates removed. Call that list ``remaining``.
3. For ``i = 0, 1, ..., k - 1`` (``k`` = the number of prizes, at most the number of entrants):
   ``h = SHA-256(seed + ":" + str(i))`` (UTF-8, e.g. ``"3f9a...c1:0"``), read as a big-endian unsigned integer;
   the winner number ``i + 1`` is ``remaining.pop(h mod len(remaining))``.
4. The bot reveals the seed with the winners. Check ``SHA-256(seed) == commitment`` and redo step 2–3.

In Python::

    import hashlib
    def draw(seed, entrant_ids, k):
        remaining = sorted(set(entrant_ids))
        winners = []
        for i in range(min(k, len(remaining))):
            h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest(), "big")
            winners.append(remaining.pop(h % len(remaining)))
        return winners

(The modulo bias of a 256-bit number over a list of a few thousand names is below 2^-240: negligible.)
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Iterable
from datetime import timedelta


def new_seed() -> str:
    return secrets.token_hex(32)


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def draw_winners(seed: str, entrant_ids: Iterable[str], k: int) -> list[str]:
    """The documented procedure above; the winners in draw order."""
    remaining = sorted(set(entrant_ids))
    winners: list[str] = []
    for i in range(min(k, len(remaining))):
        h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest(), "big")
        winners.append(remaining.pop(h % len(remaining)))
    return winners


_UNITS = {"s": 1, "秒": 1, "m": 60, "min": 60, "分": 60, "分钟": 60, "h": 3600, "小时": 3600, "时": 3600,
          "d": 86400, "天": 86400}
_PART = re.compile(r"(\d{1,6})\s*(分钟|小时|min|[smhd秒分时天])", re.IGNORECASE)


def parse_duration(text: str) -> timedelta | None:
    """``30m``, ``2h``, ``1h30m``, ``1d``, ``90s``, ``30分钟``, ``2小时``, ``1天``; a bare number is minutes.
    None for anything else (``forever``, ``-5m``, empty)."""
    text = text.strip().lower()
    if text.isdigit() and len(text) <= 6:
        return timedelta(minutes=int(text))
    pos, total = 0, 0
    for m in _PART.finditer(text):
        if m.start() != pos:
            return None
        total += int(m.group(1)) * _UNITS[m.group(2).lower()]
        pos = m.end()
    if pos == 0 or pos != len(text):
        return None
    return timedelta(seconds=total)


def format_duration(d: timedelta) -> str:
    seconds = int(d.total_seconds())
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "", f"{minutes}分钟" if minutes else "",
             f"{secs}秒" if secs else ""]
    return "".join(parts) or "0秒"
