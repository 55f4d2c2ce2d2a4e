"""A database made by the last release (before the skills owned their migrations) upgrades in place: the renamed
revisions are recognised, the tables it has are kept with their rows, and the bot runs on it."""

from pathlib import Path

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import create_engine, migrate
from storage.migrate import alembic_config
from tests.support import Harness, make_config

pytestmark = pytest.mark.all_backends

DATA = Path(__file__).with_name("data")


async def load_release(db_url: str) -> None:
    url = make_url(db_url)
    if url.get_backend_name() == "sqlite":
        import sqlite3

        with sqlite3.connect(url.database) as conn:
            conn.executescript((DATA / "released-2026-11-sqlite.sql").read_text(encoding="utf-8"))
        return
    conn = await asyncpg.connect(user=url.username, host=url.host, port=url.port or 5432, database=url.database)
    try:
        await conn.execute((DATA / "released-2026-11-postgresql.sql").read_text(encoding="utf-8"))
    finally:
        await conn.close()


async def scalar(engine, sql: str):
    async with engine.connect() as conn:
        return (await conn.execute(text(sql))).scalar()


async def test_the_last_release_upgrades_in_place(db_url):
    await load_release(db_url)
    engine = create_engine(db_url)
    try:
        assert await scalar(engine, "SELECT count(*) FROM alembic_version WHERE version_num = '0200_gentle_orders'") == 1
        await migrate(engine)
        async with engine.connect() as conn:
            versions = {r[0] for r in await conn.execute(text("SELECT version_num FROM alembic_version"))}
        assert versions == set(ScriptDirectory.from_config(alembic_config()).get_heads())
        assert "0200_gentle_orders" not in versions and "0300_tiers" not in versions
        # the rows of every kind the release kept are still there
        assert await scalar(engine, "SELECT count(*) FROM activity") == 31
        assert await scalar(engine, "SELECT count(*) FROM lotteries") == 2
        assert await scalar(engine, "SELECT count(*) FROM orders") == 1
        assert await scalar(engine, "SELECT count(*) FROM member_optouts") == 1
        assert await scalar(engine, "SELECT sum(balance) FROM points_balances") == \
            await scalar(engine, "SELECT sum(delta) FROM points_ledger")
        # the check-in branch's later revision: redemptions have their handling columns (0101)
        assert await scalar(engine, "SELECT count(*) FROM redemptions WHERE handled_at IS NULL AND handled_by IS NULL"
                                    " AND reason IS NULL") == 0
        await migrate(engine)  # and again: nothing left to do
        if engine.dialect.name == "sqlite":  # off while tables were rebuilt, on again for the bot
            assert await scalar(engine, "PRAGMA foreign_keys") == 1
    finally:
        await engine.dispose()

    # the bot runs on it: the open lottery is still open and drawn at its deadline
    cfg = make_config({"bot": {"admins": ["admin1"], "skills": ["ping", "checkin", "lottery", "orders", "tiers"]}})
    async with Harness(cfg, db_url) as h:
        await h.say("u2", "/lottery status", room="g1")
        await h.settle()
        assert any("保温杯" in t for t in h.transport.texts())
