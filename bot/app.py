"""The application: wires config, storage, clock, activity store, governor, scheduler, skills and dispatcher.

Transports are handed in by the entry point; nothing here imports a concrete one.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import random
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.activity import ActivityLog
from bot.caps import CapStore
from bot.clock import Clock, RealClock, VirtualClock
from bot.commands import CommandRouter
from bot.config import Config, ConfigError, skill_settings
from bot.context import Services, SkillRuntime
from bot.dispatcher import Dispatcher
from bot.governor import SendFn, SendGovernor
from bot.outbox import Outbox
from bot.scheduler import Scheduler
from bot.skill import ReplayInputSpec, Skill
from bot.targets import register_resolver
from storage.db import create_engine, migrate, session_factory

log = logging.getLogger("bot")


def check_skills(config: Config) -> list[str]:
    """Every problem with the skills a config names: missing modules and invalid [skills.NAME] tables."""
    problems: list[str] = []
    for name in config.bot.skills:
        try:
            skill = load_skill(name)
        except (ImportError, RuntimeError) as exc:
            problems.append(f"bot.skills: cannot load {name!r}: {exc}")
            continue
        if skill.settings is not None:
            try:
                skill_settings(config, skill.name, skill.settings)
            except ConfigError as exc:
                problems.extend(exc.problems)
    return problems


def load_skill(name: str) -> Skill:
    """``ping`` is the package (or module) skills/ping; a dotted name (``mybrand.skills.vip``) is imported as it
    is. Found by name at run time: the core imports no skill."""
    module = importlib.import_module(name if "." in name else f"skills.{name}")
    skill = getattr(module, "skill", None)
    if not isinstance(skill, Skill):
        raise RuntimeError(f"skill module {module.__name__} must define `skill = Skill(...)`")
    return skill


@dataclass
class ErrorLog:
    """The one error hook: every exception from handlers, timers and jobs lands here, logged with context."""

    count: int = 0

    def __call__(self, exc: BaseException, context: dict) -> None:
        self.count += 1
        where = " ".join(f"{k}={v!r}" for k, v in context.items())
        log.error("error in %s", where, exc_info=exc)


class BotApp:
    def __init__(
        self, config: Config, clock: Clock, send: SendFn, *, db_url: str | None = None,
        rng: random.Random | None = None, web: bool = False,
    ) -> None:
        self.config = config
        self.clock = clock
        self._send = send
        self.db_url = db_url or config.storage.url
        self.rng = rng or random.Random()
        self.errors = ErrorLog()
        self.engine: AsyncEngine | None = None
        self.skills: list[Skill] = []
        self._web_wanted = web  # start the HTTP server (config [http]) with the bot: `python -m bot run`
        self.web = None  # bot.web.server.WebServer once started
        self._serving = False  # the bot process (not a command-line tool): it sends, and resumes the outbox
        self._resumed: set[str | None] = set()  # accounts whose outbox rows this process has taken back

    async def start(self, *, serve: bool = True) -> None:
        """``serve=False`` (command-line tools): storage, skills and their startups, but no scheduler run and no
        HTTP server — jobs written then are run by the bot process."""
        cfg = self.config
        self.clock.on_error = self.errors
        self.engine = create_engine(self.db_url)
        await migrate(self.engine)
        sessions = session_factory(self.engine)
        self.activity = ActivityLog(sessions, self.clock, cfg.activity)
        caps = CapStore(sessions)
        self.activity.add_write_behind(caps)  # the governor's counters ride on the activity store's batches
        self.outbox = Outbox(sessions, self.clock)
        self.governor = SendGovernor(self._send, self.clock, cfg.governor, caps, self.activity, self.rng,
                                     outbox=self.outbox)
        self.governor.account_id = cfg.bot.account_id or None
        self.scheduler = Scheduler(sessions, self.clock)
        self.scheduler.shared = cfg.storage.shared
        self.services = Services(cfg, self.clock, self.governor, self.activity, self.scheduler, sessions)
        self.router = CommandRouter()
        hooks = []
        for name in ("bot.optout", *cfg.bot.skills):  # opt-out is built in: no config may leave it out
            skill = load_skill(name)
            self.skills.append(skill)
            self.router.add_skill(skill)
            hooks.extend(skill.hooks)
            for job in skill.jobs:
                self.scheduler.register(job.name, job.handler)
            for prefix, resolver in skill.resolvers.items():
                register_resolver(self.services, prefix, resolver)
        self.dispatcher = Dispatcher(self.services, self.router, hooks, self.errors)
        for skill in self.skills:
            settings = skill_settings(cfg, skill.name, skill.settings) if skill.settings is not None else None
            self.services.skills[skill.name] = SkillRuntime(settings, skill.state() if skill.state else None)
        for skill in self.skills:
            for startup in skill.startups:
                await startup(self.services)
        self.activity.start()
        if not serve:
            return  # a command-line tool: the bot process's outbox is not its to take
        self._serving = True
        if not cfg.storage.shared or cfg.bot.account_id:
            await self._resume_outbox(cfg.bot.account_id or None)
        # Look for jobs other processes wrote (the CSV import; other accounts on a shared database) every minute:
        # live, and in replays on a shared database, where another process's jobs are this one's to take over.
        poll = isinstance(self.clock, RealClock) or cfg.storage.shared
        await self.scheduler.start(self.services, poll_s=60.0 if poll else None)
        # Everything loaded at start (modules, SQLAlchemy's caches, the skills' indexes) lives as long as the
        # process: out of the cyclic collector's reach, its full collections stop re-walking them (they were
        # ~50 ms pauses under load).
        gc.freeze()
        if self._web_wanted and cfg.http.enabled:
            from bot.web.server import WebServer  # aiohttp only where a server is wanted

            web = WebServer(self.services, cfg.http, self.skills)
            try:
                await web.start()
                self.web = web
            except OSError as exc:  # the chat side matters more than the API: run on, say so loudly
                log.error("HTTP server not started on %s:%s: %s (set [http] port, or enabled = false)",
                          cfg.http.host, cfg.http.port, exc.strerror or exc)
                await web.stop()
        log.info("bot started: %d skills, database %s", len(self.skills), self.engine.url.render_as_string())

    def replay_inputs(self) -> dict[str, ReplayInputSpec]:
        """Replay line kinds the loaded skills handle (``order``, say), by kind."""
        return {spec.kind: spec for skill in self.skills for spec in skill.replay_inputs}

    def logged_in(self, bot_id: str | None) -> None:
        self.set_account(bot_id)
        self.governor.on_login()

    def set_account(self, bot_id: str | None) -> None:
        """The account this process speaks as: its own messages are ignored, its rooms noted (storage.shared)."""
        self.services.bot_id = bot_id
        self.activity.account_id = bot_id
        self.governor.account_id = bot_id
        self.scheduler.set_account(bot_id)
        if self._serving and self.config.storage.shared and bot_id and bot_id not in self._resumed:
            # a shared database: which held messages are this process's is known once its account is
            asyncio.get_running_loop().create_task(self._resume_outbox(bot_id, report=True), name="outbox-resume")

    async def _resume_outbox(self, account_id: str | None, report: bool = False) -> None:
        """Hand the messages the last run left waiting back to the governor (see bot/outbox.py)."""
        if account_id in self._resumed:
            return
        self._resumed.add(account_id)
        try:
            entries = await self.outbox.resume(self.activity, account_id, shared=self.config.storage.shared)
        except Exception as exc:
            self._resumed.discard(account_id)
            if not report:
                raise  # at start: the database is not usable, and the start fails as it would anyway
            self.errors(exc, {"during": "outbox resume", "account": account_id})
            return
        self.governor.restore(entries)

    async def settle(self) -> None:
        """Virtual time only: run the clock on until nothing the bot has decided to send is still waiting."""
        clock = self.clock
        assert isinstance(clock, VirtualClock)
        await clock.run_pending()
        while self.governor.busy and (due := clock.next_due()) is not None:
            await clock.advance_to(due)

    async def drain(self, limit_s: float = 15.0) -> None:
        """Live shutdown: close coalescing windows and give what is already decided up to ``limit_s`` to go out."""
        await self.dispatcher.join()
        await self.governor.flush_coalesced()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while self.governor.busy and loop.time() < deadline:
            await asyncio.sleep(0.2)  # real time: the real clock's timers are sending meanwhile

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        await self.dispatcher.join()
        for skill in self.skills:
            for shutdown in skill.shutdowns:
                try:
                    await shutdown(self.services)
                except Exception as exc:  # one skill's cleanup must not keep the others from theirs
                    self.errors(exc, {"during": "shutdown", "skill": skill.name})
        self.scheduler.stop()
        try:
            await self.governor.flush_coalesced()  # open coalescing windows: better early than lost
        except Exception as exc:
            self.errors(exc, {"during": "shutdown", "step": "coalesced messages"})
        await self.clock.aclose()
        waiting = self.governor.keep_all()
        await self.outbox.aclose()
        await self.activity.aclose()
        if waiting:
            log.warning("%d messages were still waiting to be sent at shutdown: kept in the outbox for the next start",
                        waiting)
        if self.engine is not None:
            await self.engine.dispose()
