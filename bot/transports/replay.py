"""Replay: the scriptable contract of shared/docs/replay.md.

Events come as JSON lines (message, join, leave, tick, and the kinds skills add, e.g. order); every action the bot takes goes to
stdout as a JSON line, flushed per line; logs and diagnostics go to stderr. The clock is virtual: it moves to each event's ``at`` (never backwards), and everything
that falls due in between happens at its own instant first.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from datetime import datetime
from typing import IO, Any

import orjson

from bot import clean
from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.http import FieldError
from bot.skill import ReplayInputSpec

BASE_KINDS = ("message", "join", "leave", "tick")
# a replay line's names for the events' fields (problems are reported by the line's names)
LABELS = {"sender.id": "user", "sender.name": "name", "room_id": "room", "inviter_id": "inviter", "members": "users",
          "member_ids": "users"}


class ReplayLineError(ValueError):
    """What is wrong with one line, as ``field: problem`` where a field is at fault."""


def decode_line(line: str | bytes) -> str:
    if isinstance(line, str):
        return line
    try:
        return line.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ReplayLineError(f"not UTF-8 (byte 0x{line[exc.start]:02x} at column {exc.start + 1})") from None


def parse_event(line: str | bytes, inputs: Mapping[str, ReplayInputSpec] = {}) -> Event | Tick | InputLine:
    """One line to an event, a tick (it only moves the clock) or a line of a kind a skill handles (``inputs``, by
    kind). Every value is checked and cleaned (bot/clean.py). Raises ReplayLineError."""
    try:
        # orjson: a few times faster than json.loads (the replay parses every line); it also refuses lone
        # surrogates and nesting deeper than 1,024
        obj = orjson.loads(decode_line(line))
    except orjson.JSONDecodeError as exc:
        raise ReplayLineError(f"not valid JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(obj, dict):
        raise ReplayLineError("not a JSON object")
    try:
        at = clean.parse_instant(obj.get("at"), "at")
        kind = obj.get("kind")
        if kind is None:
            raise FieldError("kind", "is required")
        if not isinstance(kind, str):
            raise FieldError("kind", "must be a string")
        if kind == "tick":
            return Tick(at)
        if kind in BASE_KINDS:
            return clean.clean_event(_event(kind, at, obj), LABELS)
    except FieldError as exc:
        raise ReplayLineError(str(exc)) from None
    spec = inputs.get(kind)
    if spec is None:
        known = ", ".join((*BASE_KINDS, *inputs))
        raise ReplayLineError(f"kind: unknown kind {kind[:40]!r} ({known})")
    try:
        fields = {k: clean.json_value(v, k) for k, v in obj.items() if k not in ("at", "kind")}
        return InputLine(at, spec, spec.parse(fields))
    except FieldError as exc:
        raise ReplayLineError(f"{kind}: {exc}") from None


def _event(kind: str, at: datetime, obj: dict[str, Any]) -> Event:
    """The event as the line states it; clean.clean_event checks every value's type and size after."""
    if kind == "message":
        if obj.get("text") is None:
            raise FieldError("text", "is required")
        return MessageReceived(at=at, sender=Person(obj.get("user"), obj.get("name")), text=obj["text"],
                               room_id=obj.get("room"), room_topic=obj.get("room_topic"),
                               mentions_bot=obj.get("mentions_bot", False))
    users = obj.get("users")
    if kind == "join":
        if not isinstance(users, list) or not users:
            raise FieldError("users", 'must be a non-empty list of {"id": ..., "name": ...}')
        people = []
        for i, u in enumerate(users):
            if isinstance(u, str):
                people.append(Person(u))
            elif isinstance(u, dict):
                people.append(Person(u.get("id"), u.get("name")))
            else:
                raise FieldError(f"users[{i}]", 'must be {"id": ..., "name": ...}')
        return MembersJoined(at=at, room_id=obj.get("room"), members=tuple(people),
                             room_topic=obj.get("room_topic"), inviter_id=obj.get("inviter"))
    if not isinstance(users, list) or not users:
        raise FieldError("users", "must be a non-empty list of ids")
    ids = []
    for i, u in enumerate(users):
        if isinstance(u, dict):
            u = u.get("id")
        if not isinstance(u, str):
            raise FieldError(f"users[{i}]", "must be an id")
        ids.append(u)
    return MembersLeft(at=at, room_id=obj.get("room"), member_ids=tuple(ids), room_topic=obj.get("room_topic"))


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
