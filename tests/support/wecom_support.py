"""The bot on WeCom for tests: the real app (database, skills, governor) on a virtual clock, its HTTP server on a
loopback port taking encrypted callbacks from ``CallbackSender``, and calling ``tests/support/wecom_mock.py``'s API server
over real HTTP (``[wecom] api_base`` points at it)."""

from __future__ import annotations

import random

import aiohttp
from dataclasses import replace
from datetime import datetime

from bot.clock import VirtualClock
from bot.config import parse_config
from bot.transports.wecom.wiring import WeComBot, WeComSecrets, start_wecom_bot
from tests.support import START, fast_governor
from tests.support.wecom_mock import AES_KEY, CORP_ID, KF, SECRET, TOKEN, CallbackSender, WeComMock

SECRETS = WeComSecrets(SECRET, TOKEN, AES_KEY)


def wecom_config(mock: WeComMock, *, skills=("ping",), skill_settings: dict | None = None, rooms: dict | None = None,
                 **wecom):
    cfg = parse_config({
        "bot": {"admins": ["admin1"], "skills": list(skills)},
        "http": {"port": 0},
        "rooms": rooms or {},
        "wecom": {"enabled": True, "corp_id": CORP_ID, "agent_id": 1000002, "api_base": mock.url, **wecom},
        "skills": skill_settings or {},
    })
    return replace(cfg, governor=fast_governor(warmup_s=0.0))


class WeComHarness:
    """``async with WeComHarness(db_url, mock, config) as h``: the bot on WeCom; ``h.callbacks`` posts callbacks;
    ``await h.customer(...)`` a 微信客服 message end to end (callback, sync, dispatch); ``h.settle()`` sends."""

    def __init__(self, db_url: str, mock: WeComMock, config=None, *, start: datetime = START) -> None:
        self.db_url = db_url
        self.mock = mock
        self.config = config or wecom_config(mock)
        self.clock = VirtualClock(start, self.config.tz)
        mock.now = lambda: self.clock.now().timestamp()
        self.bot: WeComBot | None = None
        self.callbacks: CallbackSender | None = None

    async def __aenter__(self) -> WeComHarness:
        self.bot = await start_wecom_bot(self.config, self.clock, SECRETS, db_url=self.db_url, timeout_s=2.0,
                                         rng=random.Random(0))
        assert self.app.web is not None
        self.callbacks = await CallbackSender(f"http://127.0.0.1:{self.app.web.port}",
                                              lambda: self.clock.now().timestamp()).__aenter__()
        return self

    async def __aexit__(self, *exc) -> None:
        if self.callbacks is not None:
            await self.callbacks.__aexit__()
        if self.bot is not None:
            await self.bot.stop()

    @property
    def app(self):
        assert self.bot is not None
        return self.bot.app

    async def customer(self, external_userid: str, text: str, *, after_s: float = 0, **kw) -> None:
        """A 微信客服 customer writes: the message waits at WeCom, the callback says so, the bot syncs it."""
        if after_s:
            await self.clock.advance(after_s)
        self.mock.customer_says(external_userid, text, **kw)
        assert self.callbacks is not None
        status, _ = await self.callbacks.kf_event(kw.get("open_kfid", KF))
        assert status == 200
        await self.idle()

    async def idle(self) -> None:
        assert self.bot is not None
        await self.bot.idle()

    async def settle(self) -> None:
        await self.idle()
        await self.app.settle()

    def answers(self, external_userid: str) -> list[str]:
        return [b["text"]["content"] for b in self.mock.sent if b["touser"] == external_userid]


async def dashboard_page(h: WeComHarness, path: str, token: str) -> str:
    """A dashboard page over real HTTP, logged in with ``token`` (the test sets DASHBOARD_TOKEN to it)."""
    assert h.app.web is not None
    base = f"http://127.0.0.1:{h.app.web.port}"
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as client:
        async with client.post(base + "/dashboard/login", data={"token": token}, allow_redirects=False) as r:
            assert r.status in (302, 303)
        async with client.get(base + "/dashboard" + path) as r:
            assert r.status == 200
            return await r.text()
