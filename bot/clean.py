"""Input cleaned where it enters: every transport's event conversion (replay, console, Wechaty) goes through
:func:`clean_event`, so skills and the activity store only ever see clean values.

- Text (names, topics, message text): a string; NUL and lone surrogates removed (PostgreSQL refuses the first,
  UTF-8 can't encode the second), line endings normalised to ``\\n``, cut to the column it lands in.
- Ids: a non-empty string of at most :data:`ID_MAX` characters without NUL, surrogates or line breaks. Refused, not
  repaired: a cut or edited id would be somebody else's.
- Instants: aware, within 2000–2100 (the project's standard); anything else is refused.

A refusal is a :class:`bot.http.FieldError` naming the field (as the caller labels it) and the problem, never the
value: the message may be logged, and ids and names are member data.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, Person
from bot.http import FieldError

# The columns values land in (storage/models.py): members.id, rooms.id, activity.member_id/room_id are
# String(128); members.name, member_names.name and rooms.topic are String(256).
ID_MAX = 128
NAME_MAX = 256
TOPIC_MAX = 256
TEXT_MAX = 2000  # message text: what the activity detail keeps of it (bot/dispatcher.py)
EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2101, 1, 1, tzinfo=UTC)  # exclusive: 2100 is the last year allowed

_SURROGATES = re.compile("[\ud800-\udfff]")
_BAD_IN_ID = re.compile("[\x00-\x1f\x7f\ud800-\udfff]")


def text(value: Any, field: str, *, limit: int) -> str:
    """A string made safe to store: NUL and lone surrogates removed, line endings normalised, at most ``limit``
    characters."""
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if "\x00" in value:
        value = value.replace("\x00", "")
    if "\r" in value:
        value = value.replace("\r\n", "\n").replace("\r", "\n")
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:  # only lone surrogates fail: a well-formed str always encodes
            value = _SURROGATES.sub("", value)
    return value[:limit] if len(value) > limit else value


def name(value: Any, field: str) -> str:
    """A display name; missing is ""."""
    return "" if value is None else text(value, field, limit=NAME_MAX)


def topic(value: Any, field: str) -> str | None:
    """A room topic; missing or empty is None."""
    return (text(value, field, limit=TOPIC_MAX) or None) if value is not None else None


def identifier(value: Any, field: str) -> str:
    if value is None:
        raise FieldError(field, "is required")
    if not isinstance(value, str):
        raise FieldError(field, "must be a string")
    if not value:
        raise FieldError(field, "must not be empty")
    if len(value) > ID_MAX:
        raise FieldError(field, f"is longer than {ID_MAX} characters")
    if _BAD_IN_ID.search(value):
        raise FieldError(field, "contains a control character or an invalid code point")
    return value


def optional_identifier(value: Any, field: str) -> str | None:
    return None if value is None else identifier(value, field)


def instant(value: Any, field: str) -> datetime:
    """An aware datetime within 2000–2100."""
    if not isinstance(value, datetime):
        raise FieldError(field, "must be a time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise FieldError(field, "needs an offset, e.g. +08:00")
    # compared as aware values: no conversion, so year 1 or 9999 with any offset can't overflow here
    if not EARLIEST <= value < LATEST:
        raise FieldError(field, "must be between the years 2000 and 2100")
    return value


def parse_instant(value: Any, field: str) -> datetime:
    """An ISO 8601 string with an offset, within 2000–2100."""
    if value is None:
        raise FieldError(field, "is required")
    if not isinstance(value, str):
        raise FieldError(field, "must be an ISO 8601 time string, e.g. 2026-11-23T09:00:00+08:00")
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise FieldError(field, f"is not an ISO 8601 time: {value[:40]!r}") from None
    return instant(parsed, field)


def flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise FieldError(field, "must be true or false")
    return value


def person(value: Any, field: str) -> Person:
    if not isinstance(value, Person):
        raise FieldError(field, "must be a person")
    pid = identifier(value.id, f"{field}.id")
    pname = name(value.name, f"{field}.name")
    return value if pid is value.id and pname is value.name else Person(pid, pname)


def _ids(value: Any, field: str, *, required: bool) -> tuple[str, ...]:
    if not isinstance(value, (tuple, list)):
        raise FieldError(field, "must be a list of ids")
    if required and not value:
        raise FieldError(field, "must not be empty")
    return tuple(identifier(v, f"{field}[{i}]") for i, v in enumerate(value))


def _mention_ids(value: Any) -> tuple[str, ...]:
    """Only used to see whether the bot was @-mentioned: an id no member could have is dropped, not fatal."""
    if not isinstance(value, (tuple, list)):
        return ()
    ok = tuple(v for v in value if isinstance(v, str) and v and len(v) <= ID_MAX and not _BAD_IN_ID.search(v))
    return value if isinstance(value, tuple) and len(ok) == len(value) else ok


def _clean_str(value: Any, limit: int) -> bool:
    return (type(value) is str and len(value) <= limit and "\x00" not in value and "\r" not in value
            and (value.isascii() or not _SURROGATES.search(value)))


def _clean_id(value: Any) -> bool:
    return type(value) is str and 0 < len(value) <= ID_MAX and not _BAD_IN_ID.search(value)


def _already_clean(event: MessageReceived) -> bool:
    """The usual message, checked in one pass: nothing to change (the replay's hot path)."""
    at, sender, room_id, topic = event.at, event.sender, event.room_id, event.room_topic
    return (type(at) is datetime and at.utcoffset() is not None and EARLIEST <= at < LATEST and type(sender) is Person
            and _clean_id(sender.id) and _clean_str(sender.name, NAME_MAX) and _clean_str(event.text, TEXT_MAX)
            and (room_id is None or _clean_id(room_id)) and (topic is None or (topic != "" and _clean_str(topic, TOPIC_MAX)))
            and type(event.mentions_bot) is bool and event.mention_ids == ()
            and (event.message_id is None or _clean_str(event.message_id, ID_MAX)))


def clean_event(event: Event, labels: Mapping[str, str] | None = None) -> Event:
    """The event with every value checked and cleaned, or FieldError. ``labels`` names fields as the input
    calls them (a replay line's ``user`` for ``sender.id``, say); by default the event's own attribute names."""
    if type(event) is MessageReceived and _already_clean(event):
        return event
    label = (lambda f: labels.get(f, f)) if labels else (lambda f: f)
    at = instant(event.at, label("at"))
    if isinstance(event, MessageReceived):
        sender = event.sender
        if not isinstance(sender, Person):
            raise FieldError(label("sender.id"), "must be a person")
        sender_id = identifier(sender.id, label("sender.id"))
        sender_name = name(sender.name, label("sender.name"))
        cleaned = replace(
            event, at=at,
            sender=sender if (sender_id is sender.id and sender_name is sender.name) else Person(sender_id, sender_name),
            text=text(event.text, label("text"), limit=TEXT_MAX),
            room_id=optional_identifier(event.room_id, label("room_id")),
            room_topic=topic(event.room_topic, label("room_topic")),
            mentions_bot=flag(event.mentions_bot, label("mentions_bot")),
            mention_ids=_mention_ids(event.mention_ids),
            message_id=None if event.message_id is None else text(event.message_id, label("message_id"),
                                                                   limit=ID_MAX),
        )
    elif isinstance(event, MembersJoined):
        members = event.members
        field = label("members")
        if not isinstance(members, (tuple, list)) or not members:
            raise FieldError(field, "must be a non-empty list of members")
        cleaned = replace(
            event, at=at, room_id=identifier(event.room_id, label("room_id")),
            members=tuple(person(m, f"{field}[{i}]") for i, m in enumerate(members)),
            room_topic=topic(event.room_topic, label("room_topic")),
            inviter_id=optional_identifier(event.inviter_id, label("inviter_id")),
        )
    elif isinstance(event, MembersLeft):
        cleaned = replace(
            event, at=at, room_id=identifier(event.room_id, label("room_id")),
            member_ids=_ids(event.member_ids, label("member_ids"), required=True),
            room_topic=topic(event.room_topic, label("room_topic")),
        )
    else:
        raise FieldError("event", f"unknown event type {type(event).__name__}")
    return cleaned


MAX_DEPTH = 32


def json_value(value: Any, field: str, *, limit: int = 100_000, depth: int = 0) -> Any:
    """A decoded JSON value (a skill's own replay fields) with every string cleaned as :func:`text` cleans it,
    nested at most MAX_DEPTH deep. Problems are named by ``field``, the top-level field."""
    if isinstance(value, str):
        return text(value, field, limit=limit)
    if isinstance(value, (dict, list)):
        if depth >= MAX_DEPTH:
            raise FieldError(field, f"is nested more than {MAX_DEPTH} deep")
        if isinstance(value, dict):
            return {text(k, field, limit=limit): json_value(v, field, limit=limit, depth=depth + 1)
                    for k, v in value.items()}
        return [json_value(v, field, limit=limit, depth=depth + 1) for v in value]
    return value
