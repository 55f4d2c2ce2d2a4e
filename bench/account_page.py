"""The dashboard's account page (账号状态) reads: a day of activity rows and a backlog of held messages in an SQLite
file, then ``storage.stats.send_figures_sync`` off the loop (``run_read``), as the page does.

    python bench/account_page.py                 # 500,000 activity rows in the last 24 h, 2,000 held messages
    python bench/account_page.py --rows 100000

The rows: 5 % ``sent``, 1 % ``send_dropped`` (three reasons), 0.2 % ``send_failed`` (risk control), the rest
``message``. Prints the median and worst of 5 reads as one JSON object on its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import sqlite3
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from storage.db import create_engine  # noqa: E402
from storage.migrate import migrate  # noqa: E402
from storage.reads import run_read  # noqa: E402
from storage.stats import send_figures_sync  # noqa: E402

NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


def fill(path: Path, rows: int, held: int) -> None:
    rnd = random.Random(0)
    batch = []
    for _ in range(rows):
        at = NOW - timedelta(seconds=rnd.random() * 86400)
        r = rnd.random()
        kind, detail = "message", None
        if r < 0.05:
            kind, detail = "sent", {"text": "x"}
        elif r < 0.06:
            kind, detail = "send_dropped", {"reason": rnd.choice(["stale", "quiet_hours", "cap:total"])}
        elif r < 0.062:
            kind, detail = "send_failed", {"reason": "risk_control"}
        batch.append((at.strftime("%Y-%m-%d %H:%M:%S.%f"), "r1", "u1", kind, json.dumps(detail) if detail else None))
    with sqlite3.connect(path) as con:
        con.executemany("INSERT INTO activity (at, room_id, member_id, kind, detail) VALUES (?,?,?,?,?)", batch)
        con.executemany(
            "INSERT INTO outbox (room_id, text, priority, kind, decided_at, status, attempts) "
            "VALUES (?, 't', 1, 'light', ?, 'pending', 0)",
            [(f"r{i % 300}", NOW.strftime("%Y-%m-%d %H:%M:%S.%f")) for i in range(held)])


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--held", type=int, default=2_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "account.db"
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        await migrate(engine)
        await engine.dispose()
        fill(path, args.rows, args.held)
        engine = create_engine(f"sqlite+aiosqlite:///{path}")
        times = []
        for _ in range(5):
            start = time.perf_counter()
            figures = await run_read(engine, send_figures_sync, NOW)
            times.append(time.perf_counter() - start)
        await engine.dispose()
    print(json.dumps({"rows": args.rows, "held": len(figures.held), "dropped": sum(figures.dropped.values()),
                      "read_median_ms": round(statistics.median(times) * 1000),
                      "read_worst_ms": round(max(times) * 1000)}))


if __name__ == "__main__":
    asyncio.run(main())
