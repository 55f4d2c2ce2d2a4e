"""Batched INSERT / upsert for the activity store's flushes, on SQLite and PostgreSQL.

SQLite gets one multi-row ``INSERT … VALUES (…),(…)`` per chunk, run by ``SqliteBatchWriter`` on its own thread and
connection, the whole batch in one hand-off. Why: through the async driver every statement costs several thread
hops (~0.5 ms each), and while the event loop is busy handling messages those hops starve for the GIL, so a
batch written statement by statement stalled for seconds and the backlog grew without bound. PostgreSQL
(asyncpg) has no such problem and gets ordinary SQLAlchemy statements. The upsert SQL is the same for both.
"""

from __future__ import annotations

import asyncio
import json
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import JSON, Boolean, DateTime, Table, create_engine, event, literal_column
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.pool import StaticPool

from storage.db import sqlite_pragmas
from storage.upsert import insert_for

SQLITE_MAX_VARIABLES = 32_000  # SQLite ≥ 3.32 allows 32,766 bound parameters per statement


@dataclass(frozen=True, slots=True)
class Write:
    """Rows for one table (all with the same keys). With ``key``: on conflict, apply ``update`` (column → SQL
    expression, may use ``excluded.col`` and ``<table>.col``) or, with ``ignore``, keep the existing row."""

    table: Table
    rows: list[dict]
    key: tuple[str, ...] = ()
    update: dict[str, str] | None = None
    ignore: bool = False


_json = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode  # built once, not per value


def _sqlite_datetime(v: datetime) -> str:
    # the layout SQLAlchemy's SQLite DateTime writes and reads back: naive UTC, always with microseconds
    if v.tzinfo is not None:
        v = v.astimezone(UTC).replace(tzinfo=None)
    return v.isoformat(sep=" ", timespec="microseconds")


def _column_encoder(table: Table, name: str, dt_cache: dict[datetime, str]):
    """A converter for one column, or None when the value goes to sqlite3 as it is (most columns)."""
    python_type = getattr(table.c[name].type, "impl", table.c[name].type)
    if isinstance(python_type, DateTime):

        def encode_dt(v):
            if v is None:
                return None
            s = dt_cache.get(v)  # one event's instant recurs across a batch's tables
            if s is None:
                s = dt_cache[v] = _sqlite_datetime(v)
            return s

        return encode_dt
    if isinstance(python_type, JSON):
        return lambda v: None if v is None else _json(v)
    if isinstance(python_type, Boolean):
        return lambda v: None if v is None else int(v)
    return None


def sqlite_statements(w: Write, dt_cache: dict[datetime, str] | None = None) -> list[tuple[str, tuple]]:
    if not w.rows:
        return []
    columns = list(w.rows[0])
    conflict = ""
    if w.key or w.ignore:
        target = f" ({', '.join(w.key)})" if w.key else ""
        if w.ignore or not w.update:
            conflict = f" ON CONFLICT{target} DO NOTHING"
        else:
            conflict = f" ON CONFLICT{target} DO UPDATE SET " + ", ".join(f"{c} = {e}" for c, e in w.update.items())
    placeholders = "(" + ", ".join("?" * len(columns)) + ")"
    head = f"INSERT INTO {w.table.name} ({', '.join(columns)}) VALUES "
    per_chunk = max(1, SQLITE_MAX_VARIABLES // len(columns))
    cache = {} if dt_cache is None else dt_cache
    encoders = [(c, _column_encoder(w.table, c, cache)) for c in columns]
    out = []
    for start in range(0, len(w.rows), per_chunk):
        chunk = w.rows[start : start + per_chunk]
        params = []
        append = params.append
        for row in chunk:
            for c, enc in encoders:
                append(row[c] if enc is None else enc(row[c]))
        out.append((head + ", ".join([placeholders] * len(chunk)) + conflict, tuple(params)))
    return out


async def write_with_session(session: AsyncSession, writes: list[Write]) -> None:
    """Any backend, through the session (PostgreSQL; SQLite when no batch writer is running)."""
    dialect = session.bind.dialect.name
    for w in writes:
        if not w.rows:
            continue
        if dialect == "sqlite":
            conn = await session.connection()
            for sql, params in sqlite_statements(w):
                await conn.exec_driver_sql(sql, params)
            continue
        stmt = insert_for(dialect, w.table)
        if w.ignore:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(w.key) or None)
        elif w.key and w.update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(w.key), set_={c: literal_column(e) for c, e in w.update.items()}
            )
        await session.execute(stmt, w.rows)


class SqliteBatchWriter:
    """One thread, one plain sqlite3 connection: a whole batch is written in a single hand-off."""

    def __init__(self, async_url: str) -> None:
        url = make_url(async_url).set(drivername="sqlite")
        self._engine = create_engine(url, poolclass=StaticPool, connect_args={"check_same_thread": False,
                                                                               "timeout": 30})
        event.listen(self._engine, "connect", sqlite_pragmas)

        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sqlite-batch")

    def _write_sync(self, writes: list[Write]) -> None:
        dt_cache: dict[datetime, str] = {}
        statements = [s for w in writes for s in sqlite_statements(w, dt_cache)]
        if not statements:
            return
        with self._engine.begin() as conn:
            for sql, params in statements:
                conn.exec_driver_sql(sql, params)

    async def write(self, writes: list[Write]) -> None:
        """Encoding and SQL both run on the writer thread; SQLite releases the GIL while it works."""
        await asyncio.get_running_loop().run_in_executor(self._executor, self._write_sync, writes)

    def close(self) -> None:
        self._executor.shutdown(wait=True)
        self._engine.dispose()
