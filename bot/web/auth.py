"""Who may call the bot's HTTP server: the API's bearer token or body signature, and the dashboard's login.

Every comparison is constant-time; tokens and signatures are never logged.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from bot.context import Services

DASHBOARD_COOKIE = "dashboard_session"


def bearer_matches(headers: Mapping[str, str], token: str | None) -> bool:
    """``Authorization: Bearer <token>`` with exactly this token."""
    auth = headers.get("Authorization", "")
    return bool(token) and auth.startswith("Bearer ") and hmac.compare_digest(
        auth[7:].strip().encode("utf-8", "surrogateescape"), token.encode())


def signature_matches(headers: Mapping[str, str], body: bytes, secret: str | None) -> bool:
    """``X-Signature: sha256=<hex>``: the HMAC-SHA256 of the raw body with ``secret``."""
    signature = headers.get("X-Signature", "")
    if not secret or not signature.startswith("sha256="):
        return False
    expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    return hmac.compare_digest(signature[7:].strip().lower().encode("utf-8", "surrogateescape"), expected.encode())


def api_authorized(headers: Mapping[str, str], body: bytes, token: str | None, secret: str | None) -> bool:
    return bearer_matches(headers, token) or signature_matches(headers, body, secret)


def dashboard_token(services: Services) -> str | None:
    return os.environ.get(services.config.dashboard.token_env) or None


def dashboard_session_value(token: str) -> str:
    return hmac.new(token.encode(), b"dashboard-session-v1", hashlib.sha256).hexdigest()


def dashboard_authorized(request: web.Request, services: Services) -> bool:
    token = dashboard_token(services)
    if token is None:
        return False
    if bearer_matches(request.headers, token):
        return True
    cookie = request.cookies.get(DASHBOARD_COOKIE, "")
    return bool(cookie) and hmac.compare_digest(cookie.encode("utf-8", "surrogateescape"),
                                                dashboard_session_value(token).encode())
