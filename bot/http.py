"""HTTP as skills see it: plain request and response values, no web framework.

The bot's server (bot/web/server.py, aiohttp) authenticates a request as its route or page declares, turns it into
an :class:`HttpRequest` or :class:`PageRequest`, calls the skill, and turns the answer back. Skills never import
aiohttp.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any


class FieldError(ValueError):
    """A bad or missing field of an input (an API body, a CSV row, a replay line): answered 422 with the field."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


@dataclass(frozen=True)
class HttpRequest:
    method: str
    path: str
    body: bytes = b""
    query: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)  # path parameters, e.g. {member_id}
    remote: str | None = None

    def json(self) -> Any:
        """The body as JSON; raises ValueError (answered 400 by the server) when it is not."""
        try:
            return json.loads(self.body)
        except RecursionError:
            raise ValueError("body is not valid JSON: nested too deeply") from None
        except ValueError as exc:  # not UTF-8, not JSON, a number of thousands of digits
            raise ValueError(f"body is not valid JSON: {str(exc)[:200]}") from None


@dataclass(frozen=True)
class HttpResponse:
    status: int = 200
    body: Any = None  # JSON-serialisable

    @classmethod
    def error(cls, status: int, message: str, field: str | None = None) -> HttpResponse:
        body: dict[str, Any] = {"error": message}
        if field is not None:
            body["field"] = field
        return cls(status, body)


@dataclass(frozen=True)
class PageRequest:
    """A dashboard page view: its path parameters and query string (cleaned by the dashboard)."""

    path: str
    query: dict[str, str] = field(default_factory=dict)
    match: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class PageResult:
    """A template in the skill's ``templates/`` folder and the values it shows (rendered with autoescaping)."""

    template: str
    values: dict[str, Any] = field(default_factory=dict)
    status: int = 200
