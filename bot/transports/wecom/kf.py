"""微信客服 (WeChat customer service) self-service: a ``kf_msg_or_event`` callback → ``kf/sync_msg`` from the
persisted cursor → each customer message, once, to the dispatcher as a 1-on-1 message; answers go back through
``kf/send_msg`` (``KfInbox.send``).

A customer's member id is their canonical id (storage/identity.py): their ``external_userid``, unless it or their
``unionid`` (asked once with ``kf/customer/batchget``) is linked to a member already — then the shop member's
wallet and tier are theirs. Each message's ``msgid`` is committed with the cursor (``wecom_callbacks`` key
``kf:<msgid>``), so a page fetched twice (a crash before the cursor was saved) delivers nothing twice.

At least once, handled once: the cleaned message is committed with its msgid and the cursor, pending until the
dispatcher has handled it (marked in the transaction that handles it; one whose handling failed, apart just after). ``recover`` — at start, once the API is up,
before any sync — hands the pending ones on again, oldest first, or drops them (``dropped = 'stale'``) when fetched
more than ``STALE_AFTER`` ago; callbacks arriving before that wait for it.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.backoff import Backoff
from bot.clean import clean_event, identifier
from bot.clock import Clock
from bot.events import MessageReceived, OutgoingMessage, Person
from bot.governor import ReplyWindow
from bot.http import FieldError
from bot.transports.base import Done, Mark, RefusedError, TransportError
from bot.transports.wecom.api import WeComApi
from bot.transports.wecom.handled import STALE_AFTER, HandledMarks, take_pending
from storage import identity
from storage import wecom as store

log = logging.getLogger(__name__)

SYNC = "/cgi-bin/kf/sync_msg"
SEND = "/cgi-bin/kf/send_msg"
CUSTOMERS = "/cgi-bin/kf/customer/batchget"
ORIGIN_CUSTOMER = 3  # kf/sync_msg: 3 = sent by the WeChat customer (4 system, 5 a staff member)
TYPES = {"text": "text", "image": "image", "link": "link", "miniprogram": "miniprogram", "file": "file"}
MEMBERS_KEPT = 100_000
MEMBER_TTL = timedelta(seconds=60)
MAX_PAGES = 100  # one wake-up reads at most this many pages; the next callback goes on from the cursor
_CLIENT_MSGID = re.compile(r"[^0-9A-Za-z_-]")

# runs mark(session) in the transaction that handles the message; calls done(handled, marked) once its turn is over
Deliver = Callable[[MessageReceived, Done, Mark], None]


class KfInbox:
    def __init__(self, api: WeComApi, sessions: async_sessionmaker[AsyncSession], clock: Clock, deliver: Deliver,
                 marks: HandledMarks, window: ReplyWindow | None = None) -> None:
        self._api = api
        self._sessions = sessions
        self._clock = clock
        self._deliver = deliver
        self._window = window
        self._running: dict[str, asyncio.Task] = {}
        self._again: dict[str, str] = {}  # open_kfid → a newer callback's token, while a sync runs
        self._backoff: dict[str, Backoff] = {}
        self._routes: dict[str, tuple[str, str]] = {}  # member → (open_kfid, external_userid)
        # external_userid → (member id, when looked up): a cache of the identity table, trusted for MEMBER_TTL (an
        # operator's /绑定会员 may move a customer to another member; another process may have done it)
        self._members: dict[str, tuple[str, datetime]] = {}
        self.delivered = 0
        self._marks = marks  # handled: noted in the handling transaction, or apart just after
        self._ready = False  # until recover() ran: wake-ups wait (what was pending goes first)
        self._held: dict[str, str] = {}
        self.recovered = 0
        self.dropped_stale = 0

    # -- in -----------------------------------------------------------------------------------------------------------

    def wake(self, open_kfid: str, token: str) -> None:
        """A ``kf_msg_or_event`` callback: fetch what is new for this 客服账号 (one sync at a time per account)."""
        if not self._ready:
            self._held[open_kfid] = token
            return
        if open_kfid in self._running:
            self._again[open_kfid] = token
            return
        task = asyncio.get_running_loop().create_task(self._sync_all(open_kfid, token), name=f"kf-sync:{open_kfid}")
        self._running[open_kfid] = task
        task.add_done_callback(lambda _: self._running.pop(open_kfid, None))

    async def idle(self) -> None:
        """Until no sync is running (tests, shutdown)."""
        while self._running:
            await asyncio.gather(*self._running.values(), return_exceptions=True)

    async def _sync_all(self, open_kfid: str, token: str) -> None:
        while True:
            try:
                await self.sync(open_kfid, token)
                self._backoff.pop(open_kfid, None)
            except RefusedError as exc:  # WeCom refuses this account's sync (95xxx): asking again won't help
                log.error("微信客服 sync for %s refused: %s", open_kfid, exc)
                return
            except TransportError as exc:  # unreachable, or a passing error: again from the cursor, later
                wait = self._backoff.setdefault(open_kfid, Backoff(5.0, 600.0)).next()
                log.warning("微信客服 sync for %s failed (%s): trying again in %.0f s", open_kfid, exc, wait)
                # the callback's token is valid 10 minutes; the retry goes without it (allowed, rate-limited)
                self._clock.call_later(wait, lambda: self._retry(open_kfid), name=f"kf-retry:{open_kfid}")
                return
            except Exception:
                log.exception("微信客服 sync for %s failed", open_kfid)
                return
            if open_kfid not in self._again:
                return
            token = self._again.pop(open_kfid)

    async def recover(self) -> int:
        """Hand on again the messages fetched but not handled (a crash, a stop under them), oldest first; drop the
        ones fetched more than STALE_AFTER ago. Then the wake-ups that waited. How many were handed on."""
        now = self._clock.now()
        try:
            fresh, stale = await take_pending(self._sessions, now, ("kf:",), _from_payload)
            if fresh or stale:
                log.info("微信客服 messages fetched but not handled before the restart: %d handed on, %d dropped as "
                         "older than %s", len(fresh), stale, STALE_AFTER)
            fresh.sort(key=lambda row: (row[1], row[2].at))
            for key, _, event in fresh:
                if self._window is not None:
                    self._window.saw(event.sender.id, event.at)
                self._deliver(event, self._marks.done_with(key), self._marks.mark_in(key))
            self.recovered += len(fresh)
            self.dropped_stale += stale
            return len(fresh)
        finally:
            self._ready = True
            held, self._held = self._held, {}
            for open_kfid, token in held.items():
                self.wake(open_kfid, token)

    async def _retry(self, open_kfid: str) -> None:
        self.wake(open_kfid, "")

    async def sync(self, open_kfid: str, token: str) -> int:
        """Fetch and deliver every new message of ``open_kfid``; how many were delivered."""
        delivered = 0
        async with self._sessions() as session:
            cursor = await store.cursor(session, open_kfid)
        for _ in range(MAX_PAGES):
            body = {"cursor": cursor or "", "limit": 1000, "open_kfid": open_kfid}
            if token:
                body["token"] = token
            answer = await self._api.post(SYNC, body)
            messages = [m for m in (_parse(raw) for raw in _list(answer.get("msg_list"))) if m is not None]
            unionids = await self._unionids(open_kfid, {m[1] for m in messages})
            events = []
            now = self._clock.now()
            next_cursor = answer.get("next_cursor")
            latest: dict[str, tuple[str, datetime]] = {}  # customer → (member, their last message on this page)
            linked: list[tuple[str, tuple[str, datetime]]] = []
            async with self._sessions() as session:
                for msgid, external_userid, at, text, kind in messages:
                    key = f"kf:{msgid}"[:128]
                    if not await store.remember(session, key, now):
                        continue
                    cached = self._members.get(external_userid)
                    fresh = cached is not None and now - cached[1] < MEMBER_TTL
                    member_id, looked_up = (cached[0], cached[1]) if fresh else (None, now)  # type: ignore[index]
                    if member_id is None:
                        member_id = await identity.identify(
                            session, [("external_userid", external_userid),
                                      ("unionid", unionids.get(external_userid))], external_userid, now)
                    latest[external_userid] = (member_id, at)
                    self._routes[member_id] = (open_kfid, external_userid)
                    try:
                        event = clean_event(MessageReceived(at=at, sender=Person(member_id), text=text,
                                                            message_id=msgid, type=kind))
                    except FieldError as exc:
                        log.warning("微信客服 message %s skipped: %s", msgid, exc)
                        continue
                    await store.keep_payload(session, key, _payload(event))
                    events.append((key, event))
                    linked.append((external_userid, (member_id, looked_up)))
                for external_userid, (member_id, at) in latest.items():
                    await store.note_customer(session, external_userid, open_kfid, member_id, at)
                if isinstance(next_cursor, str) and next_cursor:
                    await store.save_cursor(session, open_kfid, next_cursor[:256], now)
                await session.commit()
            if len(self._members) > MEMBERS_KEPT:
                self._members.clear()  # a cache of the identity table: refilled from it
            self._members.update(linked)
            for key, event in events:
                if self._window is not None:
                    self._window.saw(event.sender.id, event.at)
                self._deliver(event, self._marks.done_with(key), self._marks.mark_in(key))
                delivered += 1
            self.delivered += len(events)
            if not answer.get("has_more") or not isinstance(next_cursor, str) or not next_cursor:
                break
            cursor = next_cursor
        return delivered

    async def _unionids(self, open_kfid: str, external_userids: set[str]) -> dict[str, str]:
        """The unionids of customers seen for the first time (one kf/customer/batchget for all of them)."""
        if not external_userids:
            return {}
        async with self._sessions() as session:
            new = [e for e in sorted(external_userids) if e not in self._members
                   and await identity.resolve(session, "external_userid", e) is None]
        if not new:
            return {}
        try:
            answer = await self._api.post(CUSTOMERS, {"external_userid_list": new[:100]})
        except TransportError as exc:  # not worth holding messages for: the link can be made later
            log.warning("微信客服: customers' unionids not learnt (%s)", exc)
            return {}
        found = {}
        for customer in _list(answer.get("customer_list")):
            ext, unionid = customer.get("external_userid"), customer.get("unionid")
            if isinstance(ext, str) and isinstance(unionid, str) and unionid and len(unionid) <= 128:
                found[ext] = unionid
        return found

    # -- out ----------------------------------------------------------------------------------------------------------

    async def route(self, member_id: str) -> tuple[str, str] | None:
        known = self._routes.get(member_id)
        if known is None:
            async with self._sessions() as session:
                known = await store.kf_route(session, member_id)
            if known is not None:
                self._routes[member_id] = known
        return known

    async def send(self, message: OutgoingMessage, client_msgid: str) -> str | None:
        """``kf/send_msg`` to the customer behind ``message.user_id``; RefusedError when they are no 微信客服
        customer (there is no other way to write to a WeCom customer 1-on-1 without a staff member)."""
        assert message.user_id is not None
        route = await self.route(message.user_id)
        if route is None:
            raise RefusedError("no_channel", "not a 微信客服 customer")
        open_kfid, external_userid = route
        answer = await self._api.post(SEND, {
            "touser": external_userid, "open_kfid": open_kfid, "msgid": _CLIENT_MSGID.sub("", client_msgid)[:32],
            "msgtype": "text", "text": {"content": message.text}}, sending=True)
        try:  # the window's count, kept across restarts (sent already: a failure here loses only the count)
            async with self._sessions() as session:
                await store.count_window_send(session, external_userid)
                await session.commit()
        except Exception as exc:
            log.warning("微信客服: the reply window's count not saved (%s)", type(exc).__name__)
        msgid = answer.get("msgid")
        return str(msgid) if msgid else None

    async def restore_windows(self) -> int:
        """At start: the reply windows still open, with their counts, back into the governor's policy."""
        if self._window is None:
            return 0
        async with self._sessions() as session:
            rows = await store.open_windows(session, self._clock.now() - self._window.window)
        for member_id, last_in, sent in rows:
            self._window.restore(member_id, last_in, sent)
        return len(rows)


def _payload(event: MessageReceived) -> str:
    """What is kept of a cleaned message until it is handled."""
    return json.dumps({"at": event.at.isoformat(), "member": event.sender.id, "text": event.text,
                       "msgid": event.message_id, "type": event.type}, ensure_ascii=False)


def _from_payload(payload: str | None) -> MessageReceived | None:
    try:
        raw = json.loads(payload or "null")
        return MessageReceived(at=datetime.fromisoformat(raw["at"]), sender=Person(str(raw["member"])),
                               text=str(raw["text"]), message_id=str(raw["msgid"]), type=str(raw["type"]))
    except (TypeError, ValueError, KeyError):  # not ours to read: never handed on
        return None


def _list(value: object) -> list[dict]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _storable_id(value: object) -> bool:
    try:
        identifier(value, "external_userid")
    except FieldError:
        return False
    return True


def _parse(raw: dict) -> tuple[str, str, datetime, str, str] | None:
    """(msgid, external_userid, at, text, type) of a customer's message; None for anything else."""
    if raw.get("origin") != ORIGIN_CUSTOMER:
        return None
    msgid, external_userid, send_time = raw.get("msgid"), raw.get("external_userid"), raw.get("send_time")
    # an id the tables can't hold (too long, NUL) is skipped here: stored, it would fail the page's transaction
    # before its cursor is saved, and every later sync would fetch that same page again (the inbox stuck)
    if not isinstance(msgid, str) or not msgid or not _storable_id(external_userid) \
            or not isinstance(send_time, int) or not 946684800 <= send_time < 4133980800:
        return None
    kind = TYPES.get(str(raw.get("msgtype")), "other")
    text = ""
    if kind == "text":
        content = raw.get("text", {}).get("content") if isinstance(raw.get("text"), dict) else None
        if not isinstance(content, str):
            return None
        text = content
    return msgid, external_userid, datetime.fromtimestamp(send_time, UTC), text, kind
