"""Load and validate config.toml into typed, frozen settings.

Every problem is reported with the file, the key and what is wrong, all at once, so an operator fixes the
file in one go. Secrets never live here: they are read from the environment by name (see ``Secrets``).
"""

from __future__ import annotations

import dataclasses
import difflib
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from datetime import time
from pathlib import Path
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

T = typing.TypeVar("T")


class ConfigError(Exception):
    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def __str__(self) -> str:
        return "\n".join(f"{self.path}: {p}" for p in self.problems)


@dataclass(frozen=True)
class BotSettings:
    name: str = "小助手"  # how the bot refers to itself in replies
    timezone: str = "Asia/Shanghai"
    admins: tuple[str, ...] = ()  # global admins: stable WeChat ids, never display names
    # modules under skills/, in order
    skills: tuple[str, ...] = ("ping", "welcome", "checkin", "lottery", "schedule", "orders", "faq", "tiers")
    # The bot's own WeChat id for replay and console runs (live, it is the logged-in account's id). Set one per
    # process when several accounts replay against one database.
    account_id: str = ""


@dataclass(frozen=True)
class RoomSettings:
    admins: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageSettings:
    url: str = "sqlite+aiosqlite:///data/bot.db"
    # Several bot processes (one per WeChat account) share this database (PostgreSQL): a room's jobs (lottery
    # draws, group-buy cut-offs) then run only in a process whose account is in that room.
    shared: bool = False


@dataclass(frozen=True)
class ActivitySettings:
    chatter_text: bool = False  # keep the full text of ordinary group chatter (off: kind and length only)
    flush_interval_s: float = 1.0  # the most a crash can lose
    flush_max_rows: int = 1000


@dataclass(frozen=True)
class QuietHours:
    start: time = time(22, 0)
    end: time = time(8, 0)


@dataclass(frozen=True)
class KindPolicy:
    """What the governor does with one kind of proactive message."""

    quiet_hours: str = "defer"  # "defer" to the end of quiet hours, or "drop"
    max_delay_s: float = 12 * 3600  # still unsent this long after it was decided: dropped as stale


@dataclass(frozen=True)
class GovernorSettings:
    min_interval_s: float = 1.0  # between any two sends
    jitter_s: float = 1.0  # random extra wait, 0..jitter_s, so the rhythm doesn't look robotic
    chat_switch_interval_s: float = 3.0  # when the next send goes to a different chat than the last
    per_chat_interval_s: float = 1.0  # between two sends to the same chat
    max_per_minute: int = 30  # overall; community practice says ≤ 40
    warmup_s: float = 600.0  # after login, pacing is slower...
    warmup_factor: float = 2.0  # ...by this factor
    backoff_initial_s: float = 60.0  # first pause after a risk-control error; doubles each time
    backoff_max_s: float = 3600.0
    retry_attempts: int = 3  # retries after an ordinary send failure (so 4 tries in all)
    reply_max_delay_s: float = 600.0  # a reply still unsent after this (back-off) is dropped: late answers confuse
    quiet_hours: QuietHours = QuietHours()
    light: KindPolicy = KindPolicy()
    promotional: KindPolicy = KindPolicy(quiet_hours="drop", max_delay_s=3600.0)
    transactional: KindPolicy = KindPolicy(quiet_hours="defer", max_delay_s=12 * 3600)
    room_daily_caps: dict[str, int] = field(default_factory=lambda: {"total": 3, "promotional": 1})
    member_daily_caps: dict[str, int] = field(default_factory=lambda: {"total": 1, "promotional": 1})
    # Gentleness in groups: light and promotional messages to one room are at least this far apart (transactional
    # ones are never held, but they count as the room's last proactive message).
    room_min_gap_s: float = 5400.0
    # A room with lively_messages member messages within lively_window_s is in a conversation: a scheduled
    # message waits for it to calm down, at most lively_max_defer_s, so the bot doesn't cut in.
    lively_messages: int = 6  # 0: off
    lively_window_s: float = 300.0
    lively_max_defer_s: float = 1800.0


@dataclass(frozen=True)
class WechatySettings:
    endpoint: str = ""  # host:port of a Wechaty puppet service; empty → console. Token: env only.


@dataclass(frozen=True)
class DashboardSettings:
    """The operators' web dashboard (bot/web/dashboard.py), served under /dashboard by the bot's web server."""

    token_env: str = "DASHBOARD_TOKEN"  # the environment variable holding the login token (unset: dashboard off)
    chart_days: int = 30  # days shown on the overview's charts
    page_size: int = 50  # rows per page of member search


@dataclass(frozen=True)
class HttpSettings:
    """The bot's aiohttp server (health check, orders API), started by `python -m bot run`."""

    enabled: bool = True
    host: str = "127.0.0.1"  # keep it private; put a TLS proxy in front for the outside world
    port: int = 8080
    token_env: str = "BOT_API_TOKEN"  # environment variable holding the bearer token for /api/*
    hmac_secret_env: str = "BOT_API_HMAC_SECRET"  # ...or the secret for X-Signature: sha256=<hex of body HMAC>
    max_body_bytes: int = 1024 * 1024


@dataclass(frozen=True)
class Config:
    path: str = "config.toml"
    bot: BotSettings = BotSettings()
    storage: StorageSettings = StorageSettings()
    activity: ActivitySettings = ActivitySettings()
    governor: GovernorSettings = GovernorSettings()
    wechaty: WechatySettings = WechatySettings()
    dashboard: DashboardSettings = DashboardSettings()
    http: HttpSettings = HttpSettings()
    rooms: dict[str, RoomSettings] = field(default_factory=dict)
    # Sections owned by skills, kept raw: each skill validates its own.
    skills: dict[str, dict] = field(default_factory=dict)

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.bot.timezone)

    def is_admin(self, user_id: str, room_id: str | None = None) -> bool:
        """The one permission check: stable ids from config, global or for this room."""
        if user_id in self.bot.admins:
            return True
        room = self.rooms.get(room_id) if room_id else None
        return room is not None and user_id in room.admins


@dataclass(frozen=True)
class Secrets:
    """Secrets come from the environment only; this says which variable holds what."""

    puppet_token_var: str = "WECHATY_PUPPET_SERVICE_TOKEN"
    puppet_endpoint_var: str = "WECHATY_PUPPET_SERVICE_ENDPOINT"

    def puppet_token(self) -> str | None:
        return os.environ.get(self.puppet_token_var) or None


_SECRET_KEY = re.compile(r"(token|secret|password|api_key|apikey)$", re.IGNORECASE)
_HHMM = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def load_config(path: str | os.PathLike[str] = "config.toml", *, must_exist: bool = False) -> Config:
    p = Path(path)
    if not p.exists():
        if must_exist:
            raise ConfigError(str(p), ["file not found"])
        return Config(path=str(p))
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return parse_config(raw, str(p))


def parse_config(raw: dict, path: str = "config.toml") -> Config:
    problems: list[str] = []
    raw = dict(raw)
    skills_raw = raw.pop("skills", {})
    if not isinstance(skills_raw, dict):
        problems.append("[skills]: must be a table of per-skill tables")
        skills_raw = {}
    rooms_raw = raw.pop("rooms", {})
    rooms: dict[str, RoomSettings] = {}
    if not isinstance(rooms_raw, dict):
        problems.append("[rooms]: must be a table keyed by room id")
    else:
        for room_id, room_raw in rooms_raw.items():
            rooms[room_id] = _build(RoomSettings, room_raw, f'rooms."{room_id}"', problems)
    cfg_fields = {f.name for f in dataclasses.fields(Config)} - {"path", "rooms", "skills"}
    values = {}
    for key, value in raw.items():
        if key not in cfg_fields:
            problems.append(_unknown(key, "", cfg_fields))
            continue
        f_type = typing.get_type_hints(Config)[key]
        values[key] = _build(f_type, value, key, problems)
    _scan_for_secrets(raw, "", problems)
    cfg = Config(path=path, rooms=rooms, skills=dict(skills_raw), **values)
    try:
        ZoneInfo(cfg.bot.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        problems.append(f"bot.timezone: unknown time zone {cfg.bot.timezone!r} (e.g. \"Asia/Shanghai\")")
    if "://" not in cfg.storage.url:
        problems.append(f"storage.url: {cfg.storage.url!r} is not an SQLAlchemy URL (e.g. sqlite+aiosqlite:///data/bot.db)")
    elif cfg.storage.shared and cfg.storage.url.startswith("sqlite"):
        problems.append("storage.shared: several bot processes need PostgreSQL (SQLite has one writer, one process)")
    elif not cfg.storage.url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        problems.append("storage.url: use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB "
                        f"(the supported async backends), not {cfg.storage.url.split('://')[0]!r}")
    for kind in ("light", "promotional", "transactional"):
        policy = getattr(cfg.governor, kind)
        if policy.quiet_hours not in ("defer", "drop"):
            problems.append(f'governor.{kind}.quiet_hours: must be "defer" or "drop", not {policy.quiet_hours!r}')
    for table in ("room_daily_caps", "member_daily_caps"):
        for k in getattr(cfg.governor, table):
            if k not in ("total", "light", "promotional"):
                problems.append(f"governor.{table}.{k}: unknown kind (use total, light or promotional)")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", cfg.dashboard.token_env):
        problems.append(f"dashboard.token_env: the name of an environment variable, not {cfg.dashboard.token_env!r}")
    if not 1 <= cfg.dashboard.chart_days <= 366:
        problems.append("dashboard.chart_days: must be between 1 and 366")
    if not 1 <= cfg.dashboard.page_size <= 500:
        problems.append("dashboard.page_size: must be between 1 and 500")
    if cfg.governor.lively_messages == 1:
        problems.append("governor.lively_messages: 0 (off) or at least 2 (1 would call every room lively)")
    if cfg.http.port > 65535:
        problems.append(f"http.port: must be a port number (0 picks a free one), not {cfg.http.port}")
    if problems:
        raise ConfigError(path, problems)
    return cfg


def _unknown(key: str, where: str, known: set[str]) -> str:
    full = f"{where}.{key}" if where else key
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{full}: unknown setting{hint}"


def _scan_for_secrets(raw: dict, where: str, problems: list[str]) -> None:
    for key, value in raw.items():
        full = f"{where}.{key}" if where else key
        if isinstance(value, dict):
            _scan_for_secrets(value, full, problems)
        elif _SECRET_KEY.search(key):
            problems.append(f"{full}: secrets are not read from files; set them in the environment")


def _field_default(f: dataclasses.Field) -> typing.Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:
        return f.default_factory()
    return None


def _build(tp: typing.Any, value: typing.Any, where: str, problems: list[str], default: typing.Any = None) -> typing.Any:
    """Coerce ``value`` to ``tp``; on a problem, record it and return the type's default.

    A nested table only overrides the keys it names: the rest keep the parent's defaults.
    """
    origin = typing.get_origin(tp)
    if dataclasses.is_dataclass(tp):
        base = default if default is not None else tp()
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a table")
            return base
        hints = typing.get_type_hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp)}
        kwargs = {}
        for key, item in value.items():
            if key not in fields:
                problems.append(_unknown(key, where, set(fields)))
                continue
            kwargs[key] = _build(hints[key], item, f"{where}.{key}", problems, getattr(base, key))
        return dataclasses.replace(base, **kwargs)
    if tp is time:
        if isinstance(value, time):
            return value
        if isinstance(value, str) and (m := _HHMM.match(value.strip())):
            return time(int(m.group(1)), int(m.group(2)))
        problems.append(f'{where}: must be a time like "22:00", not {value!r}')
        return time(0, 0)
    if tp is bool:
        if isinstance(value, bool):
            return value
        problems.append(f"{where}: must be true or false, not {value!r}")
        return False
    if tp is int:
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
        problems.append(f"{where}: must be a whole number ≥ 0, not {value!r}")
        return 0
    if tp is float:
        if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
            return float(value)
        problems.append(f"{where}: must be a number ≥ 0, not {value!r}")
        return 0.0
    if tp is str:
        if isinstance(value, str):
            return value
        problems.append(f"{where}: must be a string, not {value!r}")
        return ""
    if origin is tuple:
        (item_tp, _) = typing.get_args(tp)
        if not isinstance(value, list):
            problems.append(f"{where}: must be a list")
            return ()
        return tuple(_build(item_tp, v, f"{where}[{i}]", problems) for i, v in enumerate(value))
    if origin is dict:
        _, val_tp = typing.get_args(tp)
        if not isinstance(value, dict):
            problems.append(f"{where}: must be a table")
            return {}
        return {k: _build(val_tp, v, f"{where}.{k}", problems) for k, v in value.items()}
    if origin in (types.UnionType, typing.Union):  # pragma: no cover - no optional settings yet
        return value
    raise TypeError(f"unsupported setting type {tp!r} at {where}")


def skill_settings(config: Config, skill: str, schema: type[T]) -> T:
    """A skill's own ``[skills.NAME]`` table as the typed, frozen ``schema`` dataclass, validated like the rest:
    unknown keys and wrong types are a ConfigError naming the file and the key."""
    problems: list[str] = []
    raw = config.skills.get(skill, {})
    try:
        settings = _build(schema, raw, f"skills.{skill}", problems)
    except ValueError as exc:  # the schema's own checks (__post_init__), e.g. a template's placeholders
        problems.append(f"skills.{skill}.{exc}")
        settings = None
    if problems:
        raise ConfigError(config.path, problems)
    return settings
