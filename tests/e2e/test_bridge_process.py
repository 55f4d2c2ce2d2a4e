"""The whole bot as a real process on the bridge: `python -m bot run` with BOT_BRIDGE_URL, BOT_BRIDGE_TOKEN and
BOT_BRIDGE_SECRET, the tests' provider (tests/support/bridge_provider.py) on loopback, events signed and posted to the
bot's HTTP server, replies arriving at the provider's /send, an alert at the webhook when the account logs out."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from pathlib import Path

import pytest

from tests.support.bridge_provider import SECRET, EventPoster, MockProvider
from tests.support.bridge_support import AlertReceiver

ROOT = Path(__file__).resolve().parents[2]
MENTION_END = "\u2005"

CONFIG = """
[bot]
skills = ["ping"]

[storage]
url = "sqlite+aiosqlite:///{db}"

[governor]      # no pacing: the test is about the path, not the rhythm
min_interval_s = 0
jitter_s = 0
chat_switch_interval_s = 0
per_chat_interval_s = 0
warmup_s = 0

[http]
port = 0

[alerts]
webhook_url_env = "TEST_ALERT_WEBHOOK"
webhook_format = "json"
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHATY_", "BOT_BRIDGE_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def test_the_bot_process_runs_on_the_bridge(tmp_path):
    provider = await MockProvider().start()
    alerts = await AlertReceiver().start()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "bot.db"), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT,
        env=_env(BOT_BRIDGE_URL=provider.url, BOT_BRIDGE_TOKEN=provider.token, BOT_BRIDGE_SECRET=SECRET,
                 TEST_ALERT_WEBHOOK=alerts.url),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    log: list[str] = []

    async def port() -> int:
        while line := (await proc.stderr.readline()).decode(errors="replace"):
            log.append(line)
            if m := re.search(r"its events go to http://127\.0\.0\.1:(\d+)/bridge/events", line):
                return int(m.group(1))
        raise AssertionError("the bot exited:\n" + "".join(log[-30:]))

    async def drain() -> None:  # keep reading so the pipe never fills
        while line := await proc.stderr.readline():
            log.append(line.decode(errors="replace"))

    try:
        bot_port = await asyncio.wait_for(port(), 60)
        drainer = asyncio.create_task(drain())
        assert [c.path for c in provider.calls] == ["/capabilities"]
        async with EventPoster(f"http://127.0.0.1:{bot_port}") as poster:
            at = "2026-12-01T09:00:05+08:00"
            assert await poster.post({"id": "p1", "kind": "login", "at": at,
                                      "account": {"id": "wxid_bot", "name": "小助手"}}) == (200, {"ok": True})
            assert await poster.post({"id": "p2", "kind": "message", "at": at, "room": "r1", "room_topic": "会员群",
                                      "user": "u1", "name": "小李", "text": "/ping"}) == (200, {"ok": True})
            (sent,) = await provider.wait_sends(1, timeout=30)
            assert (sent["room"], sent["text"], sent["mentions"]) == ("r1", f"@小李{MENTION_END}在的～", ["u1"])
            assert (await poster.post({"id": "p2", "kind": "message", "at": at, "user": "u1", "text": "x"}))[0] == 200
            assert (await poster.post({"id": "p3", "kind": "heartbeat", "at": at}, sign=False))[0] == 401
            logout = {"id": "p4", "kind": "logout", "at": at, "reason": "kicked"}
            assert await poster.post(logout) == (200, {"ok": True})
            (alert,) = await alerts.wait_for(1, timeout=30)
            assert alert["event"] == "offline" and "kicked" in alert["text"]
        assert len(provider.calls_to("/capabilities")) == 2  # at start and at the login
        assert SECRET not in "".join(log) and provider.token not in "".join(log)
    finally:
        if proc.returncode is None:
            proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 30)
        await provider.stop()
        await alerts.stop()
    await drainer
    assert code == 0, "".join(log[-30:])
    assert "secret-robot-key" not in "".join(log)


@pytest.mark.parametrize("missing", ["BOT_BRIDGE_TOKEN", "BOT_BRIDGE_SECRET"])
async def test_a_bridge_url_without_its_token_or_secret_is_a_clear_error(tmp_path, missing):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "bot.db"), encoding="utf-8")
    env = _env(BOT_BRIDGE_URL="http://127.0.0.1:9", BOT_BRIDGE_TOKEN="t", BOT_BRIDGE_SECRET="s")
    del env[missing]
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT, env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert f"{missing} is not set" in err.decode()
    assert "Traceback" not in err.decode()


async def test_the_reference_provider_drives_the_bot(db_url):
    """scripts/bridge_provider.py, the file operators copy, as a real process against the bot on the bridge."""
    from datetime import UTC, datetime

    from tests.support.bridge_support import BridgeHarness

    token = "reference-token"
    provider_port = await _free_port()
    provider = MockProvider(token=token)  # only for its URL and token: the script answers on this port
    provider.port = provider_port
    script = None
    async with BridgeHarness(db_url, provider, start=datetime.now(UTC)) as h:
        script = await asyncio.create_subprocess_exec(
            sys.executable, str(ROOT / "scripts" / "bridge_provider.py"), "--port", str(provider_port),
            "--bot", f"http://127.0.0.1:{h.app.web.port}", cwd=ROOT,
            env=_env(BOT_BRIDGE_TOKEN=token, BOT_BRIDGE_SECRET=SECRET),
            stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
        try:
            assert b"Type a message" in await asyncio.wait_for(script.stdout.readline(), 30)
            script.stdin.write("u2 小王: /ping\n".encode())
            await script.stdin.drain()
            # Its login and a heartbeat come first, then the message. Wait for the message's handling itself: the
            # request after it is the next heartbeat, 30 s away (waiting for "one more request" raced that).
            await asyncio.wait_for(_until(lambda: h.app.dispatcher.handled > 0), 30)
            await h.app.dispatcher.join()
            await asyncio.gather(*list(h.bot.transport.learning))  # the login's capability look-up
            await h.settle()
            line = b""
            while b"[bot" not in line:
                line = await asyncio.wait_for(script.stdout.readline(), 30)
            assert line.decode().strip() == f"[bot → room r1] @小王{MENTION_END}在的～  (@ u2)"
            assert h.app.services.capabilities.kick  # learnt from the script's /capabilities
        finally:
            script.stdin.close()
            await asyncio.wait_for(script.wait(), 30)


async def _free_port() -> int:
    server = await asyncio.start_server(lambda r, w: None, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    server.close()
    await server.wait_closed()
    return port


async def _until(condition) -> None:
    """Until ``condition()`` holds, a loop turn at a time (no sleeping on a timer)."""
    while not condition():
        await asyncio.sleep(0)
