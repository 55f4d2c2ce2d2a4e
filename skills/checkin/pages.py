"""The check-in skill's dashboard page: redemptions waiting to be handed out, and the latest handled ones."""

from __future__ import annotations

from bot.context import Services
from bot.http import PageRequest, PageResult
from skills.checkin import skill, store

STATUS = {"pending": "待发放", "done": "已发放", "refused": "已拒绝（积分已退回）"}
RECENT = 50  # handled redemptions shown under the pending ones
MAX_SHOWN = 500  # pending ones shown (oldest first); the heading counts them all


@skill.page("/redemptions", title="积分兑换")
async def redemptions(page: PageRequest, services: Services) -> PageResult:
    async with services.sessions() as s:
        pending, total = await store.pending_redemptions(s, None, limit=MAX_SHOWN)
        handled = await store.handled_redemptions(s, RECENT)
    return PageResult("redemptions.html", {"pending": pending, "total": total, "handled": handled,
                                           "status": STATUS, "recent": RECENT})
