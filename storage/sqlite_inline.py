"""SQLite for the bot process: one connection, called inline on the event loop's thread, lent by a pool of one.

Why inline: aiosqlite sends every call to a worker thread and back. A statement on a local SQLite file takes tens
of microseconds, but through SQLAlchemy's adapter each costs several such hops (about 0.45 ms here), so a command
with ten statements spent ~5 ms on hand-offs, and the replay benchmark fell far below its bar once skills used the
database.

Why one connection: SQLite has one writer at a time anyway. With several connections in one process, a handler
that awaits something (an LLM call, say) while its write transaction is open made another chat's inline write
busy-wait on SQLite's lock with the loop blocked, so the holder could never commit. With one connection, a second
session *awaits* the pool (the loop keeps running) until the first commits. Sessions are short: they never wait on
the network (replies are queued with the governor, not awaited), so the queue is microseconds long.

Nesting a session inside another in the same task would wait for itself: ``SingleConnectionPool`` refuses it at
once with an error naming the problem instead of hanging until the pool's timeout.

Handed to SQLAlchemy as ``async_creator`` (see storage/db.py), so the URL stays ``sqlite+aiosqlite://`` and the
aiosqlite dialect's adapter drives it: this mimics the parts of aiosqlite's API that adapter uses.
"""

from __future__ import annotations

import asyncio
import logging
import sqlite3
import threading
from typing import Any

from sqlalchemy.pool import AsyncAdaptedQueuePool

log = logging.getLogger(__name__)

SESSION_WAIT_S = 30.0  # how long a session waits for the connection before its event fails


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
    def __init__(self, conn: sqlite3.Connection, checkpointer: WalCheckpointer | None = None) -> None:
        self._conn = conn
        self._connection = conn  # SQLAlchemy checks it is set before commit/rollback
        self._tx = _ImmediateQueue()
        self._checkpointer = checkpointer

    @property
    def raw(self) -> sqlite3.Connection:
        """The sqlite3 connection itself, for statements run directly (storage/prepared.py)."""
        return self._conn

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        return await self.cursor().execute(sql, parameters)

    def execute_bulk(self, statements: list[tuple[str, tuple]]) -> None:
        """Run prepared statements in the open transaction (the activity store's batches), inline.

        Tried on a worker thread: the loop then sat idle waiting for it (GIL hand-offs, and every command needing
        the database queued behind the batch) longer than the SQLite work itself took.
        """
        _execute_all(self._conn, statements)

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        self.stop()

    def stop(self) -> None:
        if self._checkpointer is not None:
            self._checkpointer.stop()  # first: the last connection to close checkpoints what is left
            self._checkpointer = None
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


def _execute_all(conn: sqlite3.Connection, statements: list[tuple[str, tuple]]) -> None:
    cur = conn.cursor()
    try:
        for sql, params in statements:
            cur.execute(sql, params)
    finally:
        cur.close()


class WalCheckpointer:
    """Copies the WAL back into the database file from a thread of its own, off the event loop.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 pages, fsyncs, and took ~20 ms of
    the loop each time; a PASSIVE checkpoint on another connection never takes the write lock or waits for
    readers, so it costs the bot nothing. Real time on purpose: this is file maintenance, not bot behaviour.
    """

    def __init__(self, path: str, interval_s: float = 1.0, timeout: float = 2.0) -> None:
        self._path = path
        self._interval_s = interval_s
        self._timeout = timeout
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self.checkpoints = 0
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=self._timeout, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval_s):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int] | None:
        """One PASSIVE checkpoint: (frames in the WAL, frames copied back), or None when it failed."""
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # keep trying: a missed checkpoint only lets the WAL grow a while
            log.warning("WAL checkpoint failed: %s", exc)
            return None
        self.checkpoints += 1
        return frames, copied

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def inline_creator(path: str, timeout: float = 2.0):
    async def connect() -> InlineConnection:
        # check_same_thread off: the pool may hand the connection to a later task, always on the loop's thread
        conn = sqlite3.connect(path, timeout=timeout, check_same_thread=False)
        checkpointer = None
        if path != ":memory:" and not path.startswith("file::memory:"):
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see WalCheckpointer
            checkpointer = WalCheckpointer(path)
        return InlineConnection(conn, checkpointer)

    return connect


class NestedSessionError(RuntimeError):
    pass


# SQLAlchemy names a pool's logger after its class: keep this one as quiet as its own pools ("Pool disposed" is
# not news at INFO)
logging.getLogger(f"{__name__}.SingleConnectionPool").setLevel(logging.WARNING)


class SingleConnectionPool(AsyncAdaptedQueuePool):
    """``AsyncAdaptedQueuePool`` of size one that refuses a checkout by the task already holding the connection."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._holder: asyncio.Task | None = None

    def _do_get(self):  # type: ignore[no-untyped-def]
        task = _current_task()
        if task is not None and task is self._holder:
            raise NestedSessionError(
                "this task already holds the SQLite connection: a second session opened inside the first would "
                "wait for itself (use the session you have, e.g. ctx.session())"
            )
        record = super()._do_get()
        self._holder = task
        return record

    def _do_return_conn(self, record) -> None:  # type: ignore[no-untyped-def]
        self._holder = None
        super()._do_return_conn(record)


def _current_task() -> asyncio.Task | None:
    try:
        return asyncio.current_task()
    except RuntimeError:  # no running loop (a sync caller, e.g. dispose at exit)
        return None
