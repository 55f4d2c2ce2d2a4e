"""Opt-out (退订), built into every bot: a member who sends /退订 or TD gets no further light or promotional
1-on-1 messages until /订阅. Transactional reminders (their own orders) still come. The send governor enforces
it at the moment of sending, so it holds for every skill and for messages already queued."""

from __future__ import annotations

from bot.context import Context
from bot.skill import Skill

skill = Skill("optout", "退订与订阅")


@skill.command("unsubscribe", aliases=("退订", "td"), keywords=("TD", "退订"), usage="/退订 或直接发送 TD",
               help="不再接收通知和活动私信（订单提醒除外）")
async def unsubscribe(ctx: Context) -> None:
    changed = await ctx.services.governor.set_opt_out(ctx.sender.id, True)
    ctx.record("opt_out", {"opted_out": True, "changed": changed})
    ctx.reply("已为你退订：之后不会再私信你通知和活动消息（你的订单提醒除外）。想恢复请发送 /订阅。"
              if changed else "你已经退订过了，不会再收到通知和活动私信。想恢复请发送 /订阅。")


@skill.command("subscribe", aliases=("订阅",), usage="/订阅", help="恢复接收通知和活动私信")
async def subscribe(ctx: Context) -> None:
    changed = await ctx.services.governor.set_opt_out(ctx.sender.id, False)
    ctx.record("opt_out", {"opted_out": False, "changed": changed})
    ctx.reply("已恢复订阅，之后会照常收到通知～（每天最多一条，发送 TD 可随时退订）" if changed
              else "你现在就是订阅状态哦～发送 TD 可以随时退订。")
