"""Staff-confirmed broadcasts (企业群发): a proactive message the governor lets go to a customer group (a scheduled
message, a campaign, a group-buy cut-off) becomes an ``add_msg_template`` task for the group's owner, who confirms
it in their WeCom client; the bot never speaks in the group itself. A campaign to a customer whose 微信客服 window
is closed (a tier- or tag-targeted schedule) becomes a 1-on-1 task (``chat_type: single``) for a staff member who
has them as a contact.

WeCom limits how many 群发 a target receives per month: counted here per (calendar month, group), persisted
(``wecom_quota``), so a message over ``[wecom] monthly_quota`` is dropped with ``quota`` before WeCom is asked
(WeCom's own 45009 is dropped the same way). Each task is a row of ``wecom_group_sends``; ``poll`` (every
``POLL_S``) asks ``get_groupmsg_send_result`` for the waiting ones and records the outcome in the activity store
(``group_send_result``: sent or failed) — what the operators see of it.
"""

from __future__ import annotations

import logging

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.activity import ActivityLog
from bot.clock import Clock, TimerHandle
from bot.events import OutgoingMessage
from bot.transports.base import RefusedError, TransportError
from bot.transports.wecom.api import WeComApi, WeComApiError
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

ADD = "/cgi-bin/externalcontact/add_msg_template"
RESULT = "/cgi-bin/externalcontact/get_groupmsg_send_result"
GROUP = "/cgi-bin/externalcontact/groupchat/get"
POLL_S = 600.0
SENT, FAILED = 1, (2, 3)  # get_groupmsg_send_result status: 0 not yet, 1 sent, 2 not a friend, 3 over the limit


class GroupSends:
    def __init__(self, api: WeComApi, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 activity: ActivityLog, monthly_quota: int) -> None:
        self._api = api
        self._sessions = sessions
        self._clock = clock
        self._activity = activity
        self._quota = monthly_quota
        self._owners: dict[str, str] = {}  # chat_id → owner staff member
        self._timer: TimerHandle | None = None

    def start(self) -> None:
        self._timer = self._clock.call_later(POLL_S, self._poll_again, name="wecom-groupsend-poll")

    def stop(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None

    def knows_owner(self, chat_id: str, owner: str) -> None:
        self._owners[chat_id] = owner

    async def _owner(self, chat_id: str) -> str:
        owner = self._owners.get(chat_id)
        if owner is None:
            try:
                answer = await self._api.post(GROUP, {"chat_id": chat_id, "need_name": 0})
            except WeComApiError as exc:  # not a customer group of this corp (40050): asking again won't change it
                raise RefusedError("unknown_group", str(exc)) from None
            owner = (answer.get("group_chat") or {}).get("owner")
            if not isinstance(owner, str) or not owner:
                raise RefusedError("no_owner", "groupchat/get gave no owner")
            self._owners[chat_id] = owner
        return owner

    async def send(self, message: OutgoingMessage) -> str:
        """A task for the group's owner (a room message) or for a staff member who has the customer as a contact
        (a 1-on-1 message); its msgid. RefusedError("quota") once the target's month is used up, ("no_channel")
        for a member who is no WeCom customer of any staff member."""
        now = self._clock.now()
        month = self._clock.local(now).strftime("%Y-%m")
        if message.room_id is not None:
            target, quota_key = message.room_id, f"group:{message.room_id}"
        else:
            async with self._sessions() as session:
                externals = [v for k, v in await identity.of_member(session, message.user_id) if
                             k == "external_userid"] or [message.user_id]  # type: ignore[arg-type]
                staff = await store.followers(session)
            reachable = [e for e in externals if e in staff]
            if not reachable:
                raise RefusedError("no_channel", "not a WeCom contact of any staff member")
            target, quota_key = reachable[0], f"customer:{reachable[0]}"
        async with self._sessions() as session:
            used = await store.quota_used(session, month, quota_key)
        if used >= self._quota:
            raise RefusedError("quota", f"{quota_key} had its {self._quota} 群发 this month")
        if message.room_id is not None:
            sender = await self._owner(target)
            body = {"chat_type": "group", "sender": sender, "chat_id_list": [target]}
        else:
            sender = staff[target]
            body = {"chat_type": "single", "sender": sender, "external_userid": [target]}
        answer = await self._api.post(ADD, {**body, "text": {"content": message.text}}, sending=True)
        msgid = answer.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            raise TransportError("add_msg_template answered no msgid")
        async with self._sessions() as session:
            await store.add_group_send(session, msgid[:64], sender, body["chat_type"], target, message.text, now)
            await store.count_quota(session, month, quota_key)
            await session.commit()
        self._activity.record("group_send_task", room_id=message.room_id, member_id=message.user_id,
                              detail={"msgid": msgid[:64], "owner": sender, "status": "waiting"}, at=now)
        return msgid

    async def _member_of(self, external_userid: str) -> str:
        async with self._sessions() as session:
            return await identity.resolve(session, "external_userid", external_userid) or external_userid

    async def _poll_again(self) -> None:
        self._timer = self._clock.call_later(POLL_S, self._poll_again, name="wecom-groupsend-poll")
        try:
            await self.poll()
        except TransportError as exc:  # the next poll tries again
            log.warning("企业群发 results not polled: %s", exc)

    async def poll(self) -> int:
        """Ask WeCom about every waiting task; how many finished."""
        async with self._sessions() as session:
            waiting = await store.waiting_group_sends(session)
        finished = 0
        for msgid, owner, chat_type, chat_id in waiting:
            answer = await self._api.post(RESULT, {"msgid": msgid, "userid": owner, "limit": 1000})
            statuses = [r.get("status") for r in answer.get("send_list") or [] if isinstance(r, dict)]
            if not statuses or 0 in statuses:
                continue  # the staff member has not confirmed it yet
            status = "sent" if SENT in statuses else "failed"
            now = self._clock.now()
            async with self._sessions() as session:
                changed = await store.finish_group_send(session, msgid, status, now)
                await session.commit()
            if changed:
                finished += 1
                where = {"room_id": chat_id} if chat_type == "group" else {
                    "member_id": await self._member_of(chat_id)}
                self._activity.record("group_send_result", **where,
                                      detail={"msgid": msgid, "owner": owner, "status": status}, at=now)
        return finished
