"""Keeps member data and credentials out of the HTTP access log (bot.web.access, aiohttp.access).

Every URL in a line is read after percent-decoding (``/dashboard/%6Dembers/x`` is the members page too):
- /dashboard: search strings and member ids are member data: ``/dashboard/members/…``, queries as ``?…``;
- anywhere: the values of ``token=`` and ``access_token=`` query parameters become ``…``.
"""

from __future__ import annotations

import logging
import re
from urllib.parse import unquote

ACCESS_LOGGERS = ("bot.web.access", "aiohttp.access")  # bot/web/server.py's, and aiohttp's default
SECRET_PARAMS = frozenset({"token", "access_token"})
_URL = re.compile(r"(?:https?://[^\s\"/]+)?/[^\s\"]*")


def redact_url(url: str) -> str:
    """``url`` as it may be logged (unchanged when it carries nothing to hide)."""
    target, sep, query = url.partition("?")
    path = unquote(target, errors="replace")
    prefix = ""
    if "://" in path:
        scheme, _, rest = path.partition("://")
        host, _, tail = rest.partition("/")
        prefix, path = f"{scheme}://{host}", "/" + tail
    if path == "/dashboard" or path.startswith("/dashboard/"):
        if path.startswith("/dashboard/members/"):
            path = "/dashboard/members/…"
        return prefix + path + ("?…" if sep else "")
    if not sep:
        return url
    parts = []
    changed = False
    for pair in query.split("&"):
        key, eq, _ = pair.partition("=")
        if unquote(key, errors="replace").strip().lower() in SECRET_PARAMS:
            parts.append(f"{key}=…")
            changed = True
        else:
            parts.append(pair)
    return target + "?" + "&".join(parts) if changed else url


def redact_line(message: str) -> str:
    return _URL.sub(lambda m: redact_url(m.group(0)), message)


class RedactAccessLog(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        redacted = redact_line(message)
        if redacted != message:
            record.msg, record.args = redacted, ()
        return True


def install() -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, RedactAccessLog) for f in logger.filters):
            logger.addFilter(RedactAccessLog())
