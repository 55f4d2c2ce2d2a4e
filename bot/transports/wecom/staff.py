"""Staff members (WeCom UserIDs) and the bot, through the self-built app (``[wecom] agent_id``): the operators'
notes (``ctx.notify_operators``: handoff tickets, redemptions) and the bot's answers to a staff member go out with
``message/send`` (msgtype text, to one UserID); what a staff member writes to the app comes in through the app's
callback (``MsgType`` text) and reaches the dispatcher as a 1-on-1 message from that UserID, marked
``audience="staff"`` — so operators use ``/reply 12 文字`` and ``/close 12`` from their WeCom client.

Each such message is kept until handled (handled.py): noted handled in the transaction that handles it (a /reply
and its outbox row commit together), so a crash in between hands it on again after the restart, and only then.

Staff are not customers: neither 微信客服's reply window nor 企业群发 applies. A UserID WeCom does not know, or
outside the app's visible range (``invaliduser``, or errcode 81013 when every recipient is invalid), is dropped with
``invalid_user`` and logged: asking again would not change it.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import UTC, datetime

from bot.clean import clean_event
from bot.clock import Clock
from bot.events import MessageReceived, OutgoingMessage, Person
from bot.http import FieldError
from bot.transports.base import RefusedError
from bot.transports.wecom.api import WeComApi, WeComApiError
from bot.transports.wecom.callbacks import Callback
from bot.transports.wecom.handled import HandledMarks

log = logging.getLogger(__name__)

SEND = "/cgi-bin/message/send"
CONTENT_MAX_BYTES = 2048  # WeCom: a text message's content is at most 2,048 bytes
INVALID_USERS = 81013  # user & party & tag all invalid
ELLIPSIS = "…"


def fit(text: str, limit: int = CONTENT_MAX_BYTES) -> str:
    """``text`` cut to ``limit`` UTF-8 bytes on a character boundary (an ellipsis says it was cut)."""
    raw = text.encode()
    if len(raw) <= limit:
        return text
    return raw[:limit - len(ELLIPSIS.encode())].decode(errors="ignore") + ELLIPSIS


class StaffMessages:
    def __init__(self, api: WeComApi, agent_id: int, clock: Clock,
                 deliver: Callable[..., None], marks: HandledMarks) -> None:
        self._api = api
        self._marks = marks  # deliver(event, done, mark): the dispatcher's submit
        self._agent_id = agent_id
        self._clock = clock
        self._deliver = deliver

    async def send(self, message: OutgoingMessage) -> str | None:
        """A note to one staff member through the app; WeCom's msgid."""
        userid = message.user_id or ""
        if not self._agent_id:
            raise RefusedError("no_agent", "[wecom] agent_id is not set: staff can't be messaged through the app")
        body = {"touser": userid, "msgtype": "text", "agentid": self._agent_id,
                "text": {"content": fit(message.text)}}
        try:
            answer = await self._api.post(SEND, body, sending=True)
        except WeComApiError as exc:
            if exc.errcode == INVALID_USERS:
                log.warning("note to staff member %s not sent: WeCom does not know them, or they are outside the "
                            "app's visible range (check [bot] operators)", userid)
                raise RefusedError("invalid_user", str(exc)) from None
            raise
        invalid = {u.strip().lower() for u in str(answer.get("invaliduser") or "").split("|") if u.strip()}
        if userid.lower() in invalid:
            log.warning("note to staff member %s not sent: invalid UserID (check [bot] operators)", userid)
            raise RefusedError("invalid_user", f"{SEND}: invaliduser {userid}")
        msgid = answer.get("msgid")
        return msgid[:64] if isinstance(msgid, str) and msgid else None

    def handle(self, callback: Callback) -> bool:
        """A staff member wrote to the app: a 1-on-1 message from their UserID. False if it was none to handle."""
        if callback.get("MsgType") != "text":
            return False  # pictures, voice, location, ...: the commands are text (nothing kept for them)
        userid, text = callback.get("FromUserName"), callback.get("Content")
        try:
            sent = int(callback.get("CreateTime") or 0)
            at = datetime.fromtimestamp(sent, UTC) if sent > 0 else self._clock.now()
            event = clean_event(MessageReceived(at=at, sender=Person(userid), text=text,
                                                message_id=callback.get("MsgId") or None, audience="staff"))
        except (FieldError, ValueError, OverflowError, OSError) as exc:
            log.warning("a staff member's message to the app skipped: %s", exc)
            self._marks.handled(callback.key)
            return False
        self._deliver(event, self._marks.done_with(callback.key), self._marks.mark_in(callback.key))
        return True
