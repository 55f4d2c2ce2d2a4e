"""A skill for the bridge tests: notes every message, join and leave it sees, and answers non-text messages
with their type and URL (so a test sees them arrive at a skill)."""

from __future__ import annotations

from bot.context import Context
from bot.skill import Skill

skill = Skill("bridge_probe", "测试用")
seen: list[object] = []


@skill.on_message(priority=50)
async def message(ctx: Context) -> None:
    seen.append(ctx.event)
    if ctx.event.type != "text":
        ctx.reply(f"收到{ctx.event.type}：{ctx.event.url or ctx.event.text}")


@skill.on_join()
async def joined(ctx: Context) -> None:
    seen.append(ctx.event)


@skill.on_leave()
async def left(ctx: Context) -> None:
    seen.append(ctx.event)
