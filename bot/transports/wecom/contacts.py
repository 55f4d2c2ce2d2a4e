"""客户联系 (customer contacts): callbacks of ``change_external_contact`` and ``change_external_chat``.

- ``add_external_contact`` → the customer's member id (their unionid links them to a shop member: storage/
  identity.py), a welcome through ``externalcontact/send_welcome_msg`` with the event's one-time ``WelcomeCode``
  (text by channel ``State``, then by staff member, then ``[wecom] welcome``; the code is valid for 20 s, so a
  late event is recorded and not welcomed), recorded like a join (``contact_added``);
- ``del_external_contact`` (the staff member removed the customer) / ``del_follow_user`` (the customer removed the
  staff member) → ``contact_removed``;
- ``change_external_chat`` ``add_member`` / ``del_member`` → ``groupchat/get`` fills the room directory (the group's
  name, every member), and the joins (with their inviter) and leaves go to the dispatcher as for any group: the
  activity store records them. The bot cannot speak in these groups (bot/capabilities.py: ``room_send``).

Each callback is kept until handled (handled.py): a dispatched join or leave is marked in the dispatcher's
transaction, the others once their handling is over; one handed on again after a restart is handled the same way
(its welcome code, 20 s old by then, is not used).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.activity import ActivityLog
from bot import clean
from bot.clean import clean_event
from bot.clock import Clock
from bot.config import WeComSettings
from bot.events import Event, MembersJoined, MembersLeft, Person
from bot.http import FieldError
from bot.transports.base import TransportError
from bot.transports.wecom.api import WeComApi
from bot.transports.wecom.callbacks import Callback
from bot.transports.wecom.handled import HandledMarks
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

WELCOME_VALID = timedelta(seconds=20)
GET_CONTACT = "/cgi-bin/externalcontact/get"
WELCOME = "/cgi-bin/externalcontact/send_welcome_msg"
GROUP = "/cgi-bin/externalcontact/groupchat/get"
EXTERNAL = 2  # groupchat/get member_list type: 1 a staff member, 2 an external contact


def _name(value: object) -> str:
    """A customer's or group's name from WeCom's API, as the activity store takes it: nicknames are the customers'
    own text (NUL, a half emoji's lone surrogate), so cleaned here like every transport's (bot/clean.py)."""
    return clean.text(value, "name", limit=clean.NAME_MAX) if isinstance(value, str) else ""


def _id(value: object) -> str | None:
    """An id from WeCom's API, or None when it could not be stored (refused, not cut: a cut id is somebody else's)."""
    try:
        return clean.identifier(value, "id")
    except FieldError:
        return None


class Contacts:
    def __init__(self, api: WeComApi, sessions: async_sessionmaker[AsyncSession], clock: Clock,
                 activity: ActivityLog, settings: WeComSettings, dispatch: Callable[..., None],
                 owner_of: Callable[[str, str], None] | None, marks: HandledMarks) -> None:
        self._api = api
        self._sessions = sessions
        self._clock = clock
        self._activity = activity
        self._settings = settings
        self._dispatch = dispatch
        self._owner_of = owner_of  # groupchat/get tells a group's owner: broadcasts go through them
        self._marks = marks  # dispatch(event, done, mark): the dispatcher's submit
        self._tasks: set[asyncio.Task] = set()
        self.welcomed = 0

    def handle(self, callback: Callback) -> None:
        """From the callback receiver: the work (API calls) goes on after WeCom has its answer."""
        task = asyncio.get_running_loop().create_task(self._handle(callback), name="wecom-contact")
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def idle(self) -> None:
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    async def _handle(self, callback: Callback) -> None:
        event, change = callback.get("Event"), callback.get("ChangeType")
        dispatched = False
        try:
            if event == "change_external_contact" and change == "add_external_contact":
                await self.added(callback)
            elif event == "change_external_contact" and change in ("del_external_contact", "del_follow_user"):
                await self.removed(callback)
            elif event == "change_external_chat":
                dispatched = await self.chat_changed(callback)
        except TransportError as exc:
            log.warning("WeCom %s/%s not fully handled: %s", event, change, exc)
        except Exception:
            log.exception("WeCom %s/%s failed in handling", event, change)
        if not dispatched:  # over (a failure reported): not handed on again
            self._marks.handled(callback.key)

    def _at(self, callback: Callback) -> datetime:
        created = callback.get("CreateTime")
        if created.isdigit() and 946684800 <= int(created) < 4133980800:
            return datetime.fromtimestamp(int(created), UTC)
        return self._clock.now()

    async def _member(self, external_userid: str, unionid: str | None) -> str:
        async with self._sessions() as session:
            member_id = await identity.identify(
                session, [("external_userid", external_userid), ("unionid", unionid)], external_userid,
                self._clock.now())
            await session.commit()
        return member_id

    async def added(self, callback: Callback) -> None:
        external_userid, staff, state = callback.get("ExternalUserID"), callback.get("UserID"), callback.get("State")
        if not external_userid or len(external_userid) > 128:
            return
        at = self._at(callback)
        name, unionid = "", None
        try:
            answer = await self._api.get(GET_CONTACT, {"external_userid": external_userid})
            contact = answer.get("external_contact") or {}
            name = _name(contact.get("name"))
            unionid = _id(contact.get("unionid"))
        except TransportError as exc:  # the welcome matters more than the name: go on without it
            log.warning("WeCom contact details not read (%s)", exc)
        member_id = await self._member(external_userid, unionid)
        if staff and len(staff) <= 128:
            async with self._sessions() as session:
                await store.follow(session, external_userid, staff, at)
                await session.commit()
        s = self._settings
        text = s.welcome_by_state.get(state) or s.welcome_by_staff.get(staff) or s.welcome
        welcomed, why = False, "no_text" if not text else "no_code"
        code = callback.get("WelcomeCode")
        if text and code:
            if self._clock.now() - at > WELCOME_VALID:
                why = "expired"
            else:
                try:
                    await self._api.post(WELCOME, {"welcome_code": code, "text": {"content": text}}, sending=True)
                    welcomed, why = True, ""
                    self.welcomed += 1
                except TransportError as exc:  # one code, one try: WeCom refuses a second use anyway
                    why = getattr(exc, "reason", "error")
                    log.warning("WeCom welcome not sent: %s", exc)
        self._activity.seen(Person(member_id, name), at)
        detail = {"staff": staff[:128], "state": state[:64], "welcomed": welcomed, "channel": "wecom"}
        if why:
            detail["reason"] = why
        self._activity.record("contact_added", member_id=member_id, detail=detail, at=at)

    async def removed(self, callback: Callback) -> None:
        external_userid = callback.get("ExternalUserID")
        if not external_userid or len(external_userid) > 128:
            return
        async with self._sessions() as session:
            member_id = await identity.resolve(session, "external_userid", external_userid) or external_userid
            await store.unfollow(session, external_userid, callback.get("UserID"))
            await session.commit()
        by = "staff" if callback.get("ChangeType") == "del_external_contact" else "customer"
        self._activity.record("contact_removed", member_id=member_id, at=self._at(callback),
                              detail={"staff": callback.get("UserID")[:128], "by": by, "channel": "wecom"})

    async def chat_changed(self, callback: Callback) -> bool:
        """Whether a join or leave went to the dispatcher (which notes the callback handled)."""
        chat_id, detail = callback.get("ChatId"), callback.get("UpdateDetail")
        if not chat_id or len(chat_id) > 128:
            return False
        at = self._at(callback)
        answer = await self._api.post(GROUP, {"chat_id": chat_id, "need_name": 1})
        group = answer.get("group_chat") or {}
        topic = _name(group.get("name")) or None
        owner = _id(group.get("owner"))
        if self._owner_of is not None and owner:
            self._owner_of(chat_id, owner)
        members: dict[str, tuple[Person, str | None, int]] = {}
        for m in group.get("member_list") or []:
            userid = _id(m.get("userid")) if isinstance(m, dict) else None
            if userid is None:
                continue
            member_id = userid
            if m.get("type") == EXTERNAL:
                member_id = await self._member(userid, _id(m.get("unionid")))
            invitor = m.get("invitor") if isinstance(m.get("invitor"), dict) else {}
            members[userid] = (Person(member_id, _name(m.get("name"))), _id(invitor.get("userid")),
                               m.get("join_time") if isinstance(m.get("join_time"), int) else 0)
        for person, _, _ in members.values():  # the room directory: everyone in the group now
            self._activity.seen(person, at, room_id=chat_id, room_topic=topic)
        changed = callback.items.get("MemChangeList", ())
        event: Event | None = None
        if detail == "add_member":
            ids = changed or tuple(u for u, (_, _, joined) in members.items() if joined >= at.timestamp() - 60)
            joined = [members[u] for u in ids if u in members]
            if joined:
                inviter = next((i for _, i, _ in joined if i), None)
                event = MembersJoined(at=at, room_id=chat_id, members=tuple(p for p, _, _ in joined),
                                      room_topic=topic, inviter_id=inviter)
        elif detail == "del_member" and changed:
            async with self._sessions() as session:
                gone = tuple([await identity.resolve(session, "external_userid", u) or u for u in changed])
            event = MembersLeft(at=at, room_id=chat_id, member_ids=gone, room_topic=topic)
        if event is not None:
            try:
                event = clean_event(event)
            except FieldError as exc:
                log.warning("WeCom group change skipped: %s", exc)
                return False
            self._dispatch(event, self._marks.done_with(callback.key), self._marks.mark_in(callback.key))
            return True
        return False
