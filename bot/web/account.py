"""The dashboard's account page (账号状态, ``/dashboard/account``): whether the WeChat account can send and what the
send governor is doing about it. A core page: it is about the transport, not a skill.

Online or not and since when, the last event from the platform (bot/health.py); sends in the last hour, back-offs
(the last day's count, the current one) and drops by reason (the governor records every drop as a ``send_dropped``
activity row with its reason; risk control as ``send_failed``); the messages held in the outbox, by why they wait
now; the transport's name and capabilities. The database figures are read off the loop (storage/reads.run_read).

Why a held message waits is not stored with its row (the governor decides again at each try): it is worked out
here from the state now, first match wins — the account offline, its credentials refused, a risk-control back-off,
quiet hours (proactive messages), the room's minimum gap (proactive room messages), else in the queue.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from bot.capabilities import LABELS
from bot.governor import in_quiet_hours
from storage import stats

if TYPE_CHECKING:
    from bot.context import Services
    from bot.health import SessionHealth

HELD_REASONS = {"offline": "账号离线", "refused": "凭据被拒", "backoff": "风控退避", "quiet_hours": "免打扰时段",
                "room_gap": "群消息间隔", "sending": "正在发送", "waiting": "排队等待"}
DROP_REASONS = {"stale": "过期未发", "quiet_hours": "免打扰时段", "opted_out": "对方已退订", "uncertain": "不确定是否送达",
                "transport_error": "发送失败（重试用尽）", "cap_error": "上限检查失败", "outbox_error": "暂存失败"}
TRANSPORTS = {"bridge": "桥接（HTTP 提供方）", "wechaty": "Wechaty 网关（gRPC）", "console": "控制台",
              "replay": "回放", "wecom": "企业微信（官方接口）"}


@dataclass
class AccountStatus:
    state: str  # online | offline | refused | unknown
    since: datetime | None
    reason: str
    last_event_at: datetime | None
    transport: str
    can: list[str]
    cannot: list[str]
    sent_last_hour: int
    backoffs: int
    backoff_level: int
    backoff_until: datetime | None
    held: dict[str, int] = field(default_factory=dict)  # label -> count
    held_total: int = 0
    held_capped: bool = False
    dropped: dict[str, int] = field(default_factory=dict)  # label -> count, the last day


def drop_label(reason: str) -> str:
    if reason.startswith("cap:"):
        return f"超每日上限（{reason[4:]}）"
    return DROP_REASONS.get(reason, reason)


async def account_status(services: Services, health: SessionHealth | None) -> AccountStatus:
    now = services.clock.now()
    governor = services.governor
    shared = services.config.storage.shared
    async with services.sessions() as s:
        figures = await stats.send_figures(s, now, services.bot_id if shared else None)
    level, backoff_until = governor.backoff
    offline = governor.offline or (health is not None and health.offline)
    refused = governor.halted or (health is not None and health.refused)
    if health is None:
        state, since, reason = "unknown", None, ""
    elif refused:
        incident = health.refused_incident
        state, since, reason = "refused", incident.since if incident else None, incident.reason if incident else ""
    elif health.offline_incident is not None:
        incident = health.offline_incident
        state, since, reason = "offline", incident.since, incident.reason
    else:
        state, since, reason = ("online", health.online_since, "") if health.online_since else ("unknown", None, "")
    g = services.config.governor
    quiet = in_quiet_hours(services.clock.local(now).time(), g.quiet_hours.start, g.quiet_hours.end)
    held: dict[str, int] = {}
    for row in figures.held:
        why = _held_reason(row, now, offline=offline, refused=refused, backoff=backoff_until is not None,
                           quiet=quiet, gap_s=g.room_min_gap_s, room_last=figures.room_last)
        held[HELD_REASONS[why]] = held.get(HELD_REASONS[why], 0) + 1
    caps = services.capabilities
    dropped: dict[str, int] = {}
    for reason_key, n in sorted(figures.dropped.items(), key=lambda kv: -kv[1]):
        label = drop_label(reason_key)
        dropped[label] = dropped.get(label, 0) + n
    return AccountStatus(
        state=state, since=since, reason=reason, last_event_at=health.last_event_at if health else None,
        transport=TRANSPORTS.get(services.transport_name, services.transport_name or "未知"),
        can=[LABELS[n] for n in caps.names()], cannot=[LABELS[n] for n in caps.missing()],
        sent_last_hour=figures.sent_last_hour, backoffs=figures.backoffs, backoff_level=level,
        backoff_until=backoff_until, held=held, held_total=len(figures.held),
        held_capped=len(figures.held) >= stats.MAX_HELD_ROWS, dropped=dropped)


def _held_reason(row: stats.HeldRow, now: datetime, *, offline: bool, refused: bool, backoff: bool, quiet: bool,
                 gap_s: float, room_last: dict[str, datetime]) -> str:
    if row.status == "sending":
        return "sending"
    if refused:
        return "refused"
    if offline:
        return "offline"
    if backoff:
        return "backoff"
    if row.kind is not None and quiet:
        return "quiet_hours"
    if row.kind is not None and row.room_id is not None and gap_s:
        last = room_last.get(f"room:{row.room_id}")
        if last is not None and now < last + timedelta(seconds=gap_s):
            return "room_gap"
    return "waiting"
