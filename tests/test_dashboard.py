"""The dashboard over real HTTP (aiohttp server on a free port) against a real SQLite file."""

from __future__ import annotations

import logging
import re
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import func, select

from skills.tiers import run_pass
from storage.models import Activity
from skills.lottery.models import Lottery
from tests.support import Harness
from tests.support.tiers_support import TODAY_NOON, Seeder, ago, seed_population, serve, tiers_config

pytestmark = pytest.mark.all_backends  # the tiers' SQL runs on SQLite and PostgreSQL alike


TOKEN = "test-token-0123456789"
PAGES = ("", "/", "/rooms", "/members", "/members/core1", "/misses", "/jobs", "/lotteries")


async def seed_extra(services) -> None:
    async with services.sessions() as s:
        sd = Seeder(s)
        for i, hit in enumerate((True, True, True, False)):
            kind = "faq_answer" if hit else "faq_miss"
            detail = {"q": "几点发货", "entry": "发货", "score": 0.9, "mode": "keyword"} if hit else \
                {"q": "能开发票吗", "reason": "no_match"}
            sd.event(kind, "act", ago(1) + timedelta(minutes=i), detail=detail)
        sd.event("faq_miss", "core1", ago(0, 9), detail={"q": "能开发票吗？", "reason": "low_score"})
        sd.event("faq_miss", "rich", ago(0, 9), detail={"q": "能开发票吗", "reason": "no_match"})
        await sd.commit()
        s.add(Lottery(room_id="g1", prize="帆布袋", winners=2, keyword="抽奖", cost=0, commitment="ab" * 32,
                      seed="cd" * 32, status="open", created_by="admin1", created_at=ago(0, 9),
                      deadline=ago(0, 9) + timedelta(hours=3)))
        await s.commit()


@asynccontextmanager
async def seeded(db_url: str):
    """The app at noon today with the dashboard's population and extras, after a tier pass."""
    config = tiers_config()
    config = replace(config, bot=replace(config.bot, skills=(*config.bot.skills, "faq", "lottery")))
    async with Harness(config, db_url, start=TODAY_NOON) as h:
        await h.clock.run_pending()
        await seed_population(h.app.services)
        await seed_extra(h.app.services)
        await run_pass(h.app.services)
        yield h


@pytest.fixture
async def site(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    async with seeded(db_url) as h, serve(h.app.services, h.app.skills, access_log=True) as base:
        yield h, base


async def get(base: str, path: str, *, token: str | None = TOKEN, **params) -> tuple[int, str]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    async with aiohttp.ClientSession() as c, c.get(base + "/dashboard" + path, headers=headers, params=params,
                                                    allow_redirects=False) as r:
        return r.status, await r.text()


async def test_every_page_needs_the_token(site):
    h, base = site
    for path in PAGES:
        status, body = await get(base, path, token=None)
        assert status == 401, path
        assert "访问令牌" in body and "核心甲" not in body and "chart-" not in body
        status, body = await get(base, path, token="wrong")
        assert status == 401 and "核心甲" not in body
        status, _ = await get(base, path)
        assert status == 200, path


async def test_login_with_the_form_sets_a_session_cookie(site):
    h, base = site
    # unsafe=True: the client keeps cookies of an IP-address host (the server here is 127.0.0.1)
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as c:
        async with c.post(base + "/dashboard/login", data={"token": "nope"}, allow_redirects=False) as r:
            assert r.status == 401 and "令牌不对" in await r.text()
        async with c.post(base + "/dashboard/login", data={"token": TOKEN}, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/dashboard"
            cookie = r.cookies["dashboard_session"]
            assert cookie["httponly"] and cookie.value != TOKEN
        async with c.get(base + "/dashboard") as r:
            assert r.status == 200 and "每日活跃成员" in await r.text()
            assert r.headers["Cache-Control"] == "no-store" and "frame-ancestors 'none'" in r.headers[
                "Content-Security-Policy"]
        async with c.post(base + "/dashboard/logout", allow_redirects=False) as r:
            assert r.status == 303
        async with c.get(base + "/dashboard", allow_redirects=False) as r:
            assert r.status == 401


async def test_without_a_configured_token_the_dashboard_is_off(site, monkeypatch):
    h, base = site
    monkeypatch.delenv("DASHBOARD_TOKEN")
    status, body = await get(base, "")
    assert status == 503 and "DASHBOARD_TOKEN" in body and "chart-" not in body


async def test_overview_charts_carry_the_database_figures(site):
    h, base = site
    status, body = await get(base, "")
    assert status == 200
    async with h.app.services.sessions() as s:
        messages_today = await s.scalar(select(func.count()).select_from(Activity).where(
            Activity.kind == "message", Activity.at >= ago(0, 0)))
    assert messages_today == 2
    assert f'data-key="2026-11-23" data-value="{messages_today}"' in body  # today, live
    assert 'data-key="2026-11-22" data-value="3"' in body  # yesterday's messages: newbie, act, core1
    faq = re.search(r'<svg id="chart-faq".*?</svg>', body).group(0)
    assert 'data-key="2026-11-22" data-value="75"' in faq  # 3 answered of 4 asked
    assert 'data-key="2026-11-23" data-value="0"' in faq  # 2 misses today
    funnel = re.search(r'<svg id="chart-funnel".*?</svg>', body).group(0)
    # joined in the last 90 days (to the hour): newbie, act, core1, rich, never, refund; all but "never" spoke
    assert 'data-key="joined" data-value="6"' in funnel and 'data-key="spoke" data-value="5"' in funnel
    assert 'data-key="ordered" data-value="2"' in funnel and 'data-key="ordered_again" data-value="1"' in funnel
    tiers = re.search(r'<svg id="chart-tiers".*?</svg>', body).group(0)
    assert 'data-key="2026-11-23" data-series="core" data-value="2"' in tiers


async def test_member_search_is_literal_and_pages_are_clamped(site):
    h, base = site
    status, body = await get(base, "/members", q="核心")
    assert status == 200 and "核心甲" in body and "阿活" not in body
    for evil in ("' OR 1=1 --", "%", "_", "\\", "\"><script>alert(1)</script>", "x" * 5000):
        status, body = await get(base, "/members", q=evil)
        assert status == 200 and "没有找到匹配的成员" in body and "<script>alert" not in body
    status, body = await get(base, "/members", page="99999999999999999999999999")
    assert status == 200 and "第 1 / 1 页" in body and "核心甲" in body
    status, body = await get(base, "/members", page="-3")
    assert status == 200 and "第 1 / 1 页" in body
    status, body = await get(base, "/members", tier="silent")
    assert "潜水员" in body and "核心甲" not in body


async def test_member_page_shows_tier_and_history(site):
    h, base = site
    status, body = await get(base, "/members/core1")
    assert status == 200 and "核心甲" in body and "R4" not in body or "RFM" in body
    assert "分层变化" in body and "核心" in body and "2 单，¥200.50" in body
    status, body = await get(base, "/members/nobody%27%3B--")
    assert status == 404 and "Traceback" not in body


async def test_misses_jobs_lotteries_and_rooms(site):
    h, base = site
    _, misses = await get(base, "/misses")
    row = re.search(r"<tr><td>能开发票吗[？]?</td><td>(\d+)</td>", misses)
    assert row and row.group(1) == "3"  # the same question, punctuation and case aside... counted together
    _, jobs = await get(base, "/jobs")
    assert "tiers.nightly" in jobs and "daily 03:30" in jobs
    _, lots = await get(base, "/lotteries")
    assert "帆布袋" in lots and "进行中" in lots and "会员一群" in lots
    _, rooms = await get(base, "/rooms")
    assert "会员一群" in rooms and "会员二群" in rooms


async def test_no_member_data_in_the_access_log(site, caplog):
    h, base = site
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        await get(base, "/members", q="核心甲")
        await get(base, "/members/core1")
        await get(base, "/rooms")
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert len(lines) == 3 and any("/dashboard/rooms" in line for line in lines)
    joined = "\n".join(lines)
    assert "core1" not in joined and "%E6%A0%B8" not in joined and "核心" not in joined


async def test_the_bots_own_web_server_serves_the_dashboard(db_url, monkeypatch, caplog):
    import random

    from bot.app import BotApp
    from bot.clock import VirtualClock
    from bot.config import HttpSettings
    from tests.support import RecordingTransport

    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    config = replace(tiers_config(), http=HttpSettings(port=0))
    clock = VirtualClock(TODAY_NOON, config.tz)
    app = BotApp(config, clock, RecordingTransport(clock).send, db_url=db_url, rng=random.Random(0), web=True)
    await app.start()
    try:
        await clock.run_pending()
        await seed_population(app.services)
        await run_pass(app.services)
        base = f"http://127.0.0.1:{app.web.port}"
        with caplog.at_level(logging.INFO, logger="bot.web.access"):
            assert (await get(base, "", token=None))[0] == 401
            status, body = await get(base, "/members", q="核心甲")
            assert status == 200 and "核心甲" in body
        logged = "\n".join(r.getMessage() for r in caplog.records if r.name == "bot.web.access")
        assert "/dashboard/members?…" in logged and "%E6%A0%B8" not in logged and "核心" not in logged
    finally:
        await app.stop()
