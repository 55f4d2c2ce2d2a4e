"""POST /api/orders: orders in from the shop's system.

Authentication: ``Authorization: Bearer <token>`` (the token from the environment variable ``[http] token_env``)
or ``X-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body with the secret from ``[http] hmac_secret_env``.
Neither variable set: the API answers 503. Tokens and signatures are never logged.

Answers (JSON): 200 {"result": "applied" | "duplicate" | "stale", "order_id", "status"}; 400 not JSON;
401 missing or wrong credentials; 413 body over ``max_body_bytes`` (1 MB); 422 {"error", "field"} for a bad or
missing field; 503 not configured or the orders skill not enabled.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import os
from typing import TYPE_CHECKING

from aiohttp import web

from bot.orders_input import OrderFieldError, parse_order

if TYPE_CHECKING:
    from bot.context import Services

log = logging.getLogger(__name__)


def _error(status: int, message: str, field: str | None = None) -> web.Response:
    body = {"error": message}
    if field is not None:
        body["field"] = field
    return web.json_response(body, status=status)


def _authorized(request: web.Request, body: bytes, token: str | None, secret: str | None) -> bool:
    auth = request.headers.get("Authorization", "")
    if token and auth.startswith("Bearer ") and hmac.compare_digest(auth[7:].strip().encode(), token.encode()):
        return True
    signature = request.headers.get("X-Signature", "")
    if secret and signature.startswith("sha256="):
        expected = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return hmac.compare_digest(signature[7:].strip().lower().encode(), expected.encode())
    return False


def setup(app: web.Application, services: Services) -> None:
    settings = services.config.http

    async def post_order(request: web.Request) -> web.Response:
        token = os.environ.get(settings.token_env) or None
        secret = os.environ.get(settings.hmac_secret_env) or None
        if token is None and secret is None:
            return _error(503, f"orders API not configured: set {settings.token_env} or {settings.hmac_secret_env}")
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _error(413, f"body larger than {settings.max_body_bytes} bytes")
        if not _authorized(request, body, token, secret):
            log.warning("orders API: refused a request from %s (missing or wrong credentials)", request.remote)
            return _error(401, "missing or wrong credentials (Authorization: Bearer ... or X-Signature: sha256=...)")
        try:
            data = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return _error(400, f"body is not valid JSON: {exc}")
        handler = services.order_handler
        if handler is None:
            return _error(503, "the orders skill is not enabled (add \"orders\" to bot.skills)")
        try:
            result = await handler(parse_order(data), "api")
        except OrderFieldError as exc:
            return _error(422, exc.message, exc.field)
        return web.json_response({"result": result.outcome, "order_id": result.order_id, "status": result.status})

    app.router.add_post("/api/orders", post_order)
