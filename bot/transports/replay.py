"""Replay: the scriptable contract of shared/docs/replay.md.

Events come as JSON lines (message, join, leave, tick, and the kinds skills add, e.g. order); every action the bot takes goes to
stdout as a JSON line, flushed per line; logs and diagnostics go to stderr. The clock is virtual: it moves to each event's ``at`` (never backwards), and everything
that falls due in between happens at its own instant first.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import IO

import orjson

from collections.abc import Mapping
from typing import Any

from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.http import FieldError
from bot.skill import ReplayInputSpec

BASE_KINDS = ("message", "join", "leave", "tick")


class ReplayLineError(ValueError):
    pass


def _str(obj: dict, key: str, *, required: bool = True) -> str | None:
    value = obj.get(key)
    if value is None:
        if required:
            raise ReplayLineError(f"missing {key!r}")
        return None
    if not isinstance(value, str) or not value:
        raise ReplayLineError(f"{key!r} must be a non-empty string")
    return value


def parse_event(line: str, inputs: Mapping[str, ReplayInputSpec] = {}) -> Event | Tick | InputLine:
    """One line to an event, a tick (it only moves the clock) or a line of a kind a skill handles (``inputs``, by
    kind). Raises ReplayLineError."""
    try:
        obj = orjson.loads(line)  # a few times faster than json.loads: the replay parses every line
    except orjson.JSONDecodeError as exc:
        raise ReplayLineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ReplayLineError("not a JSON object")
    at_raw = _str(obj, "at")
    try:
        at = datetime.fromisoformat(at_raw)
    except ValueError:
        raise ReplayLineError(f"'at' is not an ISO 8601 time: {at_raw!r}") from None
    if at.tzinfo is None:
        raise ReplayLineError("'at' needs an offset, e.g. +08:00")
    kind = obj.get("kind")
    if kind == "tick":
        return Tick(at)
    if kind == "message":
        text = obj.get("text")
        if not isinstance(text, str):
            raise ReplayLineError("'text' must be a string")
        mentions = obj.get("mentions_bot", False)
        if not isinstance(mentions, bool):
            raise ReplayLineError("'mentions_bot' must be true or false")
        return MessageReceived(
            at=at,
            sender=Person(_str(obj, "user"), obj.get("name") or ""),
            text=text,
            room_id=_str(obj, "room", required=False),
            room_topic=obj.get("room_topic") or None,
            mentions_bot=mentions,
        )
    if kind == "join":
        users = obj.get("users")
        if not isinstance(users, list) or not users:
            raise ReplayLineError("'users' must be a non-empty list of {id, name}")
        people = []
        for u in users:
            if isinstance(u, str):
                people.append(Person(u))
            elif isinstance(u, dict) and isinstance(u.get("id"), str) and u["id"]:
                people.append(Person(u["id"], u.get("name") or ""))
            else:
                raise ReplayLineError("each of 'users' must be {\"id\": ..., \"name\": ...}")
        return MembersJoined(at=at, room_id=_str(obj, "room"), members=tuple(people),
                             room_topic=obj.get("room_topic") or None, inviter_id=_str(obj, "inviter", required=False))
    if kind == "leave":
        users = obj.get("users")
        if not isinstance(users, list) or not users:
            raise ReplayLineError("'users' must be a non-empty list of ids")
        ids = tuple(u if isinstance(u, str) else (u.get("id") if isinstance(u, dict) else None) for u in users)
        if not all(isinstance(i, str) and i for i in ids):
            raise ReplayLineError("each of 'users' must be an id")
        return MembersLeft(at=at, room_id=_str(obj, "room"), member_ids=ids, room_topic=obj.get("room_topic") or None)
    spec = inputs.get(kind) if isinstance(kind, str) else None
    if spec is not None:
        fields = {k: v for k, v in obj.items() if k not in ("at", "kind")}
        try:
            return InputLine(at, spec, spec.parse(fields))
        except FieldError as exc:
            raise ReplayLineError(f"{kind}: {exc}") from None
    raise ReplayLineError(f"unknown kind {kind!r} ({', '.join((*BASE_KINDS, *inputs))})")


class InputLine:
    """A line of a kind a skill handles (an order update, say), checked when read and applied at ``at``."""

    __slots__ = ("at", "spec", "value")

    def __init__(self, at: datetime, spec: ReplayInputSpec, value: Any) -> None:
        self.at = at
        self.spec = spec
        self.value = value


class Tick:
    """Only moves the clock."""

    __slots__ = ("at",)

    def __init__(self, at: datetime) -> None:
        self.at = at


class ReplayOutput:
    """The transport side of a replay: every send becomes an action line on stdout."""

    self_id = "bot"

    def __init__(self, clock, out: IO[str] | None = None) -> None:
        self._clock = clock
        self._out = out or sys.stdout
        self.actions = 0

    async def send(self, message: OutgoingMessage) -> str | None:
        now = self._clock.local_now()
        at = now.isoformat(timespec="milliseconds" if now.microsecond else "seconds")
        action: dict = {"at": at, "kind": "say"}
        if message.room_id:
            action["room"] = message.room_id
        else:
            action["user"] = message.user_id
        action["text"] = message.text
        action["mentions"] = list(message.mentions)
        self._out.write(json.dumps(action, ensure_ascii=False) + "\n")
        self._out.flush()
        self.actions += 1
        return None
