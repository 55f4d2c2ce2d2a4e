"""Scheduled group messages (定时消息): daily greetings, tips, check-in reminders and the occasional promotion.

- Defined in config.toml (``[skills.schedule.items."名称"]``) and by admins in chat:
  ``/schedule add|list|remove|pause|resume`` (``/定时 添加|列表|删除|暂停|恢复``).
- Each is a persisted scheduler job (``schedule:<名称>``, handler ``schedule.send``): a daily time or a cron
  expression, targets (bot/targets.py: all, tag:..., room:..., and pluggable prefixes such as tier:...), a text
  template or a rotating tips file in knowledge/, and a kind (light | promotional).
- Missed runs (the bot was down): one catch-up run within ``grace_s`` (1 h), otherwise skipped and logged.
- Gentleness (quiet hours, caps, the gap between proactive messages, lively rooms, opt-out) is the send
  governor's job; this skill only decides what to send to whom.
"""

from __future__ import annotations

import hashlib
import logging
import string
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from croniter import croniter

from bot import targets
from bot.context import Context, Services
from bot.events import OutgoingMessage, ProactiveKind
from bot.scheduler import ScheduleError
from bot.skill import Skill, UsageError
from bot.timefmt import zh_date, zh_datetime
from storage import wecom as wecom_store

log = logging.getLogger(__name__)

HANDLER = "schedule.send"
ROOM_HANDLER = "schedule.send_room"
KINDS = {"light": "light", "轻": "light", "轻互动": "light", "promotional": "promotional", "推广": "promotional",
         "促销": "promotional", "营销": "promotional"}
KIND_ZH = {"light": "轻互动", "promotional": "推广"}
OPTION_NAMES = {"daily": "daily", "每天": "daily", "时间": "daily", "cron": "cron",
                "target": "target", "targets": "target", "对象": "target", "目标": "target",
                "kind": "kind", "类型": "kind", "text": "text", "内容": "text", "tips": "tips", "贴士": "tips"}
PLACEHOLDERS = {"date", "weekday", "tip"}
WEEKDAYS = "一二三四五六日"
ADD_USAGE = ('/schedule add 名称 daily=09:00 target=all kind=light 文字内容（或 cron="0 9 * * 1-5"，'
             "tips=1 用每日贴士；target 可写 all、here、tag:标签、room:群ID，多个用逗号分隔）")
MAX_NAME = 40
MAX_TEXT = 1000


def _key(name: str) -> str:
    return f"schedule:{name}"


def _room_key(room_id: str, name: str) -> str:
    """A room admin's schedule: keyed apart from the global admins' (names have no ":"), so the same name in
    another room, or a global admin's, is never replaced by it."""
    return f"schedule:room:{room_id}:{name}"


def _only_room(payload: dict | None, room_id: str | None) -> bool:
    """Whether a schedule sends to ``room_id`` and nowhere else: what a room's admin may see and change."""
    found = (payload or {}).get("targets") or ()
    return room_id is not None and bool(found) and all(t == f"room:{room_id}" for t in found)


def check_template(text: str) -> None:
    try:
        names = {f for _, f, _, _ in string.Formatter().parse(text) if f is not None}
    except ValueError as exc:
        raise ValueError(f"bad template ({exc}); write {{{{ and }}}} for literal braces") from None
    bad = names - PLACEHOLDERS
    if bad:
        raise ValueError(f"bad placeholder {sorted(bad)[0]!r} (use {{date}}, {{weekday}}, {{tip}})")


def check_when(daily: str, cron: str) -> None:
    if bool(daily) == bool(cron):
        raise ValueError("give exactly one of daily (\"09:00\") and cron (\"0 9 * * *\")")
    if cron and not croniter.is_valid(cron):
        raise ValueError(f"not a cron expression: {cron!r}")
    if daily:
        hh, sep, mm = daily.partition(":")
        if not (sep and hh.isdigit() and mm.isdigit() and int(hh) < 24 and int(mm) < 60 and len(mm) == 2):
            raise ValueError(f'daily time must look like "09:30", not {daily!r}')


@dataclass(frozen=True)
class ScheduleItem:
    daily: str = ""  # "09:00", local time
    cron: str = ""  # or a cron expression in local time
    targets: tuple[str, ...] = ("all",)
    text: str = ""  # template: {date} {weekday} {tip}
    tips: str = ""  # a tips file (one tip a line, rotating daily); the text, if any, wraps it with {tip}
    kind: str = "light"  # light | promotional
    enabled: bool = True


@dataclass(frozen=True)
class ScheduleSettings:
    grace_s: int = 3600  # a run missed by at most this much (the bot was down) still happens once
    tips_file: str = "knowledge/tips.txt"  # what `tips=1` in /schedule add means
    items: dict[str, ScheduleItem] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, item in self.items.items():
            where = f'items."{name}"'
            try:
                check_when(item.daily, item.cron)
            except ValueError as exc:
                raise ValueError(f"{where}: {exc}") from None
            if item.kind not in ("light", "promotional"):
                raise ValueError(f'{where}.kind: must be "light" or "promotional", not {item.kind!r}')
            if not item.text and not item.tips:
                raise ValueError(f"{where}: give a text or a tips file")
            if not item.targets:
                raise ValueError(f"{where}.targets: give at least one target (e.g. [\"all\"])")
            for spec in item.targets:
                try:
                    targets.split(spec)
                except targets.TargetError as exc:
                    raise ValueError(f"{where}.targets: {exc}") from None
            try:
                check_template(item.text)
            except ValueError as exc:
                raise ValueError(f"{where}.text: {exc}") from None


skill: Skill[ScheduleSettings, None] = Skill("schedule", "定时消息", settings=ScheduleSettings)
_settings = skill.settings_of


def _payload(name: str, item: ScheduleItem, source: str, by: str | None = None) -> dict:
    return {"name": name, "targets": list(item.targets), "text": item.text, "tips": item.tips, "kind": item.kind,
            "source": source, "by": by}


@skill.on_startup
async def sync_config(services: Services) -> None:
    """Make the configured schedules exist as jobs. An unchanged one is left as it is (its pause, its due
    catch-up run); a changed one is replaced; one removed from config (or disabled) is cancelled."""
    cfg = _settings(services)
    scheduler = services.scheduler
    async with services.sessions() as s:
        stored = {j.key: j for j in await scheduler.jobs(HANDLER, s)}
    for name, item in cfg.items.items():
        key = _key(name)
        job = stored.get(key)
        if not item.enabled:
            if job is not None and job.status in ("active", "paused"):
                await scheduler.cancel(key)
            continue
        payload = _payload(name, item, "config")
        kind, spec = ("daily", item.daily) if item.daily else ("cron", item.cron)
        same = job is not None and job.status in ("active", "paused") and (job.schedule, job.spec) == (kind, spec) \
            and job.payload == payload and job.misfire_grace_s == cfg.grace_s
        await scheduler.schedule(key, HANDLER, daily=item.daily or None, cron=item.cron or None, payload=payload,
                                 misfire_grace_s=cfg.grace_s, ensure=same)
    for key, job in stored.items():
        if (job.payload or {}).get("source") == "config" and job.key.removeprefix("schedule:") not in cfg.items \
                and job.status in ("active", "paused"):
            await scheduler.cancel(key)


# -- content --------------------------------------------------------------------------------------------------------

def tips_path(services: Services, name: str) -> Path:
    path = Path(name)
    return path if path.is_absolute() else Path(services.config.path).resolve().parent / path


def read_tips(path: Path) -> list[str]:
    """One tip a line; blank lines and lines starting with # are skipped. Read at every run: operators edit it."""
    lines = path.read_text(encoding="utf-8").splitlines()
    return [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]


def render(services: Services, payload: dict, when: datetime) -> str:
    """The text for a run at ``when``. Tips rotate by local day: every room gets the same tip that day."""
    local = services.clock.local(when)
    tip = ""
    if payload.get("tips"):
        tips = read_tips(tips_path(services, payload["tips"]))
        if not tips:
            raise ValueError(f"tips file {payload['tips']!r} has no tips")
        tip = tips[local.date().toordinal() % len(tips)]
    template = payload.get("text") or "{tip}"
    return template.format(date=zh_date(local), weekday=f"星期{WEEKDAYS[local.weekday()]}",
                           tip=tip).strip()


@skill.job("send")
async def send(ctx: Context) -> None:
    p = ctx.payload
    services = ctx.services
    name = p.get("name", ctx.job_key)
    try:
        recipients = await targets.resolve(services, ctx.session, p.get("targets", ()))
        text = render(services, p, ctx.scheduled_for)
    except (targets.TargetError, OSError, ValueError) as exc:
        # a configuration problem: said loudly, the job stays (the operator fixes the file or installs the skill)
        log.error("scheduled message %r not sent: %s", name, exc)
        services.activity.record("schedule", skill="schedule", detail={"schedule": name, "outcome": "error",
                                                                       "error": str(exc)[:300]})
        return
    kind = ProactiveKind(p.get("kind", "light"))
    shared = services.config.storage.shared
    for r in recipients:
        if shared and r.room_id is not None:
            # Several accounts share the database: each room's message becomes a one-off job of its own, claimed
            # (exactly once) by a process whose account is in that room — not necessarily this one.
            room_key = hashlib.sha1(r.room_id.encode()).hexdigest()[:16]
            await services.scheduler.schedule(
                f"{ctx.job_key}@{ctx.scheduled_for.isoformat()}:{room_key}", ROOM_HANDLER, at=ctx.now,
                room_id=r.room_id, session=ctx.session, misfire_grace_s=_settings(services).grace_s,
                payload={"name": name, "room": r.room_id, "text": text, "kind": kind.value})
            continue
        ctx.send(OutgoingMessage(text, room_id=r.room_id, user_id=r.user_id), kind=kind)
    services.activity.record("schedule", skill="schedule",
                             detail={"schedule": name, "outcome": "queued", "recipients": len(recipients),
                                     "due": ctx.scheduled_for.isoformat()})


@skill.job("send_room")
async def send_room(ctx: Context) -> None:
    """One room's share of a scheduled message, on a database shared by several accounts (see ``send``)."""
    p = ctx.payload
    ctx.send(OutgoingMessage(p["text"], room_id=p["room"]), kind=ProactiveKind(p.get("kind", "light")))


# -- commands -------------------------------------------------------------------------------------------------------

def _options(ctx: Context) -> dict[str, str]:
    given: dict[str, str] = {}
    for key, value in (ctx.command.options if ctx.command else {}).items():
        name = OPTION_NAMES.get(key)
        if name is None:
            raise UsageError(f"不认识的选项「{key[:20]}」，可以用 daily、cron、target、kind、text、tips。")
        given[name] = value.strip()
    return given


def _name_arg(ctx: Context) -> str:
    if not ctx.args:
        raise UsageError("请写上定时消息的名称，发送 /schedule list 查看全部。")
    name = ctx.args[0].strip()
    if not name or len(name) > MAX_NAME or ":" in name:
        raise UsageError(f"名称请用 1 到 {MAX_NAME} 个字，不含冒号。")
    return name


def _targets(ctx: Context, raw: str | None) -> tuple[str, ...]:
    if not raw:
        if ctx.room_id is None:
            raise UsageError("私聊添加时请写发送对象，例如 target=all 或 target=tag:vip。")
        return (f"room:{ctx.room_id}",)
    specs = []
    for part in raw.replace("，", ",").split(","):
        part = part.strip()
        if not part:
            continue
        if part in ("here", "本群"):
            if ctx.room_id is None:
                raise UsageError("target=here 只能在群里使用。")
            part = f"room:{ctx.room_id}"
        try:
            targets.check(ctx.services, part)
        except targets.TargetError as exc:
            raise UsageError(exc.zh) from None
        specs.append(part)
    if not specs:
        raise UsageError("请写发送对象，例如 target=all。")
    if ctx.sender.id not in ctx.config.bot.admins and any(s != f"room:{ctx.room_id}" for s in specs):
        raise UsageError("群管理员只能为本群设置定时消息（target=here）。")
    return tuple(specs)


@skill.command("schedule add", aliases=("定时 添加", "定时 新增"), usage=ADD_USAGE, help="添加定时消息",
               scope="room")
async def add(ctx: Context) -> None:
    cfg = _settings(ctx.services)
    name = _name_arg(ctx)
    if name in cfg.items:
        raise UsageError(f"「{name}」来自配置文件，请在 config.toml 里修改。")
    opts = _options(ctx)
    daily, cron = opts.get("daily", ""), opts.get("cron", "")
    try:
        check_when(daily, cron)
    except ValueError:
        raise UsageError('请写一个时间：daily=09:00（每天）或 cron="0 9 * * 1-5"（二选一）。') from None
    kind = KINDS.get(opts.get("kind", "light").lower())
    if kind is None:
        raise UsageError("kind 请写 light（轻互动）或 promotional（推广）。")
    text = (opts.get("text") or " ".join(ctx.args[1:])).strip()
    tips = opts.get("tips", "")
    if tips.lower() in ("1", "yes", "true", "是", "on"):
        tips = cfg.tips_file
    if tips:
        path = Path(tips)
        if path.is_absolute() or ".." in path.parts or path.parts[:1] != ("knowledge",):
            raise UsageError("贴士文件请放在 knowledge/ 目录下，例如 tips=knowledge/tips.txt。")
        try:
            if not read_tips(tips_path(ctx.services, tips)):
                raise UsageError(f"贴士文件 {tips} 里还没有内容。")
        except OSError:
            raise UsageError(f"找不到贴士文件 {tips}。") from None
    if not text and not tips:
        raise UsageError("请写上要发送的文字，或用 tips=1 发送每日贴士。")
    if len(text) > MAX_TEXT:
        raise UsageError(f"文字太长了，请控制在 {MAX_TEXT} 字以内。")
    try:
        check_template(text)
    except ValueError:
        raise UsageError("文字里的 {...} 只能是 {date}、{weekday}、{tip}。") from None
    item = ScheduleItem(daily=daily, cron=cron, targets=_targets(ctx, opts.get("target")), text=text, tips=tips,
                        kind=kind)
    key = _key(name) if ctx.is_global_admin else _room_key(ctx.room_id, name)
    try:
        next_run = await ctx.services.scheduler.schedule(
            key, HANDLER, daily=daily or None, cron=cron or None, misfire_grace_s=cfg.grace_s,
            payload=_payload(name, item, "chat", ctx.sender.id), session=ctx.session)
    except ScheduleError:
        raise UsageError("时间格式不对：daily=09:00 或 cron=\"0 9 * * *\"。") from None
    ctx.reply(f"已添加定时消息「{name}」：{_describe(ctx.services, item)}，下次发送 {_when(ctx.services, next_run)}。")


def _when(services: Services, at: datetime | None) -> str:
    if at is None:
        return "—"
    t = services.clock.local(at)
    return zh_datetime(t)


def _describe(services: Services, item: ScheduleItem) -> str:
    when = f"每天 {item.daily}" if item.daily else f"cron {item.cron}"
    who = "、".join("全部群" if t == "all" else t for t in item.targets)
    what = "每日贴士" if item.tips else f"「{item.text[:20]}{'…' if len(item.text) > 20 else ''}」"
    return f"{when} · {who} · {KIND_ZH.get(item.kind, item.kind)} · {what}"


STATUS_ZH = {"active": "运行中", "paused": "已暂停"}


@skill.command("schedule list", aliases=("定时 列表", "定时", "schedule"), usage="/schedule list",
               help="查看定时消息", scope="room")
async def list_(ctx: Context) -> None:
    jobs = await ctx.services.scheduler.jobs(HANDLER, ctx.session, ("active", "paused"))
    if not ctx.is_global_admin:  # a room's admin: the schedules of this room only
        jobs = [j for j in jobs if _only_room(j.payload, ctx.room_id)]
    tasks = await _group_send_lines(ctx)
    if not jobs:
        ctx.reply("\n".join([("还没有定时消息。" if ctx.is_global_admin else "本群还没有定时消息。") + "用法："
                             + ADD_USAGE, *tasks]))
        return
    lines = ["定时消息："]
    for job in jobs:
        p = job.payload or {}
        item = ScheduleItem(daily=job.spec if job.schedule == "daily" else "",
                            cron=job.spec if job.schedule == "cron" else "", targets=tuple(p.get("targets", ())),
                            text=p.get("text", ""), tips=p.get("tips", ""), kind=p.get("kind", "light"))
        source = "（配置）" if p.get("source") == "config" else "（群管理员添加）" if job.key.startswith(
            "schedule:room:") else ""
        nxt = f" · 下次 {_when(ctx.services, job.next_run_at)}" if job.status == "active" else ""
        lines.append(f"· {p.get('name', job.key)}{source}：{_describe(ctx.services, item)} · "
                     f"{STATUS_ZH.get(job.status, job.status)}{nxt}")
    ctx.reply("\n".join(lines + tasks))


async def _group_send_lines(ctx: Context) -> list[str]:
    """WeCom: group messages (and campaigns to customers outside the 微信客服 window) are tasks staff confirm; a
    global admin sees them per owner: 群主 for group tasks, 员工 for 1-on-1 tasks (a staff member, not a 群主)."""
    if not (ctx.config.wecom.enabled and ctx.is_global_admin):
        return []
    lines = []
    for (owner, chat_type), counts in (await wecom_store.group_send_counts(ctx.session)).items():
        who = "群主" if chat_type == "group" else "员工"
        lines.append(f"· 企业群发（{who} {owner}）：等待确认 {counts.get('waiting', 0)}，已发送 "
                     f"{counts.get('sent', 0)}，失败 {counts.get('failed', 0)}"
                     + (f"，已过期（员工未确认） {counts['expired']}" if counts.get("expired") else "")
                     + (f"，不确定是否已创建 {counts['uncertain']}（不会自动重建，请员工在企业微信里查看）"
                        if counts.get("uncertain") else ""))
    return lines


async def _find(ctx: Context, name: str):  # -> ScheduledJob | None
    """The schedule ``name`` means here: a global admin's first, then this room's admins' (a global admin sees
    both; a room's admin only what sends to this room alone)."""
    keys = [_key(name)] + ([_room_key(ctx.room_id, name)] if ctx.room_id is not None else [])
    if not ctx.is_global_admin:
        keys.reverse()
    outside = None
    for key in keys:
        job = await ctx.services.scheduler.get(key, ctx.session)
        if job is None or job.handler != HANDLER or job.status not in ("active", "paused"):
            continue
        if ctx.is_global_admin or _only_room(job.payload, ctx.room_id):
            return job
        outside = job
    if outside is not None:
        raise UsageError(f"「{name}」会发到其他群，只有总管理员可以修改。")
    return None


async def _change(ctx: Context, action: str) -> None:
    name = _name_arg(ctx)
    scheduler = ctx.services.scheduler
    if action == "remove" and name in _settings(ctx.services).items:
        raise UsageError(f"「{name}」来自配置文件，请在 config.toml 里删除（或用 /schedule pause 暂停）。")
    job = await _find(ctx, name)
    if job is None:
        raise UsageError(f"没有名为「{name}」的定时消息，发送 /schedule list 查看全部。")
    key = job.key
    if action == "remove":
        await scheduler.cancel_many([key], ctx.session)
        ctx.reply(f"已删除定时消息「{name}」。")
    elif action == "pause":
        if not await scheduler.pause(key, session=ctx.session):
            ctx.reply(f"「{name}」已经是暂停状态。")
            return
        ctx.reply(f"已暂停定时消息「{name}」，用 /schedule resume {name} 恢复。")
    else:
        if not await scheduler.resume(key, session=ctx.session):
            ctx.reply(f"「{name}」没有暂停，正在运行中。")
            return
        job = await scheduler.get(key, ctx.session)
        ctx.reply(f"已恢复定时消息「{name}」，下次发送 {_when(ctx.services, job.next_run_at if job else None)}。")


@skill.command("schedule remove", aliases=("定时 删除", "schedule delete"), usage="/schedule remove 名称",
               help="删除定时消息", scope="room")
async def remove(ctx: Context) -> None:
    await _change(ctx, "remove")


@skill.command("schedule pause", aliases=("定时 暂停",), usage="/schedule pause 名称", help="暂停定时消息",
               scope="room")
async def pause(ctx: Context) -> None:
    await _change(ctx, "pause")


@skill.command("schedule resume", aliases=("定时 恢复",), usage="/schedule resume 名称", help="恢复定时消息",
               scope="room")
async def resume(ctx: Context) -> None:
    await _change(ctx, "resume")
