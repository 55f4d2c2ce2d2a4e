"""The bot on WeCom: the app, the API client, the callback receiver (mounted on the HTTP server), 微信客服 and
customer contacts wired together. ``python -m bot run`` with ``[wecom] enabled = true`` uses it; so do the tests
and bench/wecom_callbacks.py.

The WeCom mode differs from a personal account's (docs/operators/wecom.md): 1-on-1 answers go to 微信客服
customers only, within the reply window (``ReplyWindow`` in bot/governor.py: 5 messages within 48 h of the
customer's last message); nothing is said inside external customer groups (``room_send`` is false, such messages
are dropped with ``no_group_send``, and proactive ones become 企业群发 tasks a staff member confirms:
broadcasts.py); new contacts are welcomed with their one-time welcome code.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from datetime import timedelta

from bot.app import BotApp
from bot.capabilities import Capabilities
from bot.clock import Clock
from bot.config import Config
from bot.events import OutgoingMessage
from bot.governor import ReplyWindow
from bot.transports.base import NotConnectedError, RefusedError
from bot.transports.wecom.api import TIMEOUT_S, WeComApi
from bot.transports.wecom.broadcasts import GroupSends
from bot.transports.wecom.callbacks import Callback, WeComCallbacks
from bot.transports.wecom.contacts import Contacts
from bot.transports.wecom.crypto import CallbackCrypto
from bot.transports.wecom.handled import HandledMarks
from bot.transports.wecom.kf import KfInbox
from bot.transports.wecom.staff import StaffMessages
from bot.transports.wecom.tags import TagSync

log = logging.getLogger(__name__)

CAPABILITIES = Capabilities(send_text=True, mention=False, room_send=False)
_CLIENT_IDS_KEPT = 4096


@dataclass(frozen=True)
class WeComSecrets:
    secret: str
    callback_token: str
    encoding_aes_key: str


class WeComTransport:
    """bot → WeCom: notes to staff (``audience="staff"``: operators) through the app's ``message/send``; 1-on-1
    messages to customers through 微信客服 (``kf/send_msg``); proactive room messages as 企业群发 tasks (the governor
    lets no reply to a room through)."""

    capabilities = CAPABILITIES

    def __init__(self) -> None:
        self.self_id: str | None = None
        self.kf: KfInbox | None = None  # set once the app has started (it needs the database)
        self.groups: GroupSends | None = None
        self.staff: StaffMessages | None = None
        self.window: ReplyWindow | None = None
        self.clock: Clock | None = None
        self._client_ids: OrderedDict[int, tuple[OutgoingMessage, str]] = OrderedDict()

    async def send(self, message: OutgoingMessage) -> str | None:
        if message.to_staff:
            if self.staff is None:
                raise NotConnectedError("the WeCom transport is not started")
            return await self.staff.send(message)
        if message.room_id is not None:
            if self.groups is None:
                raise RefusedError("no_group_send", "WeCom external groups take no bot messages")
            return await self.groups.send(message)
        if self.kf is None:
            raise NotConnectedError("the WeCom transport is not started")
        route = await self.kf.route(message.user_id)  # type: ignore[arg-type]
        window_open = self.window is None or self.window.open(message.user_id, self.clock.now())  # type: ignore
        if route is None or not window_open:
            # the governor let it through: a campaign to a customer without an open 微信客服 window
            if self.groups is None:
                raise RefusedError("no_channel", "not a 微信客服 customer")
            return await self.groups.send(message)
        platform_id = await self.kf.send(message, self._client_id(message))
        self._client_ids.pop(id(message), None)
        return platform_id

    def _client_id(self, message: OutgoingMessage) -> str:
        """The same ``msgid`` for every try of one queued message (the governor retries the same object)."""
        known = self._client_ids.get(id(message))
        if known is not None and known[0] is message:
            return known[1]
        client_id = uuid.uuid4().hex
        self._client_ids[id(message)] = (message, client_id)
        while len(self._client_ids) > _CLIENT_IDS_KEPT:
            self._client_ids.popitem(last=False)
        return client_id


@dataclass
class WeComBot:
    app: BotApp
    api: WeComApi
    transport: WeComTransport
    kf: KfInbox
    contacts: Contacts
    groups: GroupSends
    tags: TagSync
    marks: HandledMarks

    @property
    def callbacks(self) -> WeComCallbacks:
        assert isinstance(self.app.bridge, WeComCallbacks)
        return self.app.bridge

    async def idle(self) -> None:
        """Until the work the callbacks started (syncs, contacts) is done and the dispatcher has handled it."""
        for _ in range(3):
            await self.kf.idle()
            await self.contacts.idle()
            await self.app.dispatcher.join()

    async def stop(self) -> None:
        try:
            self.groups.stop()
            self.tags.stop()
            await self.kf.idle()
            await self.contacts.idle()
            await self.app.dispatcher.join()
            await self.marks.flush()  # handled: not to be handed on again at the next start
            await self.app.stop()
        finally:
            await self.api.stop()


async def start_wecom_bot(config: Config, clock: Clock, secrets: WeComSecrets, *, db_url: str | None = None,
                          timeout_s: float = TIMEOUT_S, rng: random.Random | None = None) -> WeComBot:
    s = config.wecom
    crypto = CallbackCrypto(secrets.callback_token, secrets.encoding_aes_key, s.corp_id)  # checks the key first
    transport = WeComTransport()
    parts: dict = {}

    def receiver(app: BotApp) -> WeComCallbacks:
        sessions = app.services.sessions
        api = WeComApi(s.api_base, s.corp_id, secrets.secret, sessions, clock, timeout_s=timeout_s)
        window = ReplyWindow(s.kf_reply_limit, timedelta(hours=s.kf_window_hours), group_sends=True)
        app.governor.reply_window = window
        marks = HandledMarks(sessions, clock)
        kf = KfInbox(api, sessions, clock, app.dispatcher.submit, marks, window)
        groups = GroupSends(api, sessions, clock, app.activity, s.monthly_quota, gather_s=s.task_gather_s,
                            poll_days=s.task_poll_days)
        contacts = Contacts(api, sessions, clock, app.activity, s, app.dispatcher.submit, groups.knows_owner, marks)
        staff = StaffMessages(api, s.agent_id, clock, app.dispatcher.submit, marks)
        transport.kf, transport.groups, transport.window, transport.clock = kf, groups, window, clock
        transport.staff = staff
        parts.update(api=api, kf=kf, contacts=contacts, groups=groups, marks=marks)
        return WeComCallbacks(crypto, clock, sessions, route_callbacks(app, kf, contacts, staff))

    app = BotApp(config, clock, transport.send, db_url=db_url, rng=rng, web=True, bridge=receiver, transport_name="wecom",
                 account_hint=self_id(config))
    await app.start()
    api: WeComApi = parts["api"]
    await api.start()
    await parts["kf"].restore_windows()
    await parts["kf"].recover()  # what was fetched and not handled before the restart, before anything new
    assert isinstance(app.bridge, WeComCallbacks)
    await app.bridge.recover()  # contact events and staff messages received and not handled: the same
    app.services.capabilities = CAPABILITIES
    if config.bot.operators_room:
        log.warning("[bot] operators_room is not used on WeCom (the bot can't speak in groups there): operators are "
                    "told 1-on-1 through the app, by their UserIDs in [bot] operators")
    if config.bot.operators and not s.agent_id:
        log.warning("[wecom] agent_id is not set: the operators ([bot] operators) can't be told through the app")
    transport.self_id = self_id(config)
    app.logged_in(transport.self_id)
    await parts["groups"].recover()
    parts["groups"].start()
    tags = TagSync(api, app.services, clock, s.tier_tags, s.tag_sync_hours, s.tag_group, s.agent_id)
    tags.start()
    return WeComBot(app, api, transport, parts["kf"], parts["contacts"], parts["groups"], tags, parts["marks"])


def self_id(config: Config) -> str:
    """The bot's account on WeCom: the corp and its app (known before anything logs in)."""
    return f"wecom:{config.wecom.corp_id}:{config.wecom.agent_id}"


def route_callbacks(app: BotApp, kf: KfInbox, contacts: Contacts, staff: StaffMessages | None = None):
    def on_callback(callback: Callback) -> None:
        app.health.saw_event()
        event = callback.get("Event")
        if callback.get("MsgType") != "event":
            if staff is not None:
                staff.handle(callback)  # a staff member wrote to the app: operators' /reply and /close
            return
        if event == "kf_msg_or_event":
            open_kfid = callback.get("OpenKfId")
            if open_kfid and len(open_kfid) <= 128:
                kf.wake(open_kfid, callback.get("Token"))
        elif event in ("change_external_contact", "change_external_chat"):
            contacts.handle(callback)

    return on_callback
