"""Tiers → WeCom corp tags, so staff see a customer's tier in their client: ``[wecom] tier_tags`` maps a tier to
a corp tag id (made once in the admin console: a rename there changes nothing here). Every ``tag_sync_hours`` the
members of each tier (the ``tier:`` target, which the tiers skill provides) are looked up, each member's WeCom
customers (external_userid, storage/identity.py) marked with ``mark_tag`` through a staff member who has them as a
contact — only where the tag changed (``wecom_tag_marks``), the previous tier's tag removed in the same call."""

from __future__ import annotations

import logging

from bot.clock import Clock, TimerHandle
from bot.context import Services
from bot.targets import TargetError, resolve
from bot.transports.base import TransportError
from bot.transports.wecom.api import WeComApi
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

MARK = "/cgi-bin/externalcontact/mark_tag"


class TagSync:
    def __init__(self, api: WeComApi, services: Services, clock: Clock, tier_tags: dict[str, str],
                 every_h: int) -> None:
        self._api = api
        self._services = services
        self._clock = clock
        self._tier_tags = dict(tier_tags)
        self._every_s = every_h * 3600.0
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        if self._tier_tags:
            self._timer = self._clock.call_later(self._every_s, self._again, name="wecom-tag-sync")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    async def _again(self) -> None:
        self._timer = self._clock.call_later(self._every_s, self._again, name="wecom-tag-sync")
        try:
            await self.run()
        except (TransportError, TargetError) as exc:
            log.warning("WeCom tags not synced: %s", exc)

    async def run(self) -> int:
        """Mark what changed; how many customers were marked."""
        desired: dict[str, str] = {}
        async with self._services.sessions() as session:
            for tier, tag_id in self._tier_tags.items():
                for r in await resolve(self._services, session, [f"tier:{tier}"]):
                    if r.user_id is None:
                        continue
                    for kind, value in await identity.of_member(session, r.user_id):
                        if kind == "external_userid":
                            desired[value] = tag_id
            marks = await store.tag_marks(session)
            staff = await store.followers(session)
        all_tags = set(self._tier_tags.values())
        marked = 0
        for external_userid, tag_id in sorted(desired.items()):
            if marks.get(external_userid) == tag_id or external_userid not in staff:
                continue
            await self._api.post(MARK, {"userid": staff[external_userid], "external_userid": external_userid,
                                        "add_tag": [tag_id], "remove_tag": sorted(all_tags - {tag_id})})
            async with self._services.sessions() as session:
                await store.mark(session, external_userid, tag_id, self._clock.now())
                await session.commit()
            marked += 1
        if marked:
            log.info("WeCom: %d customers' tier tags marked", marked)
        return marked
