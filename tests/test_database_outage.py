"""The database goes away for a while and comes back (PostgreSQL behind a proxy the test cuts): handlers fail
politely, chatter and commands that need no database keep working, nothing is lost, and the bot recovers without
a restart."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import make_url

from bot.commands import FAILED
from bot.config import parse_config
from tests.support.db_checks import messages_balances_ledger, read
from tests.support.netfault import CuttableProxy
from tests.support import Harness, fast_governor


@pytest.fixture
async def pg_behind_proxy(pg_url):
    real = make_url(pg_url)
    proxy = CuttableProxy(real.host or "127.0.0.1", real.port or 5432)
    await proxy.start()
    try:
        yield real.set(port=proxy.port).render_as_string(hide_password=False), proxy
    finally:
        await proxy.close()


def config():
    from dataclasses import replace

    cfg = parse_config({"bot": {"admins": ["admin1"], "skills": ["ping", "checkin"]}})
    return replace(cfg, governor=fast_governor())


async def test_database_outage_then_recovery(pg_behind_proxy):
    url, proxy = pg_behind_proxy
    async with Harness(config(), url) as h:
        await h.say("u1", "签到", room=None)
        assert h.sent[-1].text.startswith("签到成功")

        runs = []

        async def job(ctx) -> None:
            runs.append(ctx.now)

        h.app.scheduler.register("t.job", job)
        due = h.clock.now() + timedelta(seconds=20)
        await h.app.scheduler.schedule("during-outage", "t.job", at=due)

        await proxy.cut()
        await h.say("u2", "签到", room=None, after_s=10)
        await h.say("u3", "/ping", room=None, after_s=10)
        await h.say("u3", "今天天气不错", after_s=10)
        await h.settle()
        texts = [s.text for s in h.sent[1:]]
        assert texts == [FAILED, "在的～"]  # a polite answer; what needs no database still works
        assert await h.app.activity.flush() == 0 and h.app.activity.backlog > 0  # kept, not lost

        assert runs == []  # due during the outage: the scheduler's pass failed, and it keeps looking

        await proxy.restore()
        await h.say("u2", "签到", room=None, after_s=10)
        await h.clock.advance_to(h.clock.now() + timedelta(seconds=60))
        await h.settle()
        assert len(runs) == 1 and runs[0] > due  # ran once, at the first look after the database came back
        assert h.sent[-1].text.startswith("签到成功")
        assert await h.app.activity.flush() > 0 and h.app.activity.backlog == 0

    messages, balances, ledger = await read(url, messages_balances_ledger)
    assert messages == 5  # every message, the ones during the outage included
    assert set(balances) == {"u1", "u2"} and balances == {k: int(v) for k, v in ledger.items()}
