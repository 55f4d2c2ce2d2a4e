"""Engine and session factory. (Migrations: storage/migrate.py; ``migrate`` is re-exported here.)"""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

from storage.sqlite_inline import (INLINE_SUPPORTED, SESSION_WAIT_S, InlineConnection, SingleConnectionPool,
                                   inline_creator, is_memory)
from storage.types import json_text

log = logging.getLogger(__name__)



JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024  # what SQLite leaves of a WAL file when it rewinds it


def sqlite_pragmas(dbapi_conn, _record=None) -> None:
    """For every SQLite connection we open."""
    cur = dbapi_conn.cursor()
    # WAL: readers don't block the writer; NORMAL sync is durable across process crashes in WAL mode.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute(f"PRAGMA journal_size_limit={JOURNAL_SIZE_LIMIT}")
    # Only another process can hold the lock (this one has a single writing connection). The inline connection
    # must not sleep in SQLite's busy handler on the loop: 0, and it retries by awaiting (storage/sqlite_inline.py).
    # Elsewhere (aiosqlite's thread) waiting a little is harmless.
    inline = isinstance(getattr(dbapi_conn, "driver_connection", None), InlineConnection)
    cur.execute(f"PRAGMA busy_timeout={0 if inline else 2000}")
    cur.close()


def create_engine(url: str) -> AsyncEngine:
    """The bot's engine for ``url``. JSON is written as storage/types.json_text on every backend and path.
    ``hide_parameters``: a failed statement's error (logged with its traceback) must not carry the member ids, names
    and texts it was writing."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        database = parsed.database
        if database and database != ":memory:":
            Path(database).parent.mkdir(parents=True, exist_ok=True)
        if INLINE_SUPPORTED:
            # One connection, called inline on the loop's thread, handed out by a pool of one: see
            # storage/sqlite_inline.py
            engine = create_async_engine(
                url, async_creator=inline_creator(database or ":memory:"), poolclass=SingleConnectionPool,
                pool_size=1, max_overflow=0, pool_timeout=SESSION_WAIT_S, json_serializer=json_text,
                hide_parameters=True,
            )
        else:  # untested SQLAlchemy / aiosqlite (the warning came at import): aiosqlite's own, one connection
            one = {} if is_memory(database) else {"pool_size": 1, "max_overflow": 0, "pool_timeout": SESSION_WAIT_S}
            # (memory: a static pool of one)
            engine = create_async_engine(url, json_serializer=json_text, hide_parameters=True, **one)
        event.listen(engine.sync_engine, "connect", sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True, json_serializer=json_text, hide_parameters=True)


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


from storage.migrate import migrate  # noqa: E402,F401  (the app and tests call storage.db.migrate)
