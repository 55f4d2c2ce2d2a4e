"""The FAQ skill's dashboard page: the questions the knowledge base did not answer (the grouping of /kb misses)."""

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
