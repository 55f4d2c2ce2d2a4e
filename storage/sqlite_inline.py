"""An aiosqlite-shaped connection that runs each SQLite call inline, on the event loop's thread.

Why: aiosqlite sends every call to a worker thread and back. A statement on a local SQLite file takes tens of
microseconds, but through SQLAlchemy's adapter each costs several such hops (about 0.45 ms here), so a command
with ten statements spent ~5 ms waiting on hand-offs, and the replay benchmark fell far below its bar once skills
used the database. Inline calls block the loop only for the statement itself; WAL keeps readers from waiting on
the writer, and a write waiting on the batch writer's lock holds the loop for that commit (milliseconds).

Handed to SQLAlchemy as ``async_creator`` (see storage/db.py), so the URL stays ``sqlite+aiosqlite://`` and the
aiosqlite dialect's adapter drives it: this mimics the parts of aiosqlite's API that adapter uses.
"""

from __future__ import annotations

import sqlite3
from typing import Any


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        self._cursor.execute(sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> InlineCursor:
        self._cursor.executemany(sql, seq_of_parameters)
        return self

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list:
        return self._cursor.fetchmany(size) if size is not None else self._cursor.fetchmany()

    async def fetchall(self) -> list:
        return self._cursor.fetchall()

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class _ImmediateQueue:
    """SQLAlchemy sets the isolation level by queueing a call on aiosqlite's worker: here it just runs."""

    __slots__ = ()

    def put_nowait(self, item: tuple) -> None:
        future, function = item
        try:
            result = function()
        except Exception as exc:  # handed back through the future, as aiosqlite would
            future.set_exception(exc)
        else:
            future.set_result(result)


class InlineConnection:
    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection = conn  # SQLAlchemy checks it is set before commit/rollback
        self._tx = _ImmediateQueue()

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self._conn.close()
        self._connection = None

    def stop(self) -> None:
        self._conn.close()
        self._connection = None

    async def create_function(self, *args: Any, **kwargs: Any) -> None:
        self._conn.create_function(*args, **kwargs)

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    @property
    def in_transaction(self) -> bool:
        return self._conn.in_transaction


def inline_creator(path: str, timeout: float = 30.0):
    async def connect() -> InlineConnection:
        # check_same_thread off: the pool may hand the connection to a later task, always on the loop's thread
        return InlineConnection(sqlite3.connect(path, timeout=timeout, check_same_thread=False))

    return connect
