"""The Wechaty gateway dies and comes back while the real bot process (`python -m bot run`) has a message due:
the bot reconnects with back-off, and the message it had to send while the gateway was down goes out after the
reconnect, exactly once."""

from __future__ import annotations

import asyncio
import sys
import time
from pathlib import Path

import pytest

from tests.e2e.gateway_harness import MockGateway, bot_env, ensure_gateway_installed, node_missing_reason
from tests.e2e.gateway_harness import populate as harness_populate, write_bot_config

ROOT = Path(__file__).resolve().parents[2]
ROOM = "fans@chatroom"

pytestmark = pytest.mark.skipif(node_missing_reason() is not None, reason=node_missing_reason() or "")

CONFIG = """
[bot]
admins = ["alice"]
skills = ["ping", "checkin"]

[storage]
url = "sqlite+aiosqlite:///{db}"

[governor]
min_interval_s = 0.05
jitter_s = 0.0
chat_switch_interval_s = 0.05
per_chat_interval_s = 0.05
warmup_s = 0

[skills.checkin]
coalesce_window_s = 3   # the confirmation falls due while the gateway is down

[http]          # any free port: tests may run beside another bot
port = 0
"""


async def populate(gw: MockGateway) -> None:
    await harness_populate(gw, (("alice", "Alice"), ("bob", "Bob")), {ROOM: ("会员福利群", ["alice", "bob"])})


async def test_message_due_while_the_gateway_is_down_goes_out_once_after_reconnect(tmp_path):
    ensure_gateway_installed()
    first = MockGateway()
    await first.start()
    await populate(first)
    config = write_bot_config(tmp_path, CONFIG)
    env = bot_env(first)
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    logins: asyncio.Queue[float] = asyncio.Queue()
    holding = asyncio.Event()
    log: list[str] = []

    async def read_log() -> None:
        while line := await proc.stderr.readline():
            log.append(line.decode(errors="replace"))
            if "wechaty logged in as bot_self" in log[-1]:  # the transport, at every (re)login
                logins.put_nowait(time.monotonic())
            if "holding messages until it logs in again" in log[-1]:  # the governor, at the first refused send
                holding.set()

    reader = asyncio.create_task(read_log())
    second = None
    try:
        await asyncio.wait_for(logins.get(), 60)
        await first.say("bob", "签到", room_id=ROOM)
        await first.say("bob", "/ping", room_id=ROOM)  # answered at once: proves 签到 was handled before it
        sent = await first.sent(at_least=1, timeout=20)
        assert [s["text"].split("\u2005")[-1] for s in sent] == ["在的～"]

        await first.stop()  # the gateway dies inside the 3 s check-in window
        # the confirmation falls due while it is down (a gateway back within the window would make this moot)
        await asyncio.wait_for(holding.wait(), 30)
        second = MockGateway(token=first.token, puppet_port=first.puppet_port)
        await second.start()
        await populate(second)
        back_at = time.monotonic()
        relogin = await asyncio.wait_for(logins.get(), 60)  # back-off: 1 s, 2 s, 4 s ...
        confirmations = await second.sent(at_least=1, timeout=30)
        assert len(confirmations) == 1 and "签到成功" in confirmations[0]["text"], confirmations
        assert confirmations[0]["mention_ids"] == [] and "Bob +5" in confirmations[0]["text"]
        assert relogin - back_at < 30
        print(f"reconnected {relogin - back_at:.1f} s after the gateway came back")
        assert any("holding messages until it logs in again" in line for line in log), "".join(log[-30:])

        await second.say("bob", "/ping", room_id=ROOM)
        after = await second.sent(at_least=2, timeout=20)
        assert [s["text"].split("\u2005")[-1] for s in after[1:]] == ["在的～"]  # and nothing sent twice
    finally:
        proc.terminate()
        await asyncio.wait_for(proc.wait(), 30)
        reader.cancel()
        await first.stop()
        if second is not None:
            await second.stop()
