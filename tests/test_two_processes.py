"""Two real bot processes (`python -m bot replay`, one per account) on one PostgreSQL database, through a scripted
morning: each account's lotteries are announced by its own process; one process is killed with SIGKILL before the
draws; the survivor draws the lottery of the room it shares with the dead account, never the one in the room only
the dead account is in; everything drawn is drawn exactly once."""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import ProgrammingError

from storage.db import create_engine
from storage.models import AccountRoom
from skills.lottery.models import Lottery
from tests.support.db_checks import read

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
[bot]
admins = ["admin1"]
skills = ["ping", "lottery"]
account_id = "{account}"
[storage]
url = "{url}"
shared = true
[governor]
min_interval_s = 0.01
jitter_s = 0.0
chat_switch_interval_s = 0.01
per_chat_interval_s = 0.01
"""


def ev(at: str, room: str, user: str, text: str) -> str:
    return json.dumps({"at": f"2026-11-23T{at}+08:00", "kind": "message", "room": room, "user": user,
                       "name": user, "text": text}, ensure_ascii=False)


class Bot:
    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.actions: list[dict] = []

    async def feed(self, *lines: str) -> None:
        self.proc.stdin.write(("\n".join(lines) + "\n").encode())
        await self.proc.stdin.drain()

    async def wait_for(self, count: int, what: str) -> None:
        async def read() -> None:
            while sum(what in a["text"] for a in self.actions) < count:
                line = await self.proc.stdout.readline()
                assert line, "the replay ended early"
                self.actions.append(json.loads(line))
        await asyncio.wait_for(read(), 60)


async def start_bot(tmp_path: Path, account: str, url: str) -> Bot:
    config = tmp_path / f"{account}.toml"
    config.write_text(CONFIG.format(account=account, url=url), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "replay", "-", "--config", str(config),
        "--until", "2026-11-23T11:00:00+08:00", cwd=ROOT, stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.DEVNULL)
    return Bot(proc)


async def rooms_known(url: str, account: str, rooms: set[str], timeout: float = 30) -> None:
    """Wait until the account's rooms are in the database (written with the activity store, within ~1 s)."""
    engine = create_engine(url)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                async with engine.connect() as conn:
                    have = set((await conn.execute(select(AccountRoom.room_id)
                                                   .where(AccountRoom.account_id == account))).scalars())
            except ProgrammingError:  # the processes are still migrating the new database
                have = set()
            if rooms <= have:
                return
            assert time.monotonic() < deadline, f"{account} never noted {rooms - have}"
            await asyncio.sleep(0.1)
    finally:
        await engine.dispose()


async def test_the_survivor_takes_over_only_the_rooms_it_shares(tmp_path, pg_url):
    a = await start_bot(tmp_path, "botA", pg_url)
    b = await start_bot(tmp_path, "botB", pg_url)
    try:
        # A is in g1 and g2, B in g2 and g3: each learns its rooms from what it hears
        await a.feed(ev("09:00:00", "g1", "m1", "早"), ev("09:00:01", "g2", "m2", "早"))
        await b.feed(ev("09:00:00", "g2", "m3", "早"), ev("09:00:01", "g3", "m4", "早"))
        await rooms_known(pg_url, "botA", {"g1", "g2"})
        await rooms_known(pg_url, "botB", {"g2", "g3"})

        start = "/lottery start 保温杯 winners=1 duration=30m keyword=抽奖"
        await a.feed(ev("10:00:00", "g1", "admin1", start), ev("10:00:05", "g2", "admin1", start),
                     ev("10:01:00", "g1", "m1", "抽奖"), ev("10:01:01", "g2", "m2", "抽奖"))
        await b.feed(ev("10:00:00", "g3", "admin1", start), ev("10:01:00", "g3", "m4", "抽奖"))
        await a.wait_for(2, "抽奖 #")
        await b.wait_for(1, "抽奖 #")

        a.proc.kill()  # SIGKILL before any draw is due
        await a.proc.wait()

        await b.feed(ev("10:40:00", "g3", "m4", "收到"))
        b.proc.stdin.close()
        await asyncio.wait_for(b.proc.wait(), 120)
        rest = await b.proc.stdout.read()
        b.actions += [json.loads(x) for x in rest.decode().splitlines()]
        assert b.proc.returncode == 0
    finally:
        for bot in (a, b):
            if bot.proc.returncode is None:
                bot.proc.kill()
                await bot.proc.wait()

    async def lottery_status(conn):
        return dict((await conn.execute(select(Lottery.room_id, Lottery.status))).all())

    status = await read(pg_url, lottery_status)
    assert status == {"g1": "open", "g2": "drawn", "g3": "drawn"}  # g1: only the dead account is there
    def is_draw(action: dict) -> bool:
        return "开奖啦" in action["text"] or "没有中奖者" in action["text"]

    assert sorted(x["room"] for x in b.actions if is_draw(x)) == ["g2", "g3"]  # each once, by the survivor
    assert not any(is_draw(x) for x in a.actions)
