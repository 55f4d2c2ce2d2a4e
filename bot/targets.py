"""Who a proactive message goes to: target specs resolved to recipients, pluggable by prefix.

Built in:
- ``all``: every room the bot knows (rooms in config and rooms it has seen);
- ``room:<id>`` (or a bare room id): that room;
- ``tag:<tag>``: rooms tagged so in config (``[rooms."<id>"] tags = [...]``).

Any other prefix needs a resolver a skill registers at start, e.g. the tiers skill::

    register_resolver(services, "tier", resolve_tier)   # "tier:silent" → the members (or rooms) of that tier

A resolver is ``async (services, session, arg) -> list[Recipient]``. A target whose prefix has no resolver is an
error that says so, in chat (``/schedule add``) and in the log when a configured schedule runs.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Room

if TYPE_CHECKING:
    from bot.context import Services

BUILTIN = ("all", "room", "tag")


@dataclass(frozen=True, slots=True)
class Recipient:
    """A room or one member (exactly one is set)."""

    room_id: str | None = None
    user_id: str | None = None


Resolver = Callable[["Services", AsyncSession, str], Awaitable[list[Recipient]]]


class TargetError(ValueError):
    """``str()`` is for logs and config errors (English); ``zh`` for the admin in chat."""

    def __init__(self, message: str, zh: str) -> None:
        super().__init__(message)
        self.zh = zh


def register_resolver(services: Services, prefix: str, resolver: Resolver) -> None:
    if prefix in BUILTIN:
        raise ValueError(f"target prefix {prefix!r} is built in")
    services.target_resolvers[prefix] = resolver


def split(spec: str) -> tuple[str, str]:
    """("all", "") | ("room", id) | ("tag", tag) | (prefix, arg). Syntax only."""
    spec = spec.strip()
    if spec == "all":
        return "all", ""
    prefix, sep, arg = spec.partition(":")
    if not sep:
        return "room", spec  # a bare room id
    if not prefix or not arg.strip():
        raise TargetError(f"target {spec!r}: write prefix:value, e.g. tag:vip",
                          f"发送对象「{spec[:40]}」写法不对，例如 all、tag:vip、room:群ID")
    return prefix.strip().lower(), arg.strip()


def check(services: Services, spec: str) -> None:
    """Raise TargetError if ``spec`` cannot be resolved in this bot (e.g. no tiers skill for tier:...)."""
    prefix, arg = split(spec)
    if prefix == "tag" and not any(arg in r.tags for r in services.config.rooms.values()):
        raise TargetError(f"target {spec!r}: no room in config has the tag {arg!r}",
                          f"配置里没有打了「{arg}」标签的群（在 config.toml 的 [rooms] 里设置 tags）")
    if prefix not in BUILTIN and prefix not in services.target_resolvers:
        known = ", ".join([*BUILTIN, *sorted(services.target_resolvers)])
        raise TargetError(
            f"target {spec!r}: no resolver registered for {prefix!r} (known: {known}); "
            f"is the skill that provides it listed in bot.skills?",
            f"还不支持按「{prefix}」选择发送对象（需要启用对应的功能模块）。可以用 all、tag:标签、room:群ID。")


async def resolve(services: Services, session: AsyncSession, specs: Iterable[str]) -> list[Recipient]:
    """Every recipient of the targets, each once, in order. Raises TargetError."""
    out: dict[Recipient, None] = {}
    for spec in specs:
        check(services, spec)
        prefix, arg = split(spec)
        if prefix == "all":
            seen = (await session.execute(select(Room.id).order_by(Room.id))).scalars().all()
            for room_id in (*services.config.rooms, *seen):
                out[Recipient(room_id=room_id)] = None
        elif prefix == "room":
            out[Recipient(room_id=arg)] = None
        elif prefix == "tag":
            for room_id, room in services.config.rooms.items():
                if arg in room.tags:
                    out[Recipient(room_id=room_id)] = None
        else:
            for r in await services.target_resolvers[prefix](services, session, arg):
                out[r] = None
    return list(out)
