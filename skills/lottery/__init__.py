"""Provably fair lottery (群抽奖): an admin starts it, members enter with a keyword, the bot draws at the deadline.

- ``/lottery start 奖品 winners=3 duration=30m keyword=抽奖 [cost=0]`` (admins, in a group; ``/抽奖 开始 ...``):
  the bot announces the prize, the rules, the keyword, the deadline and a commitment, SHA-256 of a secret seed.
  The seed is HMAC(key, nonce:id) with the key only in the environment (``key_env``): without the key the bot
  refuses to start lotteries, since a seed it could only keep in the database would be no secret.
- Members enter by sending the keyword: one entry each, admins and the bot excluded, an optional points cost
  (refunded if the lottery is cancelled). Confirmations are coalesced into one message per ``confirm_window_s``.
  Each entrant has a per-lottery alias; ``/lottery entrants <id>`` publishes the list (aliases and display names).
- The draw happens at the announced deadline, never earlier: the persisted scheduler runs ``lottery.draw``; a bot
  that was down draws once when it comes back within ``misfire_grace_s``, and past that the lottery is cancelled
  with refunds (``lottery.expire``). ``/lottery draw`` only draws one whose deadline has passed. The draw is
  idempotent: the status changes open → drawn in the same transaction that stores the winners.
- Winners come from the revealed seed and the sorted aliases by the procedure documented in
  skills/lottery/draw.py; the draw message announces the list's SHA-256; ``/lottery verify <id>`` and
  ``python -m bot lottery verify <id>`` recompute everything. A cancelled lottery reveals its seed too.
- ``/lottery cancel`` for admins, ``/lottery status`` for everyone.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import CliContext
from bot.context import Context, Services, acknowledge_batch
from bot.events import MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.parser import normalize, strip_mentions
from bot.skill import Skill, UsageError
from skills.lottery import store
from skills.lottery.draw import (MIN_KEY_LEN, commitment, derive_seed, draw_winners, entrants_digest,
                                 format_duration, new_nonce, new_salt, parse_duration, parse_id, whole_number)
from skills.lottery.texts import Cancelled, DrawResult, cancel_text, draw_message, entrants_page, start_text
from skills.lottery.verify import Verification, verify, verify_cli, verify_text
from skills.tiers.store import TIER_NAMES, tier_of
from storage.points import AlreadyRecorded, InsufficientPoints

__all__ = ["skill", "draw", "verify", "verify_cli", "verify_text", "Verification", "DrawResult", "parse_start"]

log = logging.getLogger(__name__)

START_USAGE = "/lottery start 奖品 winners=3 duration=30m keyword=抽奖 [cost=0] [tier=active]（或 /抽奖 开始 ...）"
OPTION_NAMES = {"winners": "winners", "名额": "winners", "人数": "winners",
                "duration": "duration", "时长": "duration",
                "keyword": "keyword", "口令": "keyword", "关键词": "keyword",
                "cost": "cost", "积分": "cost",
                "tier": "tier", "等级": "tier", "分层": "tier"}
# A minimum tier (skills/tiers/store.py) for entering: each tier admits itself and those above it.
TIER_RANK = {"lost": 0, "silent": 1, "casual": 2, "new": 2, "active": 3, "core": 4}
MAX_KEYWORD = 20


@dataclass(frozen=True)
class LotterySettings:
    keyword: str = "抽奖"  # entry keyword when the admin gives none
    duration: str = "30m"  # when the admin gives none
    max_duration: str = "7d"
    max_winners: int = 100
    confirm_window_s: float = 30.0  # entry confirmations within this window go out as one message
    # a bot back within this long after the deadline still draws (once); later, the lottery is cancelled
    misfire_grace_s: int = 7 * 86400
    # the environment variable holding the secret the seeds are derived from (never the secret itself)
    key_env: str = "BOT_LOTTERY_KEY"

    def __post_init__(self) -> None:
        for key in ("duration", "max_duration"):
            d = parse_duration(getattr(self, key))
            if d is None or d < timedelta(minutes=1):
                raise ValueError(f'{key}: must be a duration of at least a minute like "30m", "2h", "7d", '
                                 f"not {getattr(self, key)!r}")
        keyword = normalize(self.keyword)
        if not keyword or keyword.startswith("/") or len(keyword) > MAX_KEYWORD:
            raise ValueError(f"keyword: must be a plain word of 1 to {MAX_KEYWORD} characters, not starting with /")
        if self.max_winners < 1:
            raise ValueError("max_winners: must be at least 1")
        if not self.key_env:
            raise ValueError("key_env: must name an environment variable")


@dataclass
class LotteryState:
    # room id → (lottery id, lowercased keyword) of its open lottery: ordinary chatter costs one dict lookup
    active: dict[str, tuple[int, str]] = field(default_factory=dict)
    key: bytes | None = None  # from the environment at start; None: no new lotteries


skill: Skill[LotterySettings, LotteryState] = Skill("lottery", "抽奖", settings=LotterySettings, state=LotteryState)
_settings = skill.settings_of


def _active(where: Context | Services) -> dict[str, tuple[int, str]]:
    return skill.state_of(where).active


def _key(where: Context | Services) -> bytes | None:
    return skill.state_of(where).key


def _draw_key(lottery_id: int) -> str:
    return f"lottery:{lottery_id}:draw"


@skill.on_startup
async def load(services: Services) -> None:
    cfg = _settings(services)
    state = skill.state_of(services)
    secret = os.environ.get(cfg.key_env, "")
    state.key = secret.encode() if len(secret) >= MIN_KEY_LEN else None
    if state.key is None:
        problem = "is not set" if not secret else f"is shorter than {MIN_KEY_LEN} characters"
        log.warning("lottery: the environment variable %s %s: /lottery start is refused, and lotteries started "
                    "with a key can't be drawn, until it holds the key (docs/operators/lottery.md)",
                    cfg.key_env, problem)
    async with services.sessions() as s, s.begin():
        rows = await store.open_lotteries(s)
        await _catch_up(services, s, rows)
    state.active.update({r.room_id: (r.id, r.keyword.lower()) for r in rows})


async def _catch_up(services: Services, session: AsyncSession, open_lotteries: list[Any]) -> None:
    """Make sure every open lottery ends. Before its deadline: its draw job exists (left as it is if it does).
    Past it (the bot was down): within ``misfire_grace_s`` the draw job runs once (made sure to exist and to allow
    that much lateness); later the lottery is closed with refunds instead (``lottery.expire``): a draw days after
    the announced time is no longer the draw people entered."""
    cfg = _settings(services)
    scheduler = services.scheduler
    now = services.clock.now()
    for lot in open_lotteries:
        key = _draw_key(lot.id)
        if lot.deadline > now:
            await scheduler.schedule(key, "lottery.draw", at=lot.deadline, session=session, ensure=True,
                                     payload={"lottery_id": lot.id}, room_id=lot.room_id,
                                     misfire_grace_s=cfg.misfire_grace_s)
            continue
        late = (now - lot.deadline).total_seconds()
        if late > cfg.misfire_grace_s:
            await scheduler.cancel(key, session=session)
            await scheduler.schedule(f"lottery:{lot.id}:expire", "lottery.expire", at=now, session=session,
                                     payload={"lottery_id": lot.id}, room_id=lot.room_id,
                                     misfire_grace_s=cfg.misfire_grace_s)
            continue
        job = await scheduler.get(key, session=session)
        if job is None or job.status != "active" or late > job.misfire_grace_s:
            await scheduler.schedule(key, "lottery.draw", at=lot.deadline, session=session,
                                     payload={"lottery_id": lot.id}, room_id=lot.room_id,
                                     misfire_grace_s=cfg.misfire_grace_s)


def _local(services: Services, when: datetime) -> str:
    t = services.clock.local(when)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


def _committed_seed(lot: Any, key: bytes | None) -> str | None:
    """The lottery's seed, as committed at its start; None when it can't be derived here (no key, or not the key
    it was started with: its commitment would not match)."""
    if lot.nonce is None:  # legacy: stored at the start
        return lot.seed
    if key is None:
        return None
    seed = derive_seed(key, lot.nonce, lot.id)
    return seed if commitment(seed) == lot.commitment else None


def _read_id(raw: str, example: str) -> int:
    value = parse_id(raw)
    if value is None:
        raise UsageError(f"请写抽奖编号（数字），例如 {example}。")
    return value


# -- start ----------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class StartRequest:
    prize: str
    winners: int
    duration: timedelta
    keyword: str
    cost: int
    min_tier: str | None = None


def parse_start(args: tuple[str, ...], options: dict[str, str], cfg: LotterySettings) -> StartRequest:
    """Everything checked before anything changes; a UsageError says what to write instead."""
    given: dict[str, str] = {}
    for key, value in options.items():
        name = OPTION_NAMES.get(key)
        if name is None:
            raise UsageError(f"不认识的选项「{key[:20]}」，可以用 winners、duration、keyword、cost、tier。")
        given[name] = value.strip()
    prize = " ".join(args).strip()
    if not prize:
        raise UsageError("请写上奖品，例如：/lottery start 保温杯 winners=3 duration=30m")
    if len(prize) > 100:
        raise UsageError("奖品名称太长了，请控制在 100 字以内。")
    winners = whole_number(given.get("winners", "1").rstrip("人名个"))
    if winners is None:
        raise UsageError("winners 请写中奖人数，例如 winners=3。")
    if not 1 <= winners <= cfg.max_winners:
        raise UsageError(f"中奖人数要在 1 到 {cfg.max_winners} 之间。")
    duration = parse_duration(given.get("duration", cfg.duration))
    if duration is None:
        raise UsageError("duration 请写成 30m、2h、1d 这样的时长，例如 duration=30m。")
    if duration < timedelta(minutes=1):
        raise UsageError("抽奖时长至少 1 分钟。")
    longest = parse_duration(cfg.max_duration)
    if duration > longest:
        raise UsageError(f"抽奖时长最长 {format_duration(longest)}。")
    keyword = normalize(given.get("keyword", cfg.keyword))
    if not keyword or keyword.startswith("/") or len(keyword) > MAX_KEYWORD:
        raise UsageError(f"参与口令请用 1 到 {MAX_KEYWORD} 个字、不以 / 开头，例如 keyword=抽奖。")
    raw_cost = given.get("cost", "0")
    if raw_cost.startswith("-"):
        raise UsageError("cost 不能是负数：参与要扣的积分写 0 或正整数。")
    cost = whole_number(raw_cost)
    if cost is None:
        raise UsageError("cost 请写参与要扣的积分（不超过 9 位的整数），例如 cost=10；不扣积分写 0。")
    min_tier = None
    if "tier" in given:
        wanted = given["tier"].lower()
        min_tier = next((t for t, zh in TIER_NAMES.items() if wanted in (t, zh)), None)
        if min_tier is None:
            names = "、".join(f"{zh}（{t}）" for t, zh in TIER_NAMES.items())
            raise UsageError(f"tier 请写最低会员等级：{names}，例如 tier=active。")
    return StartRequest(prize, winners, duration, keyword, cost, min_tier)


@skill.command("lottery start", aliases=("抽奖 开始",), usage=START_USAGE, help="发起抽奖", scope="room",
               where="room")
async def start(ctx: Context) -> None:
    cfg = _settings(ctx)
    active = _active(ctx)
    request = parse_start(ctx.args, ctx.command.options if ctx.command else {}, cfg)
    session = ctx.session
    room_id = ctx.room_id
    assert room_id is not None
    if request.min_tier and "tiers" not in ctx.config.bot.skills:
        raise UsageError("按会员等级限制参与需要先启用会员分层（skills 里加上 tiers）。")
    key = _key(ctx)
    if key is None:
        ctx.reply(f"暂时不能发起抽奖：服务器还没有配置抽奖密钥（环境变量 {cfg.key_env}）。没有它，随机种子在开奖前"
                  f"就无法保密，抽奖也就谈不上公平。请联系运维配置后再试。")
        return
    running = await store.open_in_room(session, room_id)
    if running is not None:
        ctx.reply(f"本群已经有一个进行中的抽奖（#{running.id}「{running.prize}」），一个群同时只能有一个。"
                  f"请等它开奖，或先用 /lottery cancel 取消。")
        return
    now = ctx.now
    nonce = new_nonce()
    lottery_id = await store.create(
        session, room_id=room_id, prize=request.prize, winners=request.winners, keyword=request.keyword,
        cost=request.cost, min_tier=request.min_tier, commitment="", seed=None, nonce=nonce, alias_salt=new_salt(),
        status="open", created_by=ctx.sender.id, created_at=now, deadline=now + request.duration)
    # the seed depends on the id, known only now; it is never stored before it is revealed
    await store.set_commitment(session, lottery_id, commitment(derive_seed(key, nonce, lottery_id)))
    lot = await store.lottery(session, lottery_id)
    await ctx.services.scheduler.schedule(
        _draw_key(lottery_id), "lottery.draw", at=lot.deadline, payload={"lottery_id": lottery_id},
        session=session, room_id=room_id, misfire_grace_s=cfg.misfire_grace_s)
    text, keyword = start_text(lot, lambda t: _local(ctx.services, t)), lot.keyword.lower()

    def announce() -> None:
        active[room_id] = (lottery_id, keyword)
        ctx.reply(text, mention=False)

    ctx.after_commit(announce)


# -- entries --------------------------------------------------------------------------------------------------------

def _render_entries(room_id: str, items: list[tuple[str, Person, int]]) -> OutgoingMessage | None:
    """One message for a window of entries: the new entrants, then those who had entered already."""
    return acknowledge_batch(room_id, items, done=lambda n: f"参与成功🎉 目前共 {n} 人参与，祝好运！",
                             again="已经参与过啦，每人一次，等开奖就好～", again_in_window=False)


@skill.on_message(priority=50)
async def enter(ctx: Context) -> None:
    event = ctx.event
    active = _active(ctx)
    found = active.get(event.room_id)  # the only cost for rooms without a lottery
    if found is None:
        return
    lottery_id, keyword = found
    assert isinstance(event, MessageReceived)
    if event.text != keyword and strip_mentions(event.text)[0].lower() != keyword:
        return
    sender = event.sender
    if sender.id == ctx.services.bot_id:
        return
    session = ctx.session
    lot = await store.entry_view(session, lottery_id)
    if lot is None or lot.status != "open":
        _forget(active, event.room_id, lottery_id)  # ended in another process: stop looking
        return
    ctx.addressed = True
    ctx.stop()  # the keyword was meant for us: no other skill should also act on it
    if ctx.is_admin:
        ctx.reply("管理员不参与抽奖哦，感谢组织～")
        return
    if event.at >= lot.deadline:
        ctx.reply("这次抽奖已经截止啦，马上开奖，请稍候～")
        return
    if lot.min_tier:
        mine = await tier_of(session, sender.id)
        if mine is None or TIER_RANK.get(mine.tier, 0) < TIER_RANK[lot.min_tier]:
            ctx.reply(f"这次抽奖仅限「{TIER_NAMES[lot.min_tier]}」及以上等级的会员参与，多多参与群里的活动就能升级哦～")
            ctx.record("lottery_refused", {"lottery": lot.id, "tier": mine.tier if mine else None})
            return
    window = _settings(ctx).confirm_window_s
    key = f"lottery:{lottery_id}:entries"
    room_id = lot.room_id

    def confirm(kind: str, n: int = 0) -> None:
        ctx.coalesce(key, (kind, sender, n), lambda items: _render_entries(room_id, items), window_s=window)

    if await store.has_entered(session, lottery_id, sender.id):
        confirm("again")
        return
    try:
        await store.add_entry(session, lottery_id, sender.id, sender.name or sender.id, event.at,
                              salt=lot.alias_salt, cost=lot.cost)
    except InsufficientPoints as exc:
        ctx.reply(f"积分不够哦：参加这次抽奖需要 {lot.cost} 积分，你现在有 {exc.balance} 积分。")
        return
    except (IntegrityError, AlreadyRecorded):  # entered in a race we lost: same as a repeat
        confirm("again")
        return
    n = await store.count_entries(session, lottery_id)
    ctx.after_commit(lambda: confirm("new", n))


# -- the draw -------------------------------------------------------------------------------------------------------

class SeedUnavailable(Exception):
    """The committed seed can't be derived: the key is missing, or is not the one the lottery started with."""


async def draw(session: AsyncSession, lottery_id: int, now: datetime, key: bytes | None) -> DrawResult | None:
    """Draw ``lottery_id`` if it is still open; None if it was drawn or cancelled before (so never twice).

    The status moves open → drawn by a conditional UPDATE in the caller's transaction, together with the winners
    and the revealed seed: only the transaction that made that change commits a draw. The entrants are read in
    that transaction, and their list's SHA-256 is what the draw message announces.
    """
    lot = await store.lottery(session, lottery_id)
    if lot is None or lot.status != "open":
        return None
    seed = _committed_seed(lot, key)
    if seed is None:
        raise SeedUnavailable(f"lottery {lottery_id}")
    entrants = await store.entrants(session, lottery_id)
    legacy = lot.nonce is None
    tickets = {(e.member_id if legacy else e.alias): e.member_id for e in entrants if legacy or e.alias}
    winners = [tickets[t] for t in draw_winners(seed, tickets, lot.winners)]
    digest = None if legacy else entrants_digest(tickets)
    if not await store.mark_drawn(session, lottery_id, now, winners, seed, digest):
        return None
    return DrawResult(lot.id, lot.room_id, lot.prize, lot.winners, seed, lot.commitment, entrants, winners, digest)


def _forget(active: dict[str, tuple[int, str]], room_id: str, lottery_id: int) -> None:
    if active.get(room_id, (None,))[0] == lottery_id:
        del active[room_id]


def _unavailable(cfg: LotterySettings, lottery_id: int) -> str:
    return (f"lottery {lottery_id}: its seed can't be derived (the environment variable {cfg.key_env} is unset or "
            f"not the key it was started with): not drawn; restore the key and restart, or cancel it")


@skill.job("draw")
async def draw_job(ctx: Context) -> None:
    try:
        result = await draw(ctx.session, int(ctx.payload["lottery_id"]), ctx.now, _key(ctx))
    except SeedUnavailable:
        # stays open: a restart with the key draws it (skills/lottery _catch_up), an admin can cancel it
        log.warning(_unavailable(_settings(ctx), int(ctx.payload["lottery_id"])))
        return
    if result is None:
        return  # cancelled: nothing to do
    active = _active(ctx)
    # Members are waiting for this: not promotional, so daily caps don't swallow it (quiet hours still apply).
    # Sent from the job itself: the announcement is committed with the draw and goes out once that commits, even
    # if the bot restarts before quiet hours end.
    ctx.send(draw_message(result), priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
    ctx.after_commit(lambda: _forget(active, result.room_id, result.lottery_id))


@skill.command("lottery draw", aliases=("抽奖 开奖",), usage="/lottery draw（或 /抽奖 开奖）",
               help="截止后立即开奖（不能提前）", scope="room", where="room")
async def draw_now(ctx: Context) -> None:
    """Only after the deadline (when the scheduled draw didn't happen): the announced time is part of the rules,
    and drawing early would let an admin pick the moment, when the entrants suit them."""
    session = ctx.session
    lot = await store.open_in_room(session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    if ctx.now < lot.deadline:
        ctx.reply(f"抽奖 #{lot.id} 的开奖时间是开始时公布的 {_local(ctx.services, lot.deadline)}，为了公平不能提前开奖，"
                  f"到点会自动开奖。如需中止，可以用 /lottery cancel 取消（退还积分）。")
        return
    try:
        result = await draw(session, lot.id, ctx.now, _key(ctx))
    except SeedUnavailable:
        log.warning(_unavailable(_settings(ctx), lot.id))
        ctx.reply("暂时无法开奖：服务器的抽奖密钥缺失或已更换，算不出开始时承诺的随机种子。请联系运维恢复密钥，"
                  "或用 /lottery cancel 取消（退还积分）。")
        return
    if result is None:
        ctx.reply("这次抽奖已经开过奖了。")
        return
    await ctx.services.scheduler.cancel(_draw_key(lot.id), session=session)
    active = _active(ctx)
    ctx.send(draw_message(result), durable=True)  # the admin's command: a reply, committed with the draw
    ctx.after_commit(lambda: _forget(active, result.room_id, result.lottery_id))


# -- ending without a draw ------------------------------------------------------------------------------------------

async def close(ctx: Context, lottery_id: int) -> Cancelled | None:
    """Cancel ``lottery_id`` if it is still open: reveal its seed (when it can be derived) and the SHA-256 of the
    entrant list, refund entry points exactly once, drop its draw job. None if it was no longer open."""
    session = ctx.session
    lot = await store.lottery(session, lottery_id)
    if lot is None or lot.status != "open":
        return None
    seed = _committed_seed(lot, _key(ctx))
    entrants = await store.entrants(session, lottery_id)
    digest = None if lot.nonce is None else entrants_digest(e.alias for e in entrants if e.alias)
    if not await store.mark_cancelled(session, lottery_id, seed, digest):
        return None
    refunded = await store.refund(session, lottery_id, lot.cost, [e.member_id for e in entrants], ctx.now) \
        if lot.cost else 0
    await ctx.services.scheduler.cancel(_draw_key(lottery_id), session=session)
    return Cancelled(lot.id, lot.room_id, lot.prize, lot.deadline, lot.cost, refunded, seed, digest, len(entrants))


@skill.command("lottery cancel", aliases=("抽奖 取消",), usage="/lottery cancel（或 /抽奖 取消）",
               help="取消进行中的抽奖（退还积分）", scope="room", where="room")
async def cancel(ctx: Context) -> None:
    lot = await store.open_in_room(ctx.session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    closed = await close(ctx, lot.id)
    if closed is None:
        ctx.reply("这次抽奖已经结束了。")
        return
    active = _active(ctx)
    text = cancel_text(closed)

    def announce() -> None:
        _forget(active, closed.room_id, closed.lottery_id)
        ctx.reply(text, mention=False)

    ctx.after_commit(announce)


@skill.job("expire")
async def expire_job(ctx: Context) -> None:
    """A lottery whose draw was missed by more than ``misfire_grace_s`` (the bot was down): cancelled with refunds,
    its seed revealed, and the group told why."""
    closed = await close(ctx, int(ctx.payload["lottery_id"]))
    if closed is None:
        return
    late_s = int((ctx.now - closed.deadline).total_seconds())
    late = timedelta(seconds=late_s - late_s % (3600 if late_s >= 86400 else 60))  # "8天3小时", not to the second
    log.warning("lottery %d: its draw was missed by %s (more than misfire_grace_s): cancelled with refunds",
                closed.lottery_id, ctx.now - closed.deadline)
    active = _active(ctx)
    message = OutgoingMessage(cancel_text(closed, missed=format_duration(late)), room_id=closed.room_id)

    def announce() -> None:
        _forget(active, closed.room_id, closed.lottery_id)
        ctx.send(message, priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)

    ctx.after_commit(announce)


# -- looking ----------------------------------------------------------------------------------------------------------

@skill.command("lottery status", aliases=("抽奖 状态",), usage="/lottery status（或 /抽奖 状态）",
               help="查看本群进行中的抽奖", where="room")
async def status(ctx: Context) -> None:
    lot = await store.open_in_room(ctx.session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    n = await store.count_entries(ctx.session, lot.id)
    cost = f"，参与扣 {lot.cost} 积分" if lot.cost else ""
    when = "已截止，正在开奖" if ctx.now >= lot.deadline else f"{_local(ctx.services, lot.deadline)} 开奖"
    ctx.reply(f"抽奖 #{lot.id}：奖品「{lot.prize}」{lot.winners} 名；已有 {n} 人参与；"
              f"发送「{lot.keyword}」参与{cost}；{when}。")


@skill.command("lottery", aliases=("抽奖",), usage="/lottery start|draw|cancel|status|entrants|verify",
               help="抽奖：发起、参与、开奖、名单、验证", where="room")
async def overview(ctx: Context) -> None:
    if ctx.args:
        raise UsageError(f"抽奖没有「{ctx.args[0][:10]}」这个操作。")
    await status(ctx)


async def _lottery_here(ctx: Context, example: str) -> Any:
    """The lottery a member asks about: ``ctx.args[0]`` if given, else the room's latest; None after telling
    them there is none. Other rooms' lotteries are their business."""
    session = ctx.session
    if ctx.args:
        lottery_id = _read_id(ctx.args[0], example)
    else:
        lottery_id = await store.latest_in_room(session, ctx.room_id)
        if lottery_id is None:
            ctx.reply("本群还没有抽奖记录。")
            return None
    lot = await store.lottery(session, lottery_id)
    if lot is None or lot.room_id != ctx.room_id:
        ctx.reply(f"本群没有编号为 {lottery_id} 的抽奖。")
        return None
    return lot


@skill.command("lottery entrants", aliases=("抽奖 名单",),
               usage="/lottery entrants [编号] [页码]（或 /抽奖 名单 编号 页码）",
               help="查看一次抽奖的参与名单（编号和昵称）", where="room")
async def entrants_command(ctx: Context) -> None:
    if len(ctx.args) > 2:
        raise UsageError("最多写编号和页码两项，例如 /lottery entrants 12 2。")
    page = 1
    if len(ctx.args) == 2:
        page = parse_id(ctx.args[1]) or 0
        if page < 1:
            raise UsageError("页码请写正整数，例如 /lottery entrants 12 2。")
    lot = await _lottery_here(ctx, "/lottery entrants 12")
    if lot is None:
        return
    ctx.reply(entrants_page(lot, await store.entrants(ctx.session, lot.id), page), mention=False)


@skill.command("lottery verify", aliases=("抽奖 验证",), usage="/lottery verify 编号（或 /抽奖 验证 编号）",
               help="验证一次抽奖的结果", where="room")
async def verify_command(ctx: Context) -> None:
    lot = await _lottery_here(ctx, "/lottery verify 12")
    if lot is None:
        return
    v = await verify(ctx.session, lot.id)
    ctx.reply(verify_text(v), mention=False)


def _cli_id(text: str) -> int:
    value = parse_id(text)
    if value is None:
        raise ValueError(text)  # argparse: "invalid _cli_id value", exit 2, no traceback
    return value


def _cli_arguments(parser) -> None:
    parser.add_argument("action", choices=["verify"])
    parser.add_argument("lottery_id", type=_cli_id, metavar="ID")


@skill.cli("lottery", help="lottery tools: verify <id> recomputes a draw from its revealed seed and entrant list",
           arguments=_cli_arguments)
async def lottery_cli(cli: CliContext) -> int:
    return await verify_cli(cli.config, cli.db_url, cli.args.lottery_id)


from skills.lottery import privacy  # noqa: E402  (what the skill keeps about a member: /我的数据, /删除我的数据)

skill.member_data(privacy)

from skills.lottery import pages  # noqa: E402,F401  (its dashboard page registers on `skill`)
