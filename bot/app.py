"""The application: wires config, storage, clock, activity store, governor, scheduler, skills and dispatcher.

Transports are handed in by the entry point; nothing here imports a concrete one.
"""

from __future__ import annotations

import asyncio
import gc
import importlib
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from sqlalchemy.ext.asyncio import AsyncEngine

from bot.activity import ActivityLog
from bot.alerts import AlertSender
from bot.caps import CapStore
from bot.clock import Clock, RealClock, VirtualClock
from bot.commands import CommandRouter
from bot.config import Config, ConfigError, skill_settings
from bot.context import Services, SkillRuntime
from bot.dispatcher import Dispatcher
from bot.governor import SendFn, SendGovernor
from bot.health import SessionHealth
from bot.outbox import Outbox
from bot.scheduler import Scheduler
from bot.skill import ReplayInputSpec, Skill
from bot.targets import register_resolver
from storage.db import create_engine, migrate, session_factory

if TYPE_CHECKING:
    from bot.web.server import BridgeReceiver

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


REPEAT_WINDOW_S = 60.0


@dataclass
class _Repeats:
    logged_at: float  # when this error was last written to the log
    seen_at: float
    since_logged: int = 0  # occurrences not logged since then


@dataclass
class ErrorLog:
    """The one error hook: every exception from handlers, timers and jobs lands here, logged with context.

    The same error (exception type and the line that raised it) repeating is logged once a minute with a count:
    the first time with its traceback, then "... (repeated N times in the last 60 s)". A database that is full
    otherwise fails every event with the same traceback, thousands a second. ``now`` gives seconds (monotonic by
    default; tests inject their own).
    """

    now: Callable[[], float] = time.monotonic
    window_s: float = REPEAT_WINDOW_S
    count: int = 0
    _repeats: dict[tuple[str, str], _Repeats] = field(default_factory=dict)

    def __call__(self, exc: BaseException, context: dict) -> None:
        self.count += 1
        key = (type(exc).__qualname__, _raised_at(exc))
        now = self.now()
        where = " ".join(f"{k}={v!r}" for k, v in context.items())
        r = self._repeats.get(key)
        if r is None or (r.since_logged == 0 and now - r.seen_at >= self.window_s):
            if len(self._repeats) >= 1000:  # distinct errors are few; a bound all the same
                self.report_repeats()
                self._repeats.clear()
            self._repeats[key] = _Repeats(now, now)
            log.error("error in %s", where, exc_info=exc)
            return
        r.seen_at = now
        if now - r.logged_at < self.window_s:
            r.since_logged += 1
            return
        repeated, elapsed = r.since_logged, now - r.logged_at
        r.since_logged, r.logged_at = 0, now
        log.error("error in %s: %s at %s (repeated %d times in the last %.0f s)", where, key[0], key[1], repeated,
                  elapsed)

    def report_repeats(self) -> None:
        """Log the counts not logged yet (at shutdown: the last minute's repeats would go unsaid)."""
        for (name, at), r in self._repeats.items():
            if r.since_logged:
                log.error("error %s at %s repeated %d more times", name, at, r.since_logged)
                r.since_logged = 0


def _raised_at(exc: BaseException) -> str:
    """file:line of the innermost frame: where the exception was raised."""
    tb = exc.__traceback__
    if tb is None:
        return "?"
    while tb.tb_next is not None:
        tb = tb.tb_next
    return f"{tb.tb_frame.f_code.co_filename}:{tb.tb_lineno}"


class BotApp:
    def __init__(
        self, config: Config, clock: Clock, send: SendFn, *, db_url: str | None = None,
        rng: random.Random | None = None, web: bool = False,
        bridge: Callable[[BotApp], BridgeReceiver] | None = None, transport_name: str = "",
    ) -> None:
        self.config = config
        self.transport_name = transport_name
        self.clock = clock
        self._send = send
        self.db_url = db_url or config.storage.url
        self.rng = rng or random.Random()
        self.errors = ErrorLog()
        self.engine: AsyncEngine | None = None
        self.skills: list[Skill] = []
        self._web_wanted = web  # start the HTTP server (config [http]) with the bot: `python -m bot run`
        self.web = None  # bot.web.server.WebServer once started
        # Made at start, once the dispatcher exists: the bridge's events endpoint, served by the HTTP server.
        self._bridge_factory = bridge
        self.bridge: BridgeReceiver | None = None
        # Whether the account can send, for every transport; one alert per incident ([alerts]). A transport
        # whose platform sends heartbeats sets health.silence_s before start.
        self.health = SessionHealth(clock, AlertSender(config.alerts).send, bot_name=config.bot.name,
                                    on_online=self._resume_sending, wecom=config.wecom.enabled)
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
        self.governor = SendGovernor(self.health.watch(self._send), self.clock, cfg.governor, caps, self.activity,
                                     self.rng, outbox=self.outbox)
        self.governor.account_id = cfg.bot.account_id or None
        self.scheduler = Scheduler(sessions, self.clock)
        self.scheduler.shared = cfg.storage.shared
        self.services = Services(cfg, self.clock, self.governor, self.activity, self.scheduler, sessions,
                                 transport_name=self.transport_name)
        self.router = CommandRouter()
        hooks = []
        # opt-out and the members' own data requests are built in: no config may leave them out
        for name in ("bot.optout", "bot.privacy", *cfg.bot.skills):
            skill = load_skill(name)
            self.skills.append(skill)
            self.router.add_skill(skill)
            hooks.extend(skill.hooks)
            for job in skill.jobs:
                self.scheduler.register(job.name, job.handler)
            for prefix, resolver in skill.resolvers.items():
                register_resolver(self.services, prefix, resolver)
            self.services.target_labels.update(skill.target_labels)
            self.services.member_data.extend(skill.member_data_specs)
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
        await self.health.restore(sessions, cfg.bot.account_id or None)
        self.health.start()
        if self._bridge_factory is not None:
            self.bridge = self._bridge_factory(self)
            await self.bridge.start()
        if self._web_wanted and cfg.http.enabled:
            from bot.web.server import WebServer  # aiohttp only where a server is wanted

            web = WebServer(self.services, cfg.http, self.skills, self.bridge, self.health)
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
        """Every (re)login: our id, the health monitor (an incident ends), the governor's warm-up and release."""
        self.set_account(bot_id)
        self.health.logged_in(bot_id)

    def _resume_sending(self) -> None:
        governor = getattr(self, "governor", None)  # None before start: nothing is queued yet
        if governor is not None:
            governor.on_login()

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
        """Live shutdown: close coalescing windows and give what is already decided up to ``limit_s`` to go out
        (not while the account is offline: nothing would; the outbox keeps it for the next start)."""
        await self.dispatcher.join()
        await self.governor.flush_coalesced()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limit_s
        while (self.governor.busy and not self.governor.offline and not self.health.offline
               and loop.time() < deadline):
            await asyncio.sleep(0.2)  # real time: the real clock's timers are sending meanwhile

    async def stop(self) -> None:
        if self.web is not None:
            await self.web.stop()
        if self.bridge is not None:
            await self.bridge.stop()
        await self.dispatcher.join()
        for skill in self.skills:
            for shutdown in skill.shutdowns:
                try:
                    await shutdown(self.services)
                except Exception as exc:  # one skill's cleanup must not keep the others from theirs
                    self.errors(exc, {"during": "shutdown", "skill": skill.name})
        self.scheduler.stop()
        await self.health.stop()
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
        self.errors.report_repeats()
