"""What members type to the poll skill, cleaned where it enters: the start line, a vote, a duration. No I/O."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import timedelta

from bot.timefmt import format_duration, parse_duration  # noqa: F401  (re-exported for the skill)

MAX_QUESTION = 100  # characters; the column holds 256
MAX_OPTION = 40  # characters per option
MAX_OPTIONS = 20  # the most max_options may allow (votes are numbers members type)
SEPARATORS = re.compile(r"[|｜]")
# duration=1h anywhere in the line (or 时长=); "：" and "＝" arrive as ":" and "=" (bot.parser.normalize)
_DURATION = re.compile(r"(?:^|(?<=\s))(?:duration|时长)\s*[=:]\s*(\S*)", re.IGNORECASE)
# Cf characters that reorder or hide text (bidi overrides and isolates); the zero-width joiner of emoji stays
_HIDDEN = {0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A), 0xFEFF}


class InputError(ValueError):
    """The member's input doesn't fit: the message says what to write instead (Chinese, shown as it is)."""


@dataclass(frozen=True)
class StartRequest:
    question: str
    options: tuple[str, ...]
    duration: timedelta


def clean(text: str) -> str:
    """Control and invisible reordering characters out, spaces collapsed."""
    kept = "".join(c for c in text if unicodedata.category(c) != "Cc" and ord(c) not in _HIDDEN)
    return " ".join(kept.split())


def parse_start(text: str, *, max_options: int, default: timedelta, longest: timedelta) -> StartRequest:
    """``问题 | 选项1 | 选项2 [| …] [duration=1h]``: everything checked before anything changes."""
    durations = _DURATION.findall(text)
    text = _DURATION.sub(" ", text)
    if len(durations) > 1:
        raise InputError("duration 只能写一次。")
    duration = default
    if durations:
        duration = parse_duration(durations[0])
        if duration is None:
            raise InputError("duration 请写成 30m、2h、1d 这样的时长，例如 duration=1h。")
        if duration < timedelta(minutes=1):
            raise InputError("投票时长至少 1 分钟。")
        if duration > longest:
            raise InputError(f"投票时长最长 {format_duration(longest)}。")
    parts = [clean(p) for p in SEPARATORS.split(text)]
    question, options = parts[0], [p for p in parts[1:] if p]
    if not question:
        raise InputError("请先写问题，再用 | 隔开各个选项。")
    if len(question) > MAX_QUESTION:
        raise InputError(f"问题太长了（{len(question)} 字），请控制在 {MAX_QUESTION} 字以内。")
    if not options:
        raise InputError("请用 | 隔开问题和选项，至少两个选项。")
    if len(options) < 2:
        raise InputError("至少要两个选项才能投票哦。")
    if len(options) > max_options:
        raise InputError(f"选项最多 {max_options} 个，现在有 {len(options)} 个。")
    for i, option in enumerate(options, start=1):
        if len(option) > MAX_OPTION:
            raise InputError(f"第 {i} 个选项太长了，请控制在 {MAX_OPTION} 字以内。")
    seen: set[str] = set()
    for option in options:
        key = unicodedata.normalize("NFKC", option).casefold()
        if key in seen:
            raise InputError(f"选项「{option}」重复了。")
        seen.add(key)
    return StartRequest(question, tuple(options), duration)


# -- votes ---------------------------------------------------------------------------------------------------------

_CN_NUMBERS = {"一": 1, "二": 2, "两": 2, "三": 3, "四": 4, "五": 5, "六": 6, "七": 7, "八": 8, "九": 9, "十": 10}
_BARE = re.compile(r"^\d{1,2}$")
# 第2个, 第二个, 第2, 选2, 2号, 选第2个
_NAMED = re.compile(r"^(?:选|投)?(?:第)?(\d{1,2}|[一二两三四五六七八九十])(?:个|项|号)?$")


def parse_vote(text: str, *, command: bool = False) -> tuple[int, bool] | None:
    """(option number, explicit) from ``1``, ``２``, ``第2个``, ``选二``; None when the text is no vote.

    ``explicit``: the member clearly meant an option (第…个, or after ``/投票``); a bare number in chat may be
    chatter when it is out of range, and a lone Chinese numeral ("二") is taken only after the command.
    """
    text = unicodedata.normalize("NFKC", text).strip()
    if len(text) > 8:
        return None
    if _BARE.match(text):
        return int(text), command
    m = _NAMED.match(text)
    if m is None or (m.group(0) == m.group(1) and not command):
        return None
    raw = m.group(1)
    return (int(raw) if raw.isdigit() else _CN_NUMBERS[raw]), True



