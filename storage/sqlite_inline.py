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

Busy waits off the loop: the connection's ``busy_timeout`` is 0, so a statement that meets another process's lock
fails at once with SQLITE_BUSY, and is tried again after short awaits (the loop runs meanwhile) for up to
``BUSY_WAIT_S`` before the error goes to the caller. A sleeping busy handler on this connection would stop every
chat for that long. Retrying is safe: a statement that gets SQLITE_BUSY has done nothing (the first write of a
transaction taking the write lock, or a COMMIT, which SQLite keeps open to be retried). SQLITE_BUSY_SNAPSHOT (a
transaction that read an older snapshot and now wants to write) can never succeed and is raised at once.

Version guard: this module drives SQLAlchemy's aiosqlite adapter through its private parts (the connection's
``_connection`` and ``_tx`` queue, the cursor calls it makes, ``AsyncAdaptedQueuePool._do_get`` /
``_do_return_conn``), and storage/prepared.py runs SQLAlchemy's compiled statements itself. Both were written and
tested for the series in ``TESTED_SERIES`` (the pins in pyproject.toml). Outside them, ``INLINE_SUPPORTED`` is
False and storage/db.py builds the plain aiosqlite engine instead (one pooled connection on aiosqlite's thread;
the fast paths see no inline connection and use SQLAlchemy's execution): one RuntimeWarning at import naming the
packages and versions, then a slower bot that works, rather than a crash at start or a fast path silently
misbehaving. Chosen over failing at import because every fast path already has that plain equivalent, exercised on
PostgreSQL and by tests/test_sqlite_inline.py.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import threading
import time
import warnings
from collections.abc import Callable, Mapping
from typing import Any

import aiosqlite
import sqlalchemy
from sqlalchemy.pool import AsyncAdaptedQueuePool

log = logging.getLogger(__name__)

SESSION_WAIT_S = 30.0  # how long a session waits for the connection before its event fails
BUSY_WAIT_S = 2.0  # how long a statement meeting another process's lock is retried (awaiting) before it fails
WAL_TRUNCATE_BYTES = 64 * 1024 * 1024  # a WAL file past this is checkpointed and truncated (TRUNCATE)

TESTED_SERIES = {"sqlalchemy": "2.1", "aiosqlite": "0.22"}  # major.minor, as pinned in pyproject.toml


def untested_versions(installed: Mapping[str, str] | None = None) -> list[str]:
    """``"SQLAlchemy 2.2.0 (written for 2.1.x)"`` for each installed package outside its tested series."""
    if installed is None:
        installed = {"sqlalchemy": sqlalchemy.__version__, "aiosqlite": aiosqlite.__version__}
    names = {"sqlalchemy": "SQLAlchemy", "aiosqlite": "aiosqlite"}
    out = []
    for package, series in TESTED_SERIES.items():
        version = installed.get(package, "")
        if ".".join(version.split(".")[:2]) != series:
            out.append(f"{names[package]} {version or '(unknown)'} (written for {series}.x)")
    return out


_UNTESTED = untested_versions()
INLINE_SUPPORTED = not _UNTESTED
if _UNTESTED:
    warnings.warn(
        f"storage/sqlite_inline.py and storage/prepared.py use private internals of SQLAlchemy and aiosqlite and "
        f"were tested only with SQLAlchemy {TESTED_SERIES['sqlalchemy']}.x and aiosqlite "
        f"{TESTED_SERIES['aiosqlite']}.x; installed: {', '.join(_UNTESTED)}. SQLite runs on SQLAlchemy's plain "
        f"aiosqlite path instead (correct, slower). Install the versions pinned in pyproject.toml to get the fast "
        f"path back, or update these modules and TESTED_SERIES after testing them.",
        RuntimeWarning, stacklevel=2)


def is_busy(exc: sqlite3.Error) -> bool:
    """SQLITE_BUSY (any kind worth retrying): another connection holds the lock this statement needs."""
    code = getattr(exc, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY and code != _SQLITE_BUSY_SNAPSHOT


_SQLITE_BUSY_SNAPSHOT = 517


class BusyStats:
    """Process-wide counts, for tests and benchmarks: statements that met SQLITE_BUSY, and retries made."""

    busy = 0
    retries = 0


async def retry_busy(first: sqlite3.OperationalError, call: Callable[..., Any], *args: Any) -> Any:
    """After ``call(*args)`` raised ``first``: if it was SQLITE_BUSY, call again after short awaits (1 ms doubling
    to 50 ms) until it succeeds or ``BUSY_WAIT_S`` has passed; any other error is raised as it is.

    Real (monotonic) time on purpose: this is a lock wait on a file, like a socket timeout, not bot behaviour.
    """
    if not is_busy(first):
        raise first
    BusyStats.busy += 1
    deadline = time.monotonic() + BUSY_WAIT_S
    delay = 0.001
    while True:
        await asyncio.sleep(delay)
        BusyStats.retries += 1
        try:
            return call(*args)
        except sqlite3.OperationalError as exc:
            if not is_busy(exc) or time.monotonic() >= deadline:
                raise
        delay = min(delay * 2, 0.05)


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, sql: str, parameters: Any = ()) -> InlineCursor:
        try:
            self._cursor.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            await retry_busy(exc, self._cursor.execute, sql, parameters)
        return self

    async def executemany(self, sql: str, seq_of_parameters: Any) -> InlineCursor:
        # a list: a generator consumed by the failed attempt would leave nothing to retry with
        seq = seq_of_parameters if isinstance(seq_of_parameters, (list, tuple)) else list(seq_of_parameters)
        try:
            self._cursor.executemany(sql, seq)
        except sqlite3.OperationalError as exc:
            await retry_busy(exc, self._cursor.executemany, sql, seq)
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

    async def execute_bulk(self, statements: list[tuple[str, tuple]]) -> None:
        """Run prepared statements in the open transaction (the activity store's batches), inline.

        Tried on a worker thread: the loop then sat idle waiting for it (GIL hand-offs, and every command needing
        the database queued behind the batch) longer than the SQLite work itself took. A statement meeting
        SQLITE_BUSY is retried (awaiting) and the batch goes on from it: the ones before it are done.
        """
        done = 0
        while True:
            try:
                _execute_all(self._conn, statements, done)
                return
            except _Stopped as stop:
                done = stop.at
                await retry_busy(stop.error, self._conn.execute, *statements[done])
                done += 1

    async def commit(self) -> None:
        try:
            self._conn.commit()
        except sqlite3.OperationalError as exc:  # a COMMIT that got SQLITE_BUSY stays open and may be retried
            await retry_busy(exc, self._conn.commit)

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


class _Stopped(Exception):
    def __init__(self, at: int, error: sqlite3.OperationalError) -> None:
        super().__init__(str(error))
        self.at = at
        self.error = error


def _execute_all(conn: sqlite3.Connection, statements: list[tuple[str, tuple]], start: int = 0) -> None:
    """``statements[start:]``, in order; one meeting SQLITE_BUSY stops them with ``_Stopped`` (its index)."""
    cur = conn.cursor()
    try:
        for i in range(start, len(statements)):
            sql, params = statements[i]
            try:
                cur.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if is_busy(exc):
                    raise _Stopped(i, exc) from exc
                raise
    finally:
        cur.close()


class WalCheckpointer:
    """Copies the WAL back into the database file from a thread of its own, off the event loop.

    SQLite's automatic checkpoint runs inside whichever commit crosses 1,000 pages, fsyncs, and took ~20 ms of
    the loop each time; a PASSIVE checkpoint on another connection never takes the write lock or waits for
    readers, so it costs the bot nothing. Real time on purpose: this is file maintenance, not bot behaviour.

    Bounded: under steady writes a PASSIVE checkpoint never catches up with the writer, SQLite never rewinds the
    WAL, and the file grew without end (215 MB beside a 14 MB database in a trial). Past ``truncate_bytes`` a
    TRUNCATE checkpoint copies the rest back and cuts the file to zero. It holds the write lock while it works, so
    it waits for readers only ``TRUNCATE_WAIT_MS`` (then tries again next time) and the bot's writers meanwhile
    await their SQLITE_BUSY retries (see the module docstring) instead of blocking the loop.
    """

    TRUNCATE_WAIT_MS = 200

    def __init__(self, path: str, interval_s: float = 1.0, timeout: float = 2.0,
                 truncate_bytes: int = WAL_TRUNCATE_BYTES) -> None:
        self._path = path
        self._interval_s = interval_s
        self._timeout = timeout
        self.truncate_bytes = truncate_bytes
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sqlite-checkpoint", daemon=True)
        self.checkpoints = 0
        self.truncations = 0
        self._thread.start()

    def _run(self) -> None:
        conn = sqlite3.connect(self._path, timeout=self._timeout, check_same_thread=False)
        try:
            while not self._stop.wait(self._interval_s):
                self.checkpoint(conn)
        finally:
            conn.close()

    def checkpoint(self, conn: sqlite3.Connection) -> tuple[int, int] | None:
        """One PASSIVE checkpoint, then a TRUNCATE one if the WAL file is past ``truncate_bytes``: (frames in the
        WAL, frames copied back) of the PASSIVE one, or None when it failed."""
        try:
            _busy, frames, copied = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # keep trying: a missed checkpoint only lets the WAL grow a while
            log.warning("WAL checkpoint failed: %s", exc)
            return None
        self.checkpoints += 1
        if self.wal_bytes() > self.truncate_bytes:
            self.truncate(conn)
        return frames, copied

    def wal_bytes(self) -> int:
        try:
            return os.path.getsize(self._path + "-wal")
        except OSError:  # no WAL file (yet, or any more)
            return 0

    def truncate(self, conn: sqlite3.Connection) -> bool:
        """A TRUNCATE checkpoint, waiting at most ``TRUNCATE_WAIT_MS`` for readers: True when the WAL was cut."""
        try:
            conn.execute(f"PRAGMA busy_timeout={self.TRUNCATE_WAIT_MS}")
            busy, _frames, _copied = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
        except sqlite3.Error as exc:
            log.warning("WAL truncation failed: %s", exc)
            return False
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(self._timeout * 1000)}")
        if busy:  # a reader or writer was in the way: next time
            return False
        self.truncations += 1
        return True

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def is_memory(path: str | None) -> bool:
    """An in-memory SQLite database: one connection's own, which no other connection can open."""
    return not path or path == ":memory:" or path.startswith("file::memory:") or "mode=memory" in path


def inline_creator(path: str, wal_truncate_bytes: int = WAL_TRUNCATE_BYTES):
    async def connect() -> InlineConnection:
        # check_same_thread off: the pool may hand the connection to a later task, always on the loop's thread.
        # timeout 0: no busy handler sleeping on the loop (storage/db.py's pragmas keep it at 0 for this one)
        conn = sqlite3.connect(path, timeout=0, check_same_thread=False)
        checkpointer = None
        if not is_memory(path):
            conn.execute("PRAGMA wal_autocheckpoint=0")  # see WalCheckpointer
            checkpointer = WalCheckpointer(path, truncate_bytes=wal_truncate_bytes)
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
