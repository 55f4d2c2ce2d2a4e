"""Batched INSERT / upsert for the activity store's flushes, on SQLite and PostgreSQL.

SQLite gets one multi-row ``INSERT … VALUES (…),(…)`` per chunk, executed straight on the process's one inline
sqlite3 connection (storage/sqlite_inline.py) inside the session's transaction: a 1,000-row batch is a few
milliseconds of SQLite work and no thread hand-offs (the fsync of WAL checkpoints happens on its own thread).
Values are stored as every other path stores them (storage/types.py: sqlite_encoder). PostgreSQL (asyncpg) gets
ordinary SQLAlchemy statements. The upsert SQL is the same for both.
"""

from __future__ import annotations

from dataclasses import dataclass
from operator import itemgetter

from sqlalchemy import Table, literal_column
from sqlalchemy.ext.asyncio import AsyncSession

from storage.sqlite_inline import InlineConnection
from storage.types import sqlite_encoder, utc_text
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


def _column_encoder(table: Table, name: str, dt_cache: dict[int, str]):
    """The column type's converter (storage/types.py), or None when the value goes to sqlite3 as it is."""
    encode = sqlite_encoder(table.c[name].type)
    if encode is utc_text:

        def encode_dt(v):
            key = id(v)  # one event's instant (the same object) recurs across a batch's tables; ids are stable
            s = dt_cache.get(key)  # while the batch holds the rows, and hashing an aware datetime costs more
            if s is None:
                s = dt_cache[key] = utc_text(v)
            return s

        return encode_dt
    return encode


def sqlite_statements(w: Write, dt_cache: dict[int, str] | None = None) -> list[tuple[str, tuple]]:
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
    encoders = [(i, enc) for i, c in enumerate(columns) if (enc := _column_encoder(w.table, c, cache)) is not None]
    values_of = itemgetter(*columns) if len(columns) > 1 else (lambda row: (row[columns[0]],))
    out = []
    for start in range(0, len(w.rows), per_chunk):
        chunk = w.rows[start : start + per_chunk]
        params: list = []
        extend = params.extend
        for row in chunk:
            values = values_of(row)
            if encoders:
                values = list(values)
                for i, enc in encoders:
                    values[i] = enc(values[i])
            extend(values)
        out.append((head + ", ".join([placeholders] * len(chunk)) + conflict, tuple(params)))
    return out


async def write_with_session(session: AsyncSession, writes: list[Write]) -> None:
    """Any backend, inside the session's transaction."""
    dialect = session.bind.dialect.name
    if dialect == "sqlite":
        conn = await session.connection()
        raw = (await conn.get_raw_connection()).driver_connection
        dt_cache: dict[int, str] = {}
        statements = [s for w in writes for s in sqlite_statements(w, dt_cache)]
        if isinstance(raw, InlineConnection):  # the usual case: straight to sqlite3, no adapter per statement
            await raw.execute_bulk(statements)
        else:
            for sql, params in statements:
                await conn.exec_driver_sql(sql, params)
        return
    for w in writes:
        if not w.rows:
            continue
        stmt = insert_for(dialect, w.table)
        if w.ignore:
            stmt = stmt.on_conflict_do_nothing(index_elements=list(w.key) or None)
        elif w.key and w.update:
            stmt = stmt.on_conflict_do_update(
                index_elements=list(w.key), set_={c: literal_column(e) for c, e in w.update.items()}
            )
        await session.execute(stmt, w.rows)
