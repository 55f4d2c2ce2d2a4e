"""The bot on the bridge for tests: the real app (SQLite file, skills, governor) on a virtual clock, its HTTP
server on a loopback port, talking to tests/support/bridge_provider.py's provider over real HTTP; and an alert webhook
receiver, a real aiohttp server that records what it is sent."""

from __future__ import annotations

import asyncio
import random
import uuid
from dataclasses import replace
from datetime import datetime
from itertools import count

from aiohttp import web

from bot.clock import VirtualClock
from bot.config import parse_config
from bot.transports.bridge_wiring import BridgeBot, start_bridge_bot
from tests.support.bridge_provider import SECRET, EventPoster, MockProvider
from tests.support import START, fast_governor

ROOM = "r1"


def bridge_config(*, skills=("ping",), alerts: dict | None = None, **governor):
    cfg = parse_config({
        "bot": {"admins": ["admin1"], "skills": list(skills)},
        "http": {"port": 0},
        "alerts": alerts or {"webhook_url_env": "TEST_ALERT_WEBHOOK", "webhook_format": "json"},
    })
    return replace(cfg, governor=fast_governor(**governor))


class AlertReceiver:
    """A group robot's webhook stand-in: records every JSON body posted to it."""

    def __init__(self) -> None:
        self.received: list[dict] = []
        self._runner: web.AppRunner | None = None
        self._changed = asyncio.Condition()
        self.port = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/robot/send?key=secret-robot-key"

    async def start(self) -> AlertReceiver:
        app = web.Application()
        app.router.add_post("/robot/send", self._post)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.port = self._runner.addresses[0][1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _post(self, request: web.Request) -> web.Response:
        self.received.append(await request.json())
        async with self._changed:
            self._changed.notify_all()
        return web.json_response({"errcode": 0, "errmsg": "ok"})

    async def wait_for(self, n: int, timeout: float = 20.0) -> list[dict]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.received) >= n), timeout)
        return self.received

    def events(self) -> list[str]:
        return [a.get("event") for a in self.received]


class BridgeHarness:
    """``async with BridgeHarness(db_url, provider) as h``: the bot on the bridge, and ``h.post(...)`` to send it
    signed events. The clock is virtual: sends go out when the test moves it (``h.settle()``)."""

    def __init__(self, db_url: str, provider: MockProvider, *, config=None, start: datetime = START,
                 token: str | None = None, timeout_s: float = 2.0) -> None:
        self.db_url = db_url
        self.provider = provider
        self.config = config or bridge_config()
        self.clock = VirtualClock(start, self.config.tz)
        self.token = token or provider.token
        self.timeout_s = timeout_s
        self.bot: BridgeBot | None = None
        self.poster: EventPoster | None = None
        self._ids = count(1)
        self._prefix = uuid.uuid4().hex[:8]  # event ids unique across harnesses on one database

    async def __aenter__(self) -> BridgeHarness:
        self.bot = await start_bridge_bot(self.config, self.clock, self.provider.url, self.token, SECRET,
                                          db_url=self.db_url, timeout_s=self.timeout_s, rng=random.Random(0))
        assert self.app.web is not None
        self.poster = await EventPoster(f"http://127.0.0.1:{self.app.web.port}",
                                        clock_now=lambda: self.clock.now().timestamp()).__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        if self.poster is not None:
            await self.poster.__aexit__()
        if self.bot is not None:
            await self.bot.stop()

    @property
    def app(self):
        assert self.bot is not None
        return self.bot.app

    def event(self, kind: str, **fields) -> dict:
        return {"id": fields.pop("id", None) or f"{self._prefix}-{next(self._ids)}", "kind": kind,
                "at": self.clock.now().isoformat(), **fields}

    async def post(self, event=None, **kw) -> tuple[int, object]:
        assert self.poster is not None
        status, body = await self.poster.post(event, **kw)
        await self.app.dispatcher.join()  # handling continues after the answer: let it finish
        return status, body

    async def say(self, user: str, text: str, *, room: str | None = ROOM, name: str | None = None, **fields):
        extra = {"room": room, "room_topic": "会员群"} if room else {}
        return await self.post(self.event("message", user=user, name=name or user, text=text, **{**extra, **fields}))

    async def settle(self) -> None:
        await self.app.settle()
