"""The operators' dashboard under /dashboard: read-only pages behind a token login, rendered with Jinja2
(autoescaping on), charts as server-side SVG.

``setup(app, services, skills)`` adds the routes to the bot's aiohttp application (bot/web/server.py mounts it, on
``[http] host``/``port``). The core has the login, the layout, the scheduled jobs, the account's status
(bot/web/account.py) and the home page; every other
page is a skill's (``@skill.page``, ``@skill.panel``: bot/skill.py), its templates in ``skills/NAME/templates/``
(loaded as ``NAME/…``), rendered inside the layout behind the login.

- Login: the token comes from the environment variable named by ``dashboard.token_env`` (unset: the dashboard
  answers 503 to everything). ``POST /dashboard/login`` with the right token opens a session (a random id kept in
  memory for 12 hours; the cookie carries only the id; logout revokes it); ``Authorization: Bearer <token>`` works
  too. A wrong or missing token gets 401 and the login form, never data. Failed logins are limited per client
  address and overall (429 with Retry-After); login and logout posts from another site's page get 403.
- Charts: templates call ``line_chart``, ``bar_chart``, ``stacked_bars``, ``funnel``, ``legend`` (bot/web/svg.py,
  which escapes every label and key it writes; its output is passed on as Markup). Nothing else is marked safe.
- No member data in logs: bot/web/access_log.py redacts dashboard URLs and tokens from the access log.
"""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiohttp import web
from jinja2 import ChoiceLoader, Environment, FileSystemLoader, PrefixLoader, StrictUndefined
from markupsafe import Markup

from bot.context import Services
from bot.http import PageRequest, PageResult
from bot.skill import PageSpec, PanelSpec, Skill
from bot.web import access_log, auth, svg
from bot.web.account import account_status
from storage import stats, wecom

if TYPE_CHECKING:
    from bot.health import SessionHealth

log = logging.getLogger(__name__)

BASE = "/dashboard"
COOKIE = auth.DASHBOARD_COOKIE
TEMPLATES = Path(__file__).parent / "templates"
MAX_PARAM = 256  # characters of a query value or path parameter a page sees
SERVICES = web.AppKey("dashboard_services", Services)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@dataclass
class _Dashboard:
    env: Environment
    pages: list[PageSpec]
    panels: list[PanelSpec]
    throttle: auth.LoginThrottle
    health: SessionHealth | None = None


STATE = web.AppKey("dashboard", _Dashboard)


def setup(app: web.Application, services: Services, skills: Sequence[Skill] = (),
          health: SessionHealth | None = None) -> None:
    pages = [p for skill in skills for p in skill.pages]
    panels = [p for skill in skills for p in skill.panels]
    app[SERVICES] = services
    app[STATE] = _Dashboard(_environment(services, skills), pages, panels, auth.LoginThrottle(services.clock.now),
                            health)
    app[auth.SESSIONS] = auth.DashboardSessions(services.clock.now)
    app.router.add_get(BASE, _guarded(home))
    app.router.add_get(BASE + "/", _guarded(home))
    app.router.add_get(BASE + "/jobs", _guarded(jobs))
    app.router.add_get(BASE + "/account", _guarded(account))
    for spec in pages:
        app.router.add_get(BASE + spec.path, _guarded(_skill_page(spec)))
    app.router.add_get(BASE + "/login", login_form)
    app.router.add_post(BASE + "/login", login)
    app.router.add_post(BASE + "/logout", logout)
    access_log.install()


def _environment(services: Services, skills: Sequence[Skill]) -> Environment:
    folders = {}
    for skill in skills:
        for spec in (*skill.pages, *skill.panels):
            folder = Path(inspect.getfile(spec.handler)).parent / "templates"
            if folder.is_dir():
                folders[skill.name] = FileSystemLoader(folder)
    env = Environment(loader=ChoiceLoader([FileSystemLoader(TEMPLATES), PrefixLoader(folders)]), autoescape=True,
                      undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    env.filters["local"] = lambda when: _local(services, when)
    env.globals.update(base=BASE, line_chart=_chart(svg.line_chart), bar_chart=_chart(svg.bar_chart),
                       stacked_bars=_chart(svg.stacked_bars), funnel=_chart(svg.funnel), legend=_chart(svg.legend))
    return env


def _chart(build: Callable[..., str]) -> Callable[..., Markup]:
    """svg.py escapes every text it writes (labels, keys, titles) and writes numbers itself: its SVG is markup."""
    return lambda *args, **kwargs: Markup(build(*args, **kwargs))


def _local(services: Services, when: datetime | None) -> str:
    if when is None:
        return "—"
    return services.clock.local(when).strftime("%Y-%m-%d %H:%M")


# -- requests -----------------------------------------------------------------------------------------------------------

def clean(value: str) -> str:
    """A query value or path parameter as a page sees it: at most MAX_PARAM characters, valid Unicode (a lone
    surrogate or an undecodable byte becomes U+FFFD), so whatever a page echoes can be sent."""
    return value[:MAX_PARAM].encode("utf-8", "replace").decode("utf-8", "replace")


def _page_request(request: web.Request) -> PageRequest:
    return PageRequest(clean(request.path), {clean(k): clean(v) for k, v in request.query.items()},
                       {k: clean(v) for k, v in request.match_info.items()})


def _guarded(handler: Callable[[web.Request, Services], Awaitable[tuple[str, str, int]]]) -> Handler:
    """Every page: the token first (401 and the login form without it), then the page in the layout, uncached."""

    async def guarded(request: web.Request) -> web.Response:
        services = request.app[SERVICES]
        if auth.dashboard_token(services) is None:
            return _disabled(request)
        if not auth.dashboard_authorized(request, services):
            return _login_page(request, status=401, note="请先输入访问令牌登录。")
        title, body, status = await handler(request, services)
        return _html(request, body, title=title, status=status)

    guarded.__name__ = getattr(handler, "__name__", "page")
    return guarded


def _render(request: web.Request, template: str, **values: Any) -> str:
    return request.app[STATE].env.get_template(template).render(**values)


async def _skill_result(request: web.Request, services: Services, spec: PageSpec | PanelSpec,
                        page: PageRequest) -> tuple[str, int]:
    result: PageResult = await spec.handler(page, services)
    return _render(request, f"{spec.skill}/{result.template}", **result.values), result.status


def _skill_page(spec: PageSpec):
    async def page(request: web.Request, services: Services) -> tuple[str, str, int]:
        preq = _page_request(request)
        body, status = await _skill_result(request, services, spec, preq)
        if status == 200 and "member_id" in preq.match:  # a member's page: the sections skills add to it
            body += await _panels(request, services, "member", preq)
        return spec.title, body, status

    page.__name__ = spec.handler.__name__
    return page


async def _panels(request: web.Request, services: Services, where: str, preq: PageRequest) -> str:
    out = []
    for panel in request.app[STATE].panels:
        if panel.where == where:
            body, _ = await _skill_result(request, services, panel, preq)
            out.append(_render(request, "panel.html", skill=panel.skill, title=panel.title, content=Markup(body)))
    return "".join(out)


# -- core pages ---------------------------------------------------------------------------------------------------------

async def home(request: web.Request, services: Services) -> tuple[str, str, int]:
    state = request.app[STATE]
    panels = []
    for panel in state.panels:
        if panel.where == "overview":
            body, _ = await _skill_result(request, services, panel, _page_request(request))
            panels.append({"skill": panel.skill, "html": Markup(body)})
    pages = [{"href": BASE + p.path, "title": p.title} for p in state.pages if p.nav]
    return "概览", _render(request, "home.html", panels=panels, pages=pages), 200


async def jobs(request: web.Request, services: Services) -> tuple[str, str, int]:
    async with services.sessions() as s:
        rows = await stats.jobs_table(s)
        # WeCom: scheduled messages to customer groups are 企业群发 tasks waiting for their owner staff member
        group_sends = await wecom.group_sends(s) if services.config.wecom.enabled else None
    return "定时消息", _render(request, "jobs.html", jobs=rows, group_sends=group_sends), 200


async def account(request: web.Request, services: Services) -> tuple[str, str, int]:
    status = await account_status(services, request.app[STATE].health)
    return "账号状态", _render(request, "account.html", s=status), 200


# -- login --------------------------------------------------------------------------------------------------------------

def _disabled(request: web.Request) -> web.Response:
    var = request.app[SERVICES].config.dashboard.token_env
    return _html(request, _render(request, "disabled.html", var=var), title="看板未开启", status=503, nav=False)


async def login_form(request: web.Request) -> web.Response:
    if auth.dashboard_token(request.app[SERVICES]) is None:
        return _disabled(request)
    return _login_page(request)


def _address(request: web.Request) -> str:
    return request.remote or "unknown"


async def login(request: web.Request) -> web.Response:
    token = auth.dashboard_token(request.app[SERVICES])
    if token is None:
        return _disabled(request)
    if not auth.same_origin(request):
        return _login_page(request, status=403, note="请从看板自己的登录页登录。")
    throttle = request.app[STATE].throttle
    wait = throttle.wait_seconds(_address(request))
    if wait:
        response = _login_page(request, status=429, note=f"尝试次数过多，请 {wait} 秒后再试。")
        response.headers["Retry-After"] = str(wait)
        return response
    try:
        form = await request.post()
    except ValueError:
        form = {}
    given = str(form.get("token", ""))[:512]
    if not hmac.compare_digest(given.encode("utf-8", "replace"), token.encode()):
        throttle.failed(_address(request))
        log.warning("dashboard: a failed login from %s", _address(request))
        return _login_page(request, status=401, note="令牌不对，请重试。")
    throttle.succeeded(_address(request))
    sessions = request.app[auth.SESSIONS]
    response = web.HTTPSeeOther(BASE)
    response.set_cookie(COOKIE, sessions.open(token), path=BASE, httponly=True, samesite="Strict",
                        secure=request.secure, max_age=int(sessions.lifetime.total_seconds()))
    raise response


async def logout(request: web.Request) -> web.Response:
    if not auth.same_origin(request):
        return _html(request, "<p>请从看板页面退出。</p>", title="退出", status=403, nav=False)
    request.app[auth.SESSIONS].revoke(request.cookies.get(COOKIE, ""))
    response = web.HTTPSeeOther(BASE + "/login")
    response.del_cookie(COOKIE, path=BASE)
    raise response


def _login_page(request: web.Request, status: int = 200, note: str = "") -> web.Response:
    return _html(request, _render(request, "login.html", note=note), title="登录", status=status, nav=False)


# -- layout -------------------------------------------------------------------------------------------------------------

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


def _nav(request: web.Request) -> list[dict[str, Any]]:
    items = [("概览", BASE)] + [(p.title, BASE + p.path) for p in request.app[STATE].pages if p.nav] + [
        ("定时消息", BASE + "/jobs"), ("账号状态", BASE + "/account")]
    path = request.path.rstrip("/") or BASE
    return [{"title": t, "href": href, "active": path == href} for t, href in items]


def _html(request: web.Request, body: str, *, title: str, status: int = 200, nav: bool = True) -> web.Response:
    page = _render(request, "layout.html", title=title, css=Markup(_CSS), content=Markup(body),
                   nav=_nav(request) if nav else [])
    return web.Response(text=page, content_type="text/html", status=status, headers={
        # same-origin, not no-referrer: under no-referrer a browser's form post says "Origin: null"
        "Cache-Control": "no-store", "X-Frame-Options": "DENY", "Referrer-Policy": "same-origin",
        "X-Content-Type-Options": "nosniff",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src 'self'; "
                                   "form-action 'self'; frame-ancestors 'none'"})
