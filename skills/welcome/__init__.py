"""Welcome newcomers (入群欢迎): one friendly, @-mentioning message per wave of joins.

- Joins within ``window_s`` (60 s) are coalesced: a mass add of 40 people gets one welcome, not 40.
- Never the bot itself; never twice within ``rejoin_quiet_h`` (24 h) for a member who left and came back.
- The text comes from a template, per room if the room has its own: what the group is for, its rules, its perks,
  who the admin is, an invitation to introduce yourself. Placeholders: {names} {count} {topic} {rules} {howto}.
- Optional (off by default): a 1-on-1 follow-up to each newcomer (proactive: it counts against the member's daily
  DM cap and waits out quiet hours), and referral points to the inviter once the invitee has stayed
  ``referral_days`` (none if the invitee left before).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import timedelta

from bot.context import Context, with_mentions
from bot.events import MembersJoined, MembersLeft, OutgoingMessage, Person, Priority, ProactiveKind
from bot.skill import Skill
from skills.welcome import store
from storage.points import AlreadyRecorded, change_points

log = logging.getLogger(__name__)


DEFAULT_TEMPLATE = (
    "欢迎新朋友加入「{topic}」🎉\n"
    "{rules}\n"
    "{howto}\n"
    "先来做个简单的自我介绍吧～"
)
PLACEHOLDERS = {"names": "小李、小王", "count": 2, "topic": "会员福利群", "rules": "群规", "howto": "用法"}


@dataclass(frozen=True)
class RoomWelcome:
    """A room's own wording; empty fields fall back to the defaults."""

    template: str = ""
    rules: str = ""
    howto: str = ""


@dataclass(frozen=True)
class WelcomeSettings:
    window_s: float = 60.0
    rejoin_quiet_h: float = 24.0
    template: str = DEFAULT_TEMPLATE
    rules: str = "群规：友善交流，不发广告和链接，有问题随时 @小助手 或管理员。"
    howto: str = "发送「签到」每天领积分，发送 /help 看看我还能做什么。"
    rooms: dict[str, RoomWelcome] = field(default_factory=dict)
    dm_followup: bool = False
    dm_text: str = "你好，欢迎加入「{topic}」！有任何问题都可以直接在这里问我～"
    referral_points: int = 0  # 0: off
    referral_days: int = 3

    def __post_init__(self) -> None:
        texts = [("template", self.template), ("dm_text", self.dm_text)] + [
            (f'rooms."{room}".template', r.template) for room, r in self.rooms.items() if r.template]
        for where, text in texts:
            try:
                text.format(**PLACEHOLDERS)
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{where}: bad placeholder {exc} (use {{names}} {{count}} {{topic}} {{rules}} "
                                 "{howto})") from None


skill: Skill[WelcomeSettings, None] = Skill("welcome", "入群欢迎", settings=WelcomeSettings)
settings = skill.settings_of


def render(cfg: WelcomeSettings, room_id: str, topic: str, people: list[Person]) -> OutgoingMessage:
    own = cfg.rooms.get(room_id, RoomWelcome())
    body = (own.template or cfg.template).format(
        names="、".join(p.name or p.id for p in people),
        count=len(people),
        topic=topic or "本群",
        rules=own.rules or cfg.rules,
        howto=own.howto or cfg.howto,
    )
    return OutgoingMessage(with_mentions(people, body), room_id=room_id, mentions=tuple(p.id for p in people))


@skill.on_join()
async def welcome(ctx: Context) -> None:
    event = ctx.event
    assert isinstance(event, MembersJoined)
    cfg = settings(ctx.services)
    bot_id = ctx.services.bot_id
    newcomers = [p for p in event.members if p.id != bot_id]
    if not newcomers:
        return
    quiet_since = event.at - timedelta(hours=cfg.rejoin_quiet_h)
    seen = await store.last_welcomes(ctx.session, event.room_id, [p.id for p in newcomers])
    fresh = []
    for person in newcomers:
        last = seen.get(person.id)
        if last is not None and last.welcomed_at > quiet_since:
            continue  # back within a day: no second welcome
        store.note_welcome(ctx.session, event.room_id, person.id, event.at, last)
        fresh.append(person)
    for person in fresh:
        ctx.coalesce(f"welcome:{event.room_id}", (person, event.room_topic or ""),
                     lambda items, room=event.room_id: _render_wave(cfg, room, items), window_s=cfg.window_s)
        if cfg.dm_followup:
            ctx.send(OutgoingMessage(cfg.dm_text.format(**{**PLACEHOLDERS, "topic": event.room_topic or "本群",
                                                            "names": person.name or person.id, "count": 1}),
                                     user_id=person.id),
                     priority=Priority.SCHEDULED, kind=ProactiveKind.LIGHT)
        if cfg.referral_points and event.inviter_id and event.inviter_id != person.id:
            await ctx.services.scheduler.schedule(
                _referral_key(event.room_id, person.id), "welcome.referral",
                at=event.at + timedelta(days=cfg.referral_days),
                payload={"room": event.room_id, "invitee": person.id, "inviter": event.inviter_id,
                         "joined_at": event.at.isoformat()},
                misfire_grace_s=7 * 86400, session=ctx.session)


def _render_wave(cfg: WelcomeSettings, room_id: str, items: list[tuple[Person, str]]) -> OutgoingMessage:
    people: dict[str, Person] = {}
    for person, _ in items:
        people[person.id] = person  # one joined twice within the window: welcomed once
    topic = next((t for _, t in reversed(items) if t), "")
    return render(cfg, room_id, topic, list(people.values()))


def _referral_key(room_id: str, invitee: str) -> str:
    key = f"referral:{room_id}:{invitee}"
    # two ids of up to 128 characters each: a key past the 200 of scheduled_jobs.key and points_ledger.ref_id is
    # hashed (stable, so the leave hook still finds the job to cancel)
    return key if len(key) <= 200 else "referral:" + hashlib.sha256(key.encode()).hexdigest()


@skill.on_leave()
async def left(ctx: Context) -> None:
    """An invitee who leaves before the referral is due earns the inviter nothing."""
    event = ctx.event
    assert isinstance(event, MembersLeft)
    if not settings(ctx.services).referral_points:
        return
    for member_id in event.member_ids:
        await ctx.services.scheduler.cancel(_referral_key(event.room_id, member_id), session=ctx.session)


@skill.job("referral")
async def referral(ctx: Context) -> None:
    cfg = settings(ctx.services)
    p = ctx.payload
    # still in the room? (the activity store's directory; a leave also cancels this job, this is the backstop)
    if await store.left_room(ctx.session, p["room"], p["invitee"]):
        log.info("referral for %s in %s: invitee left, no points", p["invitee"], p["room"])
        return
    try:
        await change_points(ctx.session, p["inviter"], cfg.referral_points, reason="邀请好友入群",
                            source="referral", ref_id=_referral_key(p["room"], p["invitee"]), at=ctx.now)
    except AlreadyRecorded:
        return
    ctx.services.activity.record("referral", room_id=p["room"], member_id=p["inviter"], skill=skill.name,
                                 detail={"invitee": p["invitee"], "points": cfg.referral_points})
    ctx.send(OutgoingMessage(f"感谢你邀请好友入群，已为你加上 {cfg.referral_points} 积分～", user_id=p["inviter"]),
             priority=Priority.TRANSACTIONAL, kind=ProactiveKind.TRANSACTIONAL)


from skills.welcome import privacy  # noqa: E402  (what the skill keeps about a member: /我的数据, /删除我的数据)

skill.member_data(privacy)
