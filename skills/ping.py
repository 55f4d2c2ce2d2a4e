"""A trivial skill that proves the house works: a command, a keyword, an admin-only command, a join hook."""

from __future__ import annotations

from bot.context import CommandContext, EventContext, with_mentions
from bot.events import MembersJoined, OutgoingMessage
from bot.skill import Skill, UsageError

skill = Skill("ping", "连通性测试")


@skill.command("ping", aliases=("在吗",), keywords=("在吗",), help="看看我在不在")
async def ping(ctx: CommandContext) -> None:
    ctx.reply("在的～")


@skill.command("echo", aliases=("复读",), usage="/echo 文字", help="把你说的话重复一遍（管理员测试用）", admin_only=True)
async def echo(ctx: CommandContext) -> None:
    text = ctx.command.rest if ctx.command else ""
    if not text:
        raise UsageError("要我重复什么呢？")
    ctx.reply(text[:500])


@skill.on_join()
async def hello(ctx: EventContext) -> None:
    """A one-line hello so the join path is exercised end to end; the real welcome skill replaces this."""
    event = ctx.event
    assert isinstance(event, MembersJoined)
    if not ctx.config.skills.get("ping", {}).get("greet_joins", True):
        return
    text = with_mentions(event.members, "欢迎入群！发送 /help 看看我能做什么。")
    ctx.send(OutgoingMessage(text, room_id=event.room_id, mentions=tuple(p.id for p in event.members)))
