"""Settings of the FAQ's handoff to people (``[skills.faq.handoff]``) and the duration they are written in."""

from __future__ import annotations

import re
from dataclasses import dataclass

_DURATION = re.compile(r"^\s*(\d{1,6})\s*(s|秒|m|min|分钟?|h|小时|d|天)\s*$", re.IGNORECASE)
_UNIT_S = {"s": 1, "秒": 1, "m": 60, "min": 60, "分": 60, "分钟": 60, "h": 3600, "小时": 3600, "d": 86400, "天": 86400}


def parse_duration(text: str) -> float:
    """"30m", "2h", "1天", "90s" → seconds; ValueError otherwise. (A skill imports no other skill, so the FAQ has
    its own, like poll and lottery.)"""
    m = _DURATION.match(text)
    if m is None:
        raise ValueError(f"{text!r} is not a duration like 30m, 2h or 1d")
    return int(m.group(1)) * _UNIT_S[m.group(2).lower()]


@dataclass(frozen=True)
class HandoffSettings:
    renotify_after: str = "30m"  # a ticket still waiting this long is told to the operators once more ("" = never)
    follow_up_window: str = "2h"  # after an operator's reply, the member's further questions still go to the ticket
    chat_minutes: int = 30  # the operators are shown the chat's lines of this many minutes before the question...
    chat_lines: int = 5  # ...at most this many

    def __post_init__(self) -> None:
        for key in ("renotify_after", "follow_up_window"):
            value = getattr(self, key)
            if key == "renotify_after" and value == "":
                continue
            try:
                seconds = parse_duration(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
            if not 60 <= seconds <= 7 * 86400:
                raise ValueError(f"{key}: must be between 1 minute and 7 days")
        if not 0 <= self.chat_lines <= 20:
            raise ValueError("chat_lines: must be between 0 and 20")

    @property
    def renotify_s(self) -> float | None:
        return parse_duration(self.renotify_after) if self.renotify_after else None

    @property
    def follow_up_s(self) -> float:
        return parse_duration(self.follow_up_window)
