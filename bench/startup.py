"""Start-up time: spawn → the ``bot started`` log line of `python -m bot run` on the bridge.

    python bench/startup.py [--runs 5] [--skills ping,welcome,checkin,lottery] [--installed]

Each run starts `python -m bot run` with ``BOT_BRIDGE_URL`` pointing at a small provider this process serves on
loopback (it answers ``GET /capabilities``), a fresh SQLite file (so the migrations run, as on a first start) and
the skills given, reads the bot's stderr until ``bot started`` (bot/app.py logs it once the database, skills,
scheduler and HTTP server are up), then stops it with SIGTERM. ``--installed``: the bot as `pip install .` put it
into the running Python's environment (started from a folder outside the project), not this checkout. Prints each run's seconds to stderr and one JSON
object on the last line of stdout: the runs, their median and the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

from aiohttp import web

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[bot]
skills = {skills}
[storage]
url = "sqlite+aiosqlite:///{db}"
[http]
port = 0
"""


async def provider() -> web.AppRunner:
    async def capabilities(request: web.Request) -> web.Response:
        return web.json_response({"send_text": True, "mention": True})

    app = web.Application()
    app.router.add_get("/capabilities", capabilities)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", 0).start()
    return runner


async def one_start(url: str, skills: list[str], cwd: Path | None) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "config.toml"
        config.write_text(CONFIG.format(skills=json.dumps(skills), db=Path(tmp) / "bot.db"), encoding="utf-8")
        env = {**os.environ, "BOT_BRIDGE_URL": url, "BOT_BRIDGE_TOKEN": "startup-token",
               "BOT_BRIDGE_SECRET": "startup-secret", "PYTHONUNBUFFERED": "1"}
        started = time.perf_counter()
        bot = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "--log-level", "INFO", "run", "--config", str(config), cwd=cwd or tmp, env=env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        took = None
        while line := await bot.stderr.readline():
            if b"bot started" in line:
                took = time.perf_counter() - started
                break
        bot.terminate()
        await bot.communicate()
        if took is None:
            sys.exit("the bot did not start")
        return took


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--skills", default="ping,welcome,checkin,lottery")
    parser.add_argument("--installed", action="store_true", help="run the installed package, not this checkout")
    args = parser.parse_args()
    runner = await provider()
    url = f"http://127.0.0.1:{runner.addresses[0][1]}"
    skills = [s for s in args.skills.split(",") if s]
    runs = []
    try:
        for _ in range(args.runs):
            runs.append(round(await one_start(url, skills, None if args.installed else ROOT), 3))
            print(f"  bot started after {runs[-1]} s", file=sys.stderr)
    finally:
        await runner.cleanup()
    print(json.dumps({"skills": args.skills, "installed": args.installed, "python": sys.executable, "runs_s": runs, "median_s": statistics.median(runs),
                      "load_avg_1m": round(os.getloadavg()[0], 2), "cores": os.cpu_count()}))


if __name__ == "__main__":
    asyncio.run(main())
