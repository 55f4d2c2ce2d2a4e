"""The one way to add a skill: a module in skills/ with a ``skill = Skill(...)`` and decorated handlers.

    skill = Skill("ping", "连通性测试")

    @skill.command("ping", aliases=("在吗",), help="看看机器人在不在")
    async def ping(ctx: CommandContext) -> None:
        await ctx.reply("在的～")

Rules, permissions and priorities are data here; the router and dispatcher enforce them. A skill never imports
a transport (wechaty, aiohttp): it talks to members only through ``ctx.reply`` / ``ctx.send``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from bot.context import CommandContext, EventContext, JobContext, Services

Where = Literal["any", "room", "direct"]


class UsageError(Exception):
    """Raised by a command handler when the arguments don't fit: the member gets the message and the usage."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Callable[[CommandContext], Awaitable[None]]
    skill: str
    help: str
    aliases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # whole-message keywords, e.g. "签到", that run the command without a slash
    usage: str = ""
    admin_only: bool = False
    where: Where = "any"
    hidden: bool = False


@dataclass(frozen=True)
class HookSpec:
    event: Literal["message", "join", "leave"]
    handler: Callable[[EventContext], Awaitable[None]]
    skill: str
    priority: int = 100  # lower runs first; the command router runs at 0
    block: bool = False  # stop later handlers after this one ran


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Callable[[JobContext], Awaitable[None]]
    skill: str


@dataclass
class Skill:
    name: str
    description: str = ""
    # A frozen dataclass for the skill's [skills.NAME] table: validated at start and by `check-config`, then
    # available as services.skill_state[NAME].
    settings: type | None = None
    commands: list[CommandSpec] = field(default_factory=list)
    hooks: list[HookSpec] = field(default_factory=list)
    jobs: list[JobSpec] = field(default_factory=list)
    startups: list[Callable[[Services], Awaitable[None]]] = field(default_factory=list)
    shutdowns: list[Callable[[Services], Awaitable[None]]] = field(default_factory=list)

    def command(
        self,
        name: str,
        *,
        help: str,
        aliases: tuple[str, ...] = (),
        keywords: tuple[str, ...] = (),
        usage: str = "",
        admin_only: bool = False,
        where: Where = "any",
        hidden: bool = False,
    ):
        def register(fn):
            self.commands.append(
                CommandSpec(name, fn, self.name, help, aliases, keywords, usage, admin_only, where, hidden)
            )
            return fn

        return register

    def _hook(self, event: str, priority: int, block: bool):
        def register(fn):
            self.hooks.append(HookSpec(event, fn, self.name, priority, block))  # type: ignore[arg-type]
            return fn

        return register

    def on_message(self, *, priority: int = 100, block: bool = False):
        return self._hook("message", priority, block)

    def on_join(self, *, priority: int = 100, block: bool = False):
        return self._hook("join", priority, block)

    def on_leave(self, *, priority: int = 100, block: bool = False):
        return self._hook("leave", priority, block)

    def job(self, name: str):
        """A handler the persisted scheduler can run by name (so jobs survive restarts)."""

        def register(fn):
            self.jobs.append(JobSpec(f"{self.name}.{name}", fn, self.name))
            return fn

        return register

    def on_startup(self, fn):
        self.startups.append(fn)
        return fn

    def on_shutdown(self, fn):
        """Run at stop, after the last event: close what on_startup opened (an HTTP client, say)."""
        self.shutdowns.append(fn)
        return fn
