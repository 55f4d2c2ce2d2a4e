"""Typed values that flow through the bot.

Transports turn their raw platform events into these; skills only ever see these.
All are frozen: an event is a fact, nobody edits it on the way through.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True, slots=True)
class Person:
    """A WeChat account as seen in one event: the stable id and the display name at that moment."""

    id: str
    name: str = ""


@dataclass(frozen=True, slots=True)
class MessageReceived:
    """A message in a room (``room_id`` set) or in a 1-on-1 chat with the bot (``room_id`` None).

    ``type`` is "text", or what else it was ("image", "link", "card", "miniprogram", "file", "other"): then ``text``
    holds what the transport could extract (a link's title and URL) and ``url`` may point at the content."""

    at: datetime
    sender: Person
    text: str
    room_id: str | None = None
    room_topic: str | None = None
    mentions_bot: bool = False
    mention_ids: tuple[str, ...] = ()
    message_id: str | None = None
    type: str = "text"
    url: str | None = None
    # who wrote: a member ("member") or a staff member of the brand's own organisation ("staff": in the WeCom mode, an
    # operator writing to the app); a 1-on-1 reply goes back to the same audience (OutgoingMessage.audience)
    audience: str = "member"

    @property
    def chat_key(self) -> str:
        """Messages with the same key are handled strictly in order."""
        return f"room:{self.room_id}" if self.room_id else f"user:{self.sender.id}"

    @property
    def is_direct(self) -> bool:
        return self.room_id is None


@dataclass(frozen=True, slots=True)
class MembersJoined:
    at: datetime
    room_id: str
    members: tuple[Person, ...]
    room_topic: str | None = None
    inviter_id: str | None = None

    @property
    def chat_key(self) -> str:
        return f"room:{self.room_id}"


@dataclass(frozen=True, slots=True)
class MembersLeft:
    at: datetime
    room_id: str
    member_ids: tuple[str, ...]
    room_topic: str | None = None

    @property
    def chat_key(self) -> str:
        return f"room:{self.room_id}"


Event = MessageReceived | MembersJoined | MembersLeft


class Priority(enum.IntEnum):
    """Send order: a lower value goes first."""

    REPLY = 0  # a direct answer to something a member just said
    TRANSACTIONAL = 1  # reminders about the member's own orders
    SCHEDULED = 2  # bot-initiated: daily messages, broadcasts


class ProactiveKind(enum.StrEnum):
    """How bot-initiated content counts against caps. Replies are never proactive."""

    LIGHT = "light"  # greeting, tip, check-in reminder
    PROMOTIONAL = "promotional"  # selling
    TRANSACTIONAL = "transactional"  # order reminders: quiet hours yes, promotional caps no


AUDIENCES = ("member", "staff")


@dataclass(frozen=True, slots=True)
class OutgoingMessage:
    """A text to a room (``room_id``) or a person (``user_id``); exactly one of the two is set.

    ``audience``: "member" (a customer: the platform's rules for reaching customers apply), or "staff" (a note to
    one of the brand's own operators, 1-on-1: ``ctx.notify_operators``, and replies to an operator's own message).
    Transports where staff are reached another way than customers route on it (WeCom: the app's message/send, not
    微信客服); the others ignore it."""

    text: str
    room_id: str | None = None
    user_id: str | None = None
    mentions: tuple[str, ...] = ()
    audience: str = "member"

    def __post_init__(self) -> None:
        if (self.room_id is None) == (self.user_id is None):
            raise ValueError("an outgoing message goes to exactly one room or one user")
        if self.audience not in AUDIENCES:
            raise ValueError(f"audience must be one of {', '.join(AUDIENCES)}")
        if self.audience == "staff" and self.room_id is not None:
            raise ValueError("a note to staff goes to one person, not a room")

    @property
    def to_staff(self) -> bool:
        return self.audience == "staff"

    @property
    def conversation_id(self) -> str:
        return self.room_id or self.user_id  # type: ignore[return-value]

    @property
    def chat_key(self) -> str:
        return f"room:{self.room_id}" if self.room_id else f"user:{self.user_id}"
