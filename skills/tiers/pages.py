"""The tiers skill's dashboard (成员分层与数据): the overview charts, rooms, member search, a member's page."""

from __future__ import annotations

from bot.context import Services
from bot.http import PageRequest, PageResult
from skills.tiers import skill, stats
from skills.tiers.store import TIER_NAMES, TIERS, last_run
from storage import stats as core_stats

MAX_PAGE_PARAM = 12  # digits: anything longer is not a page number anyone typed on purpose
FUNNEL_LABELS = {"joined": "入群", "spoke": "发过言", "checked_in": "签到过", "ordered": "下过单",
                 "ordered_again": "复购"}


def _window_days(services: Services) -> int:
    return skill.settings_of(services).window_days


def _pct(part: float, whole: float) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "—"


@skill.panel("overview", title="成员分层与数据")
async def overview(page: PageRequest, services: Services) -> PageResult:
    now = services.clock.now()
    window = _window_days(services)
    async with services.sessions() as s:
        ov = await stats.overview(s, now, services.config.tz, services.config.dashboard.chart_days, window)
        run = await last_run(s)
    today = ov.days[-1]
    asked7 = sum(d.faq_answered + d.faq_missed for d in ov.days[-7:])
    hit7 = sum(d.faq_answered for d in ov.days[-7:])
    cards = (("成员", ov.members), ("今日活跃", today.active), ("今日消息", today.messages),
             ("今日签到", today.checkins), ("近 7 天问答命中率", _pct(hit7, asked7)),
             ("核心成员", ov.tier_counts.get("core", 0)))
    days = ov.days
    return PageResult("overview.html", {
        "cards": cards, "run": run, "window_days": window, "tiers": TIERS, "tier_names": TIER_NAMES,
        "active": [(d.day, d.active) for d in days], "messages": [(d.day, d.messages) for d in days],
        "checkins": [(d.day, d.checkins) for d in days],
        "faq": [(d.day, round(100 * d.faq_hit_rate, 1) if d.faq_hit_rate is not None else None) for d in days],
        "tiers_by_day": ov.tiers_by_day, "funnel_stages": [(k, FUNNEL_LABELS[k], n) for k, n in ov.funnel]})


@skill.page("/rooms", title="群")
async def rooms(page: PageRequest, services: Services) -> PageResult:
    async with services.sessions() as s:
        rows = await stats.rooms_table(s, services.clock.now(), services.config.tz)
    return PageResult("rooms.html", {"rooms": rows})


def page_number(raw: str) -> int:
    """A page number as typed: not a number → 1; absurdly long → the last page (clamped by the query)."""
    raw = raw.strip()
    if not raw.isascii() or not raw.isdigit():
        return 1
    return int(raw) if len(raw) <= MAX_PAGE_PARAM else 10**MAX_PAGE_PARAM


@skill.page("/members", title="成员")
async def members(page: PageRequest, services: Services) -> PageResult:
    q = page.query.get("q", "")[:stats.MAX_QUERY]
    tier = page.query.get("tier", "")
    tier = tier if tier in TIERS else None
    number = page_number(page.query.get("page", "1"))
    size = services.config.dashboard.page_size
    async with services.sessions() as s:
        rows, total, number = await stats.search_members(s, q, number, size, tier)
    pages = max(1, -(-total // size))

    def link(p: int) -> dict:
        return {"q": q, "page": p} | ({"tier": tier} if tier else {})

    return PageResult("members.html", {
        "q": q, "tier": tier, "tiers": TIERS, "tier_names": TIER_NAMES, "rows": rows, "total": total,
        "page": number, "pages": pages, "prev": link(number - 1) if number > 1 else None,
        "next": link(number + 1) if number < pages else None})


@skill.page("/members/{member_id}", title="成员", nav=False)
async def member(page: PageRequest, services: Services) -> PageResult:
    member_id = page.match["member_id"][:128]
    async with services.sessions() as s:
        card = await stats.member_card(s, member_id)
        if card is None:
            return PageResult("no_member.html", {}, status=404)
        history = await stats.member_history(s, member_id)
        names = await core_stats.member_names(s, member_id)
    return PageResult("member.html", {"card": card, "t": card.tier, "history": history, "names": names,
                                      "tier_names": TIER_NAMES})
