"""The whole bot as a real process on WeCom: `python -m bot run` with `[wecom] enabled = true`, the secrets from
the environment, the mock WeCom API on loopback; the URL check and a 微信客服 question over real HTTP, answered
through kf/send_msg; no secret in the log; a missing variable named."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import time
from pathlib import Path

from tests.support.wecom_mock import AES_KEY, CORP_ID, SECRET, TOKEN, CallbackSender, WeComMock

ROOT = Path(__file__).resolve().parents[1]

CONFIG = """
[bot]
skills = ["ping"]

[storage]
url = "sqlite+aiosqlite:///{db}"

[governor]
min_interval_s = 0
jitter_s = 0
chat_switch_interval_s = 0
per_chat_interval_s = 0
warmup_s = 0

[http]
port = 0

[wecom]
enabled = true
corp_id = "{corp}"
agent_id = 1000002
api_base = "{api}"
"""


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("WECHATY_", "BOT_BRIDGE_", "WECOM_"))}
    return {**env, "PYTHONUNBUFFERED": "1", **extra}


async def test_the_bot_process_runs_on_wecom(tmp_path):
    mock = await WeComMock().start()
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "bot.db", corp=CORP_ID, api=mock.url), encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT,
        env=_env(WECOM_SECRET=SECRET, WECOM_CALLBACK_TOKEN=TOKEN, WECOM_ENCODING_AES_KEY=AES_KEY),
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    log: list[str] = []

    async def port() -> int:
        while line := (await proc.stderr.readline()).decode(errors="replace"):
            log.append(line)
            if m := re.search(r"this process: http://127\.0\.0\.1:(\d+)\)", line):
                return int(m.group(1))
        raise AssertionError("the bot exited:\n" + "".join(log[-30:]))

    async def drain() -> None:
        while line := await proc.stderr.readline():
            log.append(line.decode(errors="replace"))

    drainer = None
    try:
        bot_port = await asyncio.wait_for(port(), 60)
        drainer = asyncio.create_task(drain())
        async with CallbackSender(f"http://127.0.0.1:{bot_port}", time.time) as cb:
            assert await cb.verify_url("hello-wecom") == (200, "hello-wecom")
            mock.customer_says("wmProc", "/ping")
            assert (await cb.kf_event())[0] == 200
            deadline = time.monotonic() + 30
            while not mock.sent and time.monotonic() < deadline:
                await asyncio.sleep(0.05)  # real time: another process answers
            assert [b["text"]["content"] for b in mock.sent] == ["在的～"]
            assert mock.sent[0]["touser"] == "wmProc" and mock.count("gettoken") == 1
    finally:
        if proc.returncode is None:
            proc.terminate()
        code = await asyncio.wait_for(proc.wait(), 30)
        await mock.stop()
    if drainer is not None:
        await drainer
    assert code == 0, "".join(log[-30:])
    text = "".join(log)
    assert SECRET not in text and TOKEN not in text and AES_KEY not in text
    assert not any(t in text for t in mock.tokens)


async def test_missing_wecom_secrets_are_named(tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(CONFIG.format(db=tmp_path / "bot.db", corp=CORP_ID, api="http://127.0.0.1:9"),
                      encoding="utf-8")
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "run", "--config", str(config), cwd=ROOT,
        env=_env(WECOM_SECRET=SECRET), stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
    _, err = await asyncio.wait_for(proc.communicate(), 60)
    assert proc.returncode == 1
    assert "WECOM_CALLBACK_TOKEN and WECOM_ENCODING_AES_KEY are not set" in err.decode()
    assert SECRET not in err.decode()
