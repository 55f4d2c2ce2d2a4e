"""Daily check-in and points: 签到 once per member per local day, streak bonuses, balance and rank, a room's
leaderboard, a rewards catalog to redeem points (skills/checkin/rewards.py: confirmed, operators told, handed out
or refused by admins), admin adjustments with audit, optional points for chatting.

Points move only through storage.points.change_points (ledger + balance, exactly-once per reference). Group
confirmations are coalesced by the governor into one message per room and window, so a morning rush of 签到
doesn't flood the group.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

from bot.context import Context, Services
from bot.events import MessageReceived, OutgoingMessage
from bot.parser import parse
from bot.skill import Skill, UsageError
from skills.checkin import store
from storage.members import in_room
from storage.points import AlreadyRecorded, InsufficientPoints, change_points

MAX_ADJUST = 1_000_000  # one admin change; keeps a typo (or an int32 column) from blowing up


@dataclass(frozen=True)
class Reward:
    cost: int = 0  # points per redemption
    stock: int = 0  # initial stock: seeded into the database once, never reset by a restart


@dataclass(frozen=True)
class CheckinSettings:
    base_points: int = 5  # every check-in
    streak_bonus: dict[str, int] = field(default_factory=lambda: {"3": 5, "7": 20})  # extra on streak day N
    streak_cycle_days: int = 0  # 0: the bonus table applies once per streak; N: it repeats every N days
    coalesce_window_s: float = 30.0  # group confirmations within this window go out as one message
    rank_size: int = 10  # /rank shows this many
    rewards: dict[str, Reward] = field(default_factory=dict)  # catalog: item name → cost, stock
    activity_points_enabled: bool = False  # points for chatting in groups
    activity_points_per_message: int = 1
    activity_messages_per_day: int = 5  # only the first N messages of a local day earn (cap = N × points)

    def __post_init__(self) -> None:
        for day in self.streak_bonus:
            if not day.isascii() or not day.isdigit() or int(day) < 1:
                raise ValueError(f'streak_bonus.{day}: the keys are streak days ("3", "7", ...)')
        for item in self.rewards:
            if not 0 < len(item) <= 64 or any(c.isspace() for c in item):
                raise ValueError(f"rewards.{item}: a reward name is 1–64 characters without spaces")


@dataclass
class CheckinState:
    # (member, local date) → chat awards given today: saves a ledger query per chatter message once known
    activity_counts: dict[tuple[str, date], int] = field(default_factory=dict)
    # (member, room or None) → the redemption they asked for, until they confirm it (skills/checkin/rewards.py)
    confirming: dict[tuple[str, str | None], Any] = field(default_factory=dict)


skill: Skill[CheckinSettings, CheckinState] = Skill("checkin", "签到与积分", settings=CheckinSettings,
                                                    state=CheckinState)
settings_of = skill.settings_of


@skill.on_startup
async def startup(services: Services) -> None:
    settings = settings_of(services)
    async with services.sessions() as session, session.begin():
        await store.seed_stock(session, {name: r.stock for name, r in settings.rewards.items()},
                               services.clock.now())


def local_day(ctx: Context) -> date:
    return ctx.services.clock.local(ctx.event.at).date()


def streak_points(settings: CheckinSettings, streak: int) -> tuple[int, int]:
    """(total, bonus) for a check-in that makes the streak ``streak`` days long."""
    day = streak
    if settings.streak_cycle_days:
        day = (streak - 1) % settings.streak_cycle_days + 1
    bonus = settings.streak_bonus.get(str(day), 0)
    return settings.base_points + bonus, bonus


def display_name(ctx: Context) -> str:
    s = ctx.sender
    return (s.name or s.id) if s else ""


# -- check-in ---------------------------------------------------------------------------------------------------

@skill.command("checkin", aliases=("签到",), keywords=("签到",), help="每日签到领积分，连续签到有额外奖励")
async def checkin(ctx: Context) -> None:
    settings = settings_of(ctx)
    member = ctx.sender
    day = local_day(ctx)
    last = await store.last_checkin(ctx.session, member.id)
    if last is not None and last.local_date == day.isoformat():
        already(ctx, last.streak)
        return
    # a missed local day resets the streak
    streak = last.streak + 1 if last is not None and last.local_date == (day - timedelta(days=1)).isoformat() else 1
    points, bonus = streak_points(settings, streak)
    try:
        balance = await store.record_checkin(ctx.session, member.id, day, streak, points, at=ctx.event.at,
                                             room_id=ctx.room_id, reason=f"签到（连续 {streak} 天）")
    except AlreadyRecorded:  # a racing check-in of the same member got there first
        already(ctx, streak)
        return
    ctx.record("checkin", {"date": day.isoformat(), "streak": streak, "points": points, "balance": balance})
    if ctx.room_id is None:
        extra = f"（含连续签到奖励 {bonus}）" if bonus else ""
        ctx.reply(f"签到成功！+{points} 积分{extra}，已连续签到 {streak} 天，当前积分 {balance}。")
        return
    line = f"{display_name(ctx)} +{points}（连续 {streak} 天{'，含奖励 ' + str(bonus) if bonus else ''}），共 {balance} 分"
    ctx.coalesce(f"checkin:ok:{ctx.room_id}", (member.id, line), _render_ok(ctx.room_id),
                 window_s=settings.coalesce_window_s)


def already(ctx: Context, streak: int) -> None:
    if ctx.room_id is None:
        ctx.reply(f"今天已经签过到啦，已连续签到 {streak} 天，明天再来哦～")
        return
    ctx.coalesce(f"checkin:again:{ctx.room_id}", (ctx.sender.id, display_name(ctx)), _render_again(ctx.room_id),
                 window_s=settings_of(ctx).coalesce_window_s)


def _render_ok(room_id: str):
    def render(items: list[tuple[str, str]]) -> OutgoingMessage:
        return OutgoingMessage("签到成功 ✅\n" + "\n".join(line for _, line in items), room_id=room_id)

    return render


def _render_again(room_id: str):
    def render(items: list[tuple[str, str]]) -> OutgoingMessage:
        names = list(dict.fromkeys(name for _, name in items))  # someone who asked twice is listed once
        return OutgoingMessage("、".join(names) + " 今天已经签过到啦，明天再来哦～", room_id=room_id)

    return render


# -- balance, rank, leaderboard -----------------------------------------------------------------------------------

@skill.command("points", aliases=("积分",), help="查看我的积分、连续签到天数和排名")
async def points(ctx: Context) -> None:
    balance, rank = await store.standing(ctx.session, ctx.sender.id)
    last = await store.last_checkin(ctx.session, ctx.sender.id)
    day = local_day(ctx)
    alive = last is not None and last.local_date in (day.isoformat(), (day - timedelta(days=1)).isoformat())
    streak = last.streak if alive else 0  # a streak that missed yesterday is already broken
    today = "今天已签到" if last is not None and last.local_date == day.isoformat() else "今天还没签到，发送「签到」领积分"
    if rank is None:
        ctx.reply(f"你还没有积分哦。{today}。")
        return
    ctx.reply(f"你的积分：{balance}，连续签到 {streak} 天，总排名第 {rank} 名。{today}。")


@skill.command("rank", aliases=("排行",), where="room", help="本群积分排行榜（前 10 名）")
async def rank(ctx: Context) -> None:
    size = settings_of(ctx).rank_size
    top = await store.room_top(ctx.session, ctx.room_id, size)
    if not top:
        ctx.reply("本群还没有人有积分，发送「签到」来当第一名吧！", mention=False)
        return
    lines = [f"本群积分排行榜（前 {size} 名）："]
    lines += [f"{i}. {name} {balance} 分" for i, (_, name, balance) in enumerate(top, start=1)]
    ctx.reply("\n".join(lines), mention=False)


# -- admin adjustments -------------------------------------------------------------------------------------------

ADJUST_USAGE = "/points {op} @成员 数量 [原因]（或用成员的 wxid 代替 @）"
# WeChat ends each @-mention with U+2005: cut mentions out whole, so a name with spaces isn't taken for arguments.
_MENTION = re.compile(r"@[^@\u2005]{1,64}\u2005")


def adjust_args(ctx: Context) -> tuple[str, int, str]:
    """(member id, amount > 0, reason) from `/points add @成员 50 原因` or `/points add wxid_x 50 原因`."""
    event = ctx.event
    assert isinstance(event, MessageReceived)
    mentioned = ctx.mentioned_ids
    parsed = parse(_MENTION.sub(" ", event.text) if mentioned else event.text)
    words = parsed.rest.split() if parsed else []
    words = words[len(ctx.spec.name.split()) - 1:]  # drop the sub-command word ("add" / "sub")
    if len(mentioned) > 1:
        raise UsageError("一次只能调整一位成员的积分哦。")
    if mentioned:
        member = mentioned[0]
        words = [w for w in words if not w.startswith("@")]  # the mention typed without WeChat's separator
    elif words and not words[0].startswith("@"):
        member, words = words[0], words[1:]
    else:  # nothing, or "@name" typed by hand: WeChat sent no id with it, and names are never trusted
        raise UsageError("请 @ 要调整积分的成员（或写上成员的 wxid）。")
    if not words:
        raise UsageError("请写上积分数量，比如 50。")
    amount = words[0]
    if not amount.isascii() or not amount.isdigit() or not 0 < int(amount) <= MAX_ADJUST:
        raise UsageError(f"积分数量要写成 1 到 {MAX_ADJUST} 之间的整数，比如 50。")
    return member, int(amount), " ".join(words[1:])[:100]


async def adjust(ctx: Context, sign: int) -> None:
    member, amount, reason = adjust_args(ctx)
    actor = ctx.sender.id
    if not ctx.is_global_admin:  # a room's admin: the wallet is shared by every room, so only this room's members
        if member == actor:
            ctx.record("refused", {"command": ctx.spec.name, "reason": "own_points"})
            ctx.reply("不能调整自己的积分哦，如有需要请联系总管理员。")
            return
        if ctx.config.is_admin_anywhere(member):  # admins topping each other up is minting with one more step
            ctx.record("refused", {"command": ctx.spec.name, "reason": "admin_points"})
            ctx.reply("管理员的积分只能由总管理员调整哦。")
            return
        await ctx.services.activity.flush()  # a member who just spoke in the room is noted with the next batch
        if ctx.room_id is None or not await in_room(ctx.session, member, ctx.room_id):
            ctx.record("refused", {"command": ctx.spec.name, "reason": "not_in_room"})
            ctx.reply("只能调整本群成员的积分：这位成员还没有在本群出现过。")
            return
    name = await store.member_name(ctx.session, member) or member
    ref = f"msg:{ctx.event.message_id}" if ctx.event.message_id else None  # a redelivered message applies once
    try:
        balance = await change_points(ctx.session, member, sign * amount, reason=reason or "管理员调整",
                                      source="admin", ref_id=ref, actor_id=actor, at=ctx.event.at)
    except InsufficientPoints as exc:
        ctx.reply(f"{name} 只有 {exc.balance} 分，不能扣 {amount} 分，积分没有变动。")
        return
    except AlreadyRecorded:
        ctx.reply("这条调整已经处理过了。")
        return
    ctx.record("points_admin", {"member": member, "delta": sign * amount, "reason": reason, "actor": actor,
                                "balance": balance})
    verb = "增加" if sign > 0 else "扣除"
    why = f"（原因：{reason}）" if reason else ""
    ctx.reply(f"已为 {name} {verb} {amount} 积分{why}，当前积分 {balance}。")


@skill.command("points add", aliases=("积分 加",), usage=ADJUST_USAGE.format(op="add"), scope="room",
               help="给成员加积分")
async def points_add(ctx: Context) -> None:
    await adjust(ctx, +1)


@skill.command("points sub", aliases=("积分 扣",), usage=ADJUST_USAGE.format(op="sub"), scope="room",
               help="扣成员的积分")
async def points_sub(ctx: Context) -> None:
    await adjust(ctx, -1)


# -- points for chatting (off by default) -------------------------------------------------------------------------

@skill.on_message(priority=200)
async def activity_points(ctx: Context) -> None:
    """Runs for every chatter message: must cost next to nothing while disabled."""
    settings = settings_of(ctx)
    if not settings.activity_points_enabled or ctx.room_id is None:
        return
    if not settings.activity_points_per_message or not settings.activity_messages_per_day:
        return
    member = ctx.sender.id
    day = local_day(ctx)
    counts = skill.state_of(ctx).activity_counts
    key = (member, day)
    done = counts.get(key)
    if done is None:
        if counts and next(iter(counts))[1] != day:
            counts.clear()  # a new local day: yesterday's counts are no use
        done = await store.activity_awards_today(ctx.session, member, day)
    if done >= settings.activity_messages_per_day:
        counts[key] = done
        return
    try:
        await change_points(ctx.session, member, settings.activity_points_per_message, reason="群内活跃",
                            source="activity", ref_id=f"{member}:{day.isoformat()}:{done + 1}", at=ctx.event.at)
        counts[key] = done + 1
    except AlreadyRecorded:  # the same member in another room at the same instant: recount next time
        counts.pop(key, None)


from skills.checkin import pages, privacy, rewards  # noqa: E402,F401  (rewards and pages register on import)

skill.member_data(privacy)
