"""Engine and session factory. (Migrations: storage/migrate.py; ``migrate`` is re-exported here.)"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.sqlite_inline import SESSION_WAIT_S, SingleConnectionPool, inline_creator

log = logging.getLogger(__name__)



def sqlite_pragmas(dbapi_conn, _record=None) -> None:
    """For every SQLite connection we open."""
    cur = dbapi_conn.cursor()
    # WAL: readers don't block the writer; NORMAL sync is durable across process crashes in WAL mode.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    # Only another process can hold the lock (this one has a single connection): wait a little, then fail the
    # statement rather than keep the event loop blocked.
    cur.execute("PRAGMA busy_timeout=2000")
    cur.close()


def create_engine(url: str) -> AsyncEngine:
    """``hide_parameters``: a failed statement's error (logged with its traceback) must not carry the member ids,
    names and texts it was writing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        # One connection, called inline on the loop's thread, handed out by a pool of one: see storage/sqlite_inline.py
        engine = create_async_engine(
            url, async_creator=inline_creator(database or ":memory:"), poolclass=SingleConnectionPool,
            pool_size=1, max_overflow=0, pool_timeout=SESSION_WAIT_S, hide_parameters=True,
        )
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, hide_parameters=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


from storage.migrate import migrate  # noqa: E402,F401  (the app and tests call storage.db.migrate)
