"""The WeChat account goes offline on the Wechaty gateway (a logout), the real bot process (`python -m bot run`) is
restarted during the outage, and the account comes back: the messages that fell due meanwhile were held in the
outbox and each goes out exactly once, and the operators' webhook (a real HTTP receiver, [alerts]) gets one
"offline" alert and one "back online" alert for the whole outage, the restart notwithstanding."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import sys
from pathlib import Path

import pytest

from tests.support.bridge_support import AlertReceiver
from tests.e2e.gateway_harness import MockGateway, bot_env, ensure_gateway_installed, node_missing_reason
from tests.e2e.gateway_harness import populate as harness_populate, write_bot_config

ROOT = Path(__file__).resolve().parents[2]
ROOMS = ("fans@chatroom", "vip@chatroom")
MEMBERS = ("bob", "carol")  # one checks in in each room (a member checks in once a day, wherever)

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
coalesce_window_s = 8   # the confirmations fall due after the logout

[http]
port = 0

[alerts]
webhook_url_env = "TEST_ALERT_WEBHOOK"
webhook_format = "json"
"""


class BotProcess:
    """`python -m bot run` on the gateway, its log read line by line (tests wait for lines, never for time)."""

    def __init__(self, config: Path, env: dict[str, str]) -> None:
        self.config, self.env = config, env
        self.log: list[str] = []
        self._new_line = asyncio.Condition()
        self.proc: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task | None = None

    async def start(self) -> BotProcess:
        self.proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bot", "run", "--config", str(self.config), cwd=ROOT, env=self.env,
            stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE)
        self._reader = asyncio.create_task(self._read())
        return self

    async def _read(self) -> None:
        assert self.proc is not None and self.proc.stderr is not None
        while line := await self.proc.stderr.readline():
            self.log.append(line.decode(errors="replace"))
            async with self._new_line:
                self._new_line.notify_all()
        async with self._new_line:
            self._new_line.notify_all()

    async def wait_for(self, text: str, timeout: float = 60) -> None:
        """Until a log line contains ``text`` (from the start of the process)."""

        def seen() -> bool:
            return any(text in line for line in self.log) or self._reader is None or self._reader.done()

        async with self._new_line:
            await asyncio.wait_for(self._new_line.wait_for(seen), timeout)
        assert any(text in line for line in self.log), f"no {text!r} in the log:\n" + "".join(self.log[-40:])

    async def stop(self) -> int:
        assert self.proc is not None
        if self.proc.returncode is None:
            self.proc.terminate()
        code = await asyncio.wait_for(self.proc.wait(), 60)
        if self._reader is not None:
            await self._reader
        return code


def outbox_rows(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT room_id, status, text FROM outbox ORDER BY id").fetchall()


async def populate(gw: MockGateway, *, login: bool = True) -> None:
    await harness_populate(gw, (("alice", "Alice"), ("bob", "Bob"), ("carol", "Carol")),
                           {room: ("会员群", ["alice", *MEMBERS]) for room in ROOMS}, login=login)


async def test_held_across_a_restart_during_the_outage_sent_once_with_one_alert_each_way(tmp_path):
    ensure_gateway_installed()
    gw = MockGateway()
    await gw.start()
    alerts = await AlertReceiver().start()
    db = tmp_path / "bot.db"
    config = write_bot_config(tmp_path, CONFIG)
    env = bot_env(gw, {k: v for k, v in os.environ.items() if not k.startswith("BOT_BRIDGE_")},
                  TEST_ALERT_WEBHOOK=alerts.url)
    first = second = None
    try:
        await populate(gw)
        first = await BotProcess(config, env).start()
        await first.wait_for("wechaty logged in as bot_self")
        for room, member in zip(ROOMS, MEMBERS, strict=True):
            await gw.say(member, "签到", room_id=room)
        for room, member in zip(ROOMS, MEMBERS, strict=True):  # answered at once: each room's 签到 was handled
            await gw.say(member, "/ping", room_id=room)
        pings = await gw.sent(at_least=2, timeout=30)
        assert [s["text"].split("\u2005")[-1] for s in pings] == ["在的～", "在的～"]

        await gw.logout()  # the platform logs the account out inside the check-in windows
        (alert,) = await alerts.wait_for(1, timeout=60)
        assert alert["event"] == "offline" and "已离线" in alert["text"], alert
        # the confirmations fall due while the account is out: held, not tried on the platform
        await first.wait_for("holding messages until it logs in again")
        assert await first.stop() == 0
        held = outbox_rows(db)
        assert sorted(r[0] for r in held if r[1] == "pending") == sorted(ROOMS), held
        assert all("签到成功" in r[2] for r in held), held

        second = await BotProcess(config, env).start()  # the account is still logged out
        await second.wait_for("outbox: 2 messages left waiting by the last run go back to the send governor")
        await second.wait_for("alerted before the restart: no new alert")
        await second.wait_for("connected to wechaty gateway")
        assert len(await gw.sent()) == 2  # nothing went out while the account was away

        await gw.login("bot_self", "小助手")  # the account is back
        await second.wait_for("wechaty logged in as bot_self")
        sent = await gw.sent(at_least=4, timeout=30)
        confirmations = sent[2:]
        assert sorted(s["conversation_id"] for s in confirmations) == sorted(ROOMS), sent
        assert sorted(s["text"].split("\n")[1].split(" +")[0] for s in confirmations) == ["Bob", "Carol"]
        assert all(s["text"].startswith("签到成功") and "+5" in s["text"] for s in confirmations)
        events = [a["event"] for a in await alerts.wait_for(2, timeout=30)]
        assert events[1] == "online" and "恢复在线" in alerts.received[1]["text"]

        await gw.say("bob", "/ping", room_id=ROOMS[0])  # the next reply comes after: nothing was sent twice
        after = await gw.sent(at_least=5, timeout=30)
        assert len(after) == 5 and after[-1]["text"].endswith("在的～")
        assert [r[1] for r in outbox_rows(db)] == ["sent", "sent"]
        assert await second.stop() == 0
        assert len(alerts.received) == 2, alerts.received  # one alert each way, for the whole outage
    finally:
        for bot in (first, second):
            if bot is not None and bot.proc is not None and bot.proc.returncode is None:
                await bot.stop()
        await gw.stop()
        await alerts.stop()
