"""A simulated day of scheduling and reminders through replay, and the scheduler's work per tick.

    python bench/schedule_day.py [--rooms 1000] [--orders 50000] [--events 10000] [--seed 1]

Setup (not timed): an SQLite file with ``--orders`` orders already known (bulk-inserted as the CSV import would
leave them: 60% unpaid with a pay-by in the next 7 days, 20% ready for pickup with a pickup-by in the next 8 days,
20% paid), each with its reminder job; 1,000 rooms in the config and three daily schedules to all of them
(08:30 light, 12:00 tips, 18:00 promotional).

Timed: one day (00:00 to 24:00 local) through ``run_replay``: ``--events`` events — new orders, payments of
known orders (cancelling their reminders), shipments, chatter — with every reminder and scheduled message that
falls due, through the send governor (pacing, quiet hours, caps, gap) and the activity store. Bar: ≤ 30 s.

Scheduler per tick: the due-jobs query the scheduler runs each tick, measured in SQLite VM instructions (a count
of work that doesn't depend on the machine) and microseconds, with 5,000 and with all jobs in the table, and
with 0 / 10 / 100 jobs due. With the (status, next_run_at) index the work follows the due jobs only.

Prints progress to stderr and one JSON object on the last line of stdout.
"""

from __future__ import annotations

import argparse
import asyncio
import io
import json
import os
import random
import resource
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.engine import Engine  # noqa: E402

from bot.config import parse_config  # noqa: E402
from bot.replayer import run_replay  # noqa: E402
from storage.db import create_engine, migrate  # noqa: E402
from storage.prepared import Prepared  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
DAY = datetime(2026, 11, 24, 0, 0, tzinfo=TZ)
DUE_SQL = ("SELECT id FROM scheduled_jobs WHERE status = 'active' AND next_run_at <= ? "
           "ORDER BY next_run_at, id LIMIT 100")  # the scheduler's per-tick query (bot/scheduler.py _run_due)


def db_time(at: datetime) -> str:
    """How SQLAlchemy stores a UTCDateTime in SQLite."""
    return at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def config(rooms: int, tips: Path):
    items = {
        "早安": {"daily": "08:30", "text": "早上好☀️ 今天是{date}{weekday}", "targets": ["all"]},
        "贴士": {"daily": "12:00", "tips": str(tips), "targets": ["all"]},
        "晚市": {"daily": "18:00", "text": "今晚团购已开，点击群公告下单", "kind": "promotional", "targets": ["all"]},
    }
    return parse_config({
        "bot": {"skills": ["ping", "schedule", "orders"]},
        "rooms": {f"room{i}": {} for i in range(rooms)},
        "skills": {"schedule": {"items": items}},
    })


def preload(db: Path, orders: int, rng: random.Random, offset: int = 0) -> list[tuple[str, str]]:
    """Orders with their reminder jobs, as an import leaves them. Returns (order id, status) of each."""
    made = db_time(DAY - timedelta(days=1))
    rows, events, jobs, known = [], [], [], []
    for n in range(offset, offset + orders):
        oid, member = f"P{n}", f"wxid_{rng.randrange(20000)}"
        r = rng.random()
        pay_by = pickup_by = None
        if r < 0.6:
            status = "created"
            pay_by = DAY + timedelta(seconds=rng.uniform(0, 7 * 86400))
            jobs.append((f"order:{oid}:unpaid", pay_by - timedelta(minutes=30), "unpaid"))
        elif r < 0.8:
            status = "ready_for_pickup"
            pickup_by = DAY + timedelta(seconds=rng.uniform(86400, 8 * 86400))
            jobs.append((f"order:{oid}:pickup_due", pickup_by - timedelta(days=1), "pickup_due"))
        else:
            status = "paid"
        known.append((oid, status))
        rows.append((oid, member, json.dumps(["草莓 x2"]), rng.randrange(100, 30000), status,
                     db_time(pay_by) if pay_by else None, db_time(pickup_by) if pickup_by else None, made, made))
        events.append((oid, status, "csv", made, 1))
    with sqlite3.connect(db) as conn:
        conn.executemany("INSERT INTO orders (id, member_id, items, amount_cents, status, pay_by, pickup_by, "
                         "created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        conn.executemany("INSERT INTO order_events (order_id, status, source, received_at, applied) "
                         "VALUES (?, ?, ?, ?, ?)", events)
        conn.executemany(
            "INSERT INTO scheduled_jobs (key, handler, payload, schedule, spec, next_run_at, status, "
            "misfire_grace_s, run_count, attempts, created_at) VALUES (?, 'orders.remind', ?, 'once', '', ?, "
            "'active', 21600, 0, 0, ?)",
            [(key, json.dumps({"order_id": key.split(":")[1], "reminder": kind}), db_time(at), made)
             for key, at, kind in jobs])
    return known


def tick_work(db: Path) -> dict:
    """VM instructions and µs of the due query with 0, 10 and 100 jobs due, at the table's current size."""
    with sqlite3.connect(db) as conn:
        total = conn.execute("SELECT count(*) FROM scheduled_jobs WHERE status = 'active'").fetchone()[0]
        times = [r[0] for r in conn.execute("SELECT next_run_at FROM scheduled_jobs WHERE status = 'active' "
                                            "ORDER BY next_run_at LIMIT 101")]
        plan = " / ".join(r[3] for r in conn.execute("EXPLAIN QUERY PLAN " + DUE_SQL, ("2000-01-01",)))
        out = {"active_jobs": total, "plan": plan}
        for due in (d for d in (0, 10, 100) if d <= len(times)):
            # "now" at the due-th earliest job: exactly `due` jobs are due
            now = times[due - 1] if due else "2000-01-01 00:00:00.000000"
            steps = [0]

            def count() -> int:
                steps[0] += 1
                return 0

            conn.set_progress_handler(count, 1)
            found = len(conn.execute(DUE_SQL, (now,)).fetchall())
            conn.set_progress_handler(None, 1)
            samples = []
            for _ in range(200):
                t0 = time.perf_counter()
                conn.execute(DUE_SQL, (now,)).fetchall()
                samples.append(time.perf_counter() - t0)
            out[f"due_{due}"] = {"found": found, "vm_steps": steps[0],
                                 "us": round(statistics.median(samples) * 1e6, 1)}
        return out


def day_script(known: list[tuple[str, str]], rooms: int, events: int, rng: random.Random) -> list[str]:
    lines = []
    due_today = [oid for oid, status in known if status == "created"]
    rng.shuffle(due_today)
    paid_ids = [oid for oid, status in known if status == "paid"]
    for i in range(events):
        at = DAY + timedelta(seconds=rng.uniform(0, 86400 - 1))
        r = rng.random()
        if r < 0.2:  # a new order, to pay within 2 hours: its reminder falls due today
            ev = {"kind": "order", "order_id": f"N{i}", "member_id": f"wxid_n{i}", "amount": 25.5,
                  "items": ["牛奶"], "status": "created", "pay_by": (at + timedelta(hours=2)).isoformat()}
        elif r < 0.4 and due_today:  # a known order gets paid: its unpaid reminder is cancelled
            ev = {"kind": "order", "order_id": due_today.pop(), "status": "paid"}
        elif r < 0.5 and paid_ids:  # shipped: a reminder at once
            ev = {"kind": "order", "order_id": paid_ids.pop(), "status": "shipped", "tracking": "SF1234567890"}
        else:
            room = rng.randrange(rooms)
            ev = {"kind": "message", "room": f"room{room}", "user": f"wxid_{rng.randrange(20000)}", "text": "哈哈"}
        ev["at"] = at.isoformat()
        lines.append((at, json.dumps(ev, ensure_ascii=False)))
    lines.sort(key=lambda x: x[0])
    return [line for _, line in lines]


async def roundtrip_us(url: str, n: int = 500) -> float:
    """What one trivial statement costs through the bot's database stack right now (SQLAlchemy + aiosqlite's
    worker thread): the unit the day's time is made of, and very sensitive to how busy the machine is."""
    from sqlalchemy import text

    from storage.db import session_factory

    engine = create_engine(url)
    async with session_factory(engine)() as s:
        await s.execute(text("SELECT 1"))
        t0 = time.perf_counter()
        for _ in range(n):
            await s.execute(text("SELECT 1"))
        elapsed = time.perf_counter() - t0
    await engine.dispose()
    return round(elapsed / n * 1e6, 1)


class _CountingSink(io.TextIOBase):
    lines = 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        return len(s)


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rooms", type=int, default=1000)
    ap.add_argument("--orders", type=int, default=50_000)
    ap.add_argument("--events", type=int, default=10_000)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        url = f"sqlite+aiosqlite:///{db}"
        tips = Path(tmp) / "tips.txt"
        tips.write_text("\n".join(f"今日小贴士 {i}" for i in range(30)), encoding="utf-8")
        cfg = config(args.rooms, tips)
        engine = create_engine(url)
        await migrate(engine)
        await engine.dispose()
        t0 = time.perf_counter()
        small = max(1, min(5000, args.orders // 10))
        known = preload(db, small, random.Random(args.seed + 1))
        work_small = tick_work(db)
        known += preload(db, args.orders - small, random.Random(args.seed + 2), offset=small)
        work_all = tick_work(db)
        print(f"preloaded {args.orders} orders in {time.perf_counter() - t0:.1f} s", file=sys.stderr)
        baseline_us = await roundtrip_us(url)
        lines = day_script(known, args.rooms, args.events, rng)
        out = _CountingSink()
        statements = [0]

        def count(*_args) -> None:
            statements[0] += 1

        event.listen(Engine, "before_cursor_execute", count)
        direct0 = Prepared.direct_runs
        print(f"replaying {len(lines)} events over one day, {args.rooms} rooms", file=sys.stderr)
        t0, cpu0 = time.perf_counter(), time.process_time()
        status = await run_replay(cfg, enumerate(lines, start=1), db_url=url, out=out,
                                  until=DAY + timedelta(days=1))
        wall, cpu = time.perf_counter() - t0, time.process_time() - cpu0
        event.remove(Engine, "before_cursor_execute", count)
        with sqlite3.connect(db) as conn:
            kinds = dict(conn.execute("SELECT kind, count(*) FROM activity GROUP BY kind"))
            reminders = dict(conn.execute(
                "SELECT json_extract(detail, '$.reminder') || ':' || json_extract(detail, '$.outcome'), count(*) "
                "FROM activity WHERE kind = 'reminder' GROUP BY 1"))
            dropped = dict(conn.execute("SELECT json_extract(detail, '$.reason'), count(*) FROM activity "
                                        "WHERE kind = 'send_dropped' GROUP BY 1"))
            room_sends = conn.execute("SELECT count(*) FROM activity WHERE kind = 'sent' AND room_id IS NOT NULL "
                                      "AND json_extract(detail, '$.proactive') IS NOT NULL").fetchone()[0]
            dupes = conn.execute("SELECT count(*) FROM (SELECT ref, kind, target FROM reminders_sent "
                                 "GROUP BY 1, 2, 3 HAVING count(*) > 1)").fetchone()[0]
            jobs_total = conn.execute("SELECT count(*) FROM scheduled_jobs").fetchone()[0]
    result = {
        "rooms": args.rooms,
        "schedules_per_day": 3,
        "orders": args.orders + sum(1 for x in lines if '"status": "created"' in x),
        "scheduled_jobs": jobs_total,
        "replay_events": len(lines),
        "day_s": round(wall, 2),
        "bar_s": 30,
        "day_cpu_s": round(cpu, 2),  # the process's CPU time (all threads): less sensitive to a busy machine
        "sends": out.lines,
        "scheduled_room_messages_sent": room_sends,
        "reminders": reminders,
        "dropped": dropped,
        "duplicate_reminders": dupes,
        "jobs_run": kinds.get("job", 0),
        "db_roundtrip_us": baseline_us,
        "statements": statements[0] + Prepared.direct_runs - direct0,
        "statements_direct": Prepared.direct_runs - direct0,  # of which run straight on sqlite3 (storage/prepared.py)
        "tick_work": {f"{work_small['active_jobs']}_jobs": work_small, f"{work_all['active_jobs']}_jobs": work_all},
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "cores": os.cpu_count(),
        "exit_status": status,
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
