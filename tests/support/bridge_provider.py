"""The tests' bridge provider: a real aiohttp server on loopback speaking the bridge contract (bridge.md v1).

It records every call the bot makes, answers ``/send`` as told (``then(...)``: ok, 401, 429, 503, 500, a
risk-control body, a timeout, a connection broken after the request was read) and signs events for the bot's
``POST /bridge/events`` the way a provider must (``post_event``). Not a mock of our code: the platform's edge.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import aiohttp
from aiohttp import web

TOKEN = "provider-token-for-tests"
SECRET = "bridge-secret-for-tests"


@dataclass
class Call:
    method: str
    path: str
    authorization: str | None
    body: Any


def signature(secret: str, timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


class MockProvider:
    """``then("ok" | 401 | 403 | 429 | 500 | 503 | "risk_control" | "timeout" | "disconnect", times=n)`` queues
    how the next ``/send`` calls are answered (after them: ok)."""

    def __init__(self, token: str = TOKEN, capabilities: dict | None = None) -> None:
        self.token = token
        self.capabilities = capabilities if capabilities is not None else {
            "send_text": True, "mention": True, "image": False, "kick": True, "invite": False}
        self.calls: list[Call] = []
        self.sends: list[dict] = []  # /send calls answered 200
        self.members: dict[str, list[dict]] = {}
        self._script: deque = deque()
        self._changed = asyncio.Condition()
        self._release = asyncio.Event()  # ends the "timeout" answers' wait (at stop)
        self._runner: web.AppRunner | None = None
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def then(self, answer: Any, times: int = 1) -> None:
        self._script.extend([answer] * times)

    async def start(self) -> MockProvider:
        app = web.Application()
        app.router.add_get("/capabilities", self._capabilities)
        app.router.add_post("/send", self._send)
        app.router.add_post("/kick", self._kick)
        app.router.add_get("/rooms/{room}/members", self._members)
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        self._release.set()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def calls_to(self, path: str) -> list[Call]:
        return [c for c in self.calls if c.path == path]

    async def wait_for(self, predicate, timeout: float = 10.0) -> None:
        """Wait until ``predicate()`` holds (checked at every call the provider gets)."""
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(predicate), timeout)

    async def wait_sends(self, n: int, timeout: float = 10.0) -> list[dict]:
        await self.wait_for(lambda: len(self.sends) >= n, timeout)
        return self.sends

    # -- the contract's endpoints ---------------------------------------------------------------------------------

    async def _record(self, request: web.Request) -> tuple[Call, bool]:
        raw = await request.read()
        call = Call(request.method, request.path, request.headers.get("Authorization"),
                    json.loads(raw) if raw else None)
        self.calls.append(call)
        async with self._changed:
            self._changed.notify_all()
        return call, call.authorization == f"Bearer {self.token}"

    async def _capabilities(self, request: web.Request) -> web.Response:
        _, authorized = await self._record(request)
        if not authorized:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response(self.capabilities)

    async def _send(self, request: web.Request) -> web.StreamResponse:
        call, authorized = await self._record(request)
        if not authorized:
            return web.json_response({"error": "unauthorized"}, status=401)
        answer = self._script.popleft() if self._script else "ok"
        if answer == "timeout":
            await self._release.wait()  # longer than the bot waits
            return web.json_response({"error": "too late"}, status=504)
        if answer == "disconnect":  # read, maybe acted on, then the connection breaks before any answer
            assert request.transport is not None
            request.transport.abort()
            return web.Response(status=500)
        if answer == "risk_control":
            return web.json_response({"error": "risk_control"}, status=400)
        if isinstance(answer, int):
            return web.json_response({"error": f"status {answer}"}, status=answer)
        self.sends.append(call.body)
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"id": f"pm{len(self.sends)}"})

    async def _kick(self, request: web.Request) -> web.Response:
        _, authorized = await self._record(request)
        return web.json_response({} if authorized else {"error": "unauthorized"}, status=200 if authorized else 401)

    async def _members(self, request: web.Request) -> web.Response:
        _, authorized = await self._record(request)
        if not authorized:
            return web.json_response({"error": "unauthorized"}, status=401)
        return web.json_response({"members": self.members.get(request.match_info["room"], [])})


@dataclass
class EventPoster:
    """Posts events to the bot's ``/bridge/events`` as a provider does: signed, timestamped."""

    bot_url: str
    secret: str = SECRET
    clock_now: Any = time.time  # seconds since the epoch, for the timestamp header
    _http: aiohttp.ClientSession | None = field(default=None, repr=False)

    async def __aenter__(self) -> EventPoster:
        self._http = aiohttp.ClientSession()
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._http is not None
        await self._http.close()

    async def post(self, event: Any = None, *, raw: bytes | None = None, timestamp: str | None = None,
                   signature_value: str | None = None, sign: bool = True) -> tuple[int, Any]:
        body = raw if raw is not None else json.dumps(event).encode()  # \uXXXX escapes: lone surrogates too
        ts = timestamp if timestamp is not None else str(int(self.clock_now()))
        headers = {"Content-Type": "application/json", "X-Bridge-Timestamp": ts}
        if sign:
            headers["X-Bridge-Signature"] = signature_value or signature(self.secret, ts, body)
        assert self._http is not None
        async with self._http.post(f"{self.bot_url}/bridge/events", data=body, headers=headers) as response:
            text = await response.text()
            try:
                return response.status, json.loads(text)
            except ValueError:
                return response.status, text
