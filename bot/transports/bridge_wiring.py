"""The bot on a bridge provider: the app, the transport (bot → provider) and the inbox (provider → bot) wired
together. ``python -m bot run`` with BOT_BRIDGE_URL uses it; so do the tests and bench/bridge_ingest.py."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass, replace

from bot.app import BotApp
from bot.clock import Clock
from bot.config import Config
from bot.events import MessageReceived
from bot.health import SILENCE_S
from bot.transports.bridge import TIMEOUT_S, BridgeTransport
from bot.transports.bridge_events import BridgeEvent
from bot.transports.bridge_inbox import BridgeInbox, Done, EventHandler, Mark

log = logging.getLogger(__name__)


@dataclass
class BridgeBot:
    app: BotApp
    transport: BridgeTransport

    @property
    def inbox(self) -> BridgeInbox:
        assert isinstance(self.app.bridge, BridgeInbox)
        return self.app.bridge

    async def stop(self) -> None:
        try:
            await self.app.stop()
        finally:
            await self.transport.stop()


async def start_bridge_bot(config: Config, clock: Clock, url: str, token: str, secret: str, *,
                           db_url: str | None = None, timeout_s: float = TIMEOUT_S,
                           rng: random.Random | None = None) -> BridgeBot:
    """Start the bot on the provider at ``url``: capabilities asked, events received on the HTTP server.
    A provider that is down is no reason not to start (its events will say when it is back)."""
    app: BotApp | None = None
    transport = BridgeTransport(url, token, timeout_s=timeout_s,
                                is_offline=lambda: app is not None and app.health.offline)
    app = BotApp(config, clock, transport.send, db_url=db_url, rng=rng, web=True, transport_name="bridge",
                 bridge=lambda a: BridgeInbox(secret, clock, a.services.sessions, route_events(a, transport)))
    app.health.silence_s = SILENCE_S  # providers send a heartbeat at least every 60 s
    await transport.start()
    try:
        await app.start()
    except BaseException:
        await transport.stop()
        raise
    app.services.capabilities = transport.capabilities
    if config.bot.account_id:
        app.set_account(config.bot.account_id)
    if transport.refused is not None:
        app.health.send_refused(transport.refused)
    return BridgeBot(app, transport)


def route_events(app: BotApp, transport: BridgeTransport) -> EventHandler:
    """What each accepted event does: messages, joins and leaves go to the dispatcher; the session's events to
    the health monitor (and a login to the governor, through the app)."""
    health = app.health
    tasks = transport.learning  # capability look-ups under way (tests await them)

    async def learn_capabilities() -> None:
        capabilities = await transport.refresh_capabilities()
        if capabilities is not None:
            app.services.capabilities = capabilities

    def on_event(accepted: BridgeEvent, done: Done, mark: Mark | None, replayed: bool) -> None:
        if not replayed:  # an event handed on again after a restart says nothing about the session now
            health.saw_event()
        event = accepted.event
        if event is not None:
            bot_id = app.services.bot_id
            if isinstance(event, MessageReceived) and bot_id is not None:
                if event.sender.id == bot_id:
                    done(True, False)
                    return  # our own message, echoed by the platform
                if bot_id in event.mention_ids and not event.mentions_bot and event.room_id is not None:
                    event = replace(event, mentions_bot=True)
            app.dispatcher.submit(event, done, mark)
            return
        life = accepted.lifecycle
        if life is None or life.kind == "heartbeat":
            return
        if life.kind == "login":
            assert life.account is not None
            transport.self_id = life.account.id
            transport.refused = None  # give the token another chance: one call tells (one per login, no storm)
            app.logged_in(life.account.id)
            task = asyncio.get_running_loop().create_task(learn_capabilities(), name="bridge-capabilities")
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        elif life.kind == "logout":
            health.logged_out(life.reason)
        elif life.kind == "login_needed":
            health.login_needed(life.qr_url, life.note)

    return on_event
