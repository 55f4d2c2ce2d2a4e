"""Members' own data (个人信息保护法, PIPL), built into every bot like opt-out: ``/我的数据`` shows a member what the
bot keeps about them; ``/删除我的数据``, confirmed with 「确认删除」 within five minutes, erases it. 1-on-1 only.

The core's tables are handled here through storage functions (storage/members.py: the directory and the activity
log; storage/points.py: the ledger; storage/jobs.py: scheduled jobs naming the member); each skill says what it
keeps with ``@skill.member_data`` (bot/skill.py), and its ``export``/``erase`` run here. Erasure deletes, or where
bookkeeping must keep a row (points ledger, orders, redemptions, activity counts) puts a random pseudonym
``erased:<16 hex>`` (one per erasure) in the member's place: every balance still equals its ledger. What stays as it was: the
opt-out (it keeps the member from being messaged again), and the entries of lotteries already drawn (the public draw
is recomputed from them; only the name goes). The erasure is recorded as an activity row of kind ``erasure`` (counts,
under the pseudonym) and an operator log line with counts only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from bot.context import Context
from bot.events import MessageReceived
from bot.skill import Skill
from storage import identity, jobs, members, points, wecom

log = logging.getLogger(__name__)

CONFIRM = "确认删除"
CONFIRM_WINDOW = timedelta(minutes=5)
# how long the erasing member's new activity rows still go under the pseudonym if the reply never goes out
FORGET_AT_MOST = timedelta(minutes=10)
KIND_ZH = {"message": "发言", "command": "命令", "checkin": "签到", "redeem": "兑换", "faq_answer": "问答（答上）",
           "faq_miss": "问答（未答上）", "join": "入群", "leave": "退群", "sent": "收到的私信", "opt_out": "退订设置",
           "order": "订单状态", "reminder": "订单提醒", "refused": "被拒绝的命令", "referral": "邀请奖励",
           "lottery_refused": "抽奖未能参与", "welcome_back": "回归欢迎", "points_admin": "管理员积分调整",
           "export": "导出"}
MAX_LISTED = 5


@dataclass
class PrivacyState:
    pending: dict[str, datetime] = field(default_factory=dict)  # member id → until when 「确认删除」 erases


skill: Skill[None, PrivacyState] = Skill("privacy", "我的数据", state=PrivacyState)


IDENTITY_ZH = {"wechat": "微信号", "external_userid": "企业微信客户", "unionid": "微信开放平台", "shop": "商城会员"}


def _day(ctx: Context, at: datetime | None) -> str:
    if at is None:
        return "—"
    t = ctx.services.clock.local(at)
    return f"{t.year}年{t.month}月{t.day}日"


def _listed(items: list[str]) -> str:
    shown = "、".join(items[:MAX_LISTED])
    return shown + (f" 等 {len(items)} 个" if len(items) > MAX_LISTED else "")


@skill.command("mydata", aliases=("我的数据",), where="direct", usage="/我的数据",
               help="查看我保存了你的哪些数据（个人信息查询）")
async def my_data(ctx: Context) -> None:
    member_id = ctx.sender.id
    # before this handler's session: the opt-outs are read (once) in a session of their own
    opted_out = await ctx.services.governor.opted_out(member_id)
    await ctx.services.activity.flush()  # what waits in the write buffer is kept too: count it
    session = ctx.session
    record = await members.member_record(session, member_id)
    ledger = await points.ledger_summary(session, member_id)
    lines = [f"我保存的你的数据（截至 {_day(ctx, ctx.now)}）："]
    names = record.names or ([record.name] if record.name else [])
    lines.append(f"· 账号：{member_id}；昵称：{_listed(names) or '—'}")
    lines.append(f"· 首次出现 {_day(ctx, record.first_seen)}，最近出现 {_day(ctx, record.last_seen)}")
    if record.rooms:
        rooms = [topic + ("（已退出）" if not active else "") for topic, active in record.rooms]
        lines.append(f"· 所在群 {len(rooms)} 个：{_listed(rooms)}")
    if ledger.rows:
        last = ledger.recent[0]
        lines.append(f"· 积分：余额 {ledger.balance}，流水 {ledger.rows} 笔（获得 {ledger.earned}，使用 "
                     f"{ledger.spent}）；最近一笔 {_day(ctx, last[0])} {last[1]:+d}（{last[2]}）")
    if record.activity:
        kinds = sorted(record.activity.items(), key=lambda kv: -kv[1])
        counts = "、".join(f"{KIND_ZH.get(k, k)} {n}" for k, n in kinds[:8])
        lines.append(f"· 互动记录 {sum(record.activity.values())} 条：{counts}")
    linked = await identity.of_member(session, member_id)
    if linked:
        kinds = sorted({IDENTITY_ZH.get(kind, kind) for kind, _ in linked})
        lines.append(f"· 关联账号 {len(linked)} 个：{'、'.join(kinds)}（同一个人的积分和等级合在一起）")
    lines.append("· 退订：已退订通知和活动私信" if opted_out else "· 退订：未退订（发送 TD 可退订）")
    for spec in ctx.services.member_data:
        for label, value in (await spec.export(session, member_id)).items():
            lines.append(f"· {label}：{value}")
    lines.append("如需删除这些数据，请发送 /删除我的数据。")
    ctx.reply("\n".join(lines))


@skill.command("deletemydata", aliases=("删除我的数据",), where="direct", usage="/删除我的数据",
               help="删除我保存的你的数据（需要确认）")
async def delete_my_data(ctx: Context) -> None:
    skill.state_of(ctx).pending[ctx.sender.id] = ctx.now + CONFIRM_WINDOW
    ctx.reply("确定要删除我保存的你的数据吗？包括昵称、所在群、互动记录、签到、抽奖、订单关联和分层等，"
              "积分会清零，删除后无法恢复。\n"
              "积分流水、订单和兑换记录因为记账需要会匿名保留（不再能对应到你）；退订设置（如有）会保留。\n"
              f"如确认删除，请在 5 分钟内回复「{CONFIRM}」。")


@skill.on_message(priority=10)
async def confirm(ctx: Context) -> None:
    """Runs for every message: a string comparison for all but a 1-on-1 「确认删除」."""
    event = ctx.event
    assert isinstance(event, MessageReceived)
    if event.room_id is not None or event.text.strip() != CONFIRM:
        return
    ctx.stop()
    ctx.addressed = True
    pending = skill.state_of(ctx).pending
    member_id = event.sender.id
    until = pending.pop(member_id, None)
    if until is None or ctx.now > until:
        ctx.reply("现在没有等待确认的删除请求（确认需要在 5 分钟内）。如需删除你的数据，请先发送 /删除我的数据。")
        return
    await erase(ctx, member_id)


async def erase(ctx: Context, member_id: str) -> None:
    stand_in = members.pseudonym()
    opted_out = await ctx.services.governor.opted_out(member_id)  # kept; read before this handler's session
    activity = ctx.services.activity
    await activity.flush()  # then everything about the member is in the database, and erased there
    activity.forget(member_id, stand_in, until=ctx.now + FORGET_AT_MOST)
    session = ctx.session
    counts: dict[str, int] = {}
    try:
        # the skills first: they may look their rows up through the core's (an order's jobs, a member's rooms)
        for spec in ctx.services.member_data:
            counts[spec.skill] = await spec.erase(session, member_id, stand_in)
        counts["points"] = await points.pseudonymise(session, member_id, stand_in)
        counts["jobs"] = await jobs.pseudonymise(session, member_id, stand_in)
        counts["core"] = await members.erase_member(session, member_id, stand_in)
        counts["identity"] = await wecom.erase_member(session, member_id) + await identity.erase(session, member_id)
    except Exception:  # rolled back by the dispatcher: nothing was erased, and the member is told so
        activity.remember(member_id)
        ctx.reply("抱歉，删除时出了点问题，你的数据没有改动。请稍后重新发送 /删除我的数据。")
        raise
    total = sum(counts.values())
    ctx.record("erasure", {"rows": total, "by": counts}, member_id=stand_in)
    # counts only: the operator learns that an erasure happened, not whose
    log.info("member data erased on the member's request: %d rows (%s)", total,
             ", ".join(f"{k} {n}" for k, n in counts.items()))
    text = (f"已删除你的数据（共处理 {total} 条记录）。积分流水、订单和兑换记录已匿名保留，不再对应到你。"
            + ("你的退订设置保留着，不会再收到通知和活动私信。" if opted_out else "")
            + "之后如果你再和我互动，我会把你当作新朋友重新记录。")

    def reply() -> None:
        sent = ctx.reply(text)
        sent.add_done_callback(lambda _: activity.remember(member_id))

    ctx.after_commit(reply)
