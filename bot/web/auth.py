"""Who may call the bot's HTTP server: the API's bearer token or body signature, and the dashboard's login.

Every comparison is constant-time; tokens and signatures are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from aiohttp import web

if TYPE_CHECKING:
    from bot.context import Services

DASHBOARD_COOKIE = "dashboard_session"
SESSION_HOURS = 12


def _raw(value: str) -> bytes:
    """A header's text as the bytes that came (aiohttp keeps undecodable bytes as surrogates); never an exception,
    whatever arrived (a lone surrogate outside those becomes "?")."""
    try:
        return value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        return value.encode("utf-8", "replace")


def bearer_matches(headers: Mapping[str, str], token: str | None) -> bool:
    """``Authorization: Bearer <token>`` with exactly this token."""
    auth = headers.get("Authorization", "")
    return bool(token) and auth.startswith("Bearer ") and hmac.compare_digest(_raw(auth[7:].strip()), token.encode())


def signature_matches(headers: Mapping[str, str], body: bytes, secret: str | None) -> bool:
    """``X-Signature: sha256=<hex>``: the HMAC-SHA256 of the raw body with ``secret``."""
    signature = headers.get("X-Signature", "")
    if not secret or not signature.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(_raw(signature[7:].strip().lower()), expected.encode())


def api_authorized(headers: Mapping[str, str], body: bytes, token: str | None, secret: str | None) -> bool:
    return bearer_matches(headers, token) or signature_matches(headers, body, secret)


def dashboard_token(services: Services) -> str | None:
    return os.environ.get(services.config.dashboard.token_env) or None


class DashboardSessions:
    """Logged-in dashboard sessions: random ids kept in this process's memory, each valid ``hours`` from login
    (a restart or a new token logs everyone out; logout revokes one)."""

    MAX = 1000  # sessions kept; past it the oldest go

    def __init__(self, now: Callable[[], datetime], hours: int = SESSION_HOURS) -> None:
        self._now = now
        self.lifetime = timedelta(hours=hours)
        self._expires: dict[str, tuple[datetime, str]] = {}  # id → (expiry, the token's fingerprint)

    def open(self, token: str) -> str:
        now = self._now()
        self._expires = {k: v for k, v in self._expires.items() if v[0] > now}
        while len(self._expires) >= self.MAX:
            del self._expires[next(iter(self._expires))]
        sid = secrets.token_urlsafe(32)
        self._expires[sid] = (now + self.lifetime, _fingerprint(token))
        return sid

    def valid(self, sid: str, token: str) -> bool:
        entry = self._expires.get(sid) if sid.isascii() else None
        if entry is None:
            return False
        if entry[0] <= self._now() or not hmac.compare_digest(entry[1], _fingerprint(token)):
            self._expires.pop(sid, None)
            return False
        return True

    def revoke(self, sid: str) -> None:
        self._expires.pop(sid, None)


def _fingerprint(token: str) -> str:
    return hashlib.sha256(b"dashboard-session-v2" + token.encode()).hexdigest()


class LoginThrottle:
    """Failed dashboard logins: ``per_address`` a minute from one address, then it waits 1, 2, 4 … minutes (at
    most an hour) per further failure; ``overall`` failures a minute from everyone together stop all logins for
    that minute. A success clears the address."""

    def __init__(self, now: Callable[[], datetime], per_address: int = 5, overall: int = 60) -> None:
        self._now = now
        self.per_address = per_address
        self.overall = overall
        self._failures: dict[str, deque[datetime]] = {}
        self._locked: dict[str, tuple[datetime, int]] = {}  # address → (until, lockouts so far)
        self._all: deque[datetime] = deque()

    def wait_seconds(self, address: str) -> int:
        """0 if ``address`` may try now, else the seconds to wait."""
        now = self._now()
        while self._all and self._all[0] <= now - timedelta(minutes=1):
            self._all.popleft()
        waits = [0.0]
        locked = self._locked.get(address)
        if locked and locked[0] > now:
            waits.append((locked[0] - now).total_seconds())
        if len(self._all) >= self.overall:
            waits.append((self._all[0] + timedelta(minutes=1) - now).total_seconds())
        return int(max(waits) + 0.999)

    def failed(self, address: str) -> None:
        now = self._now()
        self._all.append(now)
        recent = self._failures.setdefault(address, deque())
        while recent and recent[0] <= now - timedelta(minutes=1):
            recent.popleft()
        recent.append(now)
        if len(recent) >= self.per_address:
            _, times = self._locked.get(address, (now, 0))
            self._locked[address] = (now + timedelta(minutes=min(60, 2 ** times)), times + 1)
            recent.clear()
        if len(self._failures) > 10_000:  # many addresses: forget the quiet ones
            self._failures = {a: d for a, d in self._failures.items() if d and d[-1] > now - timedelta(minutes=1)}
            self._locked = {a: v for a, v in self._locked.items() if v[0] > now}

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
        self._locked.pop(address, None)


def same_origin(request: web.Request) -> bool:
    """A state-changing POST from our own pages: its ``Origin`` (else its ``Referer``) names this host, or the
    client sent neither (non-browser clients); a browser's cross-site form post names the other site."""
    source = request.headers.get("Origin") or request.headers.get("Referer")
    if source is None:
        return True
    try:
        parts = urlsplit(source)
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and parts.netloc.lower() == (request.host or "").lower()


SESSIONS = web.AppKey("dashboard_sessions", DashboardSessions)


def dashboard_authorized(request: web.Request, services: Services) -> bool:
    token = dashboard_token(services)
    if token is None:
        return False
    if bearer_matches(request.headers, token):
        return True
    sessions = request.app.get(SESSIONS)
    cookie = request.cookies.get(DASHBOARD_COOKIE, "")
    return bool(cookie) and sessions is not None and sessions.valid(cookie, token)
