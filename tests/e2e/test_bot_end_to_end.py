"""The whole bot as a real process (`python -m bot run`) against the real gateway (wechaty-puppet-mock behind a
gRPC PuppetServer): a member's message reaches a skill, the reply reaches the room with the right @-mention, a join
arrives, an admin command works and a non-admin's is refused (and the refusal is in the activity store)."""

from __future__ import annotations

import asyncio
import sqlite3
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.gateway_harness import bot_env, node_missing_reason, populated_gateway, write_bot_config

ROOT = Path(__file__).resolve().parents[2]
ROOM = "fans@chatroom"
MENTION_END = "\u2005"

pytestmark = [
    pytest.mark.skipif(node_missing_reason() is not None, reason=node_missing_reason() or ""),
    pytest.mark.asyncio(loop_scope="module"),
]

CONFIG = """
[bot]
name = "小助手"
admins = ["alice"]
skills = ["ping", "welcome"]

[storage]
url = "sqlite+aiosqlite:///{db}"

[governor]      # fast pacing: the test is about the path, not the rhythm
min_interval_s = 0.05
jitter_s = 0.05
chat_switch_interval_s = 0.1
per_chat_interval_s = 0.05
warmup_s = 0

[skills.welcome]
window_s = 0.5

[http]          # any free port: tests may run beside another bot
port = 0
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway():
    gw = await populated_gateway((("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")),
                                 {ROOM: ("会员福利群", ["alice", "bob"])})
    yield gw
    await gw.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot_process(gateway, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bot")
    db = tmp / "bot.db"
    config = write_bot_config(tmp, CONFIG)
    env = bot_env(gateway)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    log: list[str] = []

    async def wait_for_line(marker: str, timeout: float = 60.0) -> None:
        async def read() -> None:
            while True:
                line = await proc.stderr.readline()
                if not line:
                    raise AssertionError("bot exited before logging in:\n" + "".join(log[-40:]))
                log.append(line.decode(errors="replace"))
                if marker in log[-1]:
                    return
        await asyncio.wait_for(read(), timeout)

    await wait_for_line("logged in as bot_self")

    async def drain() -> None:  # keep reading so the pipe never fills
        while await proc.stderr.readline():
            pass

    drainer = asyncio.create_task(drain())
    yield {"db": db, "proc": proc, "log": log}
    proc.terminate()
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    await drainer


async def _sends_after(gateway, before: int, count: int) -> list[dict]:
    sent = await gateway.sent(at_least=before + count, timeout=20)
    assert len(sent) >= before + count, f"expected {count} new sends, got {sent[before:]}"
    return sent[before:]


async def test_member_command_reply_mentions_the_member(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.say("bob", "/ping", room_id=ROOM)
    (reply,) = await _sends_after(gateway, before, 1)
    assert reply["conversation_id"] == ROOM
    assert reply["text"] == f"@Bob{MENTION_END}在的～"
    assert reply["mention_ids"] == ["bob"]


async def test_keyword_in_direct_chat_is_answered_one_on_one(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.say("bob", "在吗", to="bot_self")
    (reply,) = await _sends_after(gateway, before, 1)
    assert reply["conversation_id"] == "bob"
    assert reply["text"] == "在的～"
    assert reply["mention_ids"] == []


async def test_join_is_greeted_with_a_mention(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.join(ROOM, ["carol"], inviter_id="alice")
    (welcome,) = await _sends_after(gateway, before, 1)
    assert welcome["conversation_id"] == ROOM
    assert welcome["mention_ids"] == ["carol"]
    assert welcome["text"].startswith(f"@Carol{MENTION_END}")


async def test_admin_command_works_and_non_admin_is_refused(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.say("bob", "/echo 你好", room_id=ROOM)
    await gateway.say("alice", "/echo 大家好", room_id=ROOM)
    refusal, echoed = await _sends_after(gateway, before, 2)
    assert refusal["mention_ids"] == ["bob"] and "只有管理员" in refusal["text"]
    assert echoed["mention_ids"] == ["alice"] and echoed["text"].endswith("大家好")

    # the refused attempt is in the activity store (flushed within a second; wait on the row, not a clock)
    async def refused_row() -> tuple:
        while True:
            with sqlite3.connect(bot_process["db"]) as conn:
                row = conn.execute("select member_id, room_id, detail from activity where kind = 'refused'").fetchone()
            if row:
                return row
            await asyncio.sleep(0.1)

    member, room, detail = await asyncio.wait_for(refused_row(), 10)
    assert (member, room) == ("bob", ROOM)
    assert '"echo"' in detail


async def test_run_serves_the_health_check(bot_process):
    import re

    import aiohttp

    found = [m for line in bot_process["log"] if (m := re.search(r"HTTP server on http://127\.0\.0\.1:(\d+)", line))]
    assert found, "no HTTP server line in the log"
    async with aiohttp.ClientSession() as client, client.get(f"http://127.0.0.1:{found[0].group(1)}/health") as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}
