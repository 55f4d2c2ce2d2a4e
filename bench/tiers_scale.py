"""Tiers and the dashboard at scale: 100,000 members, 5,000,000 activity rows over 120 days, on an SQLite file.

    python bench/tiers_scale.py                      # the full size (generating the rows takes a few minutes)
    python bench/tiers_scale.py --rows 500000 --members 10000   # a quick run
    python bench/tiers_scale.py --keep               # keep bench/out/tiers.db and reuse it next time

Measures (1) the first tier pass from nothing (rolls up the 91 days the tiers look at, classifies everyone),
(2) the next night's pass (one new day), (3) the dashboard overview over real HTTP (median and worst of
``--requests`` requests, after one warm-up). Bars: pass ≤ 30 s, overview ≤ 300 ms. Prints one JSON object on
its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import aiohttp  # noqa: E402
from aiohttp import web  # noqa: E402

from bot.app import BotApp  # noqa: E402
from bot.clock import VirtualClock  # noqa: E402
from bot.config import parse_config  # noqa: E402
from bot.web import dashboard  # noqa: E402
from skills.tiers import run_pass  # noqa: E402
from storage.db import create_engine, migrate  # noqa: E402

TZ = ZoneInfo("Asia/Shanghai")
NOW = datetime(2026, 11, 23, 21, 0, tzinfo=TZ)  # the evening of the last generated day: today is nearly full
DAYS = 120
ROOMS = 200
TOKEN = "bench-token"
ROLLUPS = ("member_days", "member_windows", "window_days", "room_days", "tier_orders", "member_tiers", "tier_changes",
           "tier_daily", "tier_runs")
# what a busy community log looks like: mostly chatter, some commands and the bot's own sends, a little of the rest
KINDS = [("message", 80), ("command", 5), ("sent", 6), ("checkin", 3), ("faq_answer", 1.5), ("faq_miss", 0.5),
         ("order", 2), ("join", 1), ("leave", 0.5), ("redeem", 0.5)]


def ts(dt: datetime) -> str:
    """How SQLAlchemy stores our UTCDateTime on SQLite."""
    return dt.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


def generate(path: Path, rows: int, members: int, seed: int = 7) -> None:
    rng = random.Random(seed)
    con = sqlite3.connect(path)
    con.execute("PRAGMA journal_mode=WAL")
    con.execute("PRAGMA synchronous=OFF")
    first_day = (NOW - timedelta(days=DAYS - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    ids = [f"wxid_{i:06d}" for i in range(members)]
    rooms = [f"{1000000 + r}@chatroom" for r in range(ROOMS)]
    con.executemany("INSERT INTO rooms (id, topic, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                    [(r, f"会员群{i}", ts(first_day), ts(NOW)) for i, r in enumerate(rooms)])
    home = [rng.randrange(ROOMS) for _ in range(members)]
    joined = [first_day + timedelta(seconds=rng.uniform(-30 * 86400, (DAYS - 1) * 86400)) for _ in range(members)]
    con.executemany("INSERT INTO members (id, name, first_seen, last_seen) VALUES (?, ?, ?, ?)",
                    [(m, f"成员{i}", ts(joined[i]), ts(NOW)) for i, m in enumerate(ids)])
    con.executemany("INSERT INTO member_names (member_id, name, first_seen) VALUES (?, ?, ?)",
                    [(m, f"成员{i}", ts(joined[i])) for i, m in enumerate(ids)])
    con.executemany("INSERT INTO room_members (room_id, member_id, first_seen, last_seen, joined_at, left_at, "
                    "inviter_id, active) VALUES (?, ?, ?, ?, ?, NULL, NULL, 1)",
                    [(rooms[home[i]], m, ts(joined[i]), ts(NOW), ts(joined[i])) for i, m in enumerate(ids)])
    con.executemany("INSERT INTO points_balances (member_id, balance, updated_at) VALUES (?, ?, ?)",
                    [(m, int(rng.paretovariate(1.5) * 20), ts(NOW)) for m in ids if rng.random() < 0.4])
    con.commit()
    kinds, weights = zip(*KINDS)
    per_day = rows // DAYS
    order_no = 0
    for d in range(DAYS):
        day0 = first_day + timedelta(days=d)
        n = per_day if d < DAYS - 1 else rows - per_day * (DAYS - 1)
        times = sorted(rng.uniform(0, 86400 if d < DAYS - 1 else 21 * 3600) for _ in range(n))
        picked = rng.choices(kinds, weights, k=n)
        batch = []
        for t, kind in zip(times, picked):
            i = min(members - 1, int(members * rng.random() ** 2.2))  # a few members say most of it
            at = ts(day0 + timedelta(seconds=t))
            room = rooms[home[i]]
            if kind == "order":
                order_no += 1
                status = rng.choice(("created", "paid", "paid", "completed", "cancelled"))
                detail = json.dumps({"order_id": f"o{order_no}", "status": status,
                                     "amount": round(rng.uniform(9, 300), 2),
                                     "group_buy": f"gb{d}"})
            elif kind == "message":
                detail = '{"len": 12}'
            elif kind == "faq_miss":
                detail = json.dumps({"q": f"问题{rng.randrange(300)}", "reason": "no_match"}, ensure_ascii=False)
            elif kind == "faq_answer":
                detail = '{"q": "几点发货", "entry": "发货", "score": 0.9, "mode": "keyword"}'
            else:
                detail = None
            batch.append((at, room, ids[i], kind, None, detail))
        con.executemany("INSERT INTO activity (at, room_id, member_id, kind, skill, detail) VALUES (?, ?, ?, ?, ?, ?)",
                        batch)
        con.commit()
    con.close()


async def prepare(url: str) -> None:
    engine = create_engine(url)
    await migrate(engine)
    await engine.dispose()


async def measure(path: Path, requests: int) -> dict:
    url = f"sqlite+aiosqlite:///{path}"
    await prepare(url)  # a kept database from an older version gets the current schema
    con = sqlite3.connect(path)
    for table in ROLLUPS:  # a reused database starts from nothing too
        con.execute(f"DELETE FROM {table}")  # noqa: S608 (our own table names)
    con.commit()
    con.close()
    cfg = parse_config({"bot": {"skills": ["tiers"]}, "storage": {"url": url}})
    clock = VirtualClock(NOW.astimezone(UTC), cfg.tz)

    async def nowhere(message) -> str | None:
        return None

    app = BotApp(cfg, clock, nowhere, db_url=url)
    await app.start()
    try:
        first = await run_pass(app.services)
        await clock.advance_to(NOW + timedelta(hours=6, minutes=30))  # 03:30 next day: the nightly job runs
        t0 = time.perf_counter()
        nightly = await run_pass(app.services)
        nightly_s = time.perf_counter() - t0
        os.environ["DASHBOARD_TOKEN"] = TOKEN
        web_app = web.Application()
        dashboard.setup(web_app, app.services, app.skills)  # the overview is the tiers skill's panel
        runner = web.AppRunner(web_app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port = site._server.sockets[0].getsockname()[1]
        times = []
        async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {TOKEN}"}) as client:
            for i in range(requests + 1):
                t0 = time.perf_counter()
                async with client.get(f"http://127.0.0.1:{port}/dashboard") as r:
                    body = await r.text()
                    assert r.status == 200 and "chart-active" in body, r.status
                if i:  # the first request warms the connection and SQLite's page cache
                    times.append((time.perf_counter() - t0) * 1000)
        await runner.cleanup()
    finally:
        await app.stop()
    return {"first_pass_s": round(first.duration_ms / 1000, 2), "first_rollup_s": round(first.rollup_ms / 1000, 2),
            "first_read_s": round(first.read_ms / 1000, 2), "days_rolled": first.days_rolled,
            "members": first.members, "tiers": first.counts, "nightly_pass_s": round(nightly_s, 2),
            "nightly_rollup_s": round(nightly.rollup_ms / 1000, 2), "nightly_read_s": round(nightly.read_ms / 1000, 2),
            "overview_p50_ms": round(statistics.median(times), 1), "overview_max_ms": round(max(times), 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=5_000_000)
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--requests", type=int, default=20)
    parser.add_argument("--keep", action="store_true", help="keep (and reuse) bench/out/tiers-ROWS-MEMBERS.db")
    args = parser.parse_args()
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    path = out / f"tiers-{args.rows}-{args.members}.db"
    generated_s = None
    if not (args.keep and path.exists()):
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
        asyncio.run(prepare(f"sqlite+aiosqlite:///{path}"))
        t0 = time.perf_counter()
        generate(path, args.rows, args.members)
        generated_s = round(time.perf_counter() - t0, 1)
    result = asyncio.run(measure(path, args.requests))
    if not args.keep:
        for suffix in ("", "-wal", "-shm"):
            Path(str(path) + suffix).unlink(missing_ok=True)
    result = {"rows": args.rows, "members": args.members, "generate_s": generated_s, **result,
              "bar_pass_s": 30, "bar_overview_ms": 300}
    result["ok"] = result["first_pass_s"] <= 30 and result["overview_p50_ms"] <= 300
    print(json.dumps(result, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
