"""Staff-confirmed broadcasts (企业群发): a proactive message the governor lets go to a customer group (a scheduled
message, a campaign, a group-buy cut-off) becomes an ``add_msg_template`` task for the group's owner, who confirms
it in their WeCom client; the bot never speaks in the group itself.

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
from bot.transports.wecom.api import WeComApi
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
            answer = await self._api.post(GROUP, {"chat_id": chat_id, "need_name": 0})
            owner = (answer.get("group_chat") or {}).get("owner")
            if not isinstance(owner, str) or not owner:
                raise RefusedError("no_owner", "groupchat/get gave no owner")
            self._owners[chat_id] = owner
        return owner

    async def send(self, message: OutgoingMessage) -> str:
        """A task for the group's owner; its msgid. RefusedError("quota") once the group's month is used up."""
        chat_id = message.room_id
        assert chat_id is not None
        now = self._clock.now()
        month = self._clock.local(now).strftime("%Y-%m")
        async with self._sessions() as session:
            used = await store.quota_used(session, month, f"group:{chat_id}")
        if used >= self._quota:
            raise RefusedError("quota", f"the group had its {self._quota} 群发 this month")
        owner = await self._owner(chat_id)
        answer = await self._api.post(ADD, {"chat_type": "group", "sender": owner, "chat_id_list": [chat_id],
                                            "text": {"content": message.text}}, sending=True)
        msgid = answer.get("msgid")
        if not isinstance(msgid, str) or not msgid:
            raise TransportError("add_msg_template answered no msgid")
        async with self._sessions() as session:
            await store.add_group_send(session, msgid[:64], owner, chat_id, message.text, now)
            await store.count_quota(session, month, f"group:{chat_id}")
            await session.commit()
        self._activity.record("group_send_task", room_id=chat_id,
                              detail={"msgid": msgid[:64], "owner": owner, "status": "waiting"}, at=now)
        return msgid

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
        for msgid, owner, chat_id in waiting:
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
                self._activity.record("group_send_result", room_id=chat_id,
                                      detail={"msgid": msgid, "owner": owner, "status": status}, at=now)
        return finished
