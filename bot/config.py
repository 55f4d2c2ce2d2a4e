"""Load and validate config.toml into typed, frozen settings.

Every problem is reported with the file, the key and what is wrong, all at once, so an operator fixes the
file in one go. Secrets never live here: they are read from the environment by name (see ``Secrets``).

The settings are plain frozen dataclasses (code builds and ``dataclasses.replace``-s them freely); pydantic
validates a TOML table into them. Its core schema is tightened once per settings class (``_tighten``) so that
every setting, the skills' own dataclasses included, follows the same rules: no coercion ("5" is not a number,
1 is not true), whole numbers 0..2**31-1 (they end up in int32 columns), numbers ≥ 0 and finite, unknown keys
refused. Checks that belong to one setting sit on its field as ``Annotated`` validators.
"""

from __future__ import annotations

import copy
import dataclasses
import difflib
import functools
import os
import pkgutil
import re
import tomllib
import typing
from dataclasses import dataclass, field
from datetime import time
from importlib.util import find_spec
from pathlib import Path
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BeforeValidator, Field, TypeAdapter, ValidationError
from pydantic_core import PydanticCustomError, SchemaValidator

from bot.timefmt import parse_hhmm

T = typing.TypeVar("T")

DEFAULT_PATH = "config.toml"
INT32_MAX = 2**31 - 1


class ConfigError(Exception):
    def __init__(self, path: str, problems: list[str]) -> None:
        self.path = path
        self.problems = problems
        super().__init__(f"{path}: " + "; ".join(problems))

    def __str__(self) -> str:
        return "\n".join(f"{self.path}: {p}" for p in self.problems)


# -- checks of single settings (pydantic validators; the message is reported after "file: key.path: ") ------------

def _refuse(problem: str, key: str | None = None) -> typing.NoReturn:
    """A setting's problem; ``key`` names the sub-key when a whole table is checked."""
    raise PydanticCustomError("setting", "{problem}", {"problem": problem, **({"key": key} if key else {})})


def _hhmm(value: typing.Any) -> typing.Any:
    if isinstance(value, time):
        return value
    if isinstance(value, str) and (parsed := parse_hhmm(value)) is not None:
        return parsed
    _refuse(f'must be a time like "22:00", not {value!r}')


def _timezone(name: str) -> str:
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):  # OSError: "Asia" is a folder, a long name too long
        _refuse(f'unknown time zone {name!r} (e.g. "Asia/Shanghai")')
    return name


def _distinct(names: tuple[str, ...]) -> tuple[str, ...]:
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        _refuse(f"{twice[0]!r} is listed twice")
    return names


def _storage_url(url: str) -> str:
    if "://" not in url:
        _refuse(f"{url!r} is not an SQLAlchemy URL (e.g. sqlite+aiosqlite:///data/bot.db)")
    if not url.startswith(("sqlite+aiosqlite://", "postgresql+asyncpg://")):
        _refuse("use sqlite+aiosqlite:///PATH or postgresql+asyncpg://USER@HOST/DB (the supported async backends), "
                f"not {url.split('://')[0]!r}")
    return url


def _quiet_hours_policy(value: str) -> str:
    if value not in ("defer", "drop"):
        _refuse(f'must be "defer" or "drop", not {value!r}')
    return value


def _cap_kind(kind: str) -> str:
    if kind not in ("total", "light", "promotional"):
        _refuse("unknown kind (use total, light or promotional)")
    return kind


def _lively_messages(n: int) -> int:
    if n == 1:
        _refuse("0 (off) or at least 2 (1 would call every room lively)")
    return n


def _between(low: int, high: int) -> AfterValidator:
    def check(n: int) -> int:
        if not low <= n <= high:
            _refuse(f"must be between {low} and {high}")
        return n
    return AfterValidator(check)


def _port(n: int) -> int:
    if n > 65535:
        _refuse(f"must be a port number (0 picks a free one), not {n}")
    return n


# -- the settings ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class BotSettings:
    name: str = "小助手"  # how the bot refers to itself in replies
    timezone: Annotated[str, AfterValidator(_timezone)] = "Asia/Shanghai"
    admins: tuple[str, ...] = ()  # global admins: stable WeChat ids, never display names
    # modules under skills/, in order
    skills: Annotated[tuple[str, ...], AfterValidator(_distinct)] = (
        "ping", "welcome", "checkin", "lottery", "schedule", "orders", "faq", "tiers")
    # The bot's own WeChat id for replay and console runs (live, it is the logged-in account's id). Set one per
    # process when several accounts replay against one database.
    account_id: str = ""
    # The people who act on what the bot can't do itself (a member's question nobody answered, a redemption to hand
    # out): stable ids told 1-on-1, and/or one operators' room where the whole team sees it.
    operators: tuple[str, ...] = ()
    operators_room: str = ""


@dataclass(frozen=True)
class RoomSettings:
    admins: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class StorageSettings:
    url: Annotated[str, AfterValidator(_storage_url)] = "sqlite+aiosqlite:///data/bot.db"
    # Several bot processes (one per WeChat account) share this database (PostgreSQL): a room's jobs (lottery
    # draws, group-buy cut-offs) then run only in a process whose account is in that room.
    shared: bool = False


def _storage(s: StorageSettings) -> StorageSettings:
    if s.shared and s.url.startswith("sqlite"):
        _refuse("several bot processes need PostgreSQL (SQLite has one writer, one process)", key="shared")
    return s


@dataclass(frozen=True)
class ActivitySettings:
    chatter_text: bool = False  # keep the full text of ordinary group chatter (off: kind and length only)
    # the most a crash can lose; the flush loop sleeps this long, so a tiny value keeps a core busy
    flush_interval_s: Annotated[float, Field(ge=0.05)] = 1.0
    flush_max_rows: Annotated[int, Field(ge=1)] = 1000


@dataclass(frozen=True)
class QuietHours:
    start: Annotated[time, BeforeValidator(_hhmm)] = time(22, 0)
    end: Annotated[time, BeforeValidator(_hhmm)] = time(8, 0)


@dataclass(frozen=True)
class KindPolicy:
    """What the governor does with one kind of proactive message."""

    # "defer" to the end of quiet hours, or "drop"
    quiet_hours: Annotated[str, AfterValidator(_quiet_hours_policy)] = "defer"
    max_delay_s: float = 12 * 3600  # still unsent this long after it was decided: dropped as stale


_CapKind = Annotated[str, AfterValidator(_cap_kind)]


@dataclass(frozen=True)
class GovernorSettings:
    # The pacing intervals may be 0 (tests run without pacing); the back-off may not: 0 would keep sending
    # straight into the platform's risk control.
    min_interval_s: float = 1.0  # between any two sends
    jitter_s: float = 1.0  # random extra wait, 0..jitter_s, so the rhythm doesn't look robotic
    chat_switch_interval_s: float = 3.0  # when the next send goes to a different chat than the last
    per_chat_interval_s: float = 1.0  # between two sends to the same chat
    max_per_minute: int = 30  # overall; community practice says ≤ 40 (0: no limit)
    # sends under way at once (one per chat): a slow call to the platform holds up only its own chat
    max_in_flight: Annotated[int, Field(ge=1, le=64)] = 8
    warmup_s: float = 600.0  # after login, pacing is slower...
    warmup_factor: Annotated[float, Field(ge=1.0)] = 2.0  # ...by this factor
    backoff_initial_s: Annotated[float, Field(ge=1.0)] = 60.0  # first pause after a risk-control error; doubles
    backoff_max_s: float = 3600.0
    retry_attempts: int = 3  # retries after an ordinary send failure (so 4 tries in all)
    reply_max_delay_s: float = 600.0  # a reply still unsent after this (back-off) is dropped: late answers confuse
    quiet_hours: QuietHours = QuietHours()
    light: KindPolicy = KindPolicy()
    promotional: KindPolicy = KindPolicy(quiet_hours="drop", max_delay_s=3600.0)
    transactional: KindPolicy = KindPolicy(quiet_hours="defer", max_delay_s=12 * 3600)
    room_daily_caps: dict[_CapKind, int] = field(default_factory=lambda: {"total": 3, "promotional": 1})
    member_daily_caps: dict[_CapKind, int] = field(default_factory=lambda: {"total": 1, "promotional": 1})
    # Gentleness in groups: light and promotional messages to one room are at least this far apart (transactional
    # ones are never held, but they count as the room's last proactive message).
    room_min_gap_s: float = 5400.0
    # A room with lively_messages member messages within lively_window_s is in a conversation: a scheduled
    # message waits for it to calm down, at most lively_max_defer_s, so the bot doesn't cut in.
    lively_messages: Annotated[int, AfterValidator(_lively_messages)] = 6  # 0: off
    lively_window_s: float = 300.0
    lively_max_defer_s: float = 1800.0


def _governor(g: GovernorSettings) -> GovernorSettings:
    if g.backoff_max_s < g.backoff_initial_s:
        _refuse("must be at least backoff_initial_s", key="backoff_max_s")
    return g


@dataclass(frozen=True)
class WechatySettings:
    endpoint: str = ""  # host:port of a Wechaty puppet service; empty → console. Token: env only.


@dataclass(frozen=True)
class DashboardSettings:
    """The operators' web dashboard (bot/web/dashboard.py), served under /dashboard by the bot's web server."""

    token_env: str = "DASHBOARD_TOKEN"  # the environment variable holding the login token (unset: dashboard off)
    chart_days: Annotated[int, _between(1, 366)] = 30  # days shown on the overview's charts
    page_size: Annotated[int, _between(1, 500)] = 50  # rows per page of member search


@dataclass(frozen=True)
class HttpSettings:
    """The bot's aiohttp server (health check, orders API), started by `python -m bot run`."""

    enabled: bool = True
    host: str = "127.0.0.1"  # keep it private; put a TLS proxy in front for the outside world
    port: Annotated[int, AfterValidator(_port)] = 8080
    token_env: str = "BOT_API_TOKEN"  # environment variable holding the bearer token for /api/*
    hmac_secret_env: str = "BOT_API_HMAC_SECRET"  # ...or the secret for X-Signature: sha256=<hex of body HMAC>
    max_body_bytes: Annotated[int, Field(ge=1)] = 1024 * 1024


def _http_url(value: str) -> str:
    if not value.startswith(("http://", "https://")):
        _refuse(f"must be an http(s) URL, not {value[:40]!r}")
    return value.rstrip("/")


def _tag_name(value: str) -> str:
    if len(value) > 30 or value != value.strip() or "\x00" in value:
        _refuse(f"a WeCom tag name is at most 30 characters, without spaces around it: {value[:40]!r}")
    if re.fullmatch(r"et[A-Za-z0-9_-]{8,}", value):  # an id, as tier_tags once took: it would become a name
        _refuse(f"give the tag's name, not its id ({value!r}): the bot makes the tags and keeps their ids")
    return value


@dataclass(frozen=True)
class WeComSettings:
    """WeCom (企业微信): the compliant mode (docs/operators/wecom.md). Secrets only from the environment."""

    enabled: bool = False  # run on WeCom (python -m bot run): callbacks in, the official API out
    api_base: Annotated[str, AfterValidator(_http_url)] = "https://qyapi.weixin.qq.com"
    corp_id: str = ""  # 企业ID (My company → Company information)
    agent_id: int = 0  # the self-built app's AgentId
    secret_env: str = "WECOM_SECRET"  # the self-built app's Secret (with 客户联系 and 微信客服 permissions)
    callback_token_env: str = "WECOM_CALLBACK_TOKEN"  # the callback's Token
    encoding_aes_key_env: str = "WECOM_ENCODING_AES_KEY"  # the callback's EncodingAESKey (43 characters)
    # 微信客服: at most kf_reply_limit messages within kf_window_hours of the customer's last message (WeCom's rule)
    kf_reply_limit: Annotated[int, _between(1, 5)] = 5
    kf_window_hours: Annotated[int, _between(1, 48)] = 48
    # new external contacts: the welcome (send_welcome_msg), by channel state first, then by staff member
    welcome: str = ""  # empty: no welcome unless a state or staff member has one
    welcome_by_state: dict[str, str] = field(default_factory=dict)
    welcome_by_staff: dict[str, str] = field(default_factory=dict)
    # 企业群发 a target receives per calendar month (WeCom's receiving limit; counted when queued, given back when
    # nothing was sent)
    monthly_quota: Annotated[int, _between(1, 31)] = 4
    # a broadcast's groups (customers) are gathered into one task per owner staff member until none has come for
    # this long (the governor paces them one by one)
    task_gather_s: Annotated[int, _between(1, 600)] = 60
    # a task staff never confirm is polled this many days, then shown 已过期（员工未确认） (WeCom documents no expiry)
    task_poll_days: Annotated[int, _between(1, 90)] = 7
    # tiers → corp tags the bot makes in this tag group (empty: tiers are not synced), named after the tiers;
    # tier_tags renames them (tier key → tag name, at most 30 characters): the tag is renamed, not made again
    tag_group: Annotated[str, AfterValidator(_tag_name)] = "会员等级"
    tier_tags: dict[str, Annotated[str, AfterValidator(_tag_name)]] = field(default_factory=dict)
    tag_sync_hours: Annotated[int, _between(1, 168)] = 24


def _webhook_format(value: str) -> str:
    if value not in ("wecom", "feishu", "json"):
        _refuse(f'must be "wecom", "feishu" or "json", not {value!r}')
    return value


def _smtp_security(value: str) -> str:
    if value not in ("ssl", "starttls", "none"):
        _refuse(f'must be "ssl", "starttls" or "none", not {value!r}')
    return value


def _mail_address(value: str) -> str:
    if not re.fullmatch(r"[^@\s<>]+@[^@\s<>]+", value):
        _refuse(f"not a mail address: {value!r}")
    return value


_MailAddress = Annotated[str, AfterValidator(_mail_address)]


@dataclass(frozen=True)
class AlertSettings:
    """Where the operators hear that the WeChat account went offline (and came back): a group robot's webhook
    and/or mail (bot/health.py, bot/alerts.py). The webhook URL and the SMTP password come from the environment."""

    webhook_url_env: str = "BOT_ALERT_WEBHOOK_URL"  # the variable holding the webhook URL (unset: no webhook)
    # the webhook's body: "wecom" {"msgtype":"text","text":{"content":…}}, "feishu" {"msg_type":"text",
    # "content":{"text":…}}, "json" {"text":…, "event":…, "qr_url":…, "note":…, "at":…}
    webhook_format: Annotated[str, AfterValidator(_webhook_format)] = "wecom"
    smtp_host: str = ""  # empty: no mail
    smtp_port: Annotated[int, _between(1, 65535)] = 465
    smtp_security: Annotated[str, AfterValidator(_smtp_security)] = "ssl"  # "ssl", "starttls" or "none"
    smtp_user: str = ""  # the login (empty: send without logging in)
    smtp_password_env: str = "BOT_ALERT_SMTP_PASSWORD"
    mail_from: Annotated[str, AfterValidator(lambda v: _mail_address(v) if v else v)] = ""
    mail_to: tuple[_MailAddress, ...] = ()


def _alerts(a: AlertSettings) -> AlertSettings:
    if a.smtp_host and not a.mail_from:
        _refuse("is needed to send mail (smtp_host is set)", key="mail_from")
    if a.smtp_host and not a.mail_to:
        _refuse("is needed to send mail (smtp_host is set): the operators' addresses", key="mail_to")
    return a


def _wecom(w: WeComSettings) -> WeComSettings:
    if w.enabled and not w.corp_id:
        _refuse("is needed when WeCom is enabled (企业ID, My company → Company information)", key="corp_id")
    return w


@dataclass(frozen=True)
class Config:
    path: str = DEFAULT_PATH
    bot: BotSettings = BotSettings()
    storage: Annotated[StorageSettings, AfterValidator(_storage)] = StorageSettings()
    activity: ActivitySettings = ActivitySettings()
    governor: Annotated[GovernorSettings, AfterValidator(_governor)] = GovernorSettings()
    wechaty: WechatySettings = WechatySettings()
    dashboard: DashboardSettings = DashboardSettings()
    http: HttpSettings = HttpSettings()
    alerts: Annotated[AlertSettings, AfterValidator(_alerts)] = AlertSettings()
    wecom: Annotated[WeComSettings, AfterValidator(lambda w: _wecom(w))] = WeComSettings()
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

    def is_admin_anywhere(self, user_id: str) -> bool:
        """A global admin or an admin of any room (whose points a room's admin must not touch: wallets are shared)."""
        return user_id in self.bot.admins or any(user_id in room.admins for room in self.rooms.values())


@dataclass(frozen=True)
class Secrets:
    """Secrets come from the environment only; this says which variable holds what."""

    puppet_token_var: str = "WECHATY_PUPPET_SERVICE_TOKEN"
    puppet_endpoint_var: str = "WECHATY_PUPPET_SERVICE_ENDPOINT"
    bridge_url_var: str = "BOT_BRIDGE_URL"
    bridge_token_var: str = "BOT_BRIDGE_TOKEN"
    bridge_secret_var: str = "BOT_BRIDGE_SECRET"

    def puppet_token(self) -> str | None:
        return os.environ.get(self.puppet_token_var) or None

    def bridge(self) -> tuple[str | None, str | None, str | None]:
        """The bridge provider's URL, the bot's token for it and the events' signing secret (unset: None)."""
        return tuple(os.environ.get(v) or None for v in (self.bridge_url_var, self.bridge_token_var,
                                                         self.bridge_secret_var))  # type: ignore[return-value]


# -- loading --------------------------------------------------------------------------------------------------------

def load_config(path: str | os.PathLike[str] = DEFAULT_PATH, *, must_exist: bool | None = None) -> Config:
    """The config at ``path``. A missing file is an error, except the default ``config.toml`` (a fresh checkout
    has one; without it the defaults apply) unless ``must_exist`` says otherwise."""
    p = Path(path)
    if must_exist is None:
        must_exist = p != Path(DEFAULT_PATH)
    if not p.exists():
        if must_exist:
            raise ConfigError(str(p), ["file not found"])
        return _env_overrides(Config(path=str(p)), os.environ)
    try:
        raw = tomllib.loads(p.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(str(p), [f"not UTF-8 text ({exc.reason} at byte {exc.start})"]) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(str(p), [f"not valid TOML: {exc}"]) from None
    return _env_overrides(parse_config(raw, str(p)), os.environ)


def _env_overrides(cfg: Config, environ: typing.Mapping[str, str]) -> Config:
    """BOT_HTTP_HOST / BOT_HTTP_PORT over ``[http] host``/``port``: a container must listen on 0.0.0.0 to be
    reachable through a published port, whatever the mounted config.toml says."""
    host = environ.get("BOT_HTTP_HOST", "").strip()
    port_text = environ.get("BOT_HTTP_PORT", "").strip()
    if not host and not port_text:
        return cfg
    port = cfg.http.port
    if port_text:
        if not port_text.isdigit() or int(port_text) > 65535:
            raise ConfigError("environment", [f"BOT_HTTP_PORT: must be a port number (0-65535), not {port_text!r}"])
        port = int(port_text)
    http = dataclasses.replace(cfg.http, host=host or cfg.http.host, port=port)
    return dataclasses.replace(cfg, http=http)


def parse_config(raw: dict, path: str = DEFAULT_PATH) -> Config:
    problems: list[str] = []
    data = dict(raw)
    for key, shape in (("skills", "a table of per-skill tables"), ("rooms", "a table keyed by room id")):
        if not isinstance(data.get(key, {}), dict):
            problems.append(f"[{key}]: must be {shape}")
            del data[key]
    if "path" in data:  # a field of Config, not a setting: the file's own path
        problems.append(_unknown("path", "path", _settings_of(Config)))
        del data["path"]
    cfg, found = _validate(Config, _overlay(Config(), {**data, "path": path}), "")
    cfg = cfg or Config(path=path)
    problems += found
    problems += _scan_for_secrets(raw)
    problems += _unknown_skill_sections(cfg)
    if problems:
        raise ConfigError(path, problems)
    return cfg


def skill_settings(config: Config, skill: str, schema: type[T]) -> T:
    """A skill's own ``[skills.NAME]`` table as the typed, frozen ``schema`` dataclass, validated like the rest:
    unknown keys and wrong types are a ConfigError naming the file and the key. The schema's own checks
    (``__post_init__`` raising ValueError("key: problem")) are reported the same way."""
    raw = config.skills.get(skill, {})
    settings, problems = _validate(schema, _overlay(schema(), raw) if isinstance(raw, dict) else raw,
                                   f"skills.{skill}")
    if problems:
        raise ConfigError(config.path, problems)
    return settings


# -- validation -----------------------------------------------------------------------------------------------------

@functools.cache
def _validator(tp: type) -> SchemaValidator:
    return SchemaValidator(_tighten(copy.deepcopy(TypeAdapter(tp).core_schema)))


def _tighten(node: typing.Any) -> typing.Any:
    """The rules every setting follows, written into pydantic's core schema (a tree of plain dicts)."""
    if isinstance(node, dict):
        kind = node.get("type")
        if kind in ("int", "float", "str", "bool", "time"):
            node["strict"] = True  # TOML has types: "5" is not a number, 1 is not true
        if kind == "int":
            node["ge"] = max(node.get("ge", 0), 0)
            node["le"] = min(node.get("le", INT32_MAX), INT32_MAX)
        elif kind == "float":
            node["ge"] = float(max(node.get("ge", 0.0), 0.0))
            node["allow_inf_nan"] = False
        elif kind == "dataclass-args":
            node["extra_behavior"] = "forbid"
        for child in node.values():
            _tighten(child)
    elif isinstance(node, list):
        for child in node:
            _tighten(child)
    return node


def _validate(tp: type[T], data: typing.Any, prefix: str) -> tuple[T | None, list[str]]:
    """``data`` as a ``tp``, and every problem found on the way.

    pydantic checks a dataclass's ``__post_init__`` only once its fields are valid, so after each failed round
    the offending keys are dropped (their defaults apply) and the rest is validated again: the checks of the
    whole table are reported too, all at once.
    """
    data = copy.deepcopy(data)
    problems: list[str] = []
    while True:
        try:
            return _validator(tp).validate_python(data), problems
        except ValidationError as exc:
            errors = exc.errors()
        for err in errors:
            problem = _problem(tp, err, prefix)
            if problem not in problems:
                problems.append(problem)
        if not _drop(data, [err["loc"] for err in errors]):
            return None, problems


def _drop(data: typing.Any, locs: list[tuple]) -> bool:
    """Remove, for each error location, the innermost table key on its path; whether anything was removed."""
    targets: list[tuple[dict, str]] = []
    for loc in locs:
        node, target = data, None
        for part in loc:
            if not (isinstance(node, dict) and part in node):
                break
            target, node = (node, part), node[part]
        if target is not None and target not in targets:
            targets.append(target)
    for table, key in targets:
        table.pop(key, None)
    return bool(targets)


def _problem(root: type, err: typing.Any, prefix: str) -> str:
    kind, loc, ctx = err["type"], err["loc"], err.get("ctx", {})
    where, value = _where(prefix, loc), err.get("input")
    if kind == "value_error":  # the dataclass's own __post_init__: its message begins with the key
        return f"{where}.{ctx['error']}" if where else str(ctx["error"])
    if kind == "setting":
        return f"{where}.{ctx['key']}: {ctx['problem']}" if "key" in ctx else f"{where}: {ctx['problem']}"
    if kind == "unexpected_keyword_argument":
        return _unknown(str(loc[-1]), where, _settings_of(_type_at(root, loc[:-1])))
    if kind == "greater_than_equal":
        whole = isinstance(ctx["ge"], int)
        return f"{where}: must be a {'whole number' if whole else 'number'} ≥ {ctx['ge']:g}, not {value!r}"
    if kind == "less_than_equal":
        return f"{where}: must be a whole number ≤ {ctx['le']}, not {value!r}"
    says = {
        "int_type": f"must be a whole number ≥ 0, not {value!r}",
        "float_type": f"must be a number ≥ 0, not {value!r}",
        "finite_number": f"must be a finite number, not {value!r}",
        "bool_type": f"must be true or false, not {value!r}",
        "string_type": f"must be a string, not {value!r}",
        "time_type": f'must be a time like "22:00", not {value!r}',
        "tuple_type": "must be a list",
        "dict_type": "must be a table",
        "dataclass_type": "must be a table",
    }
    return f"{where}: {says.get(kind, err['msg'])}"


def _where(prefix: str, loc: tuple) -> str:
    """``governor.light.quiet_hours``, ``bot.skills[2]``, ``rooms."123@chatroom".admins``."""
    parts = [prefix] if prefix else []
    for i, part in enumerate(loc):
        if isinstance(part, int) and parts:
            parts[-1] += f"[{part}]"
        elif part != "[key]":  # a dict key's own check: the key is already named
            parts.append(f'"{part}"' if not prefix and i == 1 and loc[0] == "rooms" else str(part))
    return ".".join(parts)


def _type_at(tp: typing.Any, loc: tuple) -> typing.Any:
    for part in loc:
        if dataclasses.is_dataclass(tp):
            tp = typing.get_type_hints(tp)[part]
        else:  # dict[str, X] (part is a key) or tuple[X, ...] (part is an index)
            tp = typing.get_args(tp)[-1 if typing.get_origin(tp) is dict else 0]
    return tp


def _settings_of(tp: type) -> set[str]:
    return {f.name for f in dataclasses.fields(tp)} - ({"path"} if tp is Config else set())


def _unknown(key: str, where: str, known: set[str]) -> str:
    close = difflib.get_close_matches(key, sorted(known), n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"{where}: unknown setting{hint}"


def _overlay(default: typing.Any, raw: typing.Any) -> typing.Any:
    """``raw`` over the ``default`` instance: a nested table overrides only the keys it names, the others keep
    the default's values (governor.promotional keeps its own quiet_hours = "drop", not KindPolicy's)."""
    if not isinstance(raw, dict) or not dataclasses.is_dataclass(default):
        return raw
    out = dict(raw)
    for f in dataclasses.fields(default):
        inner = getattr(default, f.name)
        if isinstance(raw.get(f.name), dict) and dataclasses.is_dataclass(inner):
            own = {g.name: getattr(inner, g.name) for g in dataclasses.fields(inner)}
            out[f.name] = {**own, **_overlay(inner, raw[f.name])}
    return out


# -- checks over the raw file: secrets, and tables for skills that don't exist --------------------------------------

_SECRET_KEY = re.compile(r"(token|secret|password|passwd|api_?key|access_?key|private_?key|aes_?key|credentials?)$",
                         re.IGNORECASE)
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")


def _scan_for_secrets(raw: typing.Any, loc: tuple = ()) -> list[str]:
    """Every table, [rooms.*] and [skills.*] included: no secret-looking key, and ``*_env`` names a variable."""
    problems: list[str] = []
    items = raw.items() if isinstance(raw, dict) else enumerate(raw) if isinstance(raw, list) else ()
    for key, value in items:
        where = _where("", (*loc, key))
        if isinstance(value, (dict, list)):
            problems += _scan_for_secrets(value, (*loc, key))
        elif not isinstance(key, str):
            continue
        elif key.lower().endswith("_env"):
            if isinstance(value, str) and not _ENV_NAME.fullmatch(value):  # never echoed: it may be the secret
                problems.append(f"{where}: must be the name of an environment variable, not the secret itself")
        elif _SECRET_KEY.search(key):
            problems.append(f"{where}: secrets are not read from files; set them in the environment")
    return problems


def _unknown_skill_sections(cfg: Config) -> list[str]:
    """A [skills.NAME] table belongs to a skill in bot.skills or to a module under skills/ (enabled later)."""
    known = {name.rsplit(".", 1)[-1] for name in cfg.bot.skills} | _skill_modules()
    return [f"skills.{name}: unknown skill" + (f" (did you mean {close[0]!r}?)" if close else "")
            for name in cfg.skills if name not in known
            for close in [difflib.get_close_matches(name, sorted(known), n=1)]]


def _skill_modules() -> set[str]:
    """The modules under the skills package, found without importing any skill (bot/ never imports skills/)."""
    try:
        spec = find_spec("skills")
    except (ImportError, ValueError):
        return set()
    if spec is None or not spec.submodule_search_locations:
        return set()
    return {m.name for m in pkgutil.iter_modules(spec.submodule_search_locations) if not m.name.startswith("_")}
