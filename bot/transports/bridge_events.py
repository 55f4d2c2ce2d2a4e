"""One bridge event's JSON object → typed values, cleaned where it enters (the contract: bridge.md v1).

Ids must be clean already (≤ 128 characters, no control characters: an id cut or changed would name someone else),
so a bad one is refused with its field; display names, topics and texts are cleaned instead: NUL and other control
characters dropped, lone surrogates replaced, cut to their bounds. ``at`` is ISO 8601 with an offset, in the years
2000–2100. Every problem raises ``FieldError(field, message)`` (answered 422 with the field).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, Person
from bot.http import FieldError

KINDS = ("message", "join", "leave", "login", "logout", "heartbeat", "login_needed")
MESSAGE_TYPES = ("text", "image", "link", "card", "miniprogram", "file", "other")
MAX_ID = 128
MAX_NAME = 256
MAX_TEXT = 10_000  # longer texts are cut (WeChat itself stops a little below this)
MAX_URL = 2048
MAX_NOTE = 1000
MAX_PEOPLE = 500  # a group holds at most 500 members

_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")  # keeps \t \n \r in texts
_LINE_BREAKS = re.compile(r"[\t\n\r]+")
_SURROGATE = re.compile(r"[\ud800-\udfff]")  # left lone by JSON escapes like "\ud800"
_BAD_IN_ID = re.compile(r"[\x00-\x1f\x7f\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """The account's session: login (``account``), logout (``reason``), login_needed (``qr_url``, ``note``),
    heartbeat."""

    kind: str
    account: Person | None = None
    reason: str = ""
    qr_url: str | None = None
    note: str | None = None


@dataclass(frozen=True, slots=True)
class BridgeEvent:
    id: str
    kind: str
    at: datetime
    event: Event | None = None  # message, join, leave
    lifecycle: Lifecycle | None = None  # login, logout, heartbeat, login_needed


def parse_event(raw: Any) -> BridgeEvent:
    if not isinstance(raw, dict):
        raise TypeError("an event is a JSON object")
    event_id = _id(raw, "id")
    kind = raw.get("kind")
    if kind not in KINDS:
        raise FieldError("kind", f"must be one of {', '.join(KINDS)}" if kind is not None else "missing")
    at = _at(raw.get("at"))
    if kind == "message":
        return BridgeEvent(event_id, kind, at, event=_message(raw, at, event_id))
    if kind == "join":
        room = _id(raw, "room")
        members = tuple(_person(u, f"users[{i}]") for i, u in enumerate(_people(raw)))
        return BridgeEvent(event_id, kind, at, event=MembersJoined(
            at=at, room_id=room, members=members, room_topic=_name(raw, "room_topic"),
            inviter_id=_id(raw, "inviter", required=False)))
    if kind == "leave":
        room = _id(raw, "room")
        ids = tuple(_person(u, f"users[{i}]").id for i, u in enumerate(_people(raw)))
        return BridgeEvent(event_id, kind, at, event=MembersLeft(
            at=at, room_id=room, member_ids=ids, room_topic=_name(raw, "room_topic")))
    if kind == "login":
        account = raw.get("account")
        if not isinstance(account, dict):
            raise FieldError("account", 'must be an object {"id", "name"}' if account is not None else "missing")
        person = Person(_id(account, "id", where="account.id"), _name(account, "name", where="account.name") or "")
        return BridgeEvent(event_id, kind, at, lifecycle=Lifecycle(kind, account=person))
    if kind == "logout":
        return BridgeEvent(event_id, kind, at, lifecycle=Lifecycle(kind, reason=_text(raw, "reason", MAX_NOTE) or ""))
    if kind == "login_needed":
        return BridgeEvent(event_id, kind, at, lifecycle=Lifecycle(
            kind, qr_url=_url(raw, "qr_url"), note=_text(raw, "note", MAX_NOTE)))
    return BridgeEvent(event_id, kind, at, lifecycle=Lifecycle(kind))  # heartbeat


def _message(raw: dict, at: datetime, event_id: str) -> MessageReceived:
    kind = raw.get("type", "text")
    if kind not in MESSAGE_TYPES:
        raise FieldError("type", f"must be one of {', '.join(MESSAGE_TYPES)}")
    text = _text(raw, "text", MAX_TEXT)
    if text is None:
        if kind == "text":
            raise FieldError("text", "missing")
        text = ""
    mentions_bot = raw.get("mentions_bot", False)
    if not isinstance(mentions_bot, bool):
        raise FieldError("mentions_bot", "must be true or false")
    mentions = raw.get("mentions", [])
    if not isinstance(mentions, list) or len(mentions) > MAX_PEOPLE:
        raise FieldError("mentions", f"must be a list of at most {MAX_PEOPLE} ids")
    room = _id(raw, "room", required=False)
    return MessageReceived(
        at=at,
        sender=Person(_id(raw, "user"), _name(raw, "name") or ""),
        text=text,
        room_id=room,
        room_topic=_name(raw, "room_topic") if room else None,
        mentions_bot=mentions_bot and room is not None,
        mention_ids=tuple(_id({"m": m}, "m", where=f"mentions[{i}]") for i, m in enumerate(mentions)),
        message_id=event_id,
        type=kind,
        url=_url(raw, "url"),
    )


def _people(raw: dict) -> list:
    users = raw.get("users")
    if not isinstance(users, list) or not users:
        raise FieldError("users", "missing" if users is None else "must be a non-empty list")
    if len(users) > MAX_PEOPLE:
        raise FieldError("users", f"at most {MAX_PEOPLE} people in one event")
    return users


def _person(value: Any, where: str) -> Person:
    """``{"id", "name"}`` (join) or a bare id (leave); either is taken in both."""
    if isinstance(value, str):
        return Person(_id({"id": value}, "id", where=where))
    if isinstance(value, dict):
        return Person(_id(value, "id", where=f"{where}.id"), _name(value, "name", where=f"{where}.name") or "")
    raise FieldError(where, 'must be an id or an object {"id", "name"}')


def _id(raw: dict, key: str, *, required: bool = True, where: str | None = None) -> Any:
    where = where or key
    value = raw.get(key)
    if value is None:
        if required:
            raise FieldError(where, "missing")
        return None
    if not isinstance(value, str) or not value.strip():
        raise FieldError(where, "must be a non-empty string")
    if len(value) > MAX_ID:
        raise FieldError(where, f"longer than {MAX_ID} characters")
    if _BAD_IN_ID.search(value):
        raise FieldError(where, "contains control characters or broken unicode")
    return value


def _name(raw: dict, key: str, *, where: str | None = None) -> str | None:
    value = _text(raw, key, MAX_NAME, where=where)
    return _LINE_BREAKS.sub(" ", value).strip() if value is not None else None


def _text(raw: dict, key: str, limit: int, *, where: str | None = None) -> str | None:
    value = raw.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise FieldError(where or key, "must be a string")
    return clean_text(value, limit)


def _url(raw: dict, key: str) -> str | None:
    value = _text(raw, key, MAX_URL)
    if value is not None and not value.startswith(("http://", "https://")):
        raise FieldError(key, "must be an http(s) URL")
    return value or None


def _at(value: Any) -> datetime:
    if not isinstance(value, str):
        raise FieldError("at", "missing" if value is None else "must be an ISO 8601 string")
    try:
        at = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError("at", "not an ISO 8601 time") from None
    if at.tzinfo is None:
        raise FieldError("at", "needs an offset (e.g. +08:00)")
    if not 2000 <= at.year <= 2100:
        raise FieldError("at", "must be between the years 2000 and 2100")
    return at


def clean_text(value: str, limit: int) -> str:
    """NUL and other control characters dropped (line breaks and tabs kept), lone surrogates replaced, cut to
    ``limit`` characters."""
    value = _CONTROL.sub("", value)
    value = _SURROGATE.sub("\ufffd", value)
    return value[:limit]


def to_payload(accepted: BridgeEvent) -> str | None:
    """A message, join or leave as the contract's JSON object again, from its cleaned values (``parse_event`` of
    it gives the same event): what is stored until it is handled. None for the session's events, which are
    handled as they arrive."""
    event = accepted.event
    if event is None:
        return None
    raw: dict[str, Any] = {"id": accepted.id, "kind": accepted.kind, "at": accepted.at.isoformat()}
    if isinstance(event, MessageReceived):
        raw.update(user=event.sender.id, name=event.sender.name, text=event.text, type=event.type,
                   mentions_bot=event.mentions_bot, mentions=list(event.mention_ids))
        if event.room_id is not None:
            raw.update(room=event.room_id, room_topic=event.room_topic)
        if event.url is not None:
            raw["url"] = event.url
    elif isinstance(event, MembersJoined):
        raw.update(room=event.room_id, room_topic=event.room_topic, inviter=event.inviter_id,
                   users=[{"id": m.id, "name": m.name} for m in event.members])
    elif isinstance(event, MembersLeft):
        raw.update(room=event.room_id, room_topic=event.room_topic, users=list(event.member_ids))
    return json.dumps(raw, ensure_ascii=False)
