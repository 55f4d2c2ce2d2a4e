"""Database backends for the storage contract suite: SQLite always, PostgreSQL where one is reachable.

A test module opts in with ``pytestmark = pytest.mark.all_backends``; its ``db_url`` is then parametrised over
``sqlite`` and ``postgresql``. Each PostgreSQL test gets a database of its own, created from
``TEST_POSTGRES_URL`` (default: the local server this machine kind runs, ``postgresql+asyncpg://postgres@127.0.0.1/postgres``)
and dropped afterwards. Without a reachable server those cases skip and say why — unless ``REQUIRE_POSTGRES=1``
(CI sets it), when they fail instead, so a CI run can't pass by skipping them.
"""

from __future__ import annotations

import os
import uuid

import asyncpg
import pytest
from sqlalchemy.engine import make_url

DEFAULT_ADMIN_URL = "postgresql+asyncpg://postgres@127.0.0.1:5432/postgres"


def admin_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_ADMIN_URL)


def _dsn(url: str, database: str | None = None) -> str:
    parsed = make_url(url)
    if database is not None:
        parsed = parsed.set(database=database)
    return parsed.set(drivername="postgresql").render_as_string(hide_password=False)


_reachable: str | None = None  # "" when reachable, else the reason; checked once per session


async def postgres_unavailable() -> str:
    """Why PostgreSQL can't be used ("" when it can)."""
    global _reachable
    if _reachable is None:
        try:
            conn = await asyncpg.connect(_dsn(admin_url()), timeout=5)
            await conn.close()
            _reachable = ""
        except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
            _reachable = f"PostgreSQL not reachable at {make_url(admin_url()).render_as_string()}: {exc}"
    return _reachable


async def fresh_postgres_database() -> str:
    """Create an empty database; return its SQLAlchemy URL."""
    name = f"bot_test_{uuid.uuid4().hex[:12]}"
    conn = await asyncpg.connect(_dsn(admin_url()), timeout=10)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(admin_url()).set(database=name).render_as_string(hide_password=False)


async def drop_postgres_database(url: str) -> None:
    name = make_url(url).database
    conn = await asyncpg.connect(_dsn(admin_url()), timeout=10)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


async def postgres_or_skip() -> str:
    reason = await postgres_unavailable()
    if reason:
        if os.environ.get("REQUIRE_POSTGRES") == "1":
            pytest.fail(f"REQUIRE_POSTGRES=1 but {reason}")
        pytest.skip(reason)
    return await fresh_postgres_database()
