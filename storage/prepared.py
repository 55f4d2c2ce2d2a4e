"""Hot statements built once and, on the bot's own SQLite connection, run straight on sqlite3.

Why: SQLAlchemy's execution machinery costs about 90 µs per statement on this project's machines even for a
cached, prebuilt Core statement, against under 10 µs for sqlite3 itself; the scheduler's and the reminders' few
statements per job are most of a busy day's time (bench/schedule_day.py). ``Prepared`` compiles the statement
once with the connection's dialect and runs its SQL on the inline sqlite3 connection (storage/sqlite_inline.py),
inside the transaction SQLAlchemy has open there, with the same bind and result processing SQLAlchemy would apply
(the column types' own processors). Anywhere else (PostgreSQL, another SQLite driver) it is an ordinary
``conn.execute``; the result answers the same few calls either way: ``first``, ``one``, ``scalar``, ``all`` and
``rowcount``, rows with attribute access and ``_asdict``.

Keep parameter names distinct from column names in UPDATE statements with explicit ``values``: as with
SQLAlchemy's own execution, a parameter named like a column would become a SET clause.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable

from storage.sqlite_inline import InlineConnection


class _Compiled:
    __slots__ = ("sql", "compiled", "binds", "row_type", "result_processors", "constants")

    def __init__(self, statement: Executable, dialect: Dialect, column_keys: list[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        if "POSTCOMPILE" in compiled.string:
            raise ValueError("Prepared can't run expanding (IN list) parameters directly; use conn.execute")
        self.sql = compiled.string
        self.compiled = compiled
        positions = compiled.positiontup or []
        # literal values bound in the statement itself (status == "active"), merged under each run's parameters
        self.constants = (compiled.construct_params(_check=False) if set(positions) != set(column_keys) else None)
        self.binds: list[tuple[str, Callable | None]] = [
            (name, compiled.binds[name].type._cached_bind_processor(dialect)) for name in positions]
        if getattr(statement, "is_select", False):
            columns = statement.selected_columns
        else:  # INSERT / UPDATE … RETURNING: its columns (none without RETURNING)
            columns = getattr(statement, "exported_columns", None) or None
        if columns is not None:
            self.row_type = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
            self.result_processors = [c.type._cached_result_processor(dialect, None) for c in columns]
        else:
            self.row_type = None
            self.result_processors = []


class DirectResult:
    """What a statement run directly gives back: the rows (a SELECT) or the count of rows changed."""

    __slots__ = ("_rows", "rowcount")

    def __init__(self, rows: list, rowcount: int) -> None:
        self._rows = rows
        self.rowcount = rowcount

    def all(self) -> list:
        return self._rows

    def first(self) -> Any:
        return self._rows[0] if self._rows else None

    def one(self) -> Any:
        if len(self._rows) != 1:
            raise NoResultFound("no row") if not self._rows else MultipleResultsFound("more than one row")
        return self._rows[0]

    def scalar(self) -> Any:
        return self._rows[0][0] if self._rows else None


class Prepared:
    """A Core statement to run with varying parameters, many times."""

    direct_runs = 0  # statements run straight on sqlite3, process-wide (the benchmarks report it)

    __slots__ = ("statement", "_compiled")

    def __init__(self, statement: Executable) -> None:
        self.statement = statement
        self._compiled: dict[tuple, _Compiled] = {}

    async def run(self, conn: AsyncConnection, params: dict[str, Any] | None = None) -> Any:
        params = params or {}
        inline = _inline(conn)
        if inline is None:
            return await conn.execute(self.statement, params)
        key = (id(conn.dialect), tuple(params))
        c = self._compiled.get(key)
        if c is None:
            c = self._compiled[key] = _Compiled(self.statement, conn.dialect, list(params))
        values = params if c.constants is None else {**c.constants, **params}
        args = [values[name] if proc is None else proc(values[name]) for name, proc in c.binds]
        try:
            cursor = inline.raw.execute(c.sql, args)
            Prepared.direct_runs += 1
            if c.row_type is None:
                return DirectResult([], cursor.rowcount)
            fetched = cursor.fetchall()
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (IntegrityError for a unique key, …)
            raise DBAPIError.instance(c.sql, args, exc, sqlite3.Error) from exc
        procs = c.result_processors
        make = c.row_type._make
        rows = [make([v if p is None else p(v) for v, p in zip(r, procs)]) for r in fetched]
        return DirectResult(rows, cursor.rowcount)


def _inline(conn: AsyncConnection) -> InlineConnection | None:
    """The bot's own inline SQLite connection under ``conn``, or None (PostgreSQL, another SQLite driver)."""
    if conn.dialect.name != "sqlite":
        return None
    driver = conn.sync_connection.connection.driver_connection
    return driver if isinstance(driver, InlineConnection) else None


_SAVEPOINTS = itertools.count(1)


@asynccontextmanager
async def savepoint(session: AsyncSession) -> AsyncIterator[None]:
    """A savepoint for prepared statements: undone alone if the block raises, the transaction going on.

    On the inline SQLite connection it is SAVEPOINT / RELEASE / ROLLBACK TO issued directly (SQLAlchemy's
    ``begin_nested`` costs several statements' worth of machinery), inside a transaction begun first if none is
    open, so the release never commits anything by itself. Only for blocks of prepared or Core statements: ORM
    objects added in the block are not part of it. Elsewhere it is ``session.begin_nested()``.
    """
    conn = await session.connection()
    inline = _inline(conn)
    if inline is None:
        async with session.begin_nested():
            yield
        return
    raw = inline.raw
    if not raw.in_transaction:
        raw.execute("BEGIN")  # committed or rolled back with the session, as any statement's implicit BEGIN
    name = f"p{next(_SAVEPOINTS)}"
    raw.execute(f"SAVEPOINT {name}")
    try:
        yield
    except BaseException:
        raw.execute(f"ROLLBACK TO {name}")
        raw.execute(f"RELEASE {name}")
        raise
    raw.execute(f"RELEASE {name}")
