"""Member tiers (用户分层): a nightly pass sorts every member into core / new / active / casual / silent / lost
with RFM scores, and admins read the results in chat.

- The pass is a persisted daily job (``tiers.recompute`` at ``nightly_at``; a bot that was down runs it once when
  back, within ``misfire_grace_h``), plus one run at the first start. Why nightly and not per event: tiers move
  with the calendar (a member turns silent by saying nothing, so some pass must run anyway), the quartiles and the
  points top-10% are relative to everyone, and the activity writer's hot path stays untouched.
- ``/stats`` (room figures), ``/tier @成员`` (one member), ``/export members`` (CSV for everyone) — admins only.
- Other skills target tiers with ``skills.tiers.store.members_in_tier(session, tier, room_id=None)``.
"""

from __future__ import annotations

import asyncio
import csv
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import Context, Services
from bot.events import MessageReceived
from bot.parser import parse
from bot.skill import Skill, UsageError
from bot.targets import Recipient, TargetError
from bot.timefmt import parse_hhmm, zh_datetime
from skills.tiers import stats
from storage import stats as core_stats
from storage.members import in_room
from skills.tiers.models import TierRun
from skills.tiers.store import (TIER_NAMES, TIERS, PassResult, TierRules, last_run, members_in_tier, recompute,
                           tier_counts)



@dataclass(frozen=True)
class TierSettings:
    new_days: int = 7  # joined at most this many local days ago: new
    active_window_days: int = 7  # active: on at least active_min_days of the last active_window_days days
    active_min_days: int = 3
    core_min_orders: int = 2  # core: active with this many placed orders in window_days...
    core_points_top_pct: float = 10.0  # ...or in the top this-% by points (and not silent)
    silent_after_days: int = 14  # nothing for this many days: silent
    lost_after_days: int = 30  # nothing for more than this: lost (at risk)
    window_days: int = 90  # orders and RFM look back this far
    nightly_at: str = "03:30"  # local time of the nightly pass
    misfire_grace_h: float = 12.0  # a bot that was down at nightly_at still runs the pass this long after
    export_dir: str = "data/exports"  # /export members writes its CSV here
    welcome_back: str = ""  # said (with an @) when a lost member speaks in a group again; {name}; empty: off

    def __post_init__(self) -> None:
        if parse_hhmm(self.nightly_at) is None:
            raise ValueError(f'nightly_at: must be a time like "03:30", not {self.nightly_at!r}')
        if not 0 < self.active_min_days <= self.active_window_days:
            raise ValueError("active_min_days: must be between 1 and active_window_days")
        if not 0 < self.silent_after_days <= self.lost_after_days:
            raise ValueError("silent_after_days: must be at least 1 and at most lost_after_days")
        if not 0 <= self.core_points_top_pct <= 100:
            raise ValueError("core_points_top_pct: must be a percentage between 0 and 100")
        if self.window_days < max(self.active_window_days, 1):
            raise ValueError("window_days: must be at least active_window_days")
        if not self.export_dir.strip():
            raise ValueError("export_dir: must name a folder")
        try:
            self.welcome_back.format(name="x")
        except (KeyError, IndexError, ValueError) as exc:
            raise ValueError(f"welcome_back: the only placeholder is {{name}} ({exc})") from None

    @property
    def rules(self) -> TierRules:
        return TierRules(new_days=self.new_days, active_window_days=self.active_window_days,
                         active_min_days=self.active_min_days, core_min_orders=self.core_min_orders,
                         core_points_top_pct=self.core_points_top_pct, silent_after_days=self.silent_after_days,
                         lost_after_days=self.lost_after_days, window_days=self.window_days)


@dataclass
class TierState:
    # ids of the lost members not welcomed back yet (only with welcome_back set)
    lost: set[str] | None = None


skill: Skill[TierSettings, TierState] = Skill("tiers", "成员分层与数据", settings=TierSettings, state=TierState)
settings_of = skill.settings_of
NIGHTLY_KEY = "tiers.nightly"


@skill.on_startup
async def startup(services: Services) -> None:
    settings = settings_of(services)
    await services.scheduler.schedule(NIGHTLY_KEY, "tiers.recompute", daily=settings.nightly_at,
                                      misfire_grace_s=int(settings.misfire_grace_h * 3600), ensure=True)
    async with services.sessions() as s:
        ran = await last_run(s)
    if ran is None:  # first start: tiers now rather than tomorrow night
        await services.scheduler.schedule("tiers.first", "tiers.recompute", at=services.clock.now(), ensure=True)
    async with services.sessions() as s:
        await _load_lost(services, s)


@skill.target("tier", labels=TIER_NAMES)
async def resolve_tier(services: Services, session: AsyncSession, arg: str) -> list[Recipient]:
    """Scheduled-message targets: ``tier:silent`` (1-on-1 to each member of the tier), ``tier:silent,lost``,
    ``tier:silent/<room id>`` (only those in that room). The governor's per-member caps and opt-out apply."""
    names, _, room_id = arg.partition("/")
    tiers = [t.strip().lower() for t in names.split(",") if t.strip()]
    unknown = [t for t in tiers if t not in TIERS]
    if unknown or not tiers:
        raise TargetError(f"tier:{arg}: tiers are {', '.join(TIERS)}",
                          "分层写法不对，可用：" + "、".join(f"{t}（{TIER_NAMES[t]}）" for t in TIERS))
    members = await members_in_tier(session, tiers, room_id=room_id.strip() or None)
    return [Recipient(user_id=m) for m in members]


async def _load_lost(services: Services, session: AsyncSession) -> None:
    if settings_of(services).welcome_back:
        skill.state_of(services).lost = set(await members_in_tier(session, "lost"))


async def run_pass(services: Services, session: AsyncSession | None = None) -> PassResult:
    """One tier pass now, in ``session`` (a job's) or a session of its own."""
    if session is None:
        async with services.sessions() as s:
            return await run_pass(services, s)
    settings = settings_of(services)
    result = await recompute(session, services.clock.now(), services.config.tz, settings.rules,
                             room_days=services.config.dashboard.chart_days + 7)
    await _load_lost(services, session)
    return result


@skill.job("recompute")
async def nightly(ctx: Context) -> None:
    # the job's own session: the scheduler holds it while the job runs, so a second one would wait for it
    result = await run_pass(ctx.services, ctx.session)
    # counts only: no member data in the activity detail of a job
    ctx.services.activity.record("tier_pass", skill=skill.name, detail={
        "members": result.members, "changed": result.changed, "days_rolled": result.days_rolled,
        "ms": result.duration_ms, "counts": result.counts})


# -- welcome back (optional) ------------------------------------------------------------------------------------------

@skill.on_message(priority=300)
async def welcome_back(ctx: Context) -> None:
    """Runs for every message: one set lookup, and nothing at all while welcome_back is off."""
    lost = skill.state_of(ctx).lost
    if not lost or ctx.room_id is None or ctx.addressed or ctx.sender is None or ctx.sender.id not in lost:
        return
    lost.discard(ctx.sender.id)  # once; the next pass moves the member out of "lost" anyway
    ctx.record("welcome_back", {"tier": "lost"})
    ctx.reply(settings_of(ctx).welcome_back.format(name=ctx.sender.name or ""))


# -- helpers --------------------------------------------------------------------------------------------------------

def _local(ctx: Context, when: datetime) -> str:
    t = ctx.services.clock.local(when)
    return zh_datetime(t)


def _pct(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _distribution(counts: dict[str, int]) -> str:
    return " · ".join(f"{TIER_NAMES[t]} {counts.get(t, 0)}" for t in TIERS)


def _run_note(ctx: Context, run: TierRun | None) -> str:
    at = settings_of(ctx).nightly_at
    if run is None:
        return f"（尚未计算，每天 {at} 更新）"
    return f"（每天 {at} 更新，上次 {_local(ctx, run.at)}）"


# -- /stats -----------------------------------------------------------------------------------------------------------

@skill.command("stats", aliases=("统计", "数据"), where="room", scope="room",
               help="本群数据：成员、活跃、签到率、问答命中、成员分层")
async def room_stats(ctx: Context) -> None:
    s, now = ctx.session, ctx.event.at
    summary = await stats.room_summary(s, ctx.room_id, now, ctx.config.tz)
    counts = await tier_counts(s, ctx.room_id)
    run = await last_run(s)
    if summary.members == 0 and summary.active_7d == 0:
        ctx.reply("本群还没有成员和活跃记录，过几天再来看看吧。", mention=False)
        return
    asked = summary.faq_answered_7d + summary.faq_missed_7d
    lines = [
        f"本群数据（{_local(ctx, now)}）",
        f"成员：{summary.members} 人",
        f"今日活跃：{summary.active_today} 人；近 7 天活跃：{summary.active_7d} 人",
        f"今日签到：{summary.checked_in_today} 人（签到率 {_pct(summary.checked_in_today, summary.members)}）",
        f"近 7 天问答：答上 {summary.faq_answered_7d} 次，未答上 {summary.faq_missed_7d} 次"
        f"（命中率 {_pct(summary.faq_answered_7d, asked)}）",
        f"成员分层{_run_note(ctx, run)}：",
        _distribution(counts) if sum(counts.values()) else "暂无分层数据",
    ]
    ctx.reply("\n".join(lines), mention=False)


# -- /tier @member ------------------------------------------------------------------------------------------------------

_MENTION = re.compile(r"@[^@\u2005]{1,64}\u2005")


def _member_arg(ctx: Context) -> tuple[str | None, str | None]:
    """(member id from an @-mention, or the text to look up as a wxid / exact display name)."""
    mentioned = ctx.mentioned_ids
    if len(mentioned) > 1:
        raise UsageError("一次只能查一位成员哦。")
    if mentioned:
        return mentioned[0], None
    event = ctx.event
    assert isinstance(event, MessageReceived)
    parsed = parse(event.text)
    words = parsed.rest.split() if parsed else []
    text = " ".join(words).lstrip("@").strip()
    if not text:
        raise UsageError("请 @ 要查询的成员（或写上成员的 wxid）。")
    return None, text


@skill.command("tier", aliases=("分层", "成员"), usage="/tier @成员（或 /tier wxid）", scope="room",
               help="查看一位成员的分层、RFM、最近活跃、积分和订单")
async def member_tier(ctx: Context) -> None:
    member_id, text = _member_arg(ctx)
    room_only = not ctx.is_global_admin  # a room's admin looks up the members of this room only
    if room_only:
        await ctx.services.activity.flush()  # a member who just spoke in the room is noted with the next batch
    s = ctx.session
    if member_id is None:
        found = await core_stats.find_member_ids(s, text or "")
        if room_only:
            found = [m for m in found if await in_room(s, m, ctx.room_id)]
        if len(found) > 1:
            ctx.reply(f"有 {len(found)} 位成员叫这个名字，请直接 @ 对方查询。")
            return
        member_id = found[0] if found else None
    if member_id and room_only and not await in_room(s, member_id, ctx.room_id):
        ctx.reply("本群没有找到这位成员的记录（群管理员只能查看本群成员）。")
        return
    card = await stats.member_card(s, member_id) if member_id else None
    if card is None:
        ctx.reply("没有找到这位成员的记录（还没在群里出现过，或 wxid 写错了）。")
        return
    settings = settings_of(ctx)
    t = card.tier
    lines = [f"{card.name or card.member_id} 的成员档案"]
    if t is None:
        lines.append(f"分层：暂无{_run_note(ctx, await last_run(s))}")
    else:
        lines.append(f"分层：{TIER_NAMES.get(t.tier, t.tier)}（自 {_local(ctx, t.since)} 起）")
        lines.append(f"RFM：R{t.r} F{t.f} M{t.m}（近 {settings.window_days} 天，4 为最高）")
        lines.append(f"近 7 天活跃 {t.active_days_7} 天；近 {settings.window_days} 天活跃 {t.active_days_window} 天")
        lines.append(f"最近活跃日：{t.last_active_day or '无'}")
    lines.append(f"最近出现：{_local(ctx, card.last_seen)}；所在群：{card.rooms} 个")
    lines.append(f"积分：{card.points}")
    if t is not None:
        lines.append(f"订单：近 {settings.window_days} 天 {t.orders_window} 单（¥{t.amount_window:.2f}）；"
                     f"累计 {card.orders} 单（¥{card.amount:.2f}）")
    else:
        lines.append(f"订单：累计 {card.orders} 单（¥{card.amount:.2f}）")
    ctx.reply("\n".join(lines))


# -- /export members --------------------------------------------------------------------------------------------------

_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    """Display names are member-chosen: a leading = + - @ would run as a spreadsheet formula, so quote it."""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return "" if value is None else value


@skill.command("export", aliases=("导出",), usage="/export members（或 /导出 成员）", scope="room",
               help="把成员的分层和数据导出为 CSV 文件（群管理员：本群成员）")
async def export(ctx: Context) -> None:
    what = " ".join(ctx.args).strip().lower()
    if what not in ("members", "member", "成员", "会员"):
        raise UsageError("目前可以导出的是成员名单：/export members")
    room = None if ctx.is_global_admin else ctx.room_id  # a room's admin exports the members of this room
    settings = settings_of(ctx)
    folder = Path(settings.export_dir)
    stamp = ctx.services.clock.local(ctx.event.at).strftime("%Y%m%d-%H%M%S")
    path = folder / (f"members-{stamp}.csv" if room is None else f"members-{_file_safe(room)}-{stamp}.csv")
    if room is not None:
        await ctx.services.activity.flush()  # members who just arrived are noted with the next batch
    rows = [stats.EXPORT_COLUMNS]
    async for row in stats.export_rows(ctx.session, ctx.config.tz, room_id=room):
        rows.append(tuple(_cell(v) for v in row))
    await asyncio.to_thread(_write_csv, path, rows)
    ctx.record("export", {"what": "members", "rows": len(rows) - 1, "file": path.name})
    whose = "位成员" if room is None else "位本群成员"
    ctx.reply(f"已导出 {len(rows) - 1} {whose}：{path.resolve()}")


def _file_safe(room_id: str) -> str:
    return re.sub(r"[^\w-]", "_", room_id)[:40]


def _write_csv(path: Path, rows: list[tuple]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".csv.part")
    with tmp.open("w", encoding="utf-8-sig", newline="") as fh:  # BOM: Excel opens UTF-8 Chinese correctly
        csv.writer(fh).writerows(rows)
    tmp.replace(path)  # never a half-written file under the final name


from skills.tiers import pages, privacy  # noqa: E402,F401  (its dashboard pages; what it keeps about a member)

skill.member_data(privacy)
