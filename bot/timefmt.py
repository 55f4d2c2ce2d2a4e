"""Times as operators write them and members read them, in one place: "09:30", "30m"/"2小时", "11月23日 09:30"."""

from __future__ import annotations

import re
import unicodedata
from datetime import datetime, time, timedelta

_HHMM = re.compile(r"([01]?\d|2[0-3]):([0-5]\d)")
_UNITS = {"s": 1, "秒": 1, "m": 60, "min": 60, "分": 60, "分钟": 60, "h": 3600, "小时": 3600, "时": 3600,
          "d": 86400, "天": 86400}
_PART = re.compile(r"(\d{1,6})\s*(分钟|小时|min|[smhd秒分时天])", re.IGNORECASE)


def parse_hhmm(text: str) -> time | None:
    """``"09:30"`` (or ``"9:30"``) → 09:30; None for anything else."""
    m = _HHMM.fullmatch(text.strip()) if isinstance(text, str) else None
    return time(int(m.group(1)), int(m.group(2))) if m else None


def parse_duration(text: str) -> timedelta | None:
    """``30m``, ``2h``, ``1h30m``, ``1d``, ``90s``, ``30分钟``, ``2小时``, ``1天`` (full-width digits too); a bare
    number is minutes. None for anything else (``forever``, ``-5m``, ``³``, empty)."""
    if any(c.isdigit() and not c.isdecimal() for c in text):  # ² ³: digits to isdigit(), not to a member
        return None
    text = unicodedata.normalize("NFKC", text).strip().lower()
    if text.isascii() and text.isdigit() and len(text) <= 6:
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
    """``timedelta(hours=1, minutes=30)`` → ``1小时30分钟``."""
    days, rest = divmod(int(d.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    parts = [f"{days}天" if days else "", f"{hours}小时" if hours else "", f"{minutes}分钟" if minutes else "",
             f"{seconds}秒" if seconds else ""]
    return "".join(parts) or "0秒"


def zh_date(local: datetime) -> str:
    """A local time's day as members read it: ``11月23日``."""
    return f"{local.month}月{local.day}日"


def zh_datetime(local: datetime) -> str:
    """A local time as members read it: ``11月23日 09:30``."""
    return f"{local.month}月{local.day}日 {local:%H:%M}"
