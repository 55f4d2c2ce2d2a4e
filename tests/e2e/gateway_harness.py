"""Run gateway/mock-server.js (wechaty-puppet-mock behind a real gRPC PuppetServer) for end-to-end tests.

    gw = MockGateway()
    await gw.start()            # npm ci on first use, spawns node, waits for its READY line
    await gw.login("bot", "Bot")
    ... WechatyTransport(gw.endpoint, gw.token, ...) ...
    await gw.say("alice", "hi", room_id="fans@chatroom", mention_bot=True)
    assert (await gw.sent())[-1]["text"] == "..."
    await gw.stop()

The control API is documented at the top of gateway/mock-server.js.
"""

from __future__ import annotations

import asyncio
import collections
import os
import secrets
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp

GATEWAY_DIR = Path(__file__).resolve().parents[2] / "gateway"


class GatewayError(RuntimeError):
    """The mock gateway did not start, or a control call failed."""


def node_missing_reason() -> str | None:
    """Why the gateway cannot run here (for pytest.skip), or None if node and npm are available."""
    if shutil.which("node") is None:
        return "node is not installed: the Wechaty gateway e2e tests need Node >= 18 (and npm)"
    if not (GATEWAY_DIR / "node_modules").is_dir() and shutil.which("npm") is None:
        return "gateway/node_modules is missing and npm is not installed to run `npm ci`"
    return None


def ensure_gateway_installed(timeout: float = 600) -> None:
    """``npm ci`` in gateway/ unless node_modules is there already (CI may run it beforehand)."""
    if (GATEWAY_DIR / "node_modules" / "wechaty-puppet-service").is_dir():
        return
    npm = shutil.which("npm")
    if npm is None:
        raise GatewayError("npm is not installed; run `npm ci` in gateway/ first")
    result = subprocess.run(
        [npm, "ci", "--no-audit", "--no-fund"],
        cwd=GATEWAY_DIR,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    if result.returncode != 0:
        raise GatewayError(f"`npm ci` in {GATEWAY_DIR} failed:\n{result.stdout[-2000:]}\n{result.stderr[-4000:]}")


class MockGateway:
    """One node mock-server.js process and an HTTP client for its control API."""

    def __init__(self, token: str | None = None, ready_timeout: float = 60.0, puppet_port: int = 0) -> None:
        """``puppet_port`` 0 lets the gateway pick a free port; give one to restart a gateway in place."""
        self.token = token or f"insecure_e2e_{secrets.token_hex(8)}"
        self.ready_timeout = ready_timeout
        self._wanted_puppet_port = puppet_port
        self.puppet_port: int | None = None
        self.control_port: int | None = None
        self._proc: asyncio.subprocess.Process | None = None
        self._session: aiohttp.ClientSession | None = None
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=200)
        self._drains: list[asyncio.Task[None]] = []

    @property
    def endpoint(self) -> str:
        """What WechatyTransport connects to."""
        return f"127.0.0.1:{self.puppet_port}"

    @property
    def control_url(self) -> str:
        return f"http://127.0.0.1:{self.control_port}"

    def stderr_tail(self) -> str:
        """The gateway's last log lines, for failure messages."""
        return "\n".join(self._stderr_tail)

    async def __aenter__(self) -> MockGateway:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    async def start(self) -> None:
        node = shutil.which("node")
        if node is None:
            raise GatewayError("node is not installed")
        await asyncio.to_thread(ensure_gateway_installed)
        env = {**os.environ, "WECHATY_LOG": os.environ.get("WECHATY_LOG", "warn")}
        self._proc = await asyncio.create_subprocess_exec(
            node,
            str(GATEWAY_DIR / "mock-server.js"),
            "--port", str(self._wanted_puppet_port),
            "--control-port", "0",
            "--token", self.token,
            "--exit-on-stdin-close",
            cwd=GATEWAY_DIR,
            env=env,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        assert self._proc.stdout is not None and self._proc.stderr is not None
        self._drains.append(asyncio.create_task(self._drain(self._proc.stderr)))
        try:
            ready = await asyncio.wait_for(self._wait_ready(self._proc.stdout), timeout=self.ready_timeout)
        except (TimeoutError, GatewayError) as exc:
            await self.stop()
            raise GatewayError(f"mock gateway did not get ready: {exc!r}\n{self.stderr_tail()}") from exc
        fields = dict(part.split("=", 1) for part in ready.split()[1:])
        self.puppet_port = int(fields["puppet"])
        self.control_port = int(fields["control"])
        self._drains.append(asyncio.create_task(self._drain(self._proc.stdout)))
        self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90))

    async def _wait_ready(self, stdout: asyncio.StreamReader) -> str:
        while True:
            raw = await stdout.readline()
            if not raw:
                raise GatewayError(f"mock gateway exited before READY (code {await self._proc.wait()})")  # type: ignore[union-attr]
            line = raw.decode(errors="replace").strip()
            if line.startswith("READY "):
                return line
            self._stderr_tail.append(line)

    async def _drain(self, stream: asyncio.StreamReader) -> None:
        while raw := await stream.readline():
            self._stderr_tail.append(raw.decode(errors="replace").rstrip())

    async def stop(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.returncode is None:
            proc.terminate()
            try:
                await asyncio.wait_for(proc.wait(), timeout=5)
            except TimeoutError:
                proc.kill()
                await proc.wait()
        for task in self._drains:
            task.cancel()
        self._drains.clear()

    # -- control API --------------------------------------------------------------------------------------

    async def _call(self, method: str, path: str, body: Any = None) -> Any:
        if self._session is None:
            raise GatewayError("mock gateway is not running")
        async with self._session.request(method, self.control_url + path, json=body) as response:
            data = await response.json(content_type=None)
            if response.status >= 400:
                raise GatewayError(f"{method} {path} -> {response.status}: {data.get('error', data)}")
            return data

    async def health(self) -> dict[str, Any]:
        return await self._call("GET", "/health")

    async def login(self, bot_id: str, name: str) -> dict[str, Any]:
        """The bot's own WeChat account; logged in as soon as a client has started the puppet."""
        return await self._call("POST", "/login", {"id": bot_id, "name": name})

    async def logout(self) -> dict[str, Any]:
        """The platform logs the bot's account out (the gateway stays up)."""
        return await self._call("POST", "/logout")

    async def create_contact(self, contact_id: str, name: str) -> dict[str, Any]:
        return (await self._call("POST", "/contacts", {"id": contact_id, "name": name}))["contacts"][0]

    async def create_room(
        self, room_id: str, topic: str, member_ids: list[str] | tuple[str, ...], *, include_bot: bool = True
    ) -> dict[str, Any]:
        """Room ids get "@chatroom" appended when they have no "@" (the mock routes sends by it)."""
        body = {"id": room_id, "topic": topic, "member_ids": list(member_ids), "include_bot": include_bot}
        return await self._call("POST", "/rooms", body)

    async def say(
        self,
        sender_id: str,
        text: str,
        *,
        room_id: str | None = None,
        to: str | None = None,
        mention_ids: list[str] | tuple[str, ...] = (),
        mention_bot: bool = False,
        type: str = "text",  # noqa: A002 - mirrors the API field
    ) -> dict[str, Any]:
        """A member says ``text`` in a room, or 1-on-1 to ``to`` (default the bot). Returns the final text."""
        body: dict[str, Any] = {"from": sender_id, "text": text, "type": type}
        if room_id:
            body.update(room_id=room_id, mention_ids=list(mention_ids), mention_bot=mention_bot)
        if to:
            body["to"] = to
        return await self._call("POST", "/say", body)

    async def join(
        self, room_id: str, member_ids: list[str] | tuple[str, ...], inviter_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"room_id": room_id, "member_ids": list(member_ids)}
        if inviter_id:
            body["inviter_id"] = inviter_id
        return await self._call("POST", "/join", body)

    async def leave(
        self, room_id: str, member_ids: list[str] | tuple[str, ...], remover_id: str | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"room_id": room_id, "member_ids": list(member_ids)}
        if remover_id:
            body["remover_id"] = remover_id
        return await self._call("POST", "/leave", body)

    async def sent(self, at_least: int = 0, timeout: float = 20.0) -> list[dict[str, Any]]:
        """Everything the bot sent, in order: {conversation_id, text, mention_ids, at}.

        With ``at_least``, the gateway holds the answer until that many sends are recorded (or ``timeout``).
        """
        path = "/sent" if not at_least else f"/sent?min={at_least}&timeout_ms={int(timeout * 1000)}"
        return (await self._call("GET", path))["sent"]

    async def reset_sent(self) -> int:
        return (await self._call("POST", "/reset-sent"))["cleared"]

    async def fail_sends(self, message: str, count: int = 1) -> None:
        """Make the next ``count`` sends fail on the gateway with ``message``."""
        await self._call("POST", "/fail-sends", {"count": count, "message": message})


# What the tests that run the whole bot (`python -m bot run`) on the gateway share.
BOT_SELF, BOT_SELF_NAME = "bot_self", "小助手"


async def populate(
    gw: MockGateway,
    contacts: list[tuple[str, str]] | tuple[tuple[str, str], ...],
    rooms: dict[str, tuple[str, list[str]]],
    *,
    login: bool = True,
) -> None:
    """The bot's account logged in (unless ``login`` is False), ``contacts`` as (id, name) and ``rooms`` as
    {room_id: (topic, member_ids)} created on the gateway."""
    if login:
        await gw.login(BOT_SELF, BOT_SELF_NAME)
    for contact_id, name in contacts:
        await gw.create_contact(contact_id, name)
    for room_id, (topic, member_ids) in rooms.items():
        await gw.create_room(room_id, topic, member_ids)


async def populated_gateway(
    contacts: list[tuple[str, str]] | tuple[tuple[str, str], ...], rooms: dict[str, tuple[str, list[str]]]
) -> MockGateway:
    """A started gateway with ``populate``'s account, contacts and rooms (the caller stops it)."""
    ensure_gateway_installed()
    gw = MockGateway()
    await gw.start()
    await populate(gw, contacts, rooms)
    return gw


def write_bot_config(directory: Path, template: str, **values: object) -> Path:
    """``directory``/config.toml from a TOML ``template`` whose ``{db}`` is ``directory``/bot.db."""
    config = directory / "config.toml"
    config.write_text(template.format(db=directory / "bot.db", **values), encoding="utf-8")
    return config


def bot_env(gw: MockGateway, base: dict[str, str] | None = None, **extra: str) -> dict[str, str]:
    """The bot process's environment: ``base`` (default: ours) pointed at ``gw``, unbuffered, plus ``extra``."""
    return {**(os.environ if base is None else base), "WECHATY_PUPPET_SERVICE_ENDPOINT": gw.endpoint,
            "WECHATY_PUPPET_SERVICE_TOKEN": gw.token, "PYTHONUNBUFFERED": "1", **extra}
