"""The lottery's pure logic: the seed, the commitment, the published entrant list, the documented draw procedure,
durations and ids. No I/O, no clock.

How a draw is made, so that anyone can check it (``python -m bot lottery verify <id>`` or ``/lottery verify <id>``):

1. At the start the bot picks a random ``nonce`` (64 hex characters, stored) and derives the secret
   ``seed = HMAC-SHA256(key, nonce + ":" + str(lottery_id))`` as 64 lowercase hex characters, where ``key`` is the
   operator's secret from the environment (``BOT_LOTTERY_KEY``), never stored in the database. It announces the
   **commitment** ``SHA-256(seed)`` — the hex digest of the seed's 64 ASCII characters. The seed is not stored
   before it is revealed: the database alone does not tell it, and the bot can't change it afterwards without the
   commitment giving it away.
2. Each entrant gets a stable **alias** for this lottery: 8 hex characters (an HMAC of the member id under a
   random per-lottery salt, so it says nothing about the WeChat id). ``/lottery entrants <id>`` lists the aliases
   with display names. At the deadline the aliases are sorted (plain string order), and the bot announces
   ``SHA-256("\\n".join(sorted aliases))`` — UTF-8, no trailing newline — with the seed and the winners. Call the
   sorted list ``remaining``.
3. For ``i = 0, 1, ..., k - 1`` (``k`` = the number of prizes, at most the number of entrants):
   ``h = SHA-256(seed + ":" + str(i))`` (UTF-8, e.g. ``"3f9a...c1:0"``), read as a big-endian unsigned integer;
   the winner number ``i + 1`` is ``remaining.pop(h mod len(remaining))``.
4. Check ``SHA-256(seed) == commitment``, the list's SHA-256 against the announced one, and redo step 3.

In Python::

    import hashlib
    def draw(seed, aliases, k):
        remaining = sorted(set(aliases))
        winners = []
        for i in range(min(k, len(remaining))):
            h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest(), "big")
            winners.append(remaining.pop(h % len(remaining)))
        return winners

(The modulo bias of a 256-bit number over a list of a few thousand names is below 2^-240: negligible.)

Lotteries started before this procedure ("legacy": a seed stored at the start, no nonce) draw over the sorted
WeChat ids instead of aliases, with the same step 3, and publish no list.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from collections.abc import Iterable

from bot.timefmt import format_duration, parse_duration  # noqa: F401  (the lottery's durations)

ALIAS_LEN = 8  # hex characters: 32 bits, so two of a few thousand entrants rarely share one (then: see alias)
MAX_ID = 10**12  # lottery ids and page numbers people type: anything longer is a typo, not a lottery
MIN_KEY_LEN = 32  # characters of BOT_LOTTERY_KEY: shorter keys could be guessed by someone holding the database


def new_nonce() -> str:
    return secrets.token_hex(32)


def new_salt() -> str:
    return secrets.token_hex(16)


def derive_seed(key: bytes, nonce: str, lottery_id: int) -> str:
    """The secret seed of a lottery: only whoever holds the key can compute it before it is revealed."""
    return hmac.new(key, f"{nonce}:{lottery_id}".encode(), hashlib.sha256).hexdigest()


def commitment(seed: str) -> str:
    return hashlib.sha256(seed.encode()).hexdigest()


def alias(salt: str, member_id: str, attempt: int = 0) -> str:
    """A member's alias in one lottery. ``attempt`` > 0 only when an earlier entrant already holds the alias."""
    message = member_id if attempt == 0 else f"{member_id}#{attempt}"
    return hmac.new(salt.encode(), message.encode(), hashlib.sha256).hexdigest()[:ALIAS_LEN]


def entrants_digest(aliases: Iterable[str]) -> str:
    """SHA-256 of the sorted aliases, one per line: what the draw message announces."""
    return hashlib.sha256("\n".join(sorted(aliases)).encode()).hexdigest()


def draw_winners(seed: str, entrant_ids: Iterable[str], k: int) -> list[str]:
    """The documented procedure above; the winners in draw order."""
    remaining = sorted(set(entrant_ids))
    winners: list[str] = []
    for i in range(min(k, len(remaining))):
        h = int.from_bytes(hashlib.sha256(f"{seed}:{i}".encode()).digest(), "big")
        winners.append(remaining.pop(h % len(remaining)))
    return winners


def parse_id(text: str) -> int | None:
    """A lottery id (or page number) as people type it: ``12``, ``#12``; None for anything else (``³``, ``-1``,
    twenty digits)."""
    raw = text.strip().lstrip("#＃")
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit alone accepts ³ and other digits int() refuses
        return None
    value = int(raw)
    return value if 0 < value < MAX_ID else None


def whole_number(text: str) -> int | None:
    """A non-negative whole number of at most 9 digits (full-width digits too), or None: ``isdecimal``, not
    ``isdigit``, which accepts ``³`` that int() refuses."""
    return int(text) if text.isdecimal() and len(text) <= 9 else None
