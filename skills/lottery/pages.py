"""The lottery skill's dashboard page: every lottery with its entrants."""

from __future__ import annotations

from bot.context import Services
from bot.http import PageRequest, PageResult
from skills.lottery import skill, store

STATUS = {"open": "进行中", "drawn": "已开奖", "cancelled": "已取消"}


@skill.page("/lotteries", title="抽奖")
async def lotteries(page: PageRequest, services: Services) -> PageResult:
    async with services.sessions() as s:
        rows = await store.lotteries_table(s)
    return PageResult("lotteries.html", {"rows": rows, "status": STATUS})
