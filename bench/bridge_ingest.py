"""Bridge ingest: signed events over real HTTP on loopback into `python -m bot run` on the bridge, replies out to
a provider's /send.

    python bench/bridge_ingest.py [--events 10000] [--rooms 50] [--concurrency 16] [--commands 0.1]
                                  [--skills ping,welcome,checkin,lottery] [--seed 1] [--send-ms 0]
                                  [--max-in-flight N]

The bot runs as its own process (`python -m bot run`, SQLite file, the skills given). How the governor's
deliberate pacing is kept out of the latency: the run turns it off (every pacing interval zero, no per-minute
cap, no warm-up, no lively-room hold), so the time from an event's 200 to its reply's /send is the bot's own work
and queueing, nothing it waits for on purpose. This process is the provider: it posts the events (signed,
``--concurrency`` connections) and answers /send, after ``--send-ms`` milliseconds (a provider that takes a while
to reach the platform: what one slow /send does to the other rooms' replies; the governor has at most
``--max-in-flight`` sends under way, its default unless given). A share
``--commands`` of the events are commands answered at once (/ping, 在吗, /积分, each from its own member, so each
reply is matched to its event by its @-mention); of the rest, 5 % are check-ins (confirmed together per room after
the check-in skill's window: sent, not timed) and the others chatter; every 500th event is a heartbeat.

Prints progress to stderr and one JSON object on the last line of stdout: accepted_per_s (the events' 200
answers), handled_per_s (until the last reply reached /send), the p50/p99 ms from an event's 200 answer to its
reply's /send, the bot's peak RSS. Bar: ≥ 1,000 events/s, p99 ≤ 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import hmac
import json
import os
import random
import re
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import aiohttp
from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
TOKEN, SECRET = "bench-token", "bench-secret"
CHATTER = ["哈哈哈", "今天天气不错", "有人在吗", "这个好用吗？", "收到", "👍👍", "晚上吃什么", "刚下单了", "谢谢群主", "早上好"]
CONFIG = """
[bot]
skills = {skills}
[storage]
url = "sqlite+aiosqlite:///{db}"
[governor]   # no deliberate pacing: the run measures the bot, not its rhythm
min_interval_s = 0
jitter_s = 0
chat_switch_interval_s = 0
per_chat_interval_s = 0
max_per_minute = 0
warmup_s = 0
lively_messages = 0
{max_in_flight}[http]
port = 0
"""


def generate(n: int, rooms: int, commands: float, seed: int) -> tuple[list[dict], dict[str, int]]:
    """The events, and for each command its member's id → the event's index (the reply mentions the member)."""
    rng = random.Random(seed)
    at = datetime.now(timezone.utc).astimezone().isoformat(timespec="seconds")
    events, expect = [], {}
    for i in range(n):
        room = f"room{rng.randrange(rooms)}"
        if i % 500 == 499:
            events.append({"id": f"b{i}", "kind": "heartbeat", "at": at})
            continue
        if rng.random() < commands:  # commands answered at once, with an @-mention of their member
            user, text = f"cmd{i}", rng.choice(["/ping", "在吗", "/积分"])
            expect[user] = i
        elif rng.random() < 0.05:  # check-ins: confirmed together per room after a window, not timed
            user, text = f"m{rng.randrange(2000)}", "签到"
        else:
            user, text = f"m{rng.randrange(2000)}", rng.choice(CHATTER)
        events.append({"id": f"b{i}", "kind": "message", "at": at, "room": room, "room_topic": f"会员群{room[4:]}",
                       "user": user, "name": f"会员{user}", "text": text})
    return events, expect


class Provider:
    """The provider's side the bot calls: answers /send at once and notes when each arrived and whom it mentioned.
    Runs as its own process (``--serve-provider``), so its answers don't wait behind the poster's work."""

    def __init__(self, send_ms: float = 0.0) -> None:
        self.sends: list[tuple[float, list[str]]] = []
        self.send_s = send_ms / 1000


    async def capabilities(self, request: web.Request) -> web.Response:
        return web.json_response({"send_text": True, "mention": True})

    async def send(self, request: web.Request) -> web.Response:
        now = time.perf_counter()  # CLOCK_MONOTONIC: comparable with the poster's process
        body = await request.json()
        self.sends.append((now, body.get("mentions") or []))
        if self.send_s:
            await asyncio.sleep(self.send_s)  # the provider's own way to the platform (simulated)
        return web.json_response({"id": f"pm{len(self.sends)}"})

    async def count(self, request: web.Request) -> web.Response:
        return web.json_response({"sends": len(self.sends)})

    async def dump(self, request: web.Request) -> web.Response:
        return web.json_response({"sends": self.sends})


async def serve_provider(send_ms: float) -> None:
    provider = Provider(send_ms)
    app = web.Application()
    app.router.add_get("/capabilities", provider.capabilities)
    app.router.add_post("/send", provider.send)
    app.router.add_get("/bench/count", provider.count)
    app.router.add_get("/bench/sends", provider.dump)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    print(runner.addresses[0][1], flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the bench closes our stdin
    await runner.cleanup()


def _sign(timestamp: str, body: bytes) -> str:
    return "sha256=" + hmac.new(SECRET.encode(), timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()


async def post_all(url: str, events: list[dict], concurrency: int) -> tuple[dict[int, float], dict[int, int]]:
    accepted_at: dict[int, float] = {}
    statuses: dict[int, int] = {}
    bodies = [json.dumps(e, ensure_ascii=False).encode() for e in events]
    queue = iter(range(len(events)))
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as http:
        async def worker() -> None:
            for i in queue:
                ts = str(int(time.time()))
                headers = {"Content-Type": "application/json", "X-Bridge-Timestamp": ts,
                           "X-Bridge-Signature": _sign(ts, bodies[i])}
                async with http.post(url, data=bodies[i], headers=headers) as response:
                    await response.read()
                    accepted_at[i] = time.perf_counter()
                    statuses[response.status] = statuses.get(response.status, 0) + 1
                if i % 2000 == 1999:
                    print(f"  {i + 1} events posted", file=sys.stderr)

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    return accepted_at, statuses


def cpu_s(pid: int) -> float:
    """User + system CPU seconds the process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def replies(provider_url: str, expect: dict[str, int], deadline: float) -> tuple[dict[int, float], int]:
    """When each command's reply reached the provider (event index → instant), and how many other sends came."""
    async with aiohttp.ClientSession() as http:
        while time.perf_counter() < deadline:  # a bench may poll: it is not a test
            async with http.get(f"{provider_url}/bench/count") as response:
                if (await response.json())["sends"] >= len(expect):
                    break
            await asyncio.sleep(0.2)
        await asyncio.sleep(1)  # the check-in confirmations' stragglers
        async with http.get(f"{provider_url}/bench/sends") as response:
            sends = (await response.json())["sends"]
    sent_at: dict[int, float] = {}
    others = 0
    for at, mentions in sends:
        matched = [i for m in mentions if (i := expect.get(m)) is not None]
        for index in matched:
            sent_at.setdefault(index, at)
        others += not matched
    return sent_at, others


def profiler_args(out: str | None) -> list[str]:
    """BENCH_PROFILE=out.prof: cProfile's stats; out.txt or out.html: pyinstrument's report (install it by hand,
    it is no dependency of the project)."""
    if not out:
        return []
    if out.endswith((".txt", ".html")):
        return ["-m", "pyinstrument", "-r", "html" if out.endswith(".html") else "text", "-o", out]
    return ["-m", "cProfile", "-o", out]


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return float("nan")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=10_000)
    parser.add_argument("--rooms", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--commands", type=float, default=0.1)
    parser.add_argument("--skills", default="ping,welcome,checkin,lottery")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--send-ms", type=float, default=0.0, help="the provider answers /send after this long")
    parser.add_argument("--max-in-flight", type=int, help="the governor's max_in_flight (default: the bot's)")
    parser.add_argument("--serve-provider", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_provider:
        await serve_provider(args.send_ms)
        return
    events, expect = generate(args.events, args.rooms, args.commands, args.seed)

    provider = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-provider", "--send-ms", str(args.send_ms), stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE)
    provider_url = f"http://127.0.0.1:{int(await provider.stdout.readline())}"

    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        skills = json.dumps([s for s in args.skills.split(",") if s], ensure_ascii=False)
        in_flight = f"max_in_flight = {args.max_in_flight}\n" if args.max_in_flight else ""
        config.write_text(CONFIG.format(skills=skills, db=Path(tmp) / "bot.db", max_in_flight=in_flight),
                          encoding="utf-8")
        env = {**os.environ, "BOT_BRIDGE_URL": provider_url, "BOT_BRIDGE_TOKEN": TOKEN, "BOT_BRIDGE_SECRET": SECRET,
               "PYTHONUNBUFFERED": "1"}
        env.pop("WECHATY_PUPPET_SERVICE_ENDPOINT", None)
        profile = profiler_args(os.environ.get("BENCH_PROFILE"))
        bot = await asyncio.create_subprocess_exec(
            sys.executable, *profile, "-m", "bot", "--log-level", "INFO", "run", "--config", str(config), cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        port = None
        while line := (await bot.stderr.readline()).decode(errors="replace"):
            if m := re.search(r"its events go to http://127\.0\.0\.1:(\d+)/bridge/events", line):
                port = int(m.group(1))
                break
        if port is None:
            sys.exit("the bot did not start")

        log_path = os.environ.get("BENCH_BOT_LOG")  # the bot's log, kept for a look when set

        async def drain() -> None:
            with open(log_path or os.devnull, "a", encoding="utf-8") as out:
                while line := await bot.stderr.readline():
                    out.write(line.decode(errors="replace"))

        drainer = asyncio.create_task(drain())
        print(f"bot on port {port}; posting {len(events)} events ({len(expect)} commands)", file=sys.stderr)
        cpu_before = cpu_s(bot.pid)
        start = time.perf_counter()
        accepted_at, statuses = await post_all(f"http://127.0.0.1:{port}/bridge/events", events, args.concurrency)
        accepted = time.perf_counter() - start
        sent_at, others = await replies(provider_url, expect, deadline=time.perf_counter() + 120)
        if len(sent_at) < len(expect):
            print(f"only {len(sent_at)} of {len(expect)} replies arrived", file=sys.stderr)
        handled = max(sent_at.values(), default=start) - start
        rss = peak_rss_mb(bot.pid)
        bot_cpu = cpu_s(bot.pid) - cpu_before
        bot.terminate()
        await bot.wait()
        await drainer
    provider.stdin.close()
    await provider.wait()

    latencies = sorted((sent_at[i] - accepted_at[i]) * 1000 for i in sent_at)
    result = {
        "events": len(events), "rooms": args.rooms, "commands": len(expect), "skills": args.skills,
        "concurrency": args.concurrency, "send_ms": args.send_ms,
        "max_in_flight": args.max_in_flight, "statuses": statuses,
        "accepted_per_s": round(len(events) / accepted), "handled_per_s": round(len(events) / handled),
        "replies": len(sent_at), "other_sends": others,
        "p50_ms": round(statistics.median(latencies), 2) if latencies else None,
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1], 2) if latencies else None,
        "max_ms": round(latencies[-1], 2) if latencies else None,
        "bot_cpu_ms_per_event": round(bot_cpu * 1000 / len(events), 3), "bot_peak_rss_mb": rss,
        "load_avg_1m": round(os.getloadavg()[0], 2),
    }
    print(json.dumps(result, ensure_ascii=False))


if __name__ == "__main__":
    asyncio.run(main())
