"""The dashboard in a real browser: Debian's headless Chromium driven by Playwright (no browser download).

Logs in through the form, opens the overview, checks what the charts plot against the database, and saves a
screenshot to artifacts/dashboard-overview.png. scripts/test installs Chromium when it is missing (as root, with
apt-get); anywhere else the test skips and says why.
"""

from __future__ import annotations

import os
import shutil
from collections import Counter
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select

from storage.models import Activity
from tests.support import Harness
from tests.test_dashboard import TOKEN, seeded
from tests.support.tiers_support import TODAY_NOON, ago, serve

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

playwright = pytest.importorskip("playwright.async_api", reason="Playwright is not installed (pip install -e '.[dev]')")
if not Path(CHROMIUM).exists():
    if os.environ.get("REQUIRE_BROWSER") == "1":  # CI: the browser test must run, not skip
        pytest.fail("REQUIRE_BROWSER=1 but Chromium is not installed at /usr/bin/chromium", pytrace=False)
    pytest.skip("Chromium is not installed (scripts/test installs it with apt-get when run as root)",
                allow_module_level=True)


async def expected_series(h: Harness) -> tuple[dict[str, int], dict[str, int]]:
    """Messages and active members per local day, counted straight from the activity log."""
    async with h.app.services.sessions() as s:
        rows = (await s.execute(select(Activity.at, Activity.kind, Activity.member_id)
                                .where(Activity.at >= ago(29, 0)))).all()
    messages: Counter[str] = Counter()
    active: dict[str, set] = {}
    for at, kind, member in rows:
        day = h.clock.local(at).date().isoformat()
        if kind == "message":
            messages[day] += 1
        if kind in ("message", "checkin", "order", "redeem") and member:
            active.setdefault(day, set()).add(member)
    return dict(messages), {d: len(m) for d, m in active.items()}


async def plotted(page, chart: str) -> dict[str, int]:
    pairs = await page.eval_on_selector_all(
        f"#{chart} .datum", "els => els.map(e => [e.dataset.key, e.dataset.value])")
    return {k: int(v) for k, v in pairs if v not in ("", "0")}


async def test_overview_in_chromium(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", TOKEN)
    async with seeded(db_url) as h:
        messages, active = await expected_series(h)
        async with h.app.services.sessions() as s:
            sent_last_hour = (await s.execute(select(func.count()).select_from(Activity).where(
                Activity.kind == "sent", Activity.at >= h.clock.now() - timedelta(hours=1)))).scalar_one()
        assert messages and active  # the check below compares something
        async with serve(h.app.services, h.app.skills) as base, playwright.async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=CHROMIUM, headless=True)
            try:
                page = await browser.new_page(viewport={"width": 1280, "height": 1600})
                response = await page.goto(base + "/dashboard")
                assert response.status == 401 and await page.locator("#chart-active").count() == 0
                await page.fill("input[name=token]", "wrong-token")
                await page.click("button[type=submit]")
                assert "令牌不对" in await page.content()
                await page.fill("input[name=token]", TOKEN)
                await page.click("button[type=submit]")
                await page.wait_for_selector("#chart-active")
                assert page.url.endswith("/dashboard")
                assert await plotted(page, "chart-messages") == messages
                assert await plotted(page, "chart-active") == active
                keys = await page.eval_on_selector_all("#chart-messages .datum", "els => els.map(e => e.dataset.key)")
                assert len(keys) == 30 and keys[-1] == "2026-11-23"
                assert keys[0] == (TODAY_NOON - timedelta(days=29)).date().isoformat()
                ARTIFACTS.mkdir(exist_ok=True)
                shot = ARTIFACTS / "dashboard-overview.png"
                await page.screenshot(path=str(shot), full_page=True)
                assert shot.stat().st_size > 10_000
                await page.goto(base + "/dashboard/members?q=" + "核心")
                assert "核心甲" in await page.content()
                await page.click("nav >> text=账号状态")  # the core's account page, from the nav
                await page.wait_for_selector("#capabilities")
                assert page.url.endswith("/dashboard/account")
                assert (await page.inner_text("#capabilities")).startswith("能力：文字、@提醒")
                assert await page.inner_text("#sent-last-hour b") == str(sent_last_hour)
            finally:
                await browser.close()
