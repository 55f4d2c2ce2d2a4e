"""Tiers → WeCom corp tags, so staff see a customer's tier in their client.

**Created once, renamed safely.** The bot makes the tiers' tags itself, in one tag group (``[wecom] tag_group``,
「会员等级」), named after the tiers' Chinese names (the ``tier:`` target's labels, which the tiers skill declares;
``[wecom] tier_tags`` renames them: tier key → tag name). It remembers each tag's id by the tier's stable key
(``wecom_corp_tags``), so: a tag already in WeCom under that name (made by hand, or by a bot whose database was
lost) is found with ``get_corp_tag_list`` and adopted, never duplicated; a tier whose name changes renames its tag
with ``edit_corp_tag`` (customers keep it); a tag deleted in the admin console (40068) is made again.

Every ``tag_sync_hours`` the members of each tier (the ``tier:`` target) are looked up, each member's WeCom
customers (external_userid, storage/identity.py) marked with ``mark_tag`` through a staff member who has them as a
contact — only where the tag changed (``wecom_tag_marks``), the previous tier's tag removed in the same call."""

from __future__ import annotations

import logging

from bot.clock import Clock, TimerHandle
from bot.context import Services
from bot.targets import TargetError, resolve
from bot.transports.base import TransportError
from bot.transports.wecom.api import WeComApi, WeComApiError
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

MARK = "/cgi-bin/externalcontact/mark_tag"
LIST = "/cgi-bin/externalcontact/get_corp_tag_list"
ADD = "/cgi-bin/externalcontact/add_corp_tag"
EDIT = "/cgi-bin/externalcontact/edit_corp_tag"
TAG_NAME_MAX = 30  # WeCom: a tag's (and a group's) name is at most 30 characters
INVALID_TAG = 40068  # the tag id is unknown (deleted in the admin console)


class TagSync:
    def __init__(self, api: WeComApi, services: Services, clock: Clock, tier_tags: dict[str, str],
                 every_h: int, group_name: str = "会员等级", agent_id: int = 0) -> None:
        self._api = api
        self._services = services
        self._clock = clock
        self._renamed = dict(tier_tags)
        self._every_s = every_h * 3600.0
        self._group_name = group_name[:TAG_NAME_MAX]
        self._agent_id = agent_id
        self._timer: TimerHandle | None = None

    def names(self) -> dict[str, str]:
        """tier key → the tag name wanted (the tiers' own names, unless ``[wecom] tier_tags`` renames them)."""
        labels = self._services.target_labels.get("tier", {})
        return {tier: (self._renamed.get(tier) or label)[:TAG_NAME_MAX] for tier, label in labels.items()}

    def start(self) -> None:
        if self.names() and self._group_name:
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

    # -- the tags themselves ---------------------------------------------------------------------------------------

    async def ensure_tags(self) -> dict[str, str]:
        """tier key → corp tag id: made, found by name, or renamed as needed."""
        wanted = self.names()
        async with self._services.sessions() as session:
            known = await store.corp_tags(session)
        for tier, (tag_id, name, group_id) in list(known.items()):
            if tier in wanted and wanted[tier] != name:
                try:
                    await self._api.post(EDIT, {"id": tag_id, "name": wanted[tier], **self._agent()})
                except WeComApiError as exc:
                    if exc.errcode != INVALID_TAG:
                        raise
                    log.warning("WeCom tag %s of tier %s is gone: making it again", tag_id, tier)
                    del known[tier]
                    continue
                log.info("WeCom tag of tier %s renamed %r → %r", tier, name, wanted[tier])
                await self._save(tier, tag_id, wanted[tier], group_id)
                known[tier] = (tag_id, wanted[tier], group_id)
        missing = [t for t in wanted if t not in known]
        if missing:
            group_id, existing = await self._group()
            to_make = []
            for tier in missing:
                if wanted[tier] in existing:  # there already (by hand, or a bot with another database): adopted
                    known[tier] = (existing[wanted[tier]], wanted[tier], group_id or "")
                    await self._save(tier, *known[tier])
                else:
                    to_make.append(tier)
            if to_make:
                body = {**({"group_id": group_id} if group_id else {"group_name": self._group_name}),
                        "tag": [{"name": wanted[t]} for t in to_make], **self._agent()}
                answer = await self._api.post(ADD, body)
                group = answer.get("tag_group") or {}
                made = {t.get("name"): t.get("id") for t in group.get("tag") or [] if isinstance(t, dict)}
                for tier in to_make:
                    tag_id = made.get(wanted[tier])
                    if isinstance(tag_id, str) and tag_id:
                        known[tier] = (tag_id, wanted[tier], str(group.get("group_id") or group_id or ""))
                        await self._save(tier, *known[tier])
                log.info("WeCom tags made for tiers: %s", ", ".join(to_make))
        return {tier: known[tier][0] for tier in wanted if tier in known}

    async def _group(self) -> tuple[str | None, dict[str, str]]:
        """The tag group's id (None if there is none yet) and its tags, name → id."""
        answer = await self._api.post(LIST, {})
        for group in answer.get("tag_group") or []:
            if isinstance(group, dict) and group.get("group_name") == self._group_name and not group.get("deleted"):
                return str(group.get("group_id")), {
                    t["name"]: t["id"] for t in group.get("tag") or []
                    if isinstance(t, dict) and isinstance(t.get("name"), str) and isinstance(t.get("id"), str)
                    and not t.get("deleted")}
        return None, {}

    def _agent(self) -> dict[str, int]:
        return {"agentid": self._agent_id} if self._agent_id else {}

    async def _save(self, tier: str, tag_id: str, name: str, group_id: str) -> None:
        async with self._services.sessions() as session:
            await store.save_corp_tag(session, tier, tag_id[:128], name, group_id[:128], self._clock.now())
            await session.commit()

    # -- marking customers -----------------------------------------------------------------------------------------

    async def run(self) -> int:
        """Make the tags if needed, then mark what changed; how many customers were marked."""
        tier_tags = await self.ensure_tags()
        desired: dict[str, str] = {}
        async with self._services.sessions() as session:
            for tier, tag_id in tier_tags.items():
                for r in await resolve(self._services, session, [f"tier:{tier}"]):
                    if r.user_id is None:
                        continue
                    for kind, value in await identity.of_member(session, r.user_id):
                        if kind == "external_userid":
                            desired[value] = tag_id
            marks = await store.tag_marks(session)
            staff = await store.followers(session)
        all_tags = set(tier_tags.values())
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
