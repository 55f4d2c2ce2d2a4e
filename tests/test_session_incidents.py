"""Session incidents are kept per account (``session_incidents``): on a database several accounts share, each
process takes back only its own account's — keyed on the logged-in account's id when ``[bot] account_id`` is
empty, and on the transport's name before the first login; on a database of one account, every open incident is
its own. Real database (SQLite file and PostgreSQL), virtual clock."""

from __future__ import annotations

import pytest

from bot.alerts import Alert
from bot.clock import VirtualClock
from bot.health import SessionHealth
from storage import incidents as rows
from storage.db import create_engine, migrate, session_factory
from tests.support import START

pytestmark = pytest.mark.all_backends


async def keys(sessions) -> list[tuple[str, str]]:
    async with sessions() as s:
        return sorted((r.account_id, r.kind) for r in await rows.open_incidents(s, None))


def health(clock, alerts: list[Alert]) -> SessionHealth:
    async def alert(a: Alert) -> None:
        alerts.append(a)
    return SessionHealth(clock, alert, gather_s=0)


async def test_two_accounts_on_one_database_never_share_an_incident(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    sessions = session_factory(engine)
    clock = VirtualClock(START)
    try:
        a_alerts: list[Alert] = []
        a = health(clock, a_alerts)
        await a.restore(sessions, None, fallback="wechaty", shared=True)
        a.logged_in("acct_a")
        a.logged_out("被踢下线")
        await a.settle()
        assert [x.event for x in a_alerts] == ["offline"]
        assert await keys(sessions) == [("acct_a", "logout")]

        # another account's process on the same database: acct_a's incident is not its own
        b_alerts: list[Alert] = []
        b = health(clock, b_alerts)
        await b.restore(sessions, None, fallback="wechaty", shared=True)
        assert b.offline_incident is None
        b.logged_in("acct_b")
        await b.settle()
        assert b.offline_incident is None and b_alerts == []
        assert await keys(sessions) == [("acct_a", "logout")]

        # acct_a's process restarts and logs in again: its incident is taken back and ended ("back" alert)
        a2_alerts: list[Alert] = []
        a2 = health(clock, a2_alerts)
        await a2.restore(sessions, None, fallback="wechaty", shared=True)
        await clock.advance(120)
        a2.logged_in("acct_a")
        await a2.settle()
        assert [x.event for x in a2_alerts] == ["online"]
        assert await keys(sessions) == []

        # an incident before any login is kept under the transport's name, and forgotten under it when it ends
        c = health(clock, [])
        await c.restore(sessions, None, fallback="wechaty", shared=True)
        c.login_needed("https://login.example/qr")
        await c.settle()
        assert await keys(sessions) == [("wechaty", "login_needed")]
        c.logged_in("acct_c")
        await c.settle()
        assert await keys(sessions) == []
    finally:
        await engine.dispose()


async def test_one_account_database_takes_back_its_incident_whatever_key(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    sessions = session_factory(engine)
    clock = VirtualClock(START)
    try:
        first = health(clock, [])
        await first.restore(sessions, None, fallback="wechaty")
        first.logged_in("bot_self")
        first.logged_out("被踢下线")
        await first.settle()
        again = health(clock, [])
        await again.restore(sessions, None, fallback="wechaty")  # the account is still out: no login yet
        assert again.offline_incident is not None and again.offline_incident.restored
        again.logged_in("bot_self")
        await again.settle()
        assert await keys(sessions) == []
    finally:
        await engine.dispose()
