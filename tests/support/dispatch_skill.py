"""A skill for the dispatcher and router tests: every handler notes what it saw in ``calls``."""

from __future__ import annotations

import asyncio

from sqlalchemy import select

from datetime import timedelta

from bot.context import Context
from bot.events import OutgoingMessage
from bot.skill import Skill, UsageError
from storage.models import MemberName

skill = Skill("probe", "测试用")
calls: list[str] = []
sessions: list[object] = []
gates: dict[str, asyncio.Event] = {}


def reset() -> None:
    calls.clear()
    sessions.clear()
    gates.clear()


@skill.on_message(priority=50)
async def second(ctx: Context) -> None:
    calls.append(f"second:{ctx.event.text}")
    sessions.append(ctx.session)
    if ctx.event.text.startswith("ops:") and ctx.event.text.endswith("#"):
        raise RuntimeError("a later hook failed")  # the first hook's note to the operators still goes
    if ctx.event.text in ("boom-second", "write-boom"):
        if ctx.event.text == "write-boom":
            ctx.session.add(MemberName(member_id=ctx.event.sender.id, name="write-by-second", first_seen=ctx.now))
            await ctx.session.flush()
        raise RuntimeError("second failed")


@skill.on_message(priority=10)
async def first(ctx: Context) -> None:
    calls.append(f"first:{ctx.event.text}")
    sessions.append(ctx.session)
    text = ctx.event.text
    if text.startswith("write"):
        ctx.session.add(MemberName(member_id=ctx.event.sender.id, name=text, first_seen=ctx.now))
    if text == "stop":
        ctx.stop()
    if text == "boom-first":
        raise RuntimeError("first failed")
    if text.startswith("ops:"):
        calls.append(f"told:{ctx.notify_operators(text[4:])}")
        if text.endswith("!"):  # the handler fails after deciding: the operators' note goes with its rollback
            raise RuntimeError("failed after notifying")
    gate = gates.get(text)
    if gate is not None:
        await gate.wait()


@skill.on_message(priority=90, block=True)
async def last(ctx: Context) -> None:
    calls.append(f"last:{ctx.event.text}")


@skill.on_message(priority=95)
async def never(ctx: Context) -> None:  # after a blocking hook: never runs
    calls.append("never")


@skill.command("save", help="写一条记录然后失败", hidden=True)
async def save_then_fail(ctx: Context) -> None:
    ctx.session.add(MemberName(member_id=ctx.sender.id, name="saved-before-failure", first_seen=ctx.now))
    await ctx.session.flush()
    raise RuntimeError("handler bug")


@skill.command("count", help="数一数记录", hidden=True)
async def count(ctx: Context) -> None:
    rows = (await ctx.session.execute(select(MemberName).where(MemberName.member_id == ctx.sender.id))).all()
    ctx.reply(f"{len(rows)} 条")


@skill.command("add", usage="/add 数字 数字", help="加法", where="direct")
async def add(ctx: Context) -> None:
    try:
        a, b = (int(x) for x in ctx.args)
    except ValueError:
        raise UsageError("需要两个数字。") from None
    ctx.reply(str(a + b))


@skill.command("secret", aliases=("秘密",), help="管理员专用", scope="room")
async def secret(ctx: Context) -> None:
    ctx.reply("ok")


@skill.command("roomonly", help="仅群聊", where="room")
async def roomonly(ctx: Context) -> None:
    ctx.reply("room ok")


@skill.command("remind", usage="/remind 秒数 内容", help="定时提醒", hidden=True)
async def remind(ctx: Context) -> None:
    try:
        seconds = int(ctx.args[0])
    except (IndexError, ValueError):
        raise UsageError("要几秒后提醒？") from None
    text = " ".join(ctx.args[1:]) or "提醒"
    await ctx.services.scheduler.schedule(
        f"remind:{ctx.sender.id}:{text}", "probe.remind", at=ctx.now + timedelta(seconds=seconds),
        payload={"room": ctx.room_id, "user": ctx.sender.id, "text": text}, session=ctx.session)
    ctx.reply("好的")


@skill.job("remind")
async def fire_reminder(ctx: Context) -> None:
    p = ctx.payload
    ctx.send(OutgoingMessage(p["text"], room_id=p["room"]) if p["room"] else OutgoingMessage(p["text"], user_id=p["user"]))
