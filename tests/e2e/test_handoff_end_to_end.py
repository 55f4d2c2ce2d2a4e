"""A handoff round trip with the whole bot as a real process (`python -m bot run`) against the mock gateway: a
member's question nobody can answer opens a ticket, the operator is told 1-on-1, the operator's /reply reaches
the member (1-on-1, or in the room with the member @-mentioned), /close closes it."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

import pytest
import pytest_asyncio

from tests.e2e.gateway_harness import bot_env, node_missing_reason, populated_gateway, write_bot_config

ROOT = Path(__file__).resolve().parents[2]
ROOM = "coffee@chatroom"
M = "\u2005"
HANDOFF = "这个问题我先记下了，已转人工客服，稍后会有同事回复你～"

pytestmark = [
    pytest.mark.skipif(node_missing_reason() is not None, reason=node_missing_reason() or ""),
    pytest.mark.asyncio(loop_scope="module"),
]

CONFIG = """
[bot]
name = "小助手"
admins = ["boss"]
skills = ["faq"]
operators = ["alice"]

[storage]
url = "sqlite+aiosqlite:///{db}"

[governor]      # fast pacing: the test is about the path, not the rhythm
min_interval_s = 0.05
jitter_s = 0.05
chat_switch_interval_s = 0.1
per_chat_interval_s = 0.05
warmup_s = 0

[skills.faq]
knowledge_dir = "{knowledge}"
reload_interval_s = 0

[http]          # any free port: tests may run beside another bot
port = 0
"""


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def gateway():
    gw = await populated_gateway((("alice", "Alice"), ("bob", "Bob")), {ROOM: ("咖啡爱好者", ["alice", "bob"])})
    yield gw
    await gw.stop()


@pytest_asyncio.fixture(scope="module", loop_scope="module")
async def bot_process(gateway, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bot")
    config = write_bot_config(tmp, CONFIG, knowledge=ROOT / "knowledge")
    env = bot_env(gateway)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    log: list[str] = []

    async def wait_for_login() -> None:
        while True:
            line = await proc.stderr.readline()
            if not line:
                raise AssertionError("bot exited before logging in:\n" + "".join(log[-40:]))
            log.append(line.decode(errors="replace"))
            if "logged in as bot_self" in log[-1]:
                return

    await asyncio.wait_for(wait_for_login(), 60)

    async def drain() -> None:  # keep reading so the pipe never fills
        while await proc.stderr.readline():
            pass

    drainer = asyncio.create_task(drain())
    yield proc
    proc.terminate()
    assert await asyncio.wait_for(proc.wait(), 30) == 0
    await drainer


async def _sends_after(gateway, before: int, count: int) -> list[dict]:
    sent = await gateway.sent(at_least=before + count, timeout=20)
    assert len(sent) >= before + count, f"expected {count} new sends, got {sent[before:]}"
    return sent[before:before + count]


def _by_chat(sends: list[dict]) -> dict[str, dict]:
    return {s["conversation_id"]: s for s in sends}


async def test_one_on_one_member_ticket_reply_member(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.say("bob", "你们的咖啡豆是哪里产的", to="bot_self")
    sends = _by_chat(await _sends_after(gateway, before, 2))
    assert sends["bob"]["text"] == HANDOFF
    note = sends["alice"]["text"]
    assert note.startswith("【待人工回复 #1】Bob（bob）在私聊问：\n你们的咖啡豆是哪里产的")
    assert note.endswith("回复：/reply 1 回复内容；关闭：/close 1")

    before = len(await gateway.sent())
    await gateway.say("alice", "/reply 1 云南保山的小粒咖啡～", to="bot_self")
    sends = _by_chat(await _sends_after(gateway, before, 2))
    assert sends["bob"]["text"] == "【工作人员回复】云南保山的小粒咖啡～"
    assert sends["alice"]["text"].startswith("已回复 #1（Bob，私聊）")

    before = len(await gateway.sent())
    await gateway.say("alice", "/close 1", to="bot_self")
    (closed,) = await _sends_after(gateway, before, 1)
    assert (closed["conversation_id"], closed["text"]) == ("alice", "已关闭 #1。")


async def test_a_room_question_is_answered_in_the_room_with_an_at(gateway, bot_process):
    before = len(await gateway.sent())
    await gateway.say("bob", "门店有停车位吗", room_id=ROOM, mention_bot=True)
    sends = _by_chat(await _sends_after(gateway, before, 2))
    assert sends[ROOM]["text"] == f"@Bob{M}{HANDOFF}" and sends[ROOM]["mention_ids"] == ["bob"]
    assert sends["alice"]["text"].startswith("【待人工回复 #2】Bob（bob）在群「咖啡爱好者」问：\n门店有停车位吗")

    before = len(await gateway.sent())
    await gateway.say("alice", "/回复 2 有的，地下一层免费停车", to="bot_self")
    sends = _by_chat(await _sends_after(gateway, before, 2))
    assert sends[ROOM]["text"] == f"@Bob{M}【工作人员回复】有的，地下一层免费停车"
    assert sends[ROOM]["mention_ids"] == ["bob"]
