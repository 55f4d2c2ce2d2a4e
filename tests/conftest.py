from __future__ import annotations

from contextlib import asynccontextmanager

import pytest

from storage.db import create_engine, migrate, session_factory
from tests.support.backends import drop_postgres_database, postgres_or_skip
from tests.support import Harness, make_config


@pytest.fixture(autouse=True)
def lottery_key(monkeypatch) -> str:
    """The lottery skill starts no lottery without its key in the environment (docs/operators/lottery.md): every
    test, and the bot processes tests start, run with this test-only one. Tests of the key unset delete it."""
    key = "test-only-lottery-key-not-a-secret-0123456789"
    monkeypatch.setenv("BOT_LOTTERY_KEY", key)
    return key


def pytest_configure(config) -> None:
    config.addinivalue_line("markers", "all_backends: run this module's db_url tests on SQLite and PostgreSQL")
    config.addinivalue_line("markers", "sqlite_only: in an all_backends module, a test about SQLite alone")


def pytest_generate_tests(metafunc) -> None:
    marked = metafunc.definition.get_closest_marker
    if "db_url" in metafunc.fixturenames and marked("all_backends") and not marked("sqlite_only"):
        metafunc.parametrize("backend", ["sqlite", "postgresql"])


@pytest.fixture
def backend() -> str:
    return "sqlite"  # modules marked all_backends get both (pytest_generate_tests)


@pytest.fixture
async def db_url(tmp_path, backend):
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"
        return
    async with _postgres_database() as url:
        yield url


@pytest.fixture
async def pg_url():
    """A fresh PostgreSQL database of its own (for tests that are about PostgreSQL only), dropped afterwards."""
    async with _postgres_database() as url:
        yield url


@asynccontextmanager
async def _postgres_database():
    url = await postgres_or_skip()
    try:
        yield url
    finally:
        await drop_postgres_database(url)


@pytest.fixture
async def sessions(db_url):
    """A session factory on the migrated test database, without the rest of the bot."""
    engine = create_engine(db_url)
    await migrate(engine)
    yield session_factory(engine)
    await engine.dispose()


@pytest.fixture
async def harness(db_url):
    """The harness factory: ``h = await harness(config)`` starts the whole bot on the test's database (extra
    keywords go to ``Harness``: ``start=``, ``seed=``); every bot started is stopped after the test."""
    started: list[Harness] = []

    async def start(config, **options) -> Harness:
        h = Harness(config, db_url, **options)
        await h.__aenter__()
        started.append(h)
        return h

    yield start
    for h in reversed(started):
        await h.__aexit__(None, None, None)


@pytest.fixture
async def bot(db_url):
    """The whole bot (ping skill, admin1 as global admin) on a virtual clock at 2026-11-23 09:00 Shanghai."""
    async with Harness(make_config(), db_url) as h:
        yield h
