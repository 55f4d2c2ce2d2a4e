"""Malformed HTTP from the network (bad header bytes, an absurd Content-Length, control characters in the URL) is
answered 400 by aiohttp's parser, which then logs it at ERROR with a traceback. Anyone can send such bytes: that is
a log flooded with tracebacks on demand. This filter turns them into one WARNING line without the request's bytes
(they may carry tokens) and lets at most one a minute through, with a count of the ones held back."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable

from aiohttp.http_exceptions import HttpProcessingError

LOGGER = "aiohttp.server"
EVERY_S = 60.0


class MalformedRequests(logging.Filter):
    def __init__(self, now: Callable[[], float] = time.monotonic) -> None:
        super().__init__()
        self._now = now
        self._last: float | None = None
        self.held_back = 0

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError) or (exc.code or 400) >= 500:
            return True
        now = self._now()
        if self._last is not None and now - self._last < EVERY_S:
            self.held_back += 1
            return False
        repeats = f" (and {self.held_back} more in the last minute)" if self.held_back else ""
        self._last, self.held_back = now, 0
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.msg, record.args = "refused a malformed HTTP request (%s %s)%s", (exc.code, type(exc).__name__, repeats)
        record.exc_info = record.exc_text = None
        return True


def install() -> None:
    logger = logging.getLogger(LOGGER)
    if not any(isinstance(f, MalformedRequests) for f in logger.filters):
        logger.addFilter(MalformedRequests())
