"""Provably fair lottery (群抽奖): an admin starts it, members enter with a keyword, the bot draws at the deadline.

- ``/lottery start 奖品 winners=3 duration=30m keyword=抽奖 [cost=0]`` (admins, in a group; ``/抽奖 开始 ...``):
  the bot announces the prize, the rules, the keyword, the deadline and a commitment, SHA-256 of a secret seed.
- Members enter by sending the keyword: one entry each, admins and the bot excluded, an optional points cost
  (refunded if the lottery is cancelled). Confirmations are coalesced into one message per ``confirm_window_s``.
- At the deadline the persisted scheduler runs ``lottery.draw``; a bot that was down draws once when it comes back.
  The draw is idempotent: the status changes open → drawn in the same transaction that stores the winners.
- Winners come from the revealed seed and the sorted entrant ids by the procedure documented in
  skills/lottery/draw.py; ``/lottery verify <id>`` and ``python -m bot lottery verify <id>`` recompute them.
- ``/lottery draw`` (early) and ``/lottery cancel`` for admins, ``/lottery status`` for everyone.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TextIO

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.exc import IntegrityError, OperationalError, ProgrammingError
from sqlalchemy.ext.asyncio import AsyncSession

from bot.cli import CliContext
from bot.config import Config
from bot.context import Context, Services, with_mentions
from bot.events import MessageReceived, OutgoingMessage, Person, Priority, ProactiveKind
from bot.parser import normalize, strip_mentions
from bot.skill import Skill, UsageError
from skills.lottery.draw import commitment, draw_winners, format_duration, new_seed, parse_duration
from skills.lottery.models import Lottery, LotteryEntry
from storage.points import AlreadyRecorded, InsufficientPoints, change_points
from storage.prepared import Prepared
from skills.tiers.store import TIER_NAMES, tier_of

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
    misfire_grace_s: int = 7 * 86400  # a bot back within this long after the deadline still draws (once)

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


@dataclass
class LotteryState:
    # room id → (lottery id, lowercased keyword) of its open lottery: ordinary chatter costs one dict lookup
    active: dict[str, tuple[int, str]] = field(default_factory=dict)


skill: Skill[LotterySettings, LotteryState] = Skill("lottery", "抽奖", settings=LotterySettings, state=LotteryState)
_settings = skill.settings_of


def _active(where: Context | Services) -> dict[str, tuple[int, str]]:
    return skill.state_of(where).active


@skill.on_startup
async def load(services: Services) -> None:
    async with services.sessions() as s:
        rows = (await s.execute(select(Lottery.room_id, Lottery.id, Lottery.keyword)
                                .where(Lottery.status == "open"))).all()
    _active(services).update({r.room_id: (r.id, r.keyword.lower()) for r in rows})


def _local(services: Services, when: datetime) -> str:
    t = services.clock.local(when)
    return f"{t.month}月{t.day}日 {t:%H:%M}"


# prepared statements (storage/prepared.py): these run on every /lottery status
_OPEN_IN_ROOM = Prepared(select(Lottery.__table__).where(Lottery.room_id == bindparam("room"),
                                                         Lottery.status == "open"))
_COUNT = Prepared(select(func.count()).select_from(LotteryEntry)
                  .where(LotteryEntry.lottery_id == bindparam("lottery")))


async def _open_in_room(session: AsyncSession, room_id: str) -> Any:
    """The room's open lottery as a read-only row (its columns as attributes), or None."""
    return (await _OPEN_IN_ROOM.run(await session.connection(), {"room": room_id})).first()


async def _entrants(session: AsyncSession, lottery_id: int) -> list[tuple[str, str]]:
    rows = await session.execute(select(LotteryEntry.member_id, LotteryEntry.name)
                                 .where(LotteryEntry.lottery_id == lottery_id).order_by(LotteryEntry.member_id))
    return [(r.member_id, r.name) for r in rows]


async def _count(session: AsyncSession, lottery_id: int) -> int:
    return (await _COUNT.run(await session.connection(), {"lottery": lottery_id})).scalar() or 0


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
    raw = given.get("winners", "1").rstrip("人名个")
    if not raw.isdigit():
        raise UsageError("winners 请写中奖人数，例如 winners=3。")
    winners = int(raw)
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
    if not raw_cost.isdigit():
        raise UsageError("cost 请写参与要扣的积分（整数），例如 cost=10；不扣积分写 0。")
    min_tier = None
    if "tier" in given:
        wanted = given["tier"].lower()
        min_tier = next((t for t, zh in TIER_NAMES.items() if wanted in (t, zh)), None)
        if min_tier is None:
            names = "、".join(f"{zh}（{t}）" for t, zh in TIER_NAMES.items())
            raise UsageError(f"tier 请写最低会员等级：{names}，例如 tier=active。")
    return StartRequest(prize, winners, duration, keyword, int(raw_cost), min_tier)


def _start_text(services: Services, lot: Lottery) -> str:
    cost = f"，参与一次扣 {lot.cost} 积分（取消则退还）" if lot.cost else ""
    if lot.min_tier:
        cost += f"；仅限「{TIER_NAMES[lot.min_tier]}」及以上等级的会员"
    return (f"🎁 抽奖 #{lot.id} 开始啦！\n"
            f"奖品：{lot.prize}（{lot.winners} 名）\n"
            f"参与方式：在群里发送「{lot.keyword}」{cost}，每人一次，管理员不参与。\n"
            f"开奖时间：{_local(services, lot.deadline)}\n"
            f"公平承诺：本次随机种子的 SHA-256 是 {lot.commitment}\n"
            f"开奖时公布种子，大家可以用 /lottery verify {lot.id} 验证结果。")


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
    running = await _open_in_room(session, room_id)
    if running is not None:
        ctx.reply(f"本群已经有一个进行中的抽奖（#{running.id}「{running.prize}」），一个群同时只能有一个。"
                  f"请等它开奖，或先用 /lottery cancel 取消。")
        return
    now = ctx.now
    seed = new_seed()
    lot = Lottery(room_id=room_id, prize=request.prize, winners=request.winners, keyword=request.keyword,
                  cost=request.cost, min_tier=request.min_tier, commitment=commitment(seed), seed=seed, status="open",
                  created_by=ctx.sender.id, created_at=now, deadline=now + request.duration)
    session.add(lot)
    await session.flush()
    await ctx.services.scheduler.schedule(
        f"lottery:{lot.id}:draw", "lottery.draw", at=lot.deadline, payload={"lottery_id": lot.id}, session=session,
        room_id=lot.room_id, misfire_grace_s=cfg.misfire_grace_s)
    text, lottery_id, keyword = _start_text(ctx.services, lot), lot.id, lot.keyword.lower()

    def announce() -> None:
        active[room_id] = (lottery_id, keyword)
        ctx.reply(text, mention=False)

    ctx.after_commit(announce)


# -- entries --------------------------------------------------------------------------------------------------------

def _render_entries(room_id: str, items: list[tuple[str, Person, int]]) -> OutgoingMessage | None:
    """One message for a window of entries: the new entrants, then those who had entered already."""
    new: dict[str, Person] = {}
    again: dict[str, Person] = {}
    count = 0
    for kind, person, n in items:
        if kind == "new":
            new[person.id] = person
            count = max(count, n)
        elif person.id not in new:
            again[person.id] = person
    parts = []
    if new:
        parts.append(with_mentions(list(new.values()), f"参与成功🎉 目前共 {count} 人参与，祝好运！"))
    if again:
        parts.append(with_mentions(list(again.values()), "已经参与过啦，每人一次，等开奖就好～"))
    if not parts:
        return None
    return OutgoingMessage("\n".join(parts), room_id=room_id, mentions=(*new, *again))


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
    lot = await session.get(Lottery, lottery_id)
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

    entered = await session.scalar(select(LotteryEntry.id).where(LotteryEntry.lottery_id == lottery_id,
                                                                 LotteryEntry.member_id == sender.id))
    if entered is not None:
        confirm("again")
        return
    try:
        async with session.begin_nested():  # the charge and the entry stand or fall together
            if lot.cost:
                await change_points(session, sender.id, -lot.cost, reason=f"参加抽奖 #{lottery_id}",
                                    source="lottery", ref_id=f"lottery:{lottery_id}:entry:{sender.id}", at=event.at)
            session.add(LotteryEntry(lottery_id=lottery_id, member_id=sender.id, name=(sender.name or sender.id)[:128],
                                     at=event.at))
            await session.flush()
    except InsufficientPoints as exc:
        ctx.reply(f"积分不够哦：参加这次抽奖需要 {lot.cost} 积分，你现在有 {exc.balance} 积分。")
        return
    except (IntegrityError, AlreadyRecorded):  # entered in a race we lost: same as a repeat
        confirm("again")
        return
    n = await _count(session, lottery_id)
    ctx.after_commit(lambda: confirm("new", n))


# -- the draw -------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class DrawResult:
    lottery_id: int
    room_id: str
    prize: str
    winners_wanted: int
    seed: str
    commitment: str
    entrants: list[tuple[str, str]]  # (id, name), sorted by id
    winners: list[str]


async def draw(session: AsyncSession, lottery_id: int, now: datetime) -> DrawResult | None:
    """Draw ``lottery_id`` if it is still open; None if it was drawn or cancelled before (so never twice).

    The status moves open → drawn by a conditional UPDATE in the caller's transaction, together with the winners:
    only the transaction that made that change commits a draw.
    """
    lot = await session.get(Lottery, lottery_id)
    if lot is None or lot.status != "open":
        return None
    entrants = await _entrants(session, lottery_id)
    winners = draw_winners(lot.seed, [e[0] for e in entrants], lot.winners)
    result = await session.execute(
        update(Lottery).where(Lottery.id == lottery_id, Lottery.status == "open")
        .values(status="drawn", drawn_at=now, winner_ids=winners))
    if result.rowcount != 1:
        return None
    return DrawResult(lot.id, lot.room_id, lot.prize, lot.winners, lot.seed, lot.commitment, entrants, winners)


def draw_message(r: DrawResult) -> OutgoingMessage:
    names = dict(r.entrants)
    proof = (f"随机种子：{r.seed}\n"
             f"验证方法：SHA-256(种子) 应等于开始时公布的承诺 {r.commitment}；把参与者 id 排序，"
             f"第 i 位（从 0 数）取 SHA-256(种子:i) 对剩余人数取余选出。发送 /lottery verify {r.lottery_id} 即可复算。")
    if not r.winners:
        return OutgoingMessage(f"抽奖 #{r.lottery_id}「{r.prize}」已截止，可惜没有人参与，本次没有中奖者。\n{proof}",
                               room_id=r.room_id)
    people = [Person(w, names.get(w, w)) for w in r.winners]
    everyone = "参与人数不足，全部中奖！" if len(r.entrants) <= r.winners_wanted else ""
    body = (f"恭喜中奖🎉 抽奖 #{r.lottery_id}「{r.prize}」开奖啦！共 {len(r.entrants)} 人参与，"
            f"抽出 {len(r.winners)} 名。{everyone}\n"
            f"中奖名单：{'、'.join(p.name for p in people)}\n{proof}")
    return OutgoingMessage(with_mentions(people, body), room_id=r.room_id, mentions=tuple(r.winners))


def _forget(active: dict[str, tuple[int, str]], room_id: str, lottery_id: int) -> None:
    if active.get(room_id, (None,))[0] == lottery_id:
        del active[room_id]


@skill.job("draw")
async def draw_job(ctx: Context) -> None:
    result = await draw(ctx.session, int(ctx.payload["lottery_id"]), ctx.now)
    if result is None:
        return  # drawn early or cancelled: nothing to do
    active = _active(ctx)
    # Members are waiting for this: not promotional, so daily caps don't swallow it (quiet hours still apply).
    # Sent from the job itself: the announcement is committed with the draw and goes out once that commits, even
    # if the bot restarts before quiet hours end.
    ctx.send(draw_message(result), priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)
    ctx.after_commit(lambda: _forget(active, result.room_id, result.lottery_id))


@skill.command("lottery draw", aliases=("抽奖 开奖",), usage="/lottery draw（或 /抽奖 开奖）", help="提前开奖",
               scope="room", where="room")
async def draw_now(ctx: Context) -> None:
    session = ctx.session
    lot = await _open_in_room(session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    result = await draw(session, lot.id, ctx.now)
    if result is None:
        ctx.reply("这次抽奖已经开过奖了。")
        return
    await ctx.services.scheduler.cancel(f"lottery:{lot.id}:draw", session=session)
    active = _active(ctx)
    ctx.send(draw_message(result), durable=True)  # the admin's command: a reply, committed with the draw
    ctx.after_commit(lambda: _forget(active, result.room_id, result.lottery_id))


@skill.command("lottery cancel", aliases=("抽奖 取消",), usage="/lottery cancel（或 /抽奖 取消）",
               help="取消进行中的抽奖（退还积分）", scope="room", where="room")
async def cancel(ctx: Context) -> None:
    session = ctx.session
    lot = await _open_in_room(session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    lottery_id, room_id, prize, cost = lot.id, lot.room_id, lot.prize, lot.cost
    changed = await session.execute(update(Lottery).where(Lottery.id == lottery_id, Lottery.status == "open")
                                    .values(status="cancelled"))
    if changed.rowcount != 1:
        ctx.reply("这次抽奖已经结束了。")
        return
    refunded = 0
    if cost:
        for member_id, _ in await _entrants(session, lottery_id):
            try:
                await change_points(session, member_id, cost, reason=f"抽奖 #{lottery_id} 取消，退还积分",
                                    source="lottery", ref_id=f"lottery:{lottery_id}:refund:{member_id}", at=ctx.now)
                refunded += 1
            except AlreadyRecorded:
                pass  # refunded before: exactly once
    await ctx.services.scheduler.cancel(f"lottery:{lottery_id}:draw", session=session)
    active = _active(ctx)
    note = f"已给 {refunded} 位参与者退还 {cost} 积分。" if refunded else ""
    text = f"抽奖 #{lottery_id}「{prize}」已取消，不再开奖。{note}"

    def announce() -> None:
        _forget(active, room_id, lottery_id)
        ctx.reply(text, mention=False)

    ctx.after_commit(announce)


@skill.command("lottery status", aliases=("抽奖 状态",), usage="/lottery status（或 /抽奖 状态）",
               help="查看本群进行中的抽奖", where="room")
async def status(ctx: Context) -> None:
    lot = await _open_in_room(ctx.session, ctx.room_id)
    if lot is None:
        ctx.reply("本群现在没有进行中的抽奖。")
        return
    n = await _count(ctx.session, lot.id)
    cost = f"，参与扣 {lot.cost} 积分" if lot.cost else ""
    when = "已截止，正在开奖" if ctx.now >= lot.deadline else f"{_local(ctx.services, lot.deadline)} 开奖"
    ctx.reply(f"抽奖 #{lot.id}：奖品「{lot.prize}」{lot.winners} 名；已有 {n} 人参与；"
              f"发送「{lot.keyword}」参与{cost}；{when}。")


@skill.command("lottery", aliases=("抽奖",), usage="/lottery start|draw|cancel|status|verify",
               help="抽奖：发起、参与、开奖、验证", where="room")
async def overview(ctx: Context) -> None:
    if ctx.args:
        raise UsageError(f"抽奖没有「{ctx.args[0][:10]}」这个操作。")
    await status(ctx)


# -- verification ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Verification:
    lottery: Lottery
    entrants: list[tuple[str, str]]
    recomputed: list[str]
    commitment_ok: bool

    @property
    def winners_ok(self) -> bool:
        return self.recomputed == list(self.lottery.winner_ids or [])

    @property
    def ok(self) -> bool:
        return self.lottery.status == "drawn" and self.commitment_ok and self.winners_ok


async def verify(session: AsyncSession, lottery_id: int) -> Verification | None:
    """Recompute a lottery from what is stored: the seed against the commitment, the winners from the entrants."""
    lot = await session.get(Lottery, lottery_id)
    if lot is None:
        return None
    entrants = await _entrants(session, lottery_id)
    recomputed = draw_winners(lot.seed, [e[0] for e in entrants], lot.winners) if lot.status == "drawn" else []
    return Verification(lot, entrants, recomputed, commitment(lot.seed) == lot.commitment)


def verify_text(v: Verification) -> str:
    lot = v.lottery
    if lot.status == "open":
        return (f"抽奖 #{lot.id} 还没开奖，种子保密中。承诺（SHA-256）：{lot.commitment}，"
                f"开奖后再来验证吧。")
    if lot.status == "cancelled":
        return f"抽奖 #{lot.id} 已取消，没有开奖，无需验证。"
    names = dict(v.entrants)
    shown = "、".join(names.get(w, w) for w in v.recomputed) or "（无人参与）"
    yes, no = "✅", "❌"
    return (f"抽奖 #{lot.id}「{lot.prize}」验证：\n"
            f"种子：{lot.seed}\n"
            f"SHA-256(种子) 与开始时的承诺{'一致' + yes if v.commitment_ok else '不一致' + no}\n"
            f"按公开规则用 {len(v.entrants)} 位参与者复算，中奖：{shown}，"
            f"{'与公布结果一致' + yes if v.winners_ok else '与公布结果不一致' + no}\n"
            f"结论：{'验证通过，结果公平可查。' if v.ok else '验证未通过！请联系管理员。'}")


@skill.command("lottery verify", aliases=("抽奖 验证",), usage="/lottery verify 编号（或 /抽奖 验证 编号）",
               help="验证一次抽奖的结果", where="room")
async def verify_command(ctx: Context) -> None:
    session = ctx.session
    if ctx.args:
        raw = ctx.args[0].lstrip("#＃")
        if not raw.isdigit():
            raise UsageError("请写抽奖编号，例如 /lottery verify 12。")
        lottery_id = int(raw)
    else:  # no number: the room's latest lottery
        lottery_id = await session.scalar(select(Lottery.id).where(Lottery.room_id == ctx.room_id)
                                          .order_by(Lottery.id.desc()).limit(1))
        if lottery_id is None:
            ctx.reply("本群还没有抽奖记录。")
            return
    v = await verify(session, lottery_id)
    if v is None or v.lottery.room_id != ctx.room_id:  # other rooms' lotteries are their business
        ctx.reply(f"本群没有编号为 {lottery_id} 的抽奖。")
        return
    ctx.reply(verify_text(v), mention=False)


def _cli_arguments(parser) -> None:
    parser.add_argument("action", choices=["verify"])
    parser.add_argument("lottery_id", type=int)


@skill.cli("lottery", help="lottery tools: verify <id> recomputes a draw from its seed and entrants",
           arguments=_cli_arguments)
async def lottery_cli(cli: CliContext) -> int:
    return await verify_cli(cli.config, cli.db_url, cli.args.lottery_id)


async def verify_cli(config: Config, db_url: str | None, lottery_id: int, out: TextIO = sys.stdout) -> int:
    """``python -m bot lottery verify ID``: 0 when the draw checks out, 1 when it does not, 2 when it can't tell."""
    from storage.db import create_engine, session_factory

    engine = create_engine(db_url or config.storage.url)
    try:
        async with session_factory(engine)() as session:
            v = await verify(session, lottery_id)
    except (OperationalError, ProgrammingError) as exc:  # no such table: not a bot database, or never migrated
        print(f"cannot read lotteries from the database: {exc.orig}", file=sys.stderr)
        return 2
    finally:
        await engine.dispose()
    if v is None:
        print(f"lottery {lottery_id}: not found", file=sys.stderr)
        return 2
    lot = v.lottery
    print(f"lottery #{lot.id} in room {lot.room_id}: {lot.status}", file=out)
    print(f"prize: {lot.prize}", file=out)
    print(f"commitment: {lot.commitment}", file=out)
    if lot.status != "drawn":
        print("not drawn: the seed stays secret, nothing to verify", file=out)
        return 2
    print(f"seed: {lot.seed}", file=out)
    print(f"sha256(seed) == commitment: {'yes' if v.commitment_ok else 'NO'}", file=out)
    print(f"entrants ({len(v.entrants)}, sorted): {' '.join(e[0] for e in v.entrants)}", file=out)
    print(f"winners announced:  {' '.join(lot.winner_ids or [])}", file=out)
    print(f"winners recomputed: {' '.join(v.recomputed)}", file=out)
    print(f"result: {'MATCH' if v.ok else 'MISMATCH'}", file=out)
    return 0 if v.ok else 1
