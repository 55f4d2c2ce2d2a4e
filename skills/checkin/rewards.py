"""Redeeming points for rewards, and the promise behind it: a member confirms before points are spent, the
operators are told of every redemption (committed with it), and an admin hands it out or refuses it (the points
returned exactly once); the member hears either way, 1-on-1.

With no operators configured nobody is told, so the member is not promised a person: they are asked to contact
the group's admin with the redemption's number (admins see pending ones with ``/兑换 待处理`` and on the dashboard).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.context import Context
from bot.events import MessageReceived, OutgoingMessage, Priority, ProactiveKind
from bot.skill import UsageError
from bot.timefmt import zh_datetime
from skills.checkin import CheckinSettings, display_name, settings_of, skill, store
from storage.points import InsufficientPoints
from storage.points import balance as points_balance

CONFIRM_WORDS = ("确认", "确定")
CONFIRM_WINDOW = timedelta(minutes=5)
MAX_WAITING = 10_000  # unconfirmed requests kept in memory; past this, the expired ones are swept
MAX_REASON = 200  # the column's length
ERASED_PREFIX = "erased:"  # storage.members.pseudonym: a member who erased their data is not messaged
_MENTION = re.compile(r"@[^@\u2005]{1,64}\u2005")


@dataclass(frozen=True, slots=True)
class Waiting:
    """A redemption asked for and not yet confirmed (per member and chat)."""

    item: str
    cost: int
    until: datetime


def _waiting(ctx: Context) -> dict[tuple[str, str | None], Waiting]:
    return skill.state_of(ctx).confirming


def _where(topic: str | None, room_id: str | None) -> str:
    return f"「{topic or room_id}」群" if room_id else "私聊"


# -- asking, then confirming ---------------------------------------------------------------------------------------

@skill.command("redeem", aliases=("兑换",), usage="/兑换 奖品名或编号（只发 /兑换 查看可兑换的奖品）",
               help="用积分兑换奖品（需要确认）")
async def redeem(ctx: Context) -> None:
    settings = settings_of(ctx)
    wanted = ctx.command.rest.strip() if ctx.command else ""
    if not settings.rewards:
        ctx.reply("目前还没有可兑换的奖品，敬请期待～")
        return
    if not wanted:
        await catalog(ctx, settings)
        return
    names = list(settings.rewards)
    item = next((n for n in names if n.lower() == wanted.lower()), None)
    # ASCII digits only: ² and ³ are isdigit() too, and int() refuses them
    if item is None and wanted.isascii() and wanted.isdigit() and len(wanted) <= 6 \
            and 1 <= int(wanted) <= len(names):
        item = names[int(wanted) - 1]  # the number shown in the catalog
    if item is None:
        raise UsageError(f"没有找到「{wanted[:20]}」这个奖品，发送 /兑换 查看可兑换的奖品。")
    cost = settings.rewards[item].cost
    # what would fail anyway is said now, not after the member confirmed (the redemption checks again)
    if not (await store.stock_of(ctx.session, [item])).get(item, 0):
        ctx.reply(f"抱歉，「{item}」已经兑完了，看看其他奖品吧（发送 /兑换 查看）。")
        return
    have = await points_balance(ctx.session, ctx.sender.id)
    if have < cost:
        ctx.reply(f"积分还不够哦：兑换「{item}」需要 {cost} 分，你现在有 {have} 分。多多签到攒积分吧～")
        return
    waiting = _waiting(ctx)
    if len(waiting) >= MAX_WAITING:
        for key in [k for k, w in waiting.items() if w.until < ctx.now]:
            del waiting[key]
    waiting[(ctx.sender.id, ctx.room_id)] = Waiting(item, cost, ctx.now + CONFIRM_WINDOW)
    ctx.reply(f"确认用 {cost} 积分兑换「{item}」吗？回复「确认」兑换（5 分钟内有效）。")


@skill.on_message(priority=20)
async def confirm(ctx: Context) -> None:
    """Runs for every message: one dict check while nobody waits to confirm."""
    waiting = _waiting(ctx)
    if not waiting:
        return
    event = ctx.event
    assert isinstance(event, MessageReceived)
    key = (event.sender.id, event.room_id)
    if key not in waiting or _MENTION.sub("", event.text).strip() not in CONFIRM_WORDS:
        return
    ctx.stop()
    ctx.addressed = True
    asked = waiting.pop(key)  # before any await: a second 「确认」 finds nothing
    if ctx.now > asked.until:
        ctx.reply("兑换确认已超时，积分没有变动。需要的话请重新发送 /兑换。")
        return
    await _redeem(ctx, asked.item, asked.cost)


async def _redeem(ctx: Context, item: str, cost: int) -> None:
    event = ctx.event
    assert isinstance(event, MessageReceived)
    try:
        redemption, balance = await store.redeem(ctx.session, ctx.sender.id, item, cost, at=event.at,
                                                 room_id=ctx.room_id, member_name=display_name(ctx))
    except store.OutOfStock:
        ctx.reply(f"抱歉，「{item}」已经兑完了，看看其他奖品吧（发送 /兑换 查看）。")
        return
    except InsufficientPoints as exc:
        ctx.reply(f"积分还不够哦：兑换「{item}」需要 {cost} 分，你现在有 {exc.balance} 分。多多签到攒积分吧～")
        return
    number = redemption.id
    ctx.record("redeem", {"item": item, "cost": cost, "redemption": number, "balance": balance})
    told = ctx.notify_operators(
        f"新的积分兑换（单号 {number}）：{display_name(ctx)}（{ctx.sender.id}）在{_where(event.room_topic, ctx.room_id)}"
        f"用 {cost} 积分兑换「{item}」。\n发放后请回复 /兑换 发放 {number}；"
        f"不能发放请回复 /兑换 拒绝 {number} 原因（积分会退回）。")
    done = f"兑换成功！「{item}」-{cost} 积分，剩余 {balance} 分。"
    if told:
        ctx.reply(done + f"已通知工作人员，会尽快联系你发放（兑换单号 {number}）。")
    else:  # nobody was told: no promise of a person, but what to do
        ctx.reply(done + f"请凭兑换单号 {number} 联系群管理员领取。")


async def catalog(ctx: Context, settings: CheckinSettings) -> None:
    names = list(settings.rewards)
    stock = await store.stock_of(ctx.session, names)
    balance = await points_balance(ctx.session, ctx.sender.id)
    lines = ["可兑换的奖品："]
    for i, name in enumerate(names, start=1):
        left = stock.get(name, 0)
        lines.append(f"{i}. {name} — {settings.rewards[name].cost} 积分（{'剩 ' + str(left) + ' 件' if left else '已兑完'}）")
    lines.append(f"你的积分：{balance}。发送「/兑换 编号」或「/兑换 奖品名」兑换。")
    ctx.reply("\n".join(lines))


# -- admins: pending, hand out, refuse -----------------------------------------------------------------------------

def _room_scope(ctx: Context) -> str | None:
    """None for a global admin (every redemption); else this room (a room's admin acts on his room's only)."""
    return None if ctx.is_global_admin else ctx.room_id


def _stamp(ctx: Context, at: datetime) -> str:
    return zh_datetime(ctx.services.clock.local(at))


@skill.command("redeem pending", aliases=("兑换 待处理",), usage="/兑换 待处理", scope="room",
               help="待发放的积分兑换")
async def redeem_pending(ctx: Context) -> None:
    scope = _room_scope(ctx)
    await ctx.services.activity.flush()  # the rooms' topics: a room first seen just now is noted with the next batch
    rows, total = await store.pending_redemptions(ctx.session, scope)
    if not rows:
        ctx.reply("没有待处理的兑换 👍" if scope is None else "本群没有待处理的兑换 👍")
        return
    lines = [f"待处理的兑换（共 {total} 单{'，先列最早的 ' + str(len(rows)) + ' 单' if total > len(rows) else ''}）："]
    for r in rows:
        where = "" if scope is not None else f" · {_where(r.room_topic, r.room_id)}"
        lines.append(f"{r.id}. {r.member_name or r.member_id} · {r.item} · {r.cost} 分 · {_stamp(ctx, r.at)}{where}")
    lines.append("发放后回复 /兑换 发放 单号；不能发放回复 /兑换 拒绝 单号 原因（积分会退回）。")
    ctx.reply("\n".join(lines))


async def _the_redemption(ctx: Context) -> store.RedemptionRow | None:
    """The redemption named by the first argument, if this admin may act on it; answers otherwise."""
    if not ctx.args:
        raise UsageError("请写上兑换单号，比如 12。")
    raw = ctx.args[0].lstrip("#")
    if not raw.isascii() or not raw.isdigit() or len(raw) > 12:
        raise UsageError("兑换单号是一个数字，比如 12（发送 /兑换 待处理 查看）。")
    found = await store.redemption(ctx.session, int(raw))
    scope = _room_scope(ctx)
    if found is None or (scope is not None and found.room_id != scope):
        # the same answer for another room's: a room's admin learns nothing about other rooms
        ctx.reply(f"没有找到{'本群的' if scope is not None else ''}兑换单 {raw}（发送 /兑换 待处理 查看）。")
        return None
    if found.status != "pending":
        ctx.reply(f"兑换单 {found.id} 已经处理过了（{_status(found)}）。")
        return None
    return found


def _status(r: store.RedemptionRow) -> str:
    return {"done": "已发放", "refused": "已拒绝"}.get(r.status, r.status)


def _tell_member(ctx: Context, member_id: str, text: str) -> bool:
    """1-on-1, committed with the change (durable): the member's own business, so no caps, like order news."""
    if member_id.startswith(ERASED_PREFIX):
        return False
    ctx.send(OutgoingMessage(text, user_id=member_id), priority=Priority.TRANSACTIONAL,
             kind=ProactiveKind.TRANSACTIONAL)
    return True


@skill.command("redeem fulfil", aliases=("兑换 发放",), usage="/兑换 发放 单号", scope="room",
               help="把积分兑换标为已发放（通知成员）")
async def redeem_fulfil(ctx: Context) -> None:
    found = await _the_redemption(ctx)
    if found is None:
        return
    if not await store.fulfil(ctx.session, found.id, ctx.sender.id, ctx.event.at):
        ctx.reply(f"兑换单 {found.id} 刚刚已被处理过了。")
        return
    ctx.record("redeem_done", {"redemption": found.id, "item": found.item}, member_id=found.member_id)
    told = _tell_member(ctx, found.member_id,
                        f"你兑换的「{found.item}」（兑换单号 {found.id}）已发放，请留意查收～")
    ctx.reply(f"已将兑换单 {found.id}（{found.member_name or found.member_id} · {found.item}）标为已发放"
              + ("，已通知成员。" if told else "。"))


@skill.command("redeem refuse", aliases=("兑换 拒绝",), usage="/兑换 拒绝 单号 [原因]", scope="room",
               help="拒绝积分兑换，积分退回（通知成员）")
async def redeem_refuse(ctx: Context) -> None:
    found = await _the_redemption(ctx)
    if found is None:
        return
    # the reason as typed: everything after the number (ctx.command.rest starts after 「兑换」)
    words = ctx.command.rest.split(maxsplit=2) if ctx.command else []
    reason = words[2].strip()[:MAX_REASON] if len(words) > 2 else ""
    balance = await store.refuse(ctx.session, found, ctx.sender.id, ctx.event.at, reason)
    if balance is None:
        ctx.reply(f"兑换单 {found.id} 刚刚已被处理过了。")
        return
    ctx.record("redeem_refused", {"redemption": found.id, "item": found.item, "cost": found.cost},
               member_id=found.member_id)
    why = f"：{reason}" if reason else "。"
    told = _tell_member(ctx, found.member_id,
                        f"抱歉，你兑换的「{found.item}」（兑换单号 {found.id}）没能发放{why}\n"
                        f"{found.cost} 积分已退回，当前积分 {balance}。")
    ctx.reply(f"已拒绝兑换单 {found.id}（{found.member_name or found.member_id} · {found.item}），"
              f"{found.cost} 积分已退回" + ("，已通知成员。" if told else "。"))
