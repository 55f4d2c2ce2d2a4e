"""The operators' dashboard under /dashboard: read-only pages behind a token login, charts as server-side SVG.

``setup(app, services)`` adds the routes to the bot's aiohttp application (bot/web/server.py mounts it, on
``[http] host``/``port``).

- Login: the token comes from the environment variable named by ``dashboard.token_env`` (unset: the dashboard
  answers 503 to everything). ``POST /dashboard/login`` with the right token sets an HttpOnly session cookie (an
  HMAC of the token, so changing the token logs everyone out); ``Authorization: Bearer <token>`` works too. A
  wrong or missing token gets 401 and the login form, never data.
- Pages: overview, rooms, members (search, tier, history), knowledge misses, scheduled messages, lotteries. Only
  GET pages plus login/logout: nothing here changes the bot's data.
- No member data in logs: search strings and member ids in /dashboard URLs are redacted from aiohttp's access log,
  and this module logs nothing about members.
"""

from __future__ import annotations

import hmac
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime
from html import escape
from urllib.parse import quote, urlencode

from aiohttp import web

from bot.context import Services
from bot.web import auth, svg
from storage import stats
from skills.tiers.store import TIER_NAMES, TIERS, last_run

log = logging.getLogger(__name__)

BASE = "/dashboard"
COOKIE = auth.DASHBOARD_COOKIE
MAX_PAGE_PARAM = 12  # digits: anything longer is not a page number anyone typed on purpose
SERVICES = web.AppKey("dashboard_services", Services)
FUNNEL_LABELS = {"joined": "入群", "spoke": "发过言", "checked_in": "签到过", "ordered": "下过单",
                 "ordered_again": "复购"}

Handler = Callable[[web.Request], Awaitable[web.Response]]


def setup(app: web.Application, services: Services, skills=()) -> None:
    app[SERVICES] = services
    app.router.add_get(BASE, _page(overview))
    app.router.add_get(BASE + "/", _page(overview))
    app.router.add_get(BASE + "/rooms", _page(rooms))
    app.router.add_get(BASE + "/members", _page(members))
    app.router.add_get(BASE + "/members/{member_id}", _page(member))
    app.router.add_get(BASE + "/misses", _page(misses))
    app.router.add_get(BASE + "/jobs", _page(jobs))
    app.router.add_get(BASE + "/lotteries", _page(lotteries))
    app.router.add_get(BASE + "/login", login_form)
    app.router.add_post(BASE + "/login", login)
    app.router.add_post(BASE + "/logout", logout)
    _redact_access_log()


# -- authentication -----------------------------------------------------------------------------------------------------

def _token(request: web.Request) -> str | None:
    return auth.dashboard_token(request.app[SERVICES])


def _page(handler: Callable[[web.Request, Services], Awaitable[str]]) -> Handler:
    """Every page: the token first (401 and the login form without it), then the page, sent uncached."""

    async def guarded(request: web.Request) -> web.Response:
        token = _token(request)
        if token is None:
            return _disabled(request)
        if not auth.dashboard_authorized(request, request.app[SERVICES]):
            return _login_page(request, status=401, note="请先输入访问令牌登录。")
        body = await handler(request, request.app[SERVICES])
        return _html(body, title=_TITLES.get(handler.__name__, "数据看板"), active=handler.__name__)

    guarded.__name__ = handler.__name__
    return guarded


def _disabled(request: web.Request) -> web.Response:
    var = request.app[SERVICES].config.dashboard.token_env
    return _html(f"<p>看板未开启：请在环境变量 {escape(var)} 中设置访问令牌后重启。</p>", title="看板未开启",
                 status=503, nav=False)


async def login_form(request: web.Request) -> web.Response:
    if _token(request) is None:
        return _disabled(request)
    return _login_page(request)


async def login(request: web.Request) -> web.Response:
    token = _token(request)
    if token is None:
        return _disabled(request)
    form = await request.post()
    given = str(form.get("token", ""))[:512]
    if not hmac.compare_digest(given.encode(), token.encode()):
        return _login_page(request, status=401, note="令牌不对，请重试。")
    response = web.HTTPSeeOther(BASE)
    response.set_cookie(COOKIE, auth.dashboard_session_value(token), path=BASE, httponly=True, samesite="Strict",
                        secure=request.secure)
    raise response


async def logout(request: web.Request) -> web.Response:
    response = web.HTTPSeeOther(BASE + "/login")
    response.del_cookie(COOKIE, path=BASE)
    raise response


def _login_page(request: web.Request, status: int = 200, note: str = "") -> web.Response:
    body = (f'<form method="post" action="{BASE}/login" class="login"><h1>运营数据看板</h1>'
            + (f'<p class="note">{escape(note)}</p>' if note else "")
            + '<label>访问令牌 <input type="password" name="token" autocomplete="current-password" autofocus></label>'
            '<button type="submit">登录</button></form>')
    return _html(body, title="登录", status=status, nav=False)


# -- layout -----------------------------------------------------------------------------------------------------------

_TITLES = {"overview": "概览", "rooms": "群", "members": "成员", "member": "成员", "misses": "知识库未命中",
           "jobs": "定时消息", "lotteries": "抽奖"}
_NAV = (("overview", "", "概览"), ("rooms", "/rooms", "群"), ("members", "/members", "成员"),
        ("misses", "/misses", "未命中问题"), ("jobs", "/jobs", "定时消息"), ("lotteries", "/lotteries", "抽奖"))
_CSS = """
body{font-family:system-ui,"PingFang SC","Noto Sans CJK SC",sans-serif;margin:0;color:#222;background:#f6f7f9}
nav{background:#1d3557;padding:0 16px;display:flex;gap:4px;align-items:center}
nav a{color:#dfe7f3;text-decoration:none;padding:12px 10px}nav a.on{color:#fff;border-bottom:3px solid #e9c46a}
nav form{margin-left:auto}nav button{background:none;border:1px solid #dfe7f3;color:#dfe7f3;border-radius:4px}
main{padding:16px 24px;max-width:1200px}h1{font-size:22px}h2{font-size:17px;margin-top:24px}
.cards{display:flex;gap:12px;flex-wrap:wrap}.card{background:#fff;border-radius:8px;padding:12px 16px;min-width:120px;
box-shadow:0 1px 2px #0001}.card b{display:block;font-size:24px}.card span{color:#666;font-size:13px}
.grid2{display:grid;grid-template-columns:repeat(auto-fit,minmax(480px,1fr));gap:16px}
.panel{background:#fff;border-radius:8px;padding:8px 12px;box-shadow:0 1px 2px #0001}
svg.chart{width:100%;height:auto}.grid{stroke:#eee}.axis{font-size:10px;fill:#777}.label{font-size:12px;fill:#333}
table{border-collapse:collapse;background:#fff;width:100%}th,td{padding:6px 8px;border-bottom:1px solid #eee;
text-align:left;font-size:14px}th{background:#eef1f5}.legend span{margin-right:12px;font-size:13px}
.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}.note{color:#a4161a}.muted{color:#777}
.login{max-width:360px;margin:80px auto;background:#fff;padding:24px;border-radius:8px}
.login input{width:100%;margin:8px 0 16px;padding:8px}.pager a,.pager span{margin-right:10px}
"""


def _html(body: str, *, title: str, status: int = 200, nav: bool = True, active: str = "") -> web.Response:
    links = "".join(f'<a href="{BASE}{path}" class="{"on" if key == active else ""}">{label}</a>'
                    for key, path, label in _NAV)
    bar = (f'<nav>{links}<form method="post" action="{BASE}/logout"><button type="submit">退出</button></form></nav>'
           if nav else "")
    page = (f'<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>{escape(title)} · 运营数据看板'
            f'</title><meta name="viewport" content="width=device-width,initial-scale=1"><style>{_CSS}</style>'
            f'</head><body>{bar}<main>{body}</main></body></html>')
    return web.Response(text=page, content_type="text/html", status=status, headers={
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                   "form-action 'self'; frame-ancestors 'none'"})


def _local(services: Services, when: datetime | None) -> str:
    if when is None:
        return "—"
    return services.clock.local(when).strftime("%Y-%m-%d %H:%M")


def _table(headers: tuple[str, ...], rows: list[tuple], empty: str = "暂无记录") -> str:
    if not rows:
        return f'<p class="muted">{escape(empty)}</p>'
    head = "".join(f"<th>{escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c if isinstance(c, _Raw) else escape(str(c))}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


class _Raw(str):
    """Already-escaped HTML for a table cell."""


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


def _window_days(services: Services) -> int:
    runtime = services.skills.get("tiers")
    return getattr(runtime.settings if runtime else None, "window_days", 90)


# -- pages --------------------------------------------------------------------------------------------------------------

async def overview(request: web.Request, services: Services) -> str:
    cfg = services.config.dashboard
    now = services.clock.now()
    async with services.sessions() as s:
        ov = await stats.overview(s, now, services.config.tz, cfg.chart_days, _window_days(services))
        run = await last_run(s)
    today = ov.days[-1]
    asked7 = sum(d.faq_answered + d.faq_missed for d in ov.days[-7:])
    hit7 = sum(d.faq_answered for d in ov.days[-7:])
    cards = (("成员", ov.members), ("今日活跃", today.active), ("今日消息", today.messages),
             ("今日签到", today.checkins), ("近 7 天问答命中率", _pct(hit7, asked7)),
             ("核心成员", ov.tier_counts.get("core", 0)))
    days = ov.days
    charts = [
        ("每日活跃成员", svg.line_chart("chart-active", "每日活跃成员", [(d.day, d.active) for d in days])),
        ("每日消息数", svg.bar_chart("chart-messages", "每日消息数", [(d.day, d.messages) for d in days])),
        ("每日签到", svg.bar_chart("chart-checkins", "每日签到", [(d.day, d.checkins) for d in days], "#e9c46a")),
        ("问答命中率", svg.line_chart("chart-faq", "问答命中率", [
            (d.day, round(100 * d.faq_hit_rate, 1) if d.faq_hit_rate is not None else None) for d in days],
            "#b5179e", "%", 100)),
        ("成员分层变化", svg.stacked_bars("chart-tiers", "成员分层变化", ov.tiers_by_day, TIERS, TIER_NAMES)),
        (f"转化漏斗（近 {_window_days(services)} 天入群的成员）", svg.funnel("chart-funnel", "转化漏斗", [
            (k, FUNNEL_LABELS[k], n) for k, n in ov.funnel])),
    ]
    note = (f"分层上次计算：{_local(services, run.at)}（{run.members} 人，用时 {run.duration_ms} ms）" if run
            else "分层尚未计算（每晚自动计算）")
    return ("<h1>概览</h1><div class=\"cards\">"
            + "".join(f'<div class="card" data-card="{escape(k)}"><b>{escape(str(v))}</b><span>{escape(k)}</span></div>'
                      for k, v in cards)
            + f'</div><p class="muted">{escape(note)}；今天的数字是实时的，之前每天的数字来自每晚的汇总。</p>'
            + '<div class="grid2">'
            + "".join(f'<section class="panel"><h2>{escape(t)}</h2>{c}</section>' for t, c in charts)
            + "</div>")


async def rooms(request: web.Request, services: Services) -> str:
    async with services.sessions() as s:
        rows = await stats.rooms_table(s, services.clock.now(), services.config.tz)
    return "<h1>群</h1>" + _table(
        ("群", "群 ID", "成员", "近 7 天单日最多活跃", "近 7 天消息", "近 7 天签到", "最近活动"),
        [(r.topic or "（未命名）", r.room_id, r.members, r.active_7d_peak, r.messages_7d, r.checkins_7d,
          _local(services, r.last_seen)) for r in rows], "还没有群的记录")


def _page_number(raw: str) -> int:
    """A page number as typed: not a number → 1; absurdly long → the last page (clamped by the query)."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        return 1
    return int(raw) if len(raw) <= MAX_PAGE_PARAM else 10**MAX_PAGE_PARAM


async def members(request: web.Request, services: Services) -> str:
    q = request.query.get("q", "")[:stats.MAX_QUERY]
    tier = request.query.get("tier", "")
    tier = tier if tier in TIERS else None
    page = _page_number(request.query.get("page", "1"))
    size = services.config.dashboard.page_size
    async with services.sessions() as s:
        rows, total, page = await stats.search_members(s, q, page, size, tier)
    options = "".join(f'<option value="{t}"{" selected" if t == tier else ""}>{TIER_NAMES[t]}</option>' for t in TIERS)
    form = (f'<form method="get" action="{BASE}/members"><input name="q" value="{escape(q)}" placeholder="昵称或 wxid">'
            f'<select name="tier"><option value="">全部分层</option>{options}</select>'
            '<button type="submit">搜索</button></form>')
    pages = max(1, -(-total // size))
    table = _table(("成员", "wxid", "分层", "R", "F", "M", "最近出现"), [
        (_Raw(f'<a href="{BASE}/members/{quote(r.member_id, safe="")}">{escape(r.name or r.member_id)}</a>'),
         r.member_id, TIER_NAMES.get(r.tier or "", "未分层"), r.r or "—", r.f or "—", r.m or "—",
         _local(services, r.last_seen)) for r in rows], "没有找到匹配的成员")

    def link(p: int, label: str) -> str:
        params = {"q": q, "page": p} | ({"tier": tier} if tier else {})
        return f'<a href="{BASE}/members?{escape(urlencode(params))}">{label}</a>'

    pager = (f'<p class="pager"><span>共 {total} 人，第 {page} / {pages} 页</span>'
             + (link(page - 1, "上一页") if page > 1 else "") + (link(page + 1, "下一页") if page < pages else "") + "</p>")
    return f"<h1>成员</h1>{form}{pager}{table}"


async def member(request: web.Request, services: Services) -> str:
    member_id = request.match_info["member_id"][:128]
    async with services.sessions() as s:
        card = await stats.member_card(s, member_id)
        if card is None:
            raise web.HTTPNotFound(text="没有这位成员", content_type="text/plain")
        history = await stats.member_history(s, member_id)
        names = await stats.member_names(s, member_id)
    t = card.tier
    facts = [("wxid", card.member_id), ("用过的昵称", "、".join(names) or "—"),
             ("分层", f"{TIER_NAMES.get(t.tier, t.tier)}（自 {_local(services, t.since)}）" if t else "未分层"),
             ("RFM", f"R{t.r} F{t.f} M{t.m}" if t else "—"),
             ("近 7 天活跃天数", t.active_days_7 if t else "—"), ("最近活跃日", (t.last_active_day if t else None) or "—"),
             ("首次出现", _local(services, card.first_seen)), ("最近出现", _local(services, card.last_seen)),
             ("积分", card.points), ("订单（累计）", f"{card.orders} 单，¥{card.amount:.2f}"), ("所在群", card.rooms)]
    return (f"<h1>{escape(card.name or card.member_id)}</h1>" + _table(("项目", "内容"), facts)
            + "<h2>分层变化</h2>" + _table(("时间", "从", "到"), [
                (_local(services, c.at), TIER_NAMES.get(c.from_tier or "", "—"), TIER_NAMES.get(c.to_tier, c.to_tier))
                for c in history], "还没有分层记录"))


async def misses(request: web.Request, services: Services) -> str:
    async with services.sessions() as s:
        rows = await stats.knowledge_misses(s, services.clock.now(), days=30)
    return ("<h1>知识库未命中的问题</h1><p class=\"muted\">近 30 天成员问了、知识库没答上的问题，按次数排列：补进知识库的候选。</p>"
            + _table(("问题", "次数", "最近一次", "原因"),
                     [(m.question, m.count, _local(services, m.last_at), m.reason or "—") for m in rows],
                     "近 30 天没有未命中的问题"))


async def jobs(request: web.Request, services: Services) -> str:
    async with services.sessions() as s:
        rows = await stats.jobs_table(s)
    return "<h1>定时消息与任务</h1>" + _table(
        ("任务", "处理", "计划", "下次运行", "上次运行", "状态", "已运行", "最近错误"),
        [(j.key, j.handler, f"{j.schedule} {j.spec}".strip(), _local(services, j.next_run_at),
          _local(services, j.last_run_at), j.status, j.run_count, (j.last_error or "")[:80]) for j in rows],
        "没有定时任务")


async def lotteries(request: web.Request, services: Services) -> str:
    async with services.sessions() as s:
        rows = await stats.lotteries_table(s)
    status = {"open": "进行中", "drawn": "已开奖", "cancelled": "已取消"}
    return "<h1>抽奖</h1>" + _table(
        ("编号", "群", "奖品", "状态", "参与人数", "名额", "截止", "承诺值"),
        [(lot.id, topic or lot.room_id, lot.prize, status.get(lot.status, lot.status), n, lot.winners,
          _local(services, lot.deadline), lot.commitment[:16] + "…") for lot, n, topic in rows], "还没有抽奖")


# -- logs ---------------------------------------------------------------------------------------------------------------

_DASHBOARD_URL = re.compile(r"(/dashboard(?:/members)?)(/[^\s\"?]*)?(\?[^\s\"]*)?")


class _RedactDashboard(logging.Filter):
    """Search strings and member ids in dashboard URLs are member data: keep them out of the access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if "/dashboard" in message:
            record.msg = _DASHBOARD_URL.sub(_redact, message)
            record.args = ()
        return True


def _redact(m: re.Match) -> str:
    base, rest, query = m.group(1), m.group(2) or "", m.group(3) or ""
    if base.endswith("/members") and rest:
        rest = "/…"
    return base + rest + ("?…" if query else "")


ACCESS_LOGGERS = ("bot.web.access", "aiohttp.access")  # bot/web/server.py's, and aiohttp's default


def _redact_access_log() -> None:
    for name in ACCESS_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, _RedactDashboard) for f in logger.filters):
            logger.addFilter(_RedactDashboard())
