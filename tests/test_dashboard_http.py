"""The HTTP edge of the dashboard and the server against what an outside trial threw at it: undecodable bytes in
credentials, lone surrogates, absurd numbers, tokens in query strings, password guessing, cross-site posts,
sessions that never end; and /health. A real BotApp with its aiohttp server on a free port of 127.0.0.1."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.config import HttpSettings
from bot.events import OutgoingMessage, Priority, ProactiveKind
from bot.transports.base import RiskControlError, UncertainDeliveryError
from bot.web import svg
from bot.web.access_log import redact_line
from bot.web.auth import LoginThrottle
from tests.support import START, RecordingTransport, make_config

TOKEN = "dash-token-0123456789"
API_TOKEN = "api-token-0123456789"


@pytest.fixture
async def bot(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_API_TOKEN", API_TOKEN)
    config = make_config({"bot": {"admins": ["admin1"], "skills": ["orders", "tiers"]}}, min_interval_s=1.0)
    config = replace(config, http=HttpSettings(port=0))
    clock = VirtualClock(START, config.tz)
    app = BotApp(config, clock, RecordingTransport(clock).send, db_url=db_url, rng=random.Random(0), web=True)
    await app.start()
    try:
        yield app, clock, f"http://127.0.0.1:{app.web.port}"
    finally:
        await app.stop()


async def raw_status(port: int, request: bytes) -> int:
    """Send bytes as they are (aiohttp's client would refuse to) and read the status code."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        return int((await reader.readline()).split()[1])
    finally:
        writer.close()


def jar() -> aiohttp.CookieJar:
    return aiohttp.CookieJar(unsafe=True)  # keeps cookies of an IP-address host


async def log_in(client: aiohttp.ClientSession, base: str, token: str = TOKEN, **headers) -> aiohttp.ClientResponse:
    async with client.post(base + "/dashboard/login", data={"token": token}, headers=headers,
                           allow_redirects=False) as r:
        await r.read()
        return r


async def test_undecodable_and_absurd_input_gets_4xx_not_500(bot):
    app, _, base = bot
    port = app.web.port
    end = b"Host: x\r\nConnection: close\r\n\r\n"
    assert await raw_status(port, b"GET /dashboard HTTP/1.1\r\nAuthorization: Bearer \xff\xfe\xed\xa0\x80\r\n" + end) \
        == 401
    assert await raw_status(port, b"GET /dashboard HTTP/1.1\r\nCookie: dashboard_session=\xff\xfe\r\n" + end) == 401
    assert await raw_status(port, b"POST /api/orders HTTP/1.1\r\nX-Signature: sha256=\xff\xfe\r\n"
                                  b"Authorization: \xc3\r\nContent-Length: 2\r\n" + end[:-2] + b"\r\n{}") == 401
    body = b"token=\xff\xfe%ED%A0%80"
    assert await raw_status(port, b"POST /dashboard/login HTTP/1.1\r\nContent-Type: application/x-www-form-urlencoded"
                                  b"\r\nContent-Length: %d\r\n" % len(body) + end[:-2] + b"\r\n" + body) == 401
    bearer = b"Authorization: Bearer " + TOKEN.encode() + b"\r\n"
    assert await raw_status(port, b"GET /dashboard/members/%ED%A0%80%FF%C3 HTTP/1.1\r\n" + bearer + end) == 404
    assert await raw_status(port, b"GET /dashboard/members?q=%ED%A0%80%FF&page=%C3 HTTP/1.1\r\n" + bearer + end) \
        == 200
    headers = {"Authorization": f"Bearer {TOKEN}"}
    async with aiohttp.ClientSession() as c:
        async with c.get(base + "/dashboard/members", params={"page": "9" * 5000},
                         headers=headers) as r:
            assert r.status == 200 and "第 1 / 1 页" in await r.text()
        async with c.get(base + "/dashboard/members/" + "7" * 5000, headers=headers) as r:
            assert r.status == 404 and "Traceback" not in await r.text()


async def test_tokens_and_member_data_stay_out_of_the_access_log(bot, caplog):
    app, _, base = bot
    with caplog.at_level(logging.INFO, logger="bot.web.access"):
        async with aiohttp.ClientSession() as c:
            async with c.get(base + "/health?token=SEKRET1&x=1&Access_Token=SEKRET2") as r:
                assert r.status == 200
            async with c.get(base + "/dashboard/%6Dembers/wxid_secret", headers={"Authorization": f"Bearer {TOKEN}"}):
                pass
    logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.web.access")
    assert "/health?token=…&x=1&Access_Token=…" in logged
    assert "SEKRET" not in logged and "wxid_secret" not in logged and "/dashboard/members/…" in logged
    # the same, line by line: encoded parameter names and URLs in the Referer too
    assert redact_line('"GET /a?%74oken=abc HTTP/1.1" "http://h/b?access_token=xyz"') == \
        '"GET /a?%74oken=… HTTP/1.1" "http://h/b?access_token=…"'


async def test_failed_logins_are_limited_per_address_and_the_limit_wears_off(bot):
    app, clock, base = bot
    async with aiohttp.ClientSession(cookie_jar=jar()) as c:
        for _ in range(5):
            assert (await log_in(c, base, "guess")).status == 401
        refused = await log_in(c, base, TOKEN)  # even the right token: the address waits
        assert refused.status == 429 and int(refused.headers["Retry-After"]) == 60
        await clock.advance(61)
        assert (await log_in(c, base, TOKEN)).status == 303
        for _ in range(5):
            await log_in(c, base, "guess")
        again = await log_in(c, base, TOKEN)
        assert again.status == 429 and int(again.headers["Retry-After"]) == 60  # a success cleared the count
        await clock.advance(61)
        for _ in range(5):
            await log_in(c, base, "guess")
        assert int((await log_in(c, base, TOKEN)).headers["Retry-After"]) == 120  # the second lockout: twice as long


def test_failed_logins_from_everywhere_stop_all_logins_for_a_minute():
    now = [START]
    throttle = LoginThrottle(lambda: now[0], per_address=5, overall=20)
    for i in range(20):
        assert throttle.wait_seconds(f"10.0.0.{i}") == 0
        throttle.failed(f"10.0.0.{i}")
    assert throttle.wait_seconds("192.0.2.1") == 60  # an address that never failed waits too
    now[0] += timedelta(seconds=61)
    assert throttle.wait_seconds("192.0.2.1") == 0


async def test_sessions_are_random_expire_and_logout_revokes(bot):
    app, clock, base = bot
    async with aiohttp.ClientSession(cookie_jar=jar()) as c1, aiohttp.ClientSession(cookie_jar=jar()) as c2:
        first, second = await log_in(c1, base), await log_in(c2, base)
        cookie1, cookie2 = first.cookies["dashboard_session"], second.cookies["dashboard_session"]
        assert cookie1.value != cookie2.value and TOKEN not in cookie1.value
        assert cookie1["max-age"] == str(12 * 3600) and cookie1["httponly"]
        async with c1.post(base + "/dashboard/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with aiohttp.ClientSession(cookies={"dashboard_session": cookie1.value}) as replay, \
                replay.get(base + "/dashboard", allow_redirects=False) as r:
            assert r.status == 401  # the copied cookie of a logged-out session is worth nothing
        async with c2.get(base + "/dashboard") as r:
            assert r.status == 200  # the other session is untouched
        await clock.advance(12 * 3600 + 1)
        async with c2.get(base + "/dashboard", allow_redirects=False) as r:
            assert r.status == 401


async def test_cross_site_login_and_logout_posts_are_refused(bot):
    app, _, base = bot
    async with aiohttp.ClientSession(cookie_jar=jar()) as c:
        evil = await log_in(c, base, Origin="https://evil.example")
        assert evil.status == 403 and "dashboard_session" not in evil.cookies
        assert (await log_in(c, base, Referer="https://evil.example/page")).status == 403
        assert (await log_in(c, base, Origin=base)).status == 303
        async with c.post(base + "/dashboard/logout", headers={"Origin": "null"}, allow_redirects=False) as r:
            assert r.status == 403
        async with c.get(base + "/dashboard") as r:
            assert r.status == 200  # still logged in


async def test_health_open_and_detailed(bot, monkeypatch):
    app, _, base = bot
    async with aiohttp.ClientSession() as c:
        async with c.get(base + "/health") as r:
            assert r.status == 200 and await r.json() == {"status": "ok"}
        app.services.activity.record("message", room_id="g1", member_id="u1", detail={"t": "hi"})
        async with c.get(base + "/health", headers={"Authorization": f"Bearer {API_TOKEN}"}) as r:
            answer = await r.json()
        assert answer["status"] == "ok" and answer["database"]["ok"] is True
        assert answer["activity"]["backlog"] >= 1 and answer["transport"]["state"] == "online"
        app.health.logged_out("test")
        async with c.get(base + "/health") as r:
            assert r.status == 200 and await r.json() == {"status": "degraded"}
        engine = create_async_engine("postgresql+asyncpg://nobody@127.0.0.1:1/none")  # nothing listens on port 1
        try:
            monkeypatch.setattr(app.services, "sessions", async_sessionmaker(engine))
            async with c.get(base + "/health") as r:
                assert r.status == 503 and await r.json() == {"status": "degraded"}
            async with c.get(base + "/health", headers={"Authorization": f"Bearer {API_TOKEN}"}) as r:
                answer = await r.json()
            assert r.status == 503 and answer["database"]["ok"] is False and answer["database"]["error"]
        finally:
            await engine.dispose()


def test_svg_escapes_every_text_it_writes():
    evil = '"><script>alert(1)</script>'
    out = "".join((
        svg.bar_chart(evil, evil, [(evil, 1)], color=evil),
        svg.line_chart(evil, evil, [(evil, 1.5), (evil, None)], color=evil, unit=evil),
        svg.stacked_bars(evil, evil, [(evil, {evil: 2})], (evil,), {evil: evil}),
        svg.funnel(evil, evil, [(evil, evil, 3)]),
        svg.empty(evil, evil, evil)))
    assert "<script" not in out and evil not in out and "&lt;script&gt;" in out


async def test_the_account_page_over_http(db_url, monkeypatch):
    """账号状态: online and since when, sends in the last hour, a back-off, drops by reason, held messages by why
    they wait, the transport and its capabilities — each read back from the real page behind the login."""
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    config = replace(make_config(min_interval_s=1.0, room_min_gap_s=3600), http=HttpSettings(port=0))
    clock = VirtualClock(START, config.tz)
    transport = RecordingTransport(clock)
    app = BotApp(config, clock, transport.send, db_url=db_url, rng=random.Random(0), web=True,
                 transport_name="bridge")
    await app.start()
    base = f"http://127.0.0.1:{app.web.port}"
    bearer = {"Authorization": f"Bearer {TOKEN}"}

    async def page(client) -> str:
        await app.activity.flush()
        await app.outbox.flush()
        async with client.get(base + "/dashboard/account", headers=bearer) as r:
            assert r.status == 200
            return await r.text()

    try:
        async with aiohttp.ClientSession() as client:
            async with client.get(base + "/dashboard/account") as r:
                assert r.status == 401 and "账号状态" not in await r.text()
            assert "本次启动后尚未登录" in await page(client)

            app.logged_in("wxid_bot")
            for text in ("一", "二"):
                app.governor.submit(OutgoingMessage(text, room_id="g1"))
            transport.fail_with = [UncertainDeliveryError("timeout (test)")]
            app.governor.submit(OutgoingMessage("三", room_id="g2"))
            await clock.advance(10)
            assert len(transport.sent) == 2
            html = await page(client)
            assert "<b>在线</b>" in html and "自 2026-11-23 09:00 起" in html
            assert '<div class="card" id="sent-last-hour"><b>2</b>' in html
            assert "<tr><td>不确定是否送达</td><td>1</td></tr>" in html
            assert "桥接（HTTP 提供方）" in html
            assert "能力：文字、@提醒" in html and "不支持：图片、文件、链接卡片、踢人" in html

            transport.fail_with = [RiskControlError("too fast (test)")]
            app.governor.submit(OutgoingMessage("四", room_id="g1"))
            await clock.advance(2)
            html = await page(client)
            assert '<div class="card" id="backoffs"><b>1</b>' in html and "退避中，至 2026-11-23 09:01（第 1 级）" in html
            assert "<tr><td>风控退避</td><td>1</td></tr>" in html

            await clock.advance(120)  # the back-off is over: "四" goes out
            for text in ("六", "七"):  # two scheduled messages to one room: the second waits for the room's gap
                app.governor.submit(OutgoingMessage(text, room_id="g3"), priority=Priority.SCHEDULED,
                                    kind=ProactiveKind.LIGHT)
            await clock.advance(10)
            html = await page(client)
            assert "<tr><td>群消息间隔</td><td>1</td></tr>" in html and "<tr><td>风控退避</td>" not in html

            app.health.logged_out("kicked by the platform")
            transport.offline = True
            app.governor.submit(OutgoingMessage("五", room_id="g1"))
            await clock.advance(2)
            html = await page(client)
            assert "<b>离线</b>" in html and "kicked by the platform" in html and "当前未退避" in html
            assert "<tr><td>账号离线</td><td>2</td></tr>" in html  # first match: the account offline
            assert '<div class="card" id="sent-last-hour"><b>4</b>' in html
            async with client.get(base + "/dashboard", headers=bearer) as r:
                assert 'href="/dashboard/account"' in await r.text()
    finally:
        await app.stop()
