"""The WeChat transport: a gRPC client of the Wechaty puppet protocol, talking to the Node gateway (gateway/serve.js).

The client is the protocol alone: the ``wechaty-grpc`` package's generated stub (``PuppetStub``, betterproto
messages over grpclib), with no python-wechaty layer on top (that stack is unmaintained since 2022 and pinned
pyee<9, urllib3<2 and Python<3.13).

Connection and lifecycle
------------------------
* The gateway runs a Wechaty PuppetServer with TLS off; we connect with plain HTTP/2 to ``endpoint``
  (``host:port``) and authenticate with ``token``, sent as ``authorization: Wechaty <token>`` metadata on every
  call (what the puppet service's own clients send). TLS is not implemented on this side: keep the gateway on
  localhost or a private network.
* ``start()`` sends Start to the gateway (a no-op when the puppet is already running) but never Stop first:
  restarting the bot must not restart the WeChat session. ``stop()`` only closes our connection; the gateway keeps the account logged in. The gateway replays
  the login to every new event stream, so ``start()`` returns once that login arrives.
* If the event stream breaks (gateway restarted, network), we log it and reconnect on our own with exponential
  back-off (1 s doubling up to ``max_backoff``), forever, until ``stop()``. Sends while disconnected, or while the
  account is logged out, raise ``NotConnectedError`` (the governor holds them until the next login). Events emitted by WeChat while we are disconnected are lost (the gateway does not queue
  them). A half-open TCP connection is not detected yet (no heartbeat timeout).

Events
------
Events are turned into bot.events values and handed to the sink strictly in arrival order (payload lookups run
concurrently, delivery does not). The sink should be quick (enqueue): a slow sink delays later events.
The bot's own messages and non-text messages are skipped; a room-join of the bot itself is skipped too. Every
event is cleaned (bot/clean.py: NUL bytes and lone surrogates removed, names and text cut to their columns) and
one with an id the store can't hold is dropped with a warning that names the field, not the value.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import urllib.parse
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

from grpclib.client import Channel
from grpclib.exceptions import StreamTerminatedError
from wechaty_grpc.wechaty import PuppetStub
from wechaty_grpc.wechaty.puppet import EventType

from bot.backoff import Backoff
from bot.clean import clean_event
from bot.events import Event, MembersJoined, MembersLeft, MessageReceived, OutgoingMessage, Person
from bot.http import FieldError
from bot.transports.base import (
    EventSink,
    NotConnectedError,
    RiskControlError,
    TransportError,
    UncertainDeliveryError,
    looks_like_risk_control,
)
log = logging.getLogger(__name__)

#: The gateway sends message types as wechaty-puppet (TypeScript) numbers, not the .proto enum's: Text is 7 there
#: (the proto's MESSAGE_TYPE_TEXT is 6). python-wechaty remapped them the same way.
_PUPPET_MESSAGE_TYPE_TEXT = 7


class _Connection:
    """One HTTP/2 channel to the gateway and the stub whose every call carries the token."""

    def __init__(self, host: str, port: int, token: str) -> None:
        self.channel = Channel(host=host, port=port)
        self.stub = PuppetStub(self.channel, metadata={"authorization": f"Wechaty {token}"})

    def close(self) -> None:
        self.channel.close()


class WechatyTransport:
    """Transport over a Wechaty puppet service (see module docstring)."""

    def __init__(
        self,
        endpoint: str,
        token: str,
        clock_now: Callable[[], datetime],
        *,
        login_timeout: float | None = None,
        send_timeout: float = 30.0,
        connect_timeout: float = 10.0,
        max_backoff: float = 60.0,
        on_login: Callable[[str], None] | None = None,
        on_logout: Callable[[str], None] | None = None,
        on_login_needed: Callable[[str | None], None] | None = None,
    ) -> None:
        if not endpoint:
            raise ValueError("WechatyTransport needs the gateway endpoint (host:port)")
        if not token:
            raise ValueError("WechatyTransport needs the gateway token")
        self.self_id: str | None = None
        self.self_name: str = ""
        self._endpoint = endpoint
        self._token = token  # never logged
        self._clock_now = clock_now
        self._login_timeout = login_timeout
        self._send_timeout = send_timeout
        self._connect_timeout = connect_timeout
        self._max_backoff = max_backoff
        self._on_login_hook = on_login  # e.g. the send governor's warm-up after every (re)login
        self._on_logout_hook = on_logout  # the session health monitor: one alert per incident
        self._on_login_needed_hook = on_login_needed  # ...with the QR link to scan

        self._conn: _Connection | None = None
        self._sink: EventSink | None = None
        self._runner: asyncio.Task[None] | None = None
        self._deliverer: asyncio.Task[None] | None = None
        self._pending: asyncio.Queue[asyncio.Task[Event | None]] = asyncio.Queue()
        self._logged_in: asyncio.Event = asyncio.Event()
        #: How many logins the gateway reported to us (each reconnect replays one).
        self.login_count = 0
        self._login_signal: asyncio.Event = asyncio.Event()
        self._first_failure: BaseException | None = None
        self._first_attempt_done: asyncio.Event = asyncio.Event()
        self._stopping = False

    def __repr__(self) -> str:  # keep the token out of any repr
        return f"WechatyTransport(endpoint={self._endpoint!r}, self_id={self.self_id!r})"

    # -- lifecycle ----------------------------------------------------------------------------------------

    async def start(self, sink: EventSink) -> None:
        """Connect, then return once the gateway reports the bot's account logged in (``self_id`` set).

        Raises TransportError if the first connection attempt fails or the login does not come within
        ``login_timeout`` (None: wait for it, e.g. while someone scans the QR code logged at INFO).
        """
        if self._runner is not None:
            raise RuntimeError("WechatyTransport.start() called twice")
        self._sink = sink
        self._stopping = False
        self._first_failure = None
        self._first_attempt_done.clear()
        self._deliverer = asyncio.create_task(self._deliver_in_order(), name="wechaty-deliver")
        self._runner = asyncio.create_task(self._run(), name="wechaty-connection")

        await self._first_attempt_done.wait()
        if self._first_failure is not None:
            failure = self._first_failure
            await self.stop()
            raise TransportError(
                f"cannot connect to the Wechaty gateway at {self._endpoint}: {self._error_text(failure)}"
            ) from None  # the cause may echo the token
        try:
            await asyncio.wait_for(self._logged_in.wait(), timeout=self._login_timeout)
        except TimeoutError:
            await self.stop()
            raise TransportError(
                f"connected to the Wechaty gateway at {self._endpoint} but no login within {self._login_timeout}s"
            ) from None

    async def stop(self) -> None:
        """Close our connection to the gateway (the gateway stays logged in); idempotent."""
        self._stopping = True
        for task in (self._runner, self._deliverer):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._runner = self._deliverer = None
        while not self._pending.empty():
            self._pending.get_nowait().cancel()
        self._close_channel()
        self._logged_in.clear()

    # -- sending ------------------------------------------------------------------------------------------

    async def send(self, message: OutgoingMessage) -> str | None:
        conn = self._conn
        if conn is None:
            raise NotConnectedError("not connected to the Wechaty gateway")
        if not self._logged_in.is_set():  # logged out (or not yet in): the governor holds it until the login
            raise NotConnectedError("the WeChat account is not logged in on the gateway")
        try:
            response = await asyncio.wait_for(
                conn.stub.message_send_text(
                    conversation_id=message.conversation_id, text=message.text, mentonal_ids=list(message.mentions)
                ),
                timeout=self._send_timeout,
            )
            message_id = response.id
        except asyncio.CancelledError:
            raise
        except TimeoutError as exc:  # the gateway may have sent it and not answered yet
            raise UncertainDeliveryError(f"send timed out after {self._send_timeout}s") from exc
        except ConnectionRefusedError as exc:  # the request never left: the gateway is down
            raise NotConnectedError(f"gateway {self._endpoint} refused the connection") from exc
        except StreamTerminatedError as exc:  # the connection broke mid-call: it may have arrived
            raise UncertainDeliveryError(f"connection to the gateway broke during the send: {exc}") from exc
        except Exception as exc:
            text = self._error_text(exc)
            # The gateway appends the Node stack trace; keep the first line for the error message.
            summary = text.strip().splitlines()[0] if text.strip() else type(exc).__name__
            if looks_like_risk_control(text):
                raise RiskControlError(summary) from exc
            raise TransportError(summary) from exc
        # Some puppets (the mock, several real ones) do not return the new message's id: still sent.
        return message_id or None

    # -- connection loop ----------------------------------------------------------------------------------

    async def _run(self) -> None:
        backoff = Backoff(1.0, self._max_backoff)
        first = True
        while not self._stopping:
            try:
                await self._connect()
                if first:
                    first = False
                    self._first_attempt_done.set()
                backoff.reset()
                await self._consume_events()
                log.warning("wechaty gateway closed the event stream; reconnecting")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if first:
                    self._first_failure = exc
                    self._first_attempt_done.set()
                    return
                log.warning("wechaty gateway connection lost (%s); reconnecting in %.0fs", self._error_text(exc),
                            backoff.peek())
            self._close_channel()
            self._logged_in.clear()
            if self._stopping:
                return
            await asyncio.sleep(backoff.next())

    async def _connect(self) -> None:
        host, port = _split_endpoint(self._endpoint)
        # Probe first: a clear "unreachable" within connect_timeout, before any gRPC call.
        try:
            _, writer = await asyncio.wait_for(asyncio.open_connection(host, port), timeout=self._connect_timeout)
        except (OSError, TimeoutError) as exc:
            raise TransportError(f"gateway {self._endpoint} unreachable: {exc or type(exc).__name__}") from exc
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()

        self._conn = _Connection(host, port, self._token)
        # Start is idempotent on the gateway; deliberately no Stop before it (see module docstring).
        await asyncio.wait_for(self._conn.stub.start(), timeout=self._connect_timeout + 15)
        log.info("connected to wechaty gateway %s", self._endpoint)

    def _close_channel(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    async def _consume_events(self) -> None:
        et = EventType
        assert self._conn is not None
        async for response in self._conn.stub.event():
            if response is None:
                continue
            kind = int(response.type)
            try:
                payload: dict[str, Any] = json.loads(response.payload) if response.payload else {}
            except ValueError:
                log.warning("wechaty event %s with unreadable payload, skipped", kind)
                continue
            if kind == int(et.EVENT_TYPE_LOGIN):
                await self._on_login(payload.get("contactId") or "")
            elif kind == int(et.EVENT_TYPE_LOGOUT):
                log.warning("wechaty account %s logged out (%s)", payload.get("contactId"), payload.get("data"))
                self._logged_in.clear()
                if self._on_logout_hook is not None:
                    self._on_logout_hook(str(payload.get("data") or "")[:200])
            elif kind == int(et.EVENT_TYPE_SCAN):
                qr_url = self._on_scan(payload)
                if qr_url and self._on_login_needed_hook is not None:
                    self._on_login_needed_hook(qr_url)
            elif kind == int(et.EVENT_TYPE_ERROR):
                log.warning("wechaty gateway reported an error: %s", payload.get("data", payload))
            elif kind == int(et.EVENT_TYPE_MESSAGE):
                self._enqueue(self._message_event(payload.get("messageId", "")))
            elif kind == int(et.EVENT_TYPE_ROOM_JOIN):
                self._enqueue(self._join_event(payload))
            elif kind == int(et.EVENT_TYPE_ROOM_LEAVE):
                self._enqueue(self._leave_event(payload))
            # heartbeat, dong, ready, friendship, room-topic, room-invite: nothing to do yet

    async def _on_login(self, contact_id: str) -> None:
        if not contact_id:
            return
        self.self_id = contact_id
        try:
            contact = await self._stub().contact_payload(id=contact_id)
            self.self_name = contact.name or ""
        except Exception as exc:  # the name only serves the @-mention fallback
            log.warning("cannot read the bot's own contact %s: %s", contact_id, self._error_text(exc))
        log.info("wechaty logged in as %s (%s)", contact_id, self.self_name)
        self.login_count += 1
        if self._on_login_hook is not None:
            self._on_login_hook(contact_id)
        self._logged_in.set()
        self._login_signal.set()

    @property
    def logged_in(self) -> bool:
        """Connected to the gateway and the account is logged in."""
        return self._logged_in.is_set()

    async def wait_for_login(self, count: int) -> None:
        """Wait until ``login_count`` reaches ``count`` (e.g. ``login_count + 1``: the next reconnect)."""
        while self.login_count < count:
            self._login_signal.clear()
            await self._login_signal.wait()

    @staticmethod
    def _on_scan(payload: dict[str, Any]) -> str | None:
        """Log the scan status; the QR link to scan, if there is one."""
        qrcode = payload.get("qrcode")
        if qrcode:
            url = f"https://wechaty.js.org/qrcode/{urllib.parse.quote(qrcode, safe='')}"
            log.info("wechaty needs a QR scan (status %s): %s", payload.get("status"), url)
            return url
        log.info("wechaty scan status %s", payload.get("status"))
        return None

    # -- ordered delivery ---------------------------------------------------------------------------------

    def _enqueue(self, build: Awaitable[Event | None]) -> None:
        self._pending.put_nowait(asyncio.ensure_future(build))

    async def _deliver_in_order(self) -> None:
        while True:
            task = await self._pending.get()
            try:
                event = await task
            except asyncio.CancelledError:
                # Cancelling us while we await `task` cancels `task` too: only swallow when it was not us.
                current = asyncio.current_task()
                if current is not None and current.cancelling():
                    raise
                continue
            except Exception as exc:
                log.warning("dropped a wechaty event: %s", self._error_text(exc))
                continue
            if event is None or self._sink is None:
                continue
            try:
                event = clean_event(event)  # every value checked and cleaned where it enters (bot/clean.py)
            except FieldError as exc:  # names the field, never the value: ids and names are member data
                log.warning("dropped a wechaty %s event: %s", type(event).__name__, exc)
                continue
            try:
                await self._sink(event)
            except Exception:
                log.exception("event sink failed on %s", type(event).__name__)

    # -- event builders -----------------------------------------------------------------------------------

    async def _message_event(self, message_id: str) -> MessageReceived | None:
        payload = await self._stub().message_payload(id=message_id)
        talker_id = payload.from_id
        if not talker_id or talker_id == self.self_id:
            return None
        if int(payload.type) != _PUPPET_MESSAGE_TYPE_TEXT:
            log.debug("skipped non-text message %s (type %s)", message_id, payload.type)
            return None
        room_id = payload.room_id or None
        topic: str | None = None
        name = ""
        if room_id:
            topic, name = await asyncio.gather(self._room_topic(room_id), self._member_name(room_id, talker_id))
        else:
            name = await self._contact_name(talker_id)
        text = payload.text or ""
        mention_ids = tuple(payload.mention_ids or ())
        return MessageReceived(
            at=self._clock_now(),
            sender=Person(id=talker_id, name=name),
            text=text,
            room_id=room_id,
            room_topic=topic,
            mentions_bot=bool(room_id) and self._mentions_me(mention_ids, text),
            mention_ids=mention_ids,
            message_id=payload.id or message_id,
        )

    def _mentions_me(self, mention_ids: tuple[str, ...], text: str) -> bool:
        if self.self_id and self.self_id in mention_ids:
            return True
        # Fallback for puppets that leave the mention list empty: WeChat writes "@Name" + U+2005 (or a space).
        if not mention_ids and self.self_name:
            return re.search(rf"@{re.escape(self.self_name)}(?:[\u2005\s]|$)", text) is not None
        return False

    async def _join_event(self, payload: dict[str, Any]) -> MembersJoined | None:
        room_id = payload.get("roomId") or ""
        invitee_ids = [i for i in payload.get("inviteeIdList") or [] if i and i != self.self_id]
        if not room_id or not invitee_ids:
            if self.self_id in (payload.get("inviteeIdList") or []):
                log.info("the bot was added to room %s", room_id)
            return None
        topic, *names = await asyncio.gather(
            self._room_topic(room_id), *(self._member_name(room_id, i) for i in invitee_ids)
        )
        return MembersJoined(
            at=self._clock_now(),
            room_id=room_id,
            members=tuple(Person(id=i, name=n) for i, n in zip(invitee_ids, names, strict=True)),
            room_topic=topic,
            inviter_id=payload.get("inviterId") or None,
        )

    async def _leave_event(self, payload: dict[str, Any]) -> MembersLeft | None:
        room_id = payload.get("roomId") or ""
        removed = tuple(i for i in payload.get("removeeIdList") or [] if i)
        if not room_id or not removed:
            return None
        return MembersLeft(
            at=self._clock_now(),
            room_id=room_id,
            member_ids=removed,
            room_topic=await self._room_topic(room_id),
        )

    async def _room_topic(self, room_id: str) -> str | None:
        try:
            room = await self._stub().room_payload(id=room_id)
        except Exception as exc:
            log.debug("no topic for room %s: %s", room_id, self._error_text(exc))
            return None
        return room.topic or None

    async def _contact_name(self, contact_id: str) -> str:
        try:
            contact = await self._stub().contact_payload(id=contact_id)
        except Exception as exc:
            log.debug("no contact payload for %s: %s", contact_id, self._error_text(exc))
            return ""
        return contact.name or ""

    async def _member_name(self, room_id: str, contact_id: str) -> str:
        """The name the room shows: the member's group nickname if set, else the WeChat name."""
        try:
            member = await self._stub().room_member_payload(id=room_id, member_id=contact_id)
        except Exception:
            return await self._contact_name(contact_id)
        return member.room_alias or member.name or await self._contact_name(contact_id)

    def _stub(self) -> PuppetStub:
        conn = self._conn
        if conn is None:
            raise NotConnectedError("not connected to the Wechaty gateway")
        return conn.stub

    def _error_text(self, exc: BaseException) -> str:
        """The human part of an error (grpclib keeps the server's text in ``.message``), token masked:
        the gateway echoes a wrong token back in its UNAUTHENTICATED message."""
        message = getattr(exc, "message", None)
        text = (str(message) if message else str(exc)) or type(exc).__name__
        return text.replace(self._token, "***")


def _split_endpoint(endpoint: str) -> tuple[str, int]:
    host, sep, port = endpoint.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise TransportError(f"endpoint must be host:port, got {endpoint!r}")
    return host.strip("[]"), int(port)


