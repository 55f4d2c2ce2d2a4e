"""The skill SDK: a skill declares everything it brings in one place, and the core discovers it.

A skill is a package (or module) under ``skills/`` whose ``skill`` attribute is a :class:`Skill`::

    from dataclasses import dataclass, field
    from bot.context import Context
    from bot.skill import Skill

    @dataclass(frozen=True)
    class PingSettings:            # the skill's [skills.ping] table, validated at start and by check-config
        answer: str = "在的～"

    @dataclass
    class PingState:               # per-process state, made fresh at every start
        pings: int = 0

    skill = Skill("ping", "连通性测试", settings=PingSettings, state=PingState)

    @skill.command("ping", aliases=("在吗",), help="看看机器人在不在")
    async def ping(ctx: Context) -> None:
        skill.state_of(ctx).pings += 1
        ctx.reply(skill.settings_of(ctx).answer)

Besides commands, hooks and jobs a skill may declare: HTTP routes (:meth:`Skill.route`) and dashboard pages
(:meth:`Skill.page`), command-line subcommands (:meth:`Skill.cli`), target prefixes for proactive messages
(:meth:`Skill.target`), extra replay line kinds (:meth:`Skill.replay_input`), what it keeps about a member for
``/我的数据`` and ``/删除我的数据`` (:meth:`Skill.member_data`), and its own tables and migrations
(``models.py`` and ``migrations/`` inside its package: an Alembic branch labelled with the skill's name, found by
``storage/migrate.py``). Rules, permissions and priorities are data here; the router and dispatcher enforce them.
A skill never imports a transport (wechaty, aiohttp): it talks to members only through its :class:`Context`.
"""

from __future__ import annotations

import argparse
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.cli import CliContext
    from bot.context import Context, Services
    from bot.http import HttpRequest, HttpResponse, PageRequest, PageResult
    from bot.targets import Recipient

Where = Literal["any", "room", "direct"]
# Who may use a command, and what its effect reaches (checked by the router, the one permission check):
#   "member": anyone; "room": admins of the room it is used in (its effect stays in that room and its members);
#   "global": global admins (bot.admins) only — effects on every room, the shared wallet, the knowledge base.
Scope = Literal["member", "room", "global"]
Auth = Literal["api", "dashboard", "self"]

S = TypeVar("S")
T = TypeVar("T")


class UsageError(Exception):
    """Raised by a command handler when the arguments don't fit: the member gets the message and the usage."""


@dataclass(frozen=True)
class CommandSpec:
    name: str
    handler: Callable[[Context], Awaitable[None]]
    skill: str
    help: str
    aliases: tuple[str, ...] = ()
    keywords: tuple[str, ...] = ()  # whole-message keywords, e.g. "签到", that run the command without a slash
    usage: str = ""
    scope: Scope = "member"
    where: Where = "any"
    hidden: bool = False

    @property
    def admin_only(self) -> bool:
        return self.scope != "member"


@dataclass(frozen=True)
class HookSpec:
    event: Literal["message", "join", "leave"]
    handler: Callable[[Context], Awaitable[None]]
    skill: str
    priority: int = 100  # lower runs first; the command router runs at 0
    block: bool = False  # stop later handlers after this one ran


@dataclass(frozen=True)
class JobSpec:
    name: str
    handler: Callable[[Context], Awaitable[None]]
    skill: str


@dataclass(frozen=True)
class RouteSpec:
    """An HTTP endpoint on the bot's server. ``auth``: "api" (bearer token or body HMAC, ``[http]``),
    "dashboard" (the operators' login) or "self" (the handler checks a signature of its own, e.g. a webhook)."""

    method: str
    path: str
    handler: Callable[[HttpRequest, Services], Awaitable[HttpResponse]]
    skill: str
    auth: Auth = "api"


@dataclass(frozen=True)
class PageSpec:
    """A dashboard page under /dashboard: the handler returns a template (in the skill's ``templates/``) and its
    values; the dashboard renders it with autoescaping inside its layout, behind its login."""

    path: str
    title: str
    handler: Callable[[PageRequest, Services], Awaitable[PageResult]]
    skill: str
    nav: bool = True  # listed in the dashboard's navigation (detail pages with a path parameter are not)


@dataclass(frozen=True)
class PanelSpec:
    """A section a skill adds to a core dashboard page: ``where`` is "overview" or "member" (the member's page;
    ``PageRequest.match["member_id"]`` names the member). Rendered like a page, without the layout."""

    where: Literal["overview", "member"]
    title: str
    handler: Callable[[PageRequest, Services], Awaitable[PageResult]]
    skill: str


@dataclass(frozen=True)
class CliSpec:
    """``python -m bot NAME ...``: ``arguments`` adds the subcommand's own arguments (``--config`` and ``--db`` are
    added by the core); ``run`` returns the exit status."""

    name: str
    help: str
    run: Callable[[CliContext], Awaitable[int]]
    skill: str
    arguments: Callable[[argparse.ArgumentParser], None] | None = None


@dataclass(frozen=True)
class ReplayInputSpec:
    """A replay line kind a skill handles (``order``, say): ``parse(fields)`` checks the line when it is read (raise
    ``bot.http.FieldError`` for a bad field: the line is reported and skipped); ``apply`` runs at the line's time."""

    kind: str
    parse: Callable[[dict], Any]
    apply: Callable[[Services, Any], Awaitable[None]]
    skill: str


@dataclass(frozen=True)
class MemberDataSpec:
    """What a skill keeps about one member, for the member's own requests (PIPL: see bot/privacy.py).

    ``export(session, member_id)`` returns a short summary for the member: Chinese labels → short text or counts
    (``{"签到记录": "共 12 次"}``); nothing about other members. ``erase(session, member_id, pseudonym)`` deletes
    the skill's rows about the member, or, where bookkeeping must keep them, replaces the member's id with
    ``pseudonym``; it returns how many rows it changed. Both run in the caller's transaction and never commit.
    """

    skill: str
    export: Callable[[AsyncSession, str], Awaitable[dict[str, object]]]
    erase: Callable[[AsyncSession, str, str], Awaitable[int]]


Resolver = Callable[["Services", "AsyncSession", str], Awaitable[list["Recipient"]]]


@dataclass
class Skill(Generic[S, T]):
    name: str
    description: str = ""
    # A frozen dataclass for the skill's [skills.NAME] table: validated at start and by `check-config`.
    settings: type[S] | None = None
    # Made once per start: the skill's in-process state (caches, indexes), typed. Never module globals.
    state: Callable[[], T] | None = None
    commands: list[CommandSpec] = field(default_factory=list)
    hooks: list[HookSpec] = field(default_factory=list)
    jobs: list[JobSpec] = field(default_factory=list)
    routes: list[RouteSpec] = field(default_factory=list)
    pages: list[PageSpec] = field(default_factory=list)
    panels: list[PanelSpec] = field(default_factory=list)
    cli_commands: list[CliSpec] = field(default_factory=list)
    resolvers: dict[str, Resolver] = field(default_factory=dict)
    target_labels: dict[str, dict[str, str]] = field(default_factory=dict)
    replay_inputs: list[ReplayInputSpec] = field(default_factory=list)
    member_data_specs: list[MemberDataSpec] = field(default_factory=list)
    startups: list[Callable[[Services], Awaitable[None]]] = field(default_factory=list)
    shutdowns: list[Callable[[Services], Awaitable[None]]] = field(default_factory=list)

    # -- typed settings and state -------------------------------------------------------------------------------

    def settings_of(self, where: Context | Services) -> S:
        """This skill's validated settings."""
        return _services(where).runtime(self.name).settings

    def state_of(self, where: Context | Services) -> T:
        """This skill's state in this process."""
        return _services(where).runtime(self.name).state

    # -- declarations ---------------------------------------------------------------------------------------------

    def command(
        self,
        name: str,
        *,
        help: str,
        aliases: tuple[str, ...] = (),
        keywords: tuple[str, ...] = (),
        usage: str = "",
        scope: Scope = "member",
        where: Where = "any",
        hidden: bool = False,
    ):
        def register(fn):
            self.commands.append(CommandSpec(name, fn, self.name, help, aliases, keywords, usage, scope, where, hidden))
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
        """A handler the persisted scheduler can run by name (``<skill>.<name>``), so jobs survive restarts."""

        def register(fn):
            self.jobs.append(JobSpec(f"{self.name}.{name}", fn, self.name))
            return fn

        return register

    def route(self, method: str, path: str, *, auth: Auth = "api"):
        def register(fn):
            self.routes.append(RouteSpec(method.upper(), path, fn, self.name, auth))
            return fn

        return register

    def page(self, path: str, *, title: str, nav: bool = True):
        """A dashboard page at /dashboard``path``."""

        def register(fn):
            self.pages.append(PageSpec(path, title, fn, self.name, nav))
            return fn

        return register

    def panel(self, where: Literal["overview", "member"], *, title: str):
        """A section on a core dashboard page (the overview, a member's page)."""

        def register(fn):
            self.panels.append(PanelSpec(where, title, fn, self.name))
            return fn

        return register

    def cli(self, name: str, *, help: str, arguments: Callable[[argparse.ArgumentParser], None] | None = None):
        def register(fn):
            self.cli_commands.append(CliSpec(name, help, fn, self.name, arguments))
            return fn

        return register

    def target(self, prefix: str, *, labels: dict[str, str] | None = None):
        """Resolve ``prefix:arg`` targets of proactive messages: ``async (services, session, arg) -> [Recipient]``.
        ``labels``: the values' display names (``{"core": "核心"}``), for what shows them elsewhere (WeCom's
        corp tags for the tiers)."""

        def register(fn):
            self.resolvers[prefix] = fn
            if labels:
                self.target_labels[prefix] = dict(labels)
            return fn

        return register

    def replay_input(self, kind: str, *, parse: Callable[[dict], Any]):
        def register(fn):
            self.replay_inputs.append(ReplayInputSpec(kind, parse, fn, self.name))
            return fn

        return register

    def member_data(self, provider):
        """Declare what this skill keeps about a member: ``provider`` (a module, or a class used as a decorator)
        has ``async export(session, member_id) -> dict[str, object]`` and ``async erase(session, member_id,
        pseudonym) -> int`` (see :class:`MemberDataSpec`). Every skill with tables holding member ids declares it,
        so ``/我的数据`` and ``/删除我的数据`` reach them::

            skill.member_data(privacy)      # privacy: the module skills/vip/privacy.py, export() and erase()
        """
        export, erase = getattr(provider, "export", None), getattr(provider, "erase", None)
        if not callable(export) or not callable(erase):
            raise TypeError(f"member_data of skill {self.name}: {provider!r} needs export() and erase()")
        self.member_data_specs.append(MemberDataSpec(self.name, export, erase))
        return provider

    def on_startup(self, fn):
        self.startups.append(fn)
        return fn

    def on_shutdown(self, fn):
        """Run at stop, after the last event: close what on_startup opened (an HTTP client, say)."""
        self.shutdowns.append(fn)
        return fn


def _services(where: Any) -> Services:
    return getattr(where, "services", where)
