"""Command line: python -m bot run | console | replay | check-config, plus the subcommands the enabled skills
declare (``lottery verify``, ``orders import``, ``kb check``, ...)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from bot.app import BotApp
from bot.clean import parse_instant
from bot.clock import RealClock
from bot.config import Config, ConfigError, Secrets, load_config
from bot.http import FieldError

log = logging.getLogger("bot")


def _setup_logging(level: str) -> None:
    logging.basicConfig(level=getattr(logging, level.upper(), logging.INFO), stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    for noisy in ("sqlalchemy", "aiosqlite", "alembic", "asyncio"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def console_log_file(config: Config) -> Path:
    """Where the console's logs go: ``BOT_LOG_FILE``, else bot.log next to the SQLite database (data/bot.log by
    default), else data/bot.log."""
    if os.environ.get("BOT_LOG_FILE"):
        return Path(os.environ["BOT_LOG_FILE"])
    from sqlalchemy.engine import make_url

    url = make_url(config.storage.url)
    if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
        return Path(url.database).parent / "bot.log"
    return Path("data") / "bot.log"


def _log_to_file(path: Path) -> None:
    """The console's terminal is the chat: every log line goes to ``path`` instead (tracebacks included)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    root = logging.getLogger()
    level = root.level
    for handler in list(root.handlers):
        root.removeHandler(handler)
    handler = logging.FileHandler(path, encoding="utf-8")
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)


# -- live -----------------------------------------------------------------------------------------------------------

async def run_console(config: Config, web: bool = False, log_file: Path | None = None) -> int:
    from bot.transports.console import ConsoleLogNote, ConsoleTransport

    clock = RealClock(config.tz)
    console = ConsoleTransport(config, clock)
    if log_file is not None:
        console.note(f"日志写在 {log_file}，这里只提示警告")
        logging.getLogger().addHandler(ConsoleLogNote(console, str(log_file)))
    app = BotApp(config, clock, console.send, web=web, transport_name="console")
    await app.start()
    app.set_account(config.bot.account_id or console.self_id)

    async def sink(event) -> None:
        app.dispatcher.submit(event)

    await console.start(sink)
    typing = asyncio.create_task(console.show_typing(lambda: app.dispatcher.busy or app.governor.busy),
                                 name="console-typing")
    try:
        await console.run(sink)
        await app.drain()
    finally:
        typing.cancel()
        await asyncio.gather(typing, return_exceptions=True)
        await app.stop()
    return 0


async def run_bridge(config: Config, url: str, token: str, secret: str) -> int:
    """On a bridge provider (docs/operators/going-live.md#bridge-providers): calls to it over HTTP, its events
    into our HTTP server at POST /bridge/events."""
    from bot.transports.bridge_wiring import start_bridge_bot

    if not config.http.enabled:
        log.error("the bridge provider posts its events to the bot's HTTP server: set [http] enabled = true")
        return 1
    if not url.startswith(("http://", "https://")):
        log.error("BOT_BRIDGE_URL must be an http:// or https:// URL")
        return 1
    bot = await start_bridge_bot(config, RealClock(config.tz), url, token, secret)
    try:
        if bot.app.web is None:
            log.error("the HTTP server did not start: the bridge provider's events cannot reach the bot")
            return 1
        log.info("on the bridge provider %s; its events go to http://%s:%s/bridge/events", bot.transport.origin,
                 config.http.host, bot.app.web.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await bot.app.drain()
    finally:
        await bot.stop()
    return 0


async def run_wecom(config: Config) -> int:
    """On WeCom (docs/operators/wecom.md): its callbacks into our HTTP server at /wecom/callback, its API out."""
    from bot.transports.wecom.wiring import WeComSecrets, start_wecom_bot

    w = config.wecom
    values = {name: os.environ.get(name) or "" for name in (w.secret_env, w.callback_token_env,
                                                             w.encoding_aes_key_env)}
    missing = [name for name, value in values.items() if not value]
    if missing:
        log.error("[wecom] is enabled but %s %s not set (docs/operators/wecom.md)", " and ".join(missing),
                  "is" if len(missing) == 1 else "are")
        return 1
    if not config.http.enabled:
        log.error("WeCom posts its callbacks to the bot's HTTP server: set [http] enabled = true")
        return 1
    try:
        bot = await start_wecom_bot(config, RealClock(config.tz), WeComSecrets(
            values[w.secret_env], values[w.callback_token_env], values[w.encoding_aes_key_env]))
    except ValueError as exc:  # a malformed EncodingAESKey: said without echoing it
        log.error("WeCom settings: %s", exc)
        return 1
    try:
        if bot.app.web is None:
            log.error("the HTTP server did not start: WeCom's callbacks cannot reach the bot")
            return 1
        log.info("on WeCom (corp %s); its callback URL is http(s)://<your host>/wecom/callback (this process: "
                 "http://%s:%s)", w.corp_id, config.http.host, bot.app.web.port)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        await bot.app.drain()
    finally:
        await bot.stop()
    return 0


async def run_wechaty(config: Config, endpoint: str, token: str | None, token_var: str) -> int:
    from bot.transports.wechaty_transport import WechatyTransport

    if not token:
        log.error("a Wechaty puppet service is configured (%s) but %s is not set", endpoint, token_var)
        return 1
    clock = RealClock(config.tz)
    app: BotApp | None = None

    def logged_in(bot_id: str) -> None:  # every (re)login: set our id and restart the governor's warm-up
        if app is not None:
            app.logged_in(bot_id)

    def logged_out(reason: str) -> None:
        if app is not None:
            app.health.logged_out(reason)

    def login_needed(qr_url: str | None) -> None:
        if app is not None:
            app.health.login_needed(qr_url)

    transport = WechatyTransport(endpoint=endpoint, token=token, clock_now=clock.now, on_login=logged_in,
                                 on_logout=logged_out, on_login_needed=login_needed)
    app = BotApp(config, clock, transport.send, web=True, transport_name="wechaty")
    await app.start()

    async def sink(event) -> None:
        app.health.saw_event()  # the last event from the platform (the dashboard's account page)
        app.dispatcher.submit(event)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # Login may wait for a QR scan for a long time: a signal must still stop us.
    starting = asyncio.create_task(transport.start(sink), name="wechaty-start")
    stopping = asyncio.create_task(stop.wait(), name="stop-signal")
    try:
        done, _ = await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting in done:
            starting.result()  # raises if the gateway refused us
            log.info("logged in as %s", transport.self_id)
            await stopping
            await app.drain()
    finally:
        for task in (starting, stopping):
            task.cancel()
        await asyncio.gather(starting, stopping, return_exceptions=True)
        await transport.stop()
        await app.stop()
    return 0


def _db_url(db: str | None) -> str | None:
    return f"sqlite+aiosqlite:///{db}" if db and "://" not in db else db  # a plain path means an SQLite file


# -- entry point ----------------------------------------------------------------------------------------------------

def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    # The config names the skills, and the skills add subcommands: read --config before the full parse.
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--config", default="config.toml")
    pre.add_argument("--log-level", default=os.environ.get("BOT_LOG_LEVEL", "INFO"))
    early, _ = pre.parse_known_args(argv)
    _setup_logging(early.log_level)
    try:
        # a missing --config file is an error; the default config.toml may be absent (check-config insists)
        config = load_config(early.config, must_exist=True if "check-config" in argv else None)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1

    parser = argparse.ArgumentParser(prog="python -m bot", description="WeChat community-group bot")
    parser.add_argument("--log-level", default=os.environ.get("BOT_LOG_LEVEL", "INFO"))
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in (("run", "run on WeChat: on a bridge provider (BOT_BRIDGE_URL) or a Wechaty puppet "
                               "service when one is configured, else in the console"),
                       ("console", "chat with the bot in this terminal"),
                       ("check-config", "validate config.toml and exit")):
        p = sub.add_parser(name, help=text)
        p.add_argument("--config", default="config.toml")
    p = sub.add_parser("replay", help="run a JSONL script of events on a virtual clock; actions to stdout")
    p.add_argument("events", help="EVENTS.jsonl, or - for standard input")
    p.add_argument("--config", default="config.toml")
    p.add_argument("--db", default=None, help="database URL (overrides the config)")
    p.add_argument("--until", default=None, help="ISO 8601 instant to keep the clock running to")
    skill_commands = {}
    if not any(a in ("check-config",) for a in argv):  # a broken skill must not stop check-config from saying so
        from bot.app import load_skill

        for skill_name in config.bot.skills:
            try:
                skill = load_skill(skill_name)
            except (ImportError, RuntimeError):
                continue  # `run` and check-config report it
            for spec in skill.cli_commands:
                p = sub.add_parser(spec.name, help=spec.help)
                if spec.arguments is not None:
                    spec.arguments(p)
                p.add_argument("--config", default="config.toml")
                p.add_argument("--db", default=None, help="database URL or SQLite file (overrides the config)")
                skill_commands[spec.name] = spec
    args = parser.parse_args(argv)
    if args.command == "check-config":
        from bot.app import check_skills

        problems = check_skills(config)
        if problems:
            print(ConfigError(config.path, problems), file=sys.stderr)
            return 1
        print(f"{args.config}: OK")
        return 0
    if args.command in skill_commands:
        from bot.cli import CliContext

        return asyncio.run(skill_commands[args.command].run(CliContext(args, config, _db_url(args.db))))
    if args.command == "replay":
        until = None
        if args.until:
            try:
                until = parse_instant(args.until, "--until")
            except FieldError as exc:
                print(f"{exc} (an ISO 8601 time with offset)", file=sys.stderr)
                return 1
        db = _db_url(args.db)
        from bot.replayer import read_lines, run_replay

        try:
            lines = read_lines(args.events)
        except OSError as exc:
            print(f"{args.events}: cannot read it ({exc.strerror or exc})", file=sys.stderr)
            return 1
        return asyncio.run(run_replay(config, lines, db_url=db, until=until))
    if args.command == "console":
        log_file = console_log_file(config)
        _log_to_file(log_file)
        return asyncio.run(run_console(config, log_file=log_file))
    secrets = Secrets()
    if args.command == "run" and config.wecom.enabled:  # the WeCom mode, chosen in config.toml
        return asyncio.run(run_wecom(config))
    if args.command == "run":
        bridge_url, bridge_token, bridge_secret = secrets.bridge()
        if bridge_url:  # the bridge wins over a Wechaty endpoint and over the console
            missing = [name for name, value in ((secrets.bridge_token_var, bridge_token),
                                                (secrets.bridge_secret_var, bridge_secret)) if not value]
            if missing:
                print(f"{secrets.bridge_url_var} is set, so the bot would run on the bridge, but "
                      f"{' and '.join(missing)} {'is' if len(missing) == 1 else 'are'} not set "
                      "(the provider's token and the events' signing secret; see docs/operators/going-live.md)",
                      file=sys.stderr)
                return 1
            return asyncio.run(run_bridge(config, bridge_url, bridge_token, bridge_secret))
    endpoint = os.environ.get(secrets.puppet_endpoint_var) or config.wechaty.endpoint
    if endpoint:
        return asyncio.run(run_wechaty(config, endpoint, secrets.puppet_token(), secrets.puppet_token_var))
    if args.command == "run" and not sys.stdin.isatty():
        # e.g. a container without -it: the console would read end-of-file and quit; say what to set instead.
        print(f"nothing to connect to: set {secrets.puppet_endpoint_var} and {secrets.puppet_token_var} (a Wechaty "
              f"gateway) or {secrets.bridge_url_var}, {secrets.bridge_token_var} and {secrets.bridge_secret_var} "
              "(a bridge provider); see docs/operators/going-live.md. The console needs a terminal "
              "(python -m bot console, or docker run -it).", file=sys.stderr)
        return 2
    log_file = console_log_file(config)
    _log_to_file(log_file)
    log.info("no Wechaty puppet service configured: starting the console (set %s to connect to WeChat)",
             secrets.puppet_endpoint_var)
    return asyncio.run(run_console(config, web=args.command == "run", log_file=log_file))


if __name__ == "__main__":
    sys.exit(main())
