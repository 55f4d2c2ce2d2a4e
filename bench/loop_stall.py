"""How long the event loop stalls while the tier pass and the dashboard read: inline (before) and off the loop
(storage/reads.py, after).

    python bench/loop_stall.py                          # 500,000 activity rows, 20,000 members (a few minutes)
    python bench/loop_stall.py --full                   # bench/tiers_scale.py's full size: 5 M rows, 100 k members
    python bench/loop_stall.py --keep                   # keep bench/out/stall-ROWS-MEMBERS.db and reuse it
    python bench/loop_stall.py --postgres postgresql+asyncpg://postgres@127.0.0.1:5432/postgres
                                                        # the same rows copied into a fresh PostgreSQL database too

Seeds with bench/tiers_scale.py's generator. A ticker task wakes every 5 ms and records how late it woke: the
longest lateness is the longest time a chat would have waited for the loop. Measured for each way of reading
(``inline``: the reads on the loop's own session, as before; ``off_loop``: run_read), one after the other on the
same data: the first tier pass from nothing (rollups written on the loop either way), the next night's pass,
the pass's read-and-classify step alone (``classify_all``), and the dashboard's overview and knowledge-misses
reads. Prints one JSON object on its last line.

Off the loop, what still stalls it: the rollups and the results, written on the loop's connection, and Python's
garbage collector, which stops every thread while it walks the heap, whichever thread set it off (``--gc-freeze``
shows how much of that is the objects alive since start).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import sqlite3
import statistics
import sys
import time
import uuid
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from sqlalchemy.engine import make_url  # noqa: E402

import tiers_scale  # noqa: E402
from skills.faq import store as faq_store  # noqa: E402
from skills.tiers import stats  # noqa: E402
from storage.db import create_engine, migrate, session_factory  # noqa: E402
from storage.reads import run_read  # noqa: E402
from skills.tiers.store import TierRules, classify_all, recompute  # noqa: E402

NOW = tiers_scale.NOW
TZ = tiers_scale.TZ
MODES = ("inline", "off_loop")


class Ticker:
    """Wakes every ``period`` s; ``worst`` is the latest it woke, ``late`` every lateness over 20 ms."""

    def __init__(self, period: float = 0.005) -> None:
        self.period = period
        self.worst = 0.0
        self.ticks = 0
        self.late: list[float] = []
        self._loop = asyncio.get_running_loop()
        self._due = self._loop.time()
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            self._due = self._loop.time() + self.period
            await asyncio.sleep(self.period)
            self._record(self._loop.time() - self._due)
            self.ticks += 1

    def _record(self, lateness: float) -> None:
        self.worst = max(self.worst, lateness)
        if lateness > 0.02:
            self.late.append(lateness)

    async def started(self) -> None:
        while self.ticks < 2:
            await asyncio.sleep(self.period)

    async def stop(self) -> dict:
        self._record(self._loop.time() - self._due)  # a stall right up to the end counts too
        self._task.cancel()
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return {"worst_ms": round(self.worst * 1000, 1), "stalls_over_20ms": len(self.late),
                "stalled_ms_total": round(sum(self.late) * 1000)}


async def measured(make_coro) -> dict:
    ticker = Ticker()
    await ticker.started()
    t0 = time.perf_counter()
    await make_coro()
    took = time.perf_counter() - t0
    return {"took_s": round(took, 2), **await ticker.stop()}


async def inline_read(session, fn, *args):
    return await session.run_sync(fn, *args)


async def clear_rollups(url: str) -> None:
    """Every pass measured from the same start: the rollups emptied, as bench/tiers_scale.py does."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        con = sqlite3.connect(parsed.database)
        for table in tiers_scale.ROLLUPS:
            con.execute(f"DELETE FROM {table}")  # noqa: S608 (our own table names)
        con.commit()
        con.close()
        return
    import asyncpg

    conn = await asyncpg.connect(parsed.set(drivername="postgresql").render_as_string(hide_password=False))
    try:
        await conn.execute("TRUNCATE " + ", ".join(tiers_scale.ROLLUPS))
    finally:
        await conn.close()


async def measure(url: str) -> dict:
    rules = TierRules()
    out: dict = {}
    for mode in MODES:
        await clear_rollups(url)
        engine = create_engine(url)
        sessions = session_factory(engine)
        off = mode == "off_loop"
        read = run_read if off else inline_read
        try:
            async with sessions() as s:
                first = await measured(lambda: recompute(s, NOW, TZ, rules, reads_off_loop=off))
            async with sessions() as s:
                nightly = await measured(lambda: recompute(s, NOW + timedelta(hours=6, minutes=30), TZ, rules,
                                                           reads_off_loop=off))
            async with sessions() as s:
                classify = await measured(lambda: read(s, classify_all, NOW + timedelta(hours=6, minutes=30), TZ,
                                                       rules))
            overview, misses = [], []
            for _ in range(5):
                async with sessions() as s:
                    overview.append(await measured(lambda: read(s, stats.overview_sync, NOW, TZ, 30, 90)))
                async with sessions() as s:
                    misses.append(await measured(lambda: faq_store.misses(s, NOW, 30)))  # one grouping, off the loop itself
        finally:
            await engine.dispose()
        out[mode] = {"first_pass": first, "nightly_pass": nightly, "classify_all": classify,
                     "overview_worst_ms": max(o["worst_ms"] for o in overview),
                     "overview_took_ms": round(statistics.median(o["took_s"] for o in overview) * 1000),
                     "misses_worst_ms": max(m["worst_ms"] for m in misses),
                     "misses_took_ms": round(statistics.median(m["took_s"] for m in misses) * 1000)}
    return out


# -- PostgreSQL: the same rows, copied from the generated SQLite file --------------------------------------------------

COPIED = {  # table: columns, in the order the generator writes them
    "rooms": ("id", "topic", "first_seen", "last_seen"),
    "members": ("id", "name", "first_seen", "last_seen"),
    "member_names": ("member_id", "name", "first_seen"),
    "room_members": ("room_id", "member_id", "first_seen", "last_seen", "joined_at", "left_at", "inviter_id",
                     "active"),
    "points_balances": ("member_id", "balance", "updated_at"),
    "activity": ("at", "room_id", "member_id", "kind", "skill", "detail"),
}
TIMES = {"first_seen", "last_seen", "joined_at", "left_at", "updated_at", "at"}


async def copy_to_postgres(path: Path, admin_url: str) -> str:
    import asyncpg
    from datetime import datetime

    name = f"bench_stall_{uuid.uuid4().hex[:8]}"
    dsn = make_url(admin_url).set(drivername="postgresql")
    admin = await asyncpg.connect(dsn.render_as_string(hide_password=False))
    await admin.execute(f'CREATE DATABASE "{name}"')
    await admin.close()
    url = make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()
    conn = await asyncpg.connect(dsn.set(database=name).render_as_string(hide_password=False))
    src = sqlite3.connect(path)
    try:
        for table, columns in COPIED.items():
            cursor = src.execute(f"SELECT {', '.join(columns)} FROM {table}")  # noqa: S608
            while rows := cursor.fetchmany(50_000):
                records = [tuple(datetime.fromisoformat(v) if c in TIMES and v is not None
                                 else (bool(v) if c == "active" else v) for c, v in zip(columns, r)) for r in rows]
                await conn.copy_records_to_table(table, records=records, columns=list(columns))
        await conn.execute("ANALYZE")
    finally:
        src.close()
        await conn.close()
    return url


async def drop_postgres(url: str, admin_url: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(make_url(admin_url).set(drivername="postgresql").render_as_string(
        hide_password=False))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await admin.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--members", type=int, default=20_000)
    parser.add_argument("--full", action="store_true", help="5,000,000 rows and 100,000 members")
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) bench/out/stall-ROWS-MEMBERS.db")
    parser.add_argument("--postgres", metavar="URL", help="also measure on a fresh database on this server")
    parser.add_argument("--gc-freeze", action="store_true",
                        help="gc.freeze() before measuring: the objects alive then are left out of every collection")
    args = parser.parse_args()
    if args.full:
        args.rows, args.members = 5_000_000, 100_000
    out_dir = Path(__file__).resolve().parent / "out"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"stall-{args.rows}-{args.members}.db"
    if not (args.keep and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        asyncio.run(tiers_scale.prepare(f"sqlite+aiosqlite:///{path}"))
        tiers_scale.generate(path, args.rows, args.members)
    result: dict = {"rows": args.rows, "members": args.members, "tick_ms": 5, "gc_freeze": args.gc_freeze}
    if args.gc_freeze:
        gc.collect()
        gc.freeze()
    try:
        result["sqlite"] = asyncio.run(measure(f"sqlite+aiosqlite:///{path}"))
        if args.postgres:
            async def on_postgres() -> dict:
                url = await copy_to_postgres(path, args.postgres)
                try:
                    return await measure(url)
                finally:
                    await drop_postgres(url, args.postgres)

            result["postgresql"] = asyncio.run(on_postgres())
    finally:
        if not args.keep:
            for suffix in ("", "-wal", "-shm"):
                Path(str(path) + suffix).unlink(missing_ok=True)
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
