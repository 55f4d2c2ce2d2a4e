"""A trivial skill that proves the house works: a command, a keyword, an admin-only command."""

from __future__ import annotations

from bot.context import Context
from bot.skill import Skill, UsageError

skill = Skill("ping", "连通性测试")


@skill.command("ping", aliases=("在吗",), keywords=("在吗",), help="看看我在不在")
async def ping(ctx: Context) -> None:
    ctx.reply("在的～")


@skill.command("echo", aliases=("复读",), usage="/echo 文字", help="把你说的话重复一遍（管理员测试用）", scope="room")
async def echo(ctx: Context) -> None:
    text = ctx.command.rest if ctx.command else ""
    if not text:
        raise UsageError("要我重复什么呢？")
    ctx.reply(text[:500])
