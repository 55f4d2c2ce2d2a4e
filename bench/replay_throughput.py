"""Replay throughput: 100,000 generated events through every enabled skill, activity logging on, SQLite file.

    python bench/replay_throughput.py [--events 100000] [--rooms 200] [--members 20000] [--seed 1] [--skills ping]
                                      [--db postgresql+asyncpg://postgres@127.0.0.1/empty_db]

Prints progress to stderr and one JSON object on the last line of stdout:
events_per_s, p50_ms, p99_ms, peak_rss_mb (plus the run's counts). Bar: ≥ 5,000 events/s, p99 ≤ 10 ms,
peak RSS ≤ 300 MB on the 2-core reference machine.
"""

from __future__ import annotations

import argparse
from dataclasses import replace
import asyncio
import io
import json
import os
import random
import resource
import statistics
import sys
import tempfile
import time
from datetime import datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bot.config import load_config  # noqa: E402
from bot.replayer import read_lines, run_replay  # noqa: E402

CHATTER = ["哈哈哈", "今天天气不错", "有人在吗", "这个好用吗？", "收到", "👍👍", "晚上吃什么", "刚下单了",
           "谢谢群主", "早上好", "[图片]", "周末有活动吗", "好的好的", "我也想要", "在路上了"]
COMMANDS = ["/ping", "在吗", "/help", "／帮助", "/echo 你好", "/pnig", "/help ping", "@小助手 /ping", "签到", "／签到",
            "/积分", "/rank", "/兑换", "/lottery status"]


def generate(n: int, rooms: int, members: int, seed: int) -> list[str]:
    """The script's lines (JSON), in time order."""
    rng = random.Random(seed)
    start = datetime.fromisoformat("2026-11-23T08:00:00+08:00")
    span_s = 14 * 3600  # one busy day, 08:00–22:00
    offsets = sorted(rng.uniform(0, span_s) for _ in range(n))
    lines = []
    for off in offsets:
        at = (start + timedelta(seconds=off)).isoformat()
        user = rng.randrange(members)
        room = user % rooms  # each member lives in one room, like most real customers
        ev = {"at": at, "kind": "message", "room": f"room{room}", "room_topic": f"会员群{room}",
              "user": f"wxid_{user}", "name": f"会员{user}"}
        if rng.random() < 0.10:
            ev["text"] = rng.choice(COMMANDS)
            if rng.random() < 0.2:
                del ev["room"], ev["room_topic"]  # some commands come 1-on-1
        else:
            ev["text"] = rng.choice(CHATTER)
        lines.append(json.dumps(ev, ensure_ascii=False))
    return lines


class _CountingSink(io.TextIOBase):
    """Counts the action lines instead of keeping them."""

    lines = 0

    def write(self, s: str) -> int:
        self.lines += s.count("\n")
        return len(s)


async def _counts(db_url: str) -> tuple[int, dict[str, int], int]:
    from sqlalchemy import text

    from storage.db import create_engine

    engine = create_engine(db_url)
    try:
        async with engine.connect() as conn:
            activity_rows = (await conn.execute(text("select count(*) from activity"))).scalar()
            by_kind = dict((await conn.execute(text("select kind, count(*) from activity group by kind"))).all())
            members = (await conn.execute(text("select count(*) from members"))).scalar()
    finally:
        await engine.dispose()
    return activity_rows, by_kind, members


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=100_000)
    ap.add_argument("--rooms", type=int, default=200)
    ap.add_argument("--members", type=int, default=20_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--config", default=str(Path(__file__).resolve().parents[1] / "config.toml"))
    ap.add_argument("--skills", default=None, help="comma-separated skills instead of the config's, e.g. ping")
    ap.add_argument("--db", default=None,
                    help="a PostgreSQL URL (postgresql+asyncpg://…/name) to run on instead of a fresh SQLite file; "
                         "the database must exist and be empty")
    args = ap.parse_args()

    config = load_config(args.config)
    if args.skills:
        config = replace(config, bot=replace(config.bot, skills=tuple(args.skills.split(","))))
    timings: list[float] = []
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "bench.db"
        script = Path(tmp) / "events.jsonl"
        # written to a file and streamed back, as `python -m bot replay` does: the script isn't held in memory
        script.write_text("\n".join(generate(args.events, args.rooms, args.members, args.seed)) + "\n",
                          encoding="utf-8")
        out = _CountingSink()
        print(f"replaying {args.events} events, skills {list(config.bot.skills)}, on {db}", file=sys.stderr)
        t0 = time.perf_counter()
        db_url = args.db or f"sqlite+aiosqlite:///{db}"
        status = await run_replay(config, read_lines(str(script)), db_url=db_url, out=out, on_event=timings.append)
        wall = time.perf_counter() - t0
        actions = out.lines
        activity_rows, by_kind, members = await _counts(db_url)
    timings.sort()
    result = {
        "events": len(timings),
        "seconds": round(wall, 2),
        "handling_s": round(sum(timings), 2),
        "events_per_s": round(len(timings) / wall),
        "p50_ms": round(statistics.median(timings) * 1000, 3),
        "p99_ms": round(timings[int(len(timings) * 0.99)] * 1000, 3),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "actions": actions,
        "activity_rows": activity_rows,
        # every event and every send logged exactly once
        "activity_exact": by_kind.get("message") == len(timings) and by_kind.get("sent") == actions,
        "members": members,
        "cores": os.cpu_count(),
        "backend": db_url.split(":", 1)[0],
        "exit_status": status,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    asyncio.run(main())
