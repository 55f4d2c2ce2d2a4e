"""The FAQ skill's dashboard pages: the questions the knowledge base did not answer (the grouping of /kb misses),
and the handoff tickets (人工接管): the waiting ones, the oldest, how fast operators reply."""

from __future__ import annotations

from bot.context import Services
from bot.http import PageRequest, PageResult
from skills.faq import skill, store

DAYS = 30


@skill.page("/misses", title="未命中问题")
async def misses(page: PageRequest, services: Services) -> PageResult:
    async with services.sessions() as s:
        groups = await store.misses(s, services.clock.now(), DAYS, 100)
    return PageResult("misses.html", {"groups": groups, "days": DAYS})


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    minutes = int(seconds // 60)
    return f"{minutes // 60} 小时 {minutes % 60} 分" if minutes >= 60 else f"{minutes} 分钟"


@skill.page("/tickets", title="人工接管")
async def tickets(page: PageRequest, services: Services) -> PageResult:
    now = services.clock.now()
    async with services.sessions() as s:
        stats = await store.ticket_stats(s, now, DAYS)
    oldest = stats.open[0] if stats.open else None
    return PageResult("tickets.html", {
        "stats": stats, "days": DAYS, "median": _duration(stats.median_s), "slowest": _duration(stats.slowest_s),
        "oldest": oldest, "oldest_wait": _duration((now - oldest.waiting_since).total_seconds()) if oldest else "—",
        "waits": [(t, _duration((now - t.waiting_since).total_seconds())) for t in stats.open]})
