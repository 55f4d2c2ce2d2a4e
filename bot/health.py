"""Session health: whether the WeChat account (or, in the WeCom mode, the corp's app) can send, for any transport, and one alert per incident.

Transports report what they learn (``logged_in``, ``logged_out``, ``login_needed``, ``saw_event``); the app wraps the
transport's send (``watch``) so every send's outcome is seen too. An incident opens at the first sign of trouble:

* the account is offline — a logout, a login request (QR code, face check), no event at all for ``silence_s``
  (transports whose platform sends heartbeats), or sends refused as "not connected" twice in a row; while a logout,
  a login request or the silence lasts, ``offline`` is True and the transport holds its sends (NotConnectedError:
  the governor keeps every message until the next login);
* the platform refused the bot's credentials (FatalTransportError): the governor stops sending.

Each incident gets ONE alert (bot/alerts.py), sent ``gather_s`` after it opens so that a login request that
follows a logout travels in the same alert with its QR link; a login request opening an incident is sent at once.
When it ends (a login; for silence, any event; for a refused token or "not connected", a send that works) a "back"
alert follows, if the first one went out. Everything runs on the injectable clock.

An alerted incident is kept in the database (``session_incidents``) until it ends: a bot restarted during an
outage takes it back at start (``restore``), so the outage still gets one alert, and its end the "back" alert.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from bot.alerts import Alert
from bot.clock import Clock, TimerHandle
from bot.events import OutgoingMessage
from bot.transports.base import FatalTransportError, NotConnectedError
from storage import incidents as incident_rows

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

log = logging.getLogger(__name__)

SILENCE_S = 180.0  # the bridge contract: no event for this long means the account is offline
CHECK_EVERY_S = 15.0  # how often silence is looked for: it is noticed within SILENCE_S + this
GATHER_S = 5.0  # an incident's alert waits this long for the login request that often follows a logout
NOT_CONNECTED_REPEATS = 2  # "not connected" this many sends in a row (the governor probes every 30 s): offline

AlertFn = Callable[[Alert], Awaitable[None]]
SendFn = Callable[[OutgoingMessage], Awaitable[str | None]]

# kinds of offline incident during which the transport holds its sends itself
_HOLDING = ("logout", "login_needed", "silence")


@dataclass(slots=True)
class Incident:
    kind: str  # logout, login_needed, silence, not_connected (offline) or refused (credentials)
    since: datetime
    reason: str = ""
    qr_url: str | None = None
    note: str | None = None
    alerted: bool = False
    timer: TimerHandle | None = None
    restored: bool = False  # opened before a restart: the login that ended it may have come while we were down
    key: str | None = None  # the account its row is kept under (set when first kept): its end forgets that row


class SessionHealth:
    def __init__(
        self, clock: Clock, alert: AlertFn | None, *, bot_name: str = "小助手", silence_s: float | None = None,
        gather_s: float = GATHER_S, on_online: Callable[[], None] | None = None, wecom: bool = False,
    ) -> None:
        self._clock = clock
        # what the operators call the account: the WeCom mode runs on the corp's app, not a WeChat account
        self._account_word = "企业微信" if wecom else "微信账号"
        self._credentials = ("企业微信的企业ID和应用 Secret（WECOM_SECRET）" if wecom
                             else "令牌（如 BOT_BRIDGE_TOKEN）")
        self._alert = alert
        self._name = bot_name
        self.silence_s = silence_s  # None: the transport sends no heartbeats, silence means nothing
        self.gather_s = gather_s
        self.on_online = on_online  # the governor resumes (on_login) at every login and when silence ends
        self.account: str | None = None
        self.last_event_at = clock.now()
        self.online_since: datetime | None = None  # the last login (or incident's end); None: offline or not yet
        self.offline_incident: Incident | None = None
        self.refused_incident: Incident | None = None
        self._not_connected = 0
        self._watchdog: TimerHandle | None = None
        self._tasks: set[asyncio.Task] = set()
        self.alerts: list[Alert] = []  # every alert sent (in order), for the dashboard and tests
        self._sessions: async_sessionmaker[AsyncSession] | None = None  # where alerted incidents are kept
        self._configured_account: str | None = None  # [bot] account_id, or an id the transport knows before login
        self._fallback_key = ""  # the transport's name: the key while no account id is known
        self._shared = False  # several accounts on the database: only rows under this account's key are its own
        self._rows_lock = asyncio.Lock()  # the rows are written in the order incidents open and end

    # -- state ----------------------------------------------------------------------------------------------------

    @property
    def offline(self) -> bool:
        """The account is known offline (logout, login request, silence): sends are held without trying."""
        return self.offline_incident is not None and self.offline_incident.kind in _HOLDING

    @property
    def refused(self) -> bool:
        return self.refused_incident is not None

    def start(self) -> None:
        self.last_event_at = self._clock.now()
        if self.silence_s is not None and self._watchdog is None:
            self._watchdog = self._clock.call_later(CHECK_EVERY_S, self._check_silence, name="health-watchdog")

    async def stop(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None
        for incident in (self.offline_incident, self.refused_incident):
            if incident is not None and incident.timer is not None:
                incident.timer.cancel()
        await self.settle()

    async def settle(self) -> None:
        """Wait until the alerts under way have been sent (tests; shutdown)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks), return_exceptions=True)

    # -- kept across restarts ------------------------------------------------------------------------------------

    @property
    def _account_key(self) -> str:
        """Whose incidents these are: the configured account id, else the logged-in account's, else the transport's
        name (before the first login), so several accounts on one database never share an incident."""
        return self._configured_account or self.account or self._fallback_key

    async def restore(self, sessions: async_sessionmaker[AsyncSession], account_id: str | None, *,
                      fallback: str = "", shared: bool = False) -> None:
        """At start (the bot process): keep alerted incidents in the database from now on, and take back those a
        previous run alerted and never saw end — open again, alerted already. ``account_id``: the account, if known
        before login; ``fallback``: the transport's name. On a database of one account (not ``shared``) every open
        incident is this process's; on a shared one, those under ``account_id`` (or ``fallback``), and those under
        the logged-in account once it is known (``logged_in``)."""
        self._sessions, self._configured_account, self._fallback_key = sessions, account_id or None, fallback
        self._shared = shared
        try:
            async with sessions() as session:
                rows = await incident_rows.open_incidents(session, None if not shared else self._account_key)
        except Exception as exc:  # at worst the outage is alerted again: no reason not to start
            log.error("could not read the open session incidents: %s", type(exc).__name__)
            return
        self._take_back(rows)

    def _take_back(self, rows) -> None:
        for row in rows:
            slot = self.refused_incident if row.slot == "refused" else self.offline_incident
            if slot is not None:
                continue  # this run has its own incident there already
            incident = Incident(row.kind, row.since, row.reason, alerted=True, restored=True, key=row.account_id)
            if row.slot == "refused":
                self.refused_incident = incident
            else:
                self.offline_incident, self.online_since = incident, None
            log.warning("session incident open since %s (%s: %s), alerted before the restart: no new alert; "
                        "its end gets the 'back' alert", row.since.isoformat(), row.kind, row.reason)

    async def _adopt(self, account: str) -> None:
        """A shared database, the account known only now (its login): the incidents a previous run of this account
        alerted are taken back; the login ends the offline one (its 'back' alert)."""
        if self._sessions is None:
            return
        try:
            async with self._sessions() as session:
                rows = await incident_rows.open_incidents(session, account)
        except Exception as exc:
            log.error("could not read the account's open session incidents: %s", type(exc).__name__)
            return
        offline_before = self.offline_incident
        self._take_back(rows)
        if self.offline_incident is not None and self.offline_incident is not offline_before \
                and self.offline_incident.restored:
            self._back_online()

    def _keep_row(self, incident: Incident, *, ended: bool = False) -> None:
        if self._sessions is None:
            return
        slot = "refused" if incident.kind == "refused" else "offline"
        if incident.key is None:
            incident.key = self._account_key
        key = incident.key

        async def write() -> None:
            try:
                async with self._rows_lock, self._sessions() as session:
                    if ended:
                        await incident_rows.forget(session, key, slot)
                    else:
                        await incident_rows.save(session, key, slot, incident.kind, incident.since,
                                                 incident.reason)
                    await session.commit()
            except Exception as exc:  # a restart now might alert once more (or miss the "back"): say so
                log.error("could not record the session incident's %s: %s", "end" if ended else "alert",
                          type(exc).__name__)

        self._start(write(), "health-incident-row")

    # -- what transports report -----------------------------------------------------------------------------------

    def saw_event(self) -> None:
        """Anything at all from the platform (a message, a heartbeat): it is alive. Platforms send events only
        while logged in, so one also ends an incident taken back at start (its login may have come meanwhile)."""
        self.last_event_at = self._clock.now()
        incident = self.offline_incident
        if incident is not None and (incident.kind == "silence" or incident.restored):
            self._back_online()  # a restored one: the login that ended it came while the bot was down

    def logged_in(self, account: str | None = None) -> None:
        known = self.account
        self.account = account or self.account
        self.last_event_at = self._clock.now()
        self._not_connected = 0
        self._back_online()
        if (self._shared and self._configured_account is None and self.account and self.account != known
                and self._sessions is not None):
            self._start(self._adopt(self.account), "health-incident-adopt")

    def logged_out(self, reason: str = "") -> None:
        self._offline("logout", reason or "平台报告已退出登录")

    def login_needed(self, qr_url: str | None = None, note: str | None = None) -> None:
        self._offline("login_needed", "需要重新登录", qr_url=qr_url, note=note)

    def send_ok(self) -> None:
        self._not_connected = 0
        if self.offline_incident is not None and self.offline_incident.kind == "not_connected":
            self.online_since = self._clock.now()
            self._close(self.offline_incident, "online")
            self.offline_incident = None
        if self.refused_incident is not None:
            self._close(self.refused_incident, "resumed")
            self.refused_incident = None

    def send_not_connected(self, detail: str) -> None:
        if self.offline:
            return  # known already: the transport held the send without trying
        self._not_connected += 1
        if self._not_connected >= NOT_CONNECTED_REPEATS:
            self._offline("not_connected", detail)

    def send_refused(self, detail: str) -> None:
        """The platform refused the bot's credentials: nothing can be sent until an operator acts."""
        if self.refused_incident is None:
            log.error("sending refused (%s): holding every message until an operator fixes the credentials", detail)
            self.refused_incident = Incident("refused", self._clock.now(), detail)
            self._send_alert(self.refused_incident)  # at once: nothing else is coming to add to it

    def watch(self, send: SendFn) -> SendFn:
        """``send`` reporting its outcomes here (the app wraps the transport's send with it)."""

        async def watched(message: OutgoingMessage) -> str | None:
            try:
                result = await send(message)
            except FatalTransportError as exc:
                self.send_refused(str(exc))
                raise
            except NotConnectedError as exc:
                self.send_not_connected(str(exc))
                raise
            self.send_ok()
            return result

        return watched

    # -- incidents ------------------------------------------------------------------------------------------------

    def _offline(self, kind: str, reason: str, *, qr_url: str | None = None, note: str | None = None) -> None:
        incident = self.offline_incident
        if incident is None:
            incident = self.offline_incident = Incident(kind, self._clock.now(), reason, qr_url, note)
            self.online_since = None
            log.warning("account offline (%s): %s; holding messages until the next login", kind, reason)
        else:
            if incident.kind not in _HOLDING and kind in _HOLDING:  # now known offline, not just failing
                incident.kind, incident.reason = kind, reason
            incident.qr_url = qr_url or incident.qr_url
            incident.note = note or incident.note
            incident.restored = False  # reported again in this run: only a login ends it now
            if incident.alerted:
                self._keep_row(incident)
                log.info("account still offline (%s): %s (alert already sent for this incident)", kind, reason)
                return
        if incident.timer is not None and (qr_url or note):
            incident.timer.cancel()  # the login request is what the operators need: send it now
            incident.timer = None
        if incident.timer is None:
            if qr_url or note or self.gather_s <= 0:
                self._send_alert(incident)
            else:
                incident.timer = self._clock.call_later(self.gather_s, self._gathered, name="health-alert")

    async def _gathered(self) -> None:
        incident = self.offline_incident
        if incident is not None and not incident.alerted:
            incident.timer = None
            self._send_alert(incident)

    def _back_online(self) -> None:
        incident, self.offline_incident = self.offline_incident, None
        if incident is not None or self.online_since is None:
            self.online_since = self._clock.now()
        if incident is not None:
            self._close(incident, "online")
        if self.on_online is not None:
            self.on_online()

    def _close(self, incident: Incident, event: str) -> None:
        if incident.timer is not None:
            incident.timer.cancel()
        lasted = self._clock.now() - incident.since
        log.info("incident over (%s, %.0f s)", incident.kind, lasted.total_seconds())
        if not incident.alerted:
            return  # over before anyone was told: nothing to take back
        self._keep_row(incident, ended=True)
        minutes = max(1, round(lasted / timedelta(minutes=1)))
        if event == "resumed":
            text = f"【{self._name}】发送已恢复（中断约 {minutes} 分钟）。"
        else:
            text = f"【{self._name}】{self._account_word}已恢复在线（离线约 {minutes} 分钟），暂存的消息开始发出。"
        self._emit(Alert(event, text, self._clock.now()))

    def _send_alert(self, incident: Incident) -> None:
        incident.alerted = True
        self._keep_row(incident)
        event = ("refused" if incident.kind == "refused"
                 else "login_needed" if incident.qr_url or incident.note else "offline")
        self._emit(Alert(event, self._text(incident), self._clock.now(), incident.qr_url, incident.note))

    def _text(self, incident: Incident) -> str:
        name = self._name
        who = f"（{self.account}）" if self.account else ""
        account = self._account_word
        if incident.kind == "refused":
            return (f"【{name}】平台拒绝了机器人的凭据{who}：{incident.reason}。已停止发送，消息暂存；"
                    f"请核对{self._credentials}后重启机器人。")
        if incident.kind == "silence":
            lines = [f"【{name}】已超过 {int(self.silence_s or 0)} 秒没有收到平台的任何消息（包括心跳），"
                     f"{account}{who}可能已离线。要发的消息先暂存，恢复后发出。"]
        elif incident.kind == "not_connected":
            lines = [f"【{name}】{account}{who}未连接，发送失败：{incident.reason}。要发的消息先暂存，重新登录后发出。"]
        else:
            lines = [f"【{name}】{account}{who}已离线：{incident.reason}。要发的消息先暂存，重新登录后发出。"]
        if incident.qr_url:
            lines.append(f"请扫码登录：{incident.qr_url}")
        if incident.note:
            lines.append(f"平台提示：{incident.note}")
        return "\n".join(lines)

    def _emit(self, alert: Alert) -> None:
        self.alerts.append(alert)
        log.warning("alert: %s", alert.text.replace("\n", " / "))
        if self._alert is None:
            return
        self._start(self._alert(alert), f"alert:{alert.event}")

    def _start(self, work: Coroutine[Any, Any, None], name: str) -> None:
        """Run ``work`` as a task of its own, kept (``settle`` waits for it) until it ends."""
        task = asyncio.get_running_loop().create_task(work, name=name)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _check_silence(self) -> None:
        self._watchdog = self._clock.call_later(CHECK_EVERY_S, self._check_silence, name="health-watchdog")
        silent = (self._clock.now() - self.last_event_at).total_seconds()
        if self.silence_s is not None and silent >= self.silence_s and self.offline_incident is None:
            self._offline("silence", f"{silent:.0f} 秒没有任何事件")
