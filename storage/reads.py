"""Reads off the event loop: ``run_read(bind, fn, *args)`` runs ``fn(session, *args)``, a synchronous read on a
``sqlalchemy.orm.Session``, where it can't hold up the chats, and returns what ``fn`` returns.

Why: SQLite in the bot process is one connection called inline on the loop (storage/sqlite_inline.py), so a read
of seconds (the tier pass) or hundreds of milliseconds (a dashboard page) stopped every chat for that long.

Where ``fn`` runs:

- SQLite file: on a worker thread (``READ_THREADS`` of them) with a read-only sqlite3 connection of its own
  (``PRAGMA query_only=1``). WAL lets it read the last committed state while the loop's connection writes; sqlite3
  lets go of the GIL while SQLite works, so the loop keeps turning. The threads and connections are made on first
  use and closed when the engine is disposed. A read cancelled while it runs stops (SQLite's progress handler
  sees the flag; the read raises "interrupted" on its thread) rather than keep a thread for seconds.
- PostgreSQL: the same, a worker thread running ``fn`` through an engine of its own on an event loop of its own
  (asyncpg connections belong to the loop that made them), its transactions read-only and REPEATABLE READ. On the bot's loop, ``conn.run_sync(fn)`` waits for the
  network without blocking it, but turning rows into objects and whatever Python ``fn`` does runs on the loop:
  bench/loop_stall.py measures the difference.
- In-memory SQLite: no other connection can open it, so inline, on the caller's session (or one of its own when
  given an engine), as before.
- The caller's session holding uncommitted writes (SQLite: a write transaction open on its connection;
  PostgreSQL: any transaction open; or ORM objects not flushed yet): on that session, inline, so the read sees
  its own writes as it always did. Pass the session you have rather than the engine: with one SQLite connection,
  a second session in the same task would wait for itself.

Otherwise a read sees what is committed when it starts, all of it from that one snapshot, never another
session's uncommitted writes: commit before a read that must see your writes off the loop. ``fn`` must only read
(both backends refuse its writes), and ORM objects it returns are detached: their loaded columns are there,
nothing lazy-loads.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import asyncio
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from sqlalchemy import create_engine, event
from sqlalchemy.engine import URL, Engine
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, create_async_engine
from sqlalchemy.orm import Session
from sqlalchemy.pool import QueuePool

from storage.sqlite_inline import is_memory
from storage.types import json_text

T = TypeVar("T")

READ_THREADS = 2  # a report and a tier pass at once; a third read waits for one of them
READ_BUSY_TIMEOUT_MS = 2000  # on a worker thread a busy wait holds up nobody but that read
PROGRESS_STEPS = 100_000  # SQLite VM steps between checks for cancellation (~1 ms)


Bind = AsyncEngine | AsyncSession | AsyncConnection


async def run_read(bind: Bind, fn: Callable[..., T], *args: Any) -> T:
    """``fn(session, *args)`` off the event loop (see the module docstring for where, and what it sees)."""
    session = bind if isinstance(bind, AsyncSession) else None
    if session is not None and await _has_own_writes(session):
        return await session.run_sync(fn, *args)
    engine = _engine_of(bind)
    reader = _reader(engine)
    if reader is None:  # in-memory SQLite
        if session is not None:
            return await session.run_sync(fn, *args)
        async with AsyncSession(engine) as s:
            return await s.run_sync(fn, *args)
    return await reader.run(fn, args)


def _engine_of(bind: Bind) -> AsyncEngine:
    if isinstance(bind, AsyncEngine):
        return bind
    if isinstance(bind, AsyncConnection):
        return bind.engine
    target = bind.bind
    if isinstance(target, AsyncConnection):
        return target.engine
    if not isinstance(target, AsyncEngine):
        raise TypeError("run_read needs a session bound to one engine (async_sessionmaker(engine))")
    return target


async def _has_own_writes(session: AsyncSession) -> bool:
    if session.new or session.dirty or session.deleted:
        return True
    if not session.in_transaction():
        return False
    conn = await session.connection()
    if conn.dialect.name == "sqlite":  # sqlite3 begins a transaction at the first write, not at a read
        driver = conn.sync_connection.connection.driver_connection
        return bool(getattr(driver, "in_transaction", True))
    return True  # PostgreSQL: a read and a write transaction look alike from here


# -- the readers, one per engine ------------------------------------------------------------------------------------

_readers: weakref.WeakKeyDictionary[Engine, _Reader] = weakref.WeakKeyDictionary()


def _reader(engine: AsyncEngine) -> _Reader | None:
    sync_engine = engine.sync_engine
    reader = _readers.get(sync_engine)
    if reader is None:
        url = engine.url
        if url.get_backend_name() == "sqlite":
            if is_memory(url.database):
                return None
            reader = _SqliteReader(url.database)
        else:
            reader = _PostgresReader(url)
        _readers[sync_engine] = reader
        event.listen(sync_engine, "engine_disposed", lambda _e: _close(sync_engine, reader), once=True)
    return reader


def _close(sync_engine: Engine, reader: _Reader) -> None:
    if _readers.get(sync_engine) is reader:
        del _readers[sync_engine]
    reader.close()


class _Reader(ABC):
    """Reads on worker threads of their own; each backend says how a thread reads and how the readers close."""

    def __init__(self, name: str) -> None:
        self._executor = ThreadPoolExecutor(READ_THREADS, thread_name_prefix=name)

    async def run(self, fn: Callable[..., T], args: tuple) -> T:
        job = _Job()
        future = asyncio.get_running_loop().run_in_executor(self._executor, self._call, job, fn, args)
        try:
            return await future
        except asyncio.CancelledError:
            job.cancel()
            raise

    @abstractmethod
    def _call(self, job: _Job, fn: Callable[..., T], args: tuple) -> T: ...

    @abstractmethod
    def close(self) -> None: ...


class _Job:
    """A read's cancelled flag, which a running SQLite read checks (its progress handler) to stop early."""

    __slots__ = ("cancelled",)

    def __init__(self) -> None:
        self.cancelled = False

    def cancel(self) -> None:
        self.cancelled = True

    def check(self) -> bool:
        return self.cancelled


class _SqliteReader(_Reader):
    def __init__(self, path: str) -> None:
        super().__init__("sqlite-read")
        self._running: set[_Job] = set()
        self._engine = create_engine(
            URL.create("sqlite+pysqlite", database=path), poolclass=QueuePool, pool_size=READ_THREADS, max_overflow=0,
            connect_args={"check_same_thread": False, "timeout": READ_BUSY_TIMEOUT_MS / 1000},
            json_serializer=json_text)
        event.listen(self._engine, "connect", _read_only)

    def _call(self, job: _Job, fn: Callable[..., T], args: tuple) -> T:
        if job.cancelled:  # cancelled while it waited for a thread
            raise asyncio.CancelledError
        with self._engine.connect() as conn:
            raw = conn.connection.driver_connection
            # a cancelled read stops within ~1 ms of SQLite work ("interrupted"), checked where SQLite is, so no
            # race with a statement about to start
            raw.set_progress_handler(job.check, PROGRESS_STEPS)
            self._running.add(job)
            raw.execute("BEGIN")  # one snapshot for everything fn reads (sqlite3 would give each SELECT its own)
            try:
                with Session(bind=conn, autoflush=False) as session:
                    return fn(session, *args)
            finally:
                self._running.discard(job)
                raw.set_progress_handler(None, 0)
                raw.rollback()  # the snapshot ends here, before the connection goes back to the pool

    def close(self) -> None:
        for job in list(self._running):  # at dispose: a read still running stops now rather than after seconds
            job.cancel()
        self._executor.shutdown(wait=True)
        self._engine.dispose()


def _read_only(dbapi_conn, _record=None) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA query_only=1")
    cur.close()


class _PostgresReader(_Reader):
    """A thread running an event loop of its own, with an engine of its own on that loop."""

    def __init__(self, url) -> None:
        super().__init__("pg-read")
        self._url = url
        self._local = threading.local()  # each worker thread: its loop and engine
        self._made: list[tuple[asyncio.AbstractEventLoop, AsyncEngine]] = []
        self._made_lock = threading.Lock()

    def _call(self, job: _Job, fn: Callable[..., T], args: tuple) -> T:
        local = self._local
        if getattr(local, "loop", None) is None:
            local.loop = asyncio.new_event_loop()
            local.engine = create_async_engine(
                self._url, pool_size=1, max_overflow=0, pool_pre_ping=True, json_serializer=json_text,
                connect_args={"server_settings": {"default_transaction_read_only": "on",
                                                  "default_transaction_isolation": "repeatable read"}})
            with self._made_lock:
                self._made.append((local.loop, local.engine))
        if job.cancelled:  # cancelled while it waited for a thread (a running one finishes on its thread)
            raise asyncio.CancelledError
        return local.loop.run_until_complete(self._read(local.engine, fn, args))

    @staticmethod
    async def _read(engine: AsyncEngine, fn: Callable[..., T], args: tuple) -> T:
        # closing ends the transaction after detaching what fn loaded (a rollback first would expire it all)
        async with AsyncSession(engine, autoflush=False) as session:
            return await session.run_sync(fn, *args)

    def close(self) -> None:
        self._executor.shutdown(wait=True)  # the workers are done: their loops are free to run elsewhere
        with self._made_lock:
            made, self._made = self._made, []

        def dispose_all() -> None:  # a thread of its own: the caller's thread may be running its own loop
            for loop, engine in made:
                loop.run_until_complete(engine.dispose())
                loop.close()

        thread = threading.Thread(target=dispose_all, name="pg-read-close")
        thread.start()
        thread.join()
