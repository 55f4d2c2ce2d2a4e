"""Exponential back-off, in one place: how long to wait after the n-th failure in a row.

The n-th consecutive failure (n counts from 1) waits ``initial × factor^(n-1)``, never more than ``maximum``.
``backoff_delay`` is the arithmetic for callers that keep their own count (a message's attempts, a job's row);
``Backoff`` keeps the count for one thing that fails and recovers (a connection, the platform's risk control).
"""

from __future__ import annotations

import math


def backoff_delay(attempt: int, initial: float, maximum: float = math.inf, factor: float = 2) -> float:
    """The wait after the ``attempt``-th failure in a row: ``initial × factor^(attempt-1)``, at most ``maximum``.

    The result keeps the arguments' number type (integers in, an integer out), so a delay written into a log or
    an activity row reads as it always did."""
    if attempt < 1:
        raise ValueError(f"back-off attempt counts from 1, got {attempt}")
    try:
        delay = initial * factor ** (attempt - 1)
    except OverflowError:  # past a float's range (~1e308): beyond any maximum, unless there is nothing to grow
        return maximum if initial else initial
    return delay if delay <= maximum else maximum


class Backoff:
    """Consecutive failures of one thing: ``next()`` after each failure gives the wait before trying again,
    ``reset()`` after a success starts again from ``initial``."""

    __slots__ = ("initial", "maximum", "factor", "failures")

    def __init__(self, initial: float, maximum: float = math.inf, factor: float = 2) -> None:
        self.initial = initial
        self.maximum = maximum
        self.factor = factor
        self.failures = 0

    def peek(self) -> float:
        """The wait ``next()`` would give now, without counting a failure (to announce it first)."""
        return backoff_delay(self.failures + 1, self.initial, self.maximum, self.factor)

    def next(self) -> float:
        """Count one more failure; the wait before the next try."""
        self.failures += 1
        return backoff_delay(self.failures, self.initial, self.maximum, self.factor)

    def reset(self) -> None:
        self.failures = 0
