"""A skill for the bridge tests: notes every message, join and leave it sees, and answers non-text messages
with their type and URL, texts starting with 回声 with the text (so a test sees them arrive at a skill). ``hold()`` stops it at the next message, before
it notes or answers anything (``entered`` is set then), until the test cuts the handling off: a bot stopped under
an accepted event, deterministically."""

from __future__ import annotations

import asyncio

from bot.context import Context
from bot.skill import Skill

skill = Skill("bridge_probe", "测试用")
seen: list[object] = []
holding = False
entered: asyncio.Event | None = None


def hold() -> asyncio.Event:
    """Stop at the next message (forever: the test cancels the handling); the event is set once there."""
    global holding, entered
    holding, entered = True, asyncio.Event()
    return entered


def release() -> None:
    global holding
    holding = False


@skill.on_message(priority=50)
async def message(ctx: Context) -> None:
    if holding and entered is not None:
        entered.set()
        await asyncio.Event().wait()  # until cancelled
    seen.append(ctx.event)
    if ctx.event.text.startswith("回声"):  # a text answered (not a command: commands skip the hooks)
        ctx.reply(f"收到：{ctx.event.text}")
    elif ctx.event.type != "text":
        ctx.reply(f"收到{ctx.event.type}：{ctx.event.url or ctx.event.text}")


@skill.on_join()
async def joined(ctx: Context) -> None:
    seen.append(ctx.event)


@skill.on_leave()
async def left(ctx: Context) -> None:
    seen.append(ctx.event)
