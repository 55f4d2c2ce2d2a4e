"""The bot's aiohttp server: a health check (``GET /health``: ``{"status": "ok"|"degraded"}`` for anyone, load
balancers included; with the API's bearer token also the database, the activity backlog and the transport's
session; 503 while the database does not answer), the operators' dashboard, and the routes skills declare.

Every route authenticates as it declares (``RouteSpec.auth``): "api" — ``Authorization: Bearer <token>`` with the
token from the environment variable ``[http] token_env``, or ``X-Signature: sha256=<hex>``, the HMAC-SHA256 of the
raw body with the secret from ``[http] hmac_secret_env`` (neither set: 503); "dashboard" — the dashboard's login;
"self" — the handler checks a signature of its own (webhooks). Skills get plain ``bot.http`` values, never aiohttp
objects. Started by ``python -m bot run`` on ``[http] host``/``port`` (default 127.0.0.1:8080).

One core route besides: ``POST /bridge/events``, the bridge provider's events, mounted while the bot runs on the
bridge transport (its receiver checks the provider's signature; bot/transports/bridge_inbox.py) — or, on WeCom,
``GET``/``POST /wecom/callback``, WeCom's callback URL (signed and encrypted; bot/transports/wecom/callbacks.py).
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from aiohttp import web
from aiohttp.web_log import AccessLogger
from sqlalchemy import select

from bot.config import HttpSettings
from bot.http import HttpRequest, HttpResponse
from bot.skill import RouteSpec, Skill
from bot.web import access_log, auth, malformed

if TYPE_CHECKING:
    from bot.context import Services
    from bot.health import SessionHealth

log = logging.getLogger(__name__)

SERVICES = web.AppKey("services", object)
SETTINGS = web.AppKey("http_settings", HttpSettings)
HEALTH = web.AppKey("session_health", object)
DATABASE_TIMEOUT_S = 2.0  # /health's SELECT 1: a load balancer's probe must not hang on a stuck pool


class BridgeReceiver(Protocol):
    """What receives ``POST /bridge/events`` (bot.transports.bridge_inbox.BridgeInbox)."""

    max_body_bytes: int

    async def receive(self, timestamp: str | None, signature: str | None, body: bytes) -> HttpResponse: ...

    async def start(self) -> None: ...

    async def stop(self) -> None: ...


async def _database_ok(services: Services) -> tuple[bool, str]:
    try:
        async with asyncio.timeout(DATABASE_TIMEOUT_S):
            async with services.sessions() as s:
                await s.execute(select(1))
    except TimeoutError:
        return False, f"no answer within {DATABASE_TIMEOUT_S:g} s"
    except Exception as exc:  # noqa: BLE001 — any failure of the probe is the answer, never a 500
        return False, type(exc).__name__
    return True, ""


def _transport(session: SessionHealth | None) -> dict:
    if session is None:
        return {"state": "unknown"}
    incident = session.refused_incident if session.refused else session.offline_incident
    state = "refused" if session.refused else "offline" if session.offline else "online"
    return {"state": state, "incident": incident.kind if incident else None,
            "since": incident.since.isoformat() if incident else None,
            "last_event_at": session.last_event_at.isoformat()}


async def health(request: web.Request) -> web.Response:
    """``{"status": "ok"|"degraded"}`` for anyone; the details only with the API's bearer token."""
    services = request.app[SERVICES]
    database_ok, database_error = await _database_ok(services)
    transport = _transport(request.app.get(HEALTH))
    degraded = not database_ok or transport["state"] in ("offline", "refused")
    answer: dict = {"status": "degraded" if degraded else "ok"}
    token = os.environ.get(request.app[SETTINGS].token_env) or None
    if auth.bearer_matches(request.headers, token):
        activity = services.activity
        answer |= {"database": {"ok": database_ok, "error": database_error or None},
                   "activity": {"backlog": activity.backlog,
                                "last_flush_error": type(activity.last_flush_error).__name__
                                if activity.last_flush_error else None},
                   "transport": transport}
    return web.json_response(answer, status=200 if database_ok else 503, headers={"Cache-Control": "no-store"})


def _mount(app: web.Application, services: Services, route: RouteSpec, settings: HttpSettings) -> None:
    async def handle(request: web.Request) -> web.Response:
        if route.auth == "api":
            token = os.environ.get(settings.token_env) or None
            secret = os.environ.get(settings.hmac_secret_env) or None
            if token is None and secret is None:
                return _json(HttpResponse.error(
                    503, f"API not configured: set {settings.token_env} or {settings.hmac_secret_env}"))
        if request.content_length is not None and request.content_length > settings.max_body_bytes:
            return _json(HttpResponse.error(413, f"body larger than {settings.max_body_bytes} bytes"))
        try:
            body = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _json(HttpResponse.error(413, f"body larger than {settings.max_body_bytes} bytes"))
        if route.auth == "api" and not auth.api_authorized(request.headers, body, token, secret):
            log.warning("%s %s: refused a request from %s (missing or wrong credentials)", route.method, route.path,
                        request.remote)
            return _json(HttpResponse.error(
                401, "missing or wrong credentials (Authorization: Bearer ... or X-Signature: sha256=...)"))
        if route.auth == "dashboard" and not auth.dashboard_authorized(request, services):
            return _json(HttpResponse.error(401, "log in to the dashboard first"))
        req = HttpRequest(route.method, request.path, body, dict(request.query), dict(request.match_info),
                          request.remote)
        try:
            answer = await route.handler(req, services)
        except (ValueError, OverflowError) as exc:  # the body was not what the route reads (not JSON, a date
            answer = HttpResponse.error(400, str(exc)[:200])  # past datetime's range, a number too long to convert)
        return _json(answer)

    app.router.add_route(route.method, route.path, handle)


def _mount_bridge(app: web.Application, receiver: BridgeReceiver) -> None:
    limit = receiver.max_body_bytes
    too_large = HttpResponse.error(413, f"body larger than {limit} bytes")

    async def events(request: web.Request) -> web.Response:
        body = await _body(request, limit)
        if body is None:
            return _json(too_large)
        answer = await receiver.receive(request.headers.get("X-Bridge-Timestamp"),
                                        request.headers.get("X-Bridge-Signature"), body)
        if answer.status == 200 and answer.body == _OK_BODY:  # the common answer, without encoding it each time
            return web.Response(body=_OK_JSON, content_type="application/json")
        return _json(answer)

    app.router.add_post("/bridge/events", events)


def _mount_callbacks(app: web.Application, receiver) -> None:
    """A platform's callback URL (WeCom: bot/transports/wecom/callbacks.py): GET to verify it, POST for events;
    plain-text answers, as the platform expects."""
    limit = receiver.max_body_bytes

    async def verify(request: web.Request) -> web.Response:
        answer = await receiver.verify(dict(request.query))
        return web.Response(status=answer.status, text=answer.text)

    async def events(request: web.Request) -> web.Response:
        body = await _body(request, limit)
        if body is None:
            return web.Response(status=413, text="body too large")
        answer = await receiver.receive(dict(request.query), body)
        return web.Response(status=answer.status, text=answer.text)

    app.router.add_get(receiver.callback_path, verify)
    app.router.add_post(receiver.callback_path, events)


async def _body(request: web.Request, limit: int) -> bytes | None:
    """The request's body, or None when it is larger than ``limit`` bytes (read no further than that)."""
    if request.content_length is not None:
        if request.content_length > limit:
            return None
        return await request.read()  # at most content_length bytes: checked above
    body = bytearray()
    async for chunk in request.content.iter_any():  # chunked bodies have no length up front
        body += chunk
        if len(body) > limit:
            return None
    return bytes(body)


_OK_BODY = {"ok": True}
_OK_JSON = json.dumps(_OK_BODY).encode()


def _json(answer: HttpResponse) -> web.Response:
    return web.json_response(answer.body if answer.body is not None else {}, status=answer.status)


class _AccessLog(AccessLogger):
    """One line per request, but none for the bridge's accepted events: at thousands a second the lines would cost
    more than the events (the inbox counts them; refusals are still logged)."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        if response.status == 200 and request.path in ("/bridge/events", "/wecom/callback"):
            return
        super().log(request, response, time)


def build_app(services: Services, settings: HttpSettings, skills: Sequence[Skill] = (),
              bridge: BridgeReceiver | None = None, health_of: SessionHealth | None = None) -> web.Application:
    from bot.web import dashboard

    malformed.install()
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SERVICES] = services
    app[SETTINGS] = settings
    if health_of is not None:
        app[HEALTH] = health_of
    access_log.install()
    app.router.add_get("/health", health)
    if bridge is not None and hasattr(bridge, "callback_path"):
        _mount_callbacks(app, bridge)
    elif bridge is not None:
        _mount_bridge(app, bridge)
    for skill in skills:
        for route in skill.routes:
            _mount(app, services, route, settings)
    dashboard.setup(app, services, skills, health_of)
    return app


class WebServer:
    def __init__(self, services: Services, settings: HttpSettings, skills: Sequence[Skill] = (),
                 bridge: BridgeReceiver | None = None, health_of: SessionHealth | None = None) -> None:
        self.settings = settings
        self.app = build_app(services, settings, skills, bridge, health_of)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (useful with port = 0)

    async def start(self) -> None:
        # the access log line has method, path, status and size: never headers; bot/web/access_log.py redacts
        # tokens in query strings and member data in dashboard URLs
        self._runner = web.AppRunner(self.app, access_log=logging.getLogger("bot.web.access"),
                                     access_log_class=_AccessLog)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        addresses = self._runner.addresses
        self.port = addresses[0][1] if addresses else self.settings.port
        log.info("HTTP server on http://%s:%s (health: /health)", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
