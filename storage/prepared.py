"""Hot statements built once and, on the bot's own SQLite connection, run straight on sqlite3.

Why: SQLAlchemy's execution machinery costs about 90 µs per statement on this project's machines even for a
cached, prebuilt Core statement, against under 10 µs for sqlite3 itself; the scheduler's and the reminders' few
statements per job are most of a busy day's time (bench/schedule_day.py). ``Prepared`` compiles the statement
once with the connection's dialect and runs its SQL on the inline sqlite3 connection (storage/sqlite_inline.py),
inside the transaction SQLAlchemy has open there. Values are stored as every path stores them (storage/types.py:
sqlite_encoder, by each parameter's type) and rows come back through the column types' own result processors.
Anywhere else (PostgreSQL, another SQLite driver, untested SQLAlchemy versions: storage/sqlite_inline.py's
version guard) it is an ordinary ``conn.execute``; the result answers the same few calls either way: ``first``,
``one``, ``scalar``, ``all`` and ``rowcount``, rows with attribute access and ``_asdict``.

IN lists: an expanding parameter (``col.in_(bindparam("keys", expanding=True))``) takes a list of any length,
one ``Prepared`` for all. Each length is compiled the first time it is seen (SQLAlchemy's public
``construct_expanded_state``) and kept; above ``EXACT_LIST_LENGTHS`` a list is padded to the next power of two by
repeating its last value (the same set for IN / NOT IN, SQLAlchemy's only use of expanding parameters), so a
statement keeps a handful of variants, not one per length. An empty list is SQLAlchemy's empty-set expression.

Keep parameter names distinct from column names in UPDATE statements with explicit ``values``: as with
SQLAlchemy's own execution, a parameter named like a column would become a SET clause.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections import namedtuple
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError, MultipleResultsFound, NoResultFound
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.sql import Executable
from sqlalchemy.types import TupleType

from storage.sqlite_inline import INLINE_SUPPORTED, InlineConnection, retry_busy
from storage.types import Encoder, sqlite_encoder

EXACT_LIST_LENGTHS = 16  # IN lists up to this long get a statement of their own length
_MAX_PADDED = 8192  # longer lists aren't padded (SQLite's 32,766 parameters), each length compiled as it comes


class _Slot:
    """Where a positional parameter's value comes from: ``params[name]``, or ``params[name][index]`` (an IN
    list's element), or ``params[name][index][sub]`` (a tuple IN list's)."""

    __slots__ = ("name", "index", "sub")

    def __init__(self, name: str, index: int | None = None, sub: int | None = None) -> None:
        self.name, self.index, self.sub = name, index, sub


class _Variant:
    """The SQL and its positional parameters, for one statement, dialect, set of names and IN-list lengths."""

    __slots__ = ("sql", "binds", "row_type", "result_processors")

    def __init__(self, sql: str, binds: list, row_type: Any, result_processors: list) -> None:
        self.sql = sql
        # (name, None, encoder): params[name]; (name, index, encoder) / (name, (index, sub), encoder): an IN
        # list's element; (None, value, None): a value bound in the statement itself, already encoded
        self.binds = binds
        self.row_type = row_type
        self.result_processors = result_processors


class _Compiled:
    """A statement compiled once for one dialect and set of parameter names; its IN-list variants on demand."""

    __slots__ = ("compiled", "dialect", "names", "expanding", "fixed", "variants", "plain", "row_type",
                 "result_processors")

    def __init__(self, statement: Executable, dialect: Dialect, names: list[str]) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=names)
        self.compiled = compiled
        self.dialect = dialect
        self.names = names
        # literal_execute parameters are rendered into the SQL per run: leave those statements to SQLAlchemy
        self.plain = bool(compiled.literal_execute_params)
        self.expanding = tuple(n for n in names if n in compiled.binds and compiled.binds[n].expanding)
        self.variants: dict[tuple[int, ...], _Variant] = {}
        if getattr(statement, "is_select", False):
            columns = statement.selected_columns
        else:  # INSERT / UPDATE … RETURNING: its columns (none without RETURNING)
            columns = getattr(statement, "exported_columns", None) or None
        if columns is not None:
            self.row_type = namedtuple("Row", [c.key for c in columns], rename=True)  # type: ignore[misc]
            self.result_processors = [c.type.dialect_impl(dialect).result_processor(dialect, None)
                                      for c in columns]
        else:
            self.row_type = None
            self.result_processors = []
        self.fixed: _Variant | None = None
        if not self.plain and "POSTCOMPILE" not in compiled.string:
            self.fixed = self._variant(compiled.string, compiled.positiontup or [])

    def variant(self, lengths: tuple[int, ...]) -> _Variant:
        v = self.variants.get(lengths)
        if v is None:
            dummy: dict[str, Any] = {}
            for n in self.names:
                bind = self.compiled.binds.get(n)
                if n in self.expanding:
                    count = lengths[self.expanding.index(n)]
                    if isinstance(bind.type, TupleType):
                        dummy[n] = [tuple(_Slot(n, i, j) for j in range(len(bind.type.types))) for i in range(count)]
                    else:
                        dummy[n] = [_Slot(n, i) for i in range(count)]
                else:
                    dummy[n] = _Slot(n)
            expanded = self.compiled.construct_expanded_state(dummy, escape_names=False)
            origin = {key: name for name, keys in expanded.parameter_expansion.items() for key in keys}
            v = self.variants[lengths] = self._variant(expanded.statement, expanded.positiontup or [],
                                                       expanded.parameters, origin)
        return v

    def _variant(self, sql: str, positions: list[str], expanded: dict | None = None,
                 origin: dict[str, str] | None = None) -> _Variant:
        binds: list = []
        for position in positions:
            value = expanded[position] if expanded is not None else _Slot(position)
            if isinstance(value, _Slot):
                bind = self.compiled.binds[value.name]
                type_ = bind.type if value.sub is None else bind.type.types[value.sub]
                encode = sqlite_encoder(type_, self.dialect)
                if value.name not in self.names:  # a literal value bound in the statement (status == "active")
                    binds.append((None, _encoded(encode, bind.effective_value), None))
                elif value.index is None:
                    binds.append((value.name, None, encode))
                else:
                    binds.append((value.name, value.index if value.sub is None else (value.index, value.sub),
                                  encode))
                continue
            # a value SQLAlchemy filled in: bound in the statement, or an element of a literal IN list in it
            bind = self.compiled.binds.get(position)
            if bind is None:
                bind = self.compiled.binds[(origin or {})[position]]
            type_ = bind.type
            if isinstance(type_, TupleType):  # literal tuple IN list: keys end _row_element, counted from 1
                type_ = type_.types[int(position.rsplit("_", 1)[1]) - 1]
            binds.append((None, _encoded(sqlite_encoder(type_, self.dialect), value), None))
        return _Variant(sql, binds, self.row_type, self.result_processors)


def _encoded(encode: Encoder | None, value: Any) -> Any:
    return value if encode is None else encode(value)


def _padded_length(n: int) -> int:
    if n <= EXACT_LIST_LENGTHS or n > _MAX_PADDED:
        return n
    return 1 << (n - 1).bit_length()


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
        if c.plain:
            return await conn.execute(self.statement, params)
        v = c.fixed
        if v is None:  # IN lists: the variant for these lengths, lists padded to them
            lengths = tuple(_padded_length(len(params[n])) for n in c.expanding)
            v = c.variant(lengths)
            params = dict(params)
            for n, length in zip(c.expanding, lengths):
                values = params[n]
                if len(values) < length:
                    values = list(values)
                    values.extend([values[-1]] * (length - len(values)))
                    params[n] = values
            args = [value if name is None else _arg(params[name], value, encode) for name, value, encode in v.binds]
        else:
            args = [value if name is None else (params[name] if encode is None else encode(params[name]))
                    for name, value, encode in v.binds]
        raw = inline.raw
        try:
            try:
                cursor = raw.execute(v.sql, args)
            except sqlite3.OperationalError as exc:  # another process's lock: awaited, never slept on the loop
                cursor = await retry_busy(exc, raw.execute, v.sql, args)
            Prepared.direct_runs += 1
            if v.row_type is None:
                return DirectResult([], cursor.rowcount)
            fetched = cursor.fetchall()
        except sqlite3.Error as exc:  # as SQLAlchemy would raise it (IntegrityError for a unique key, …)
            raise DBAPIError.instance(v.sql, args, exc, sqlite3.Error) from exc
        procs = v.result_processors
        make = v.row_type._make
        rows = [make([x if p is None else p(x) for x, p in zip(r, procs)]) for r in fetched]
        return DirectResult(rows, cursor.rowcount)


def _arg(value: Any, index: Any, encode: Encoder | None) -> Any:
    if index is not None:
        value = value[index] if isinstance(index, int) else value[index[0]][index[1]]
    return value if encode is None else encode(value)


def _inline(conn: AsyncConnection) -> InlineConnection | None:
    """The bot's own inline SQLite connection under ``conn``, or None (PostgreSQL, another SQLite driver)."""
    if conn.dialect.name != "sqlite" or not INLINE_SUPPORTED:
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
