"""WeCom → bot: the callback URL (``GET`` and ``POST /wecom/callback`` on the bot's HTTP server, mounted by
bot/web/server.py while the bot runs on WeCom).

``GET ?msg_signature&timestamp&nonce&echostr`` (saving the URL in the admin console): the echostr decrypted and
answered as plain text. ``POST`` (every event): the XML ``<Encrypt>`` checked and decrypted, answered ``200`` with
an empty body once accepted. Refusals, in the order checked: 413 over ``MAX_BODY_BYTES``; 400 for a body that is
not the expected XML (DOCTYPE and entities refused outright); 401 for a missing or wrong ``msg_signature`` or a
``timestamp`` more than ``MAX_SKEW_S`` from the bot's clock; 403 for another corp (``ToUserName`` or the receive
id inside the ciphertext). Each refusal is logged (never the body), and nothing changes.

A callback's key (``msg:<MsgId>`` for messages, ``evt:<digest of the decrypted event>`` for events, which have no
id: WeCom's resend of an event is byte-identical) is committed to ``wecom_callbacks`` before the answer; a key seen
before changes nothing, across restarts. The event is handed on (``on_callback``) after that, and must be quick.
Customer-contact events and staff messages to the app are committed with their parsed fields (``payload``), pending
until handled (handled.py); ``recover`` hands the pending ones on again at start, before any new callback.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import re
import xml.etree.ElementTree as ET
from xml.parsers import expat
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.clock import Clock, TimerHandle
from bot.transports.wecom import handled as kept_until_handled
from bot.transports.wecom.crypto import CallbackCrypto, CryptoError
from storage import wecom as store

log = logging.getLogger(__name__)

PATH = "/wecom/callback"
MAX_BODY_BYTES = 64 * 1024
MAX_SKEW_S = 300
REMEMBER_WITHIN_S = 3.0  # WeCom waits 5 s for the answer, then resends
KEEP_KEYS = timedelta(days=3)
PRUNE_EVERY_S = 6 * 3600
MAX_FIELD = 4096
_TIMESTAMP = re.compile(r"\d{1,12}")
_NONCE = re.compile(r"[0-9A-Za-z_-]{1,64}")


@dataclass(frozen=True)
class Answer:
    status: int
    text: str = ""


@dataclass(frozen=True)
class Callback:
    """One accepted callback: its key and the decrypted XML's fields (top-level text; ``items`` for lists such as
    MemChangeList)."""

    key: str
    fields: dict[str, str]
    items: dict[str, tuple[str, ...]] = field(default_factory=dict)
    received_at: datetime | None = None  # set when handed on again at start (received before the restart)

    def get(self, name: str) -> str:
        return self.fields.get(name, "")


CallbackHandler = Callable[[Callback], None]


def _refuse_doctype(*_args: object) -> None:
    raise ValueError("DOCTYPE or ENTITY in the body")


def parse_xml(raw: bytes) -> ET.Element:
    """WeCom's XML, with no DOCTYPE or entity ever (they would be an attack, never WeCom).

    Refused by expat's own handlers, not by looking for the bytes ``<!DOCTYPE``: a body in UTF-16 (a BOM or an
    encoding declaration) hides them from a byte search, and this runs before the signature is checked."""
    builder = ET.TreeBuilder()
    parser = expat.ParserCreate()
    parser.StartDoctypeDeclHandler = _refuse_doctype
    parser.EntityDeclHandler = _refuse_doctype
    parser.ExternalEntityRefHandler = _refuse_doctype
    parser.StartElementHandler = lambda tag, attrs: builder.start(tag, attrs)
    parser.EndElementHandler = builder.end
    parser.CharacterDataHandler = builder.data
    try:
        parser.Parse(raw, True)
    except expat.ExpatError as exc:
        raise ValueError(f"not XML: {exc}") from None
    root = builder.close()
    if root.tag != "xml":
        raise ValueError("the root element is not <xml>")
    return root


def fields_of(root: ET.Element) -> tuple[dict[str, str], dict[str, tuple[str, ...]]]:
    fields: dict[str, str] = {}
    items: dict[str, tuple[str, ...]] = {}
    for child in root:
        if len(child):  # a list: <MemChangeList><Item>id</Item>...</MemChangeList>
            items[child.tag] = tuple((c.text or "").strip()[:MAX_FIELD] for c in child)
        else:
            fields[child.tag] = (child.text or "").strip()[:MAX_FIELD]
    return fields, items


class WeComCallbacks:
    """Receives WeCom's callbacks; ``on_callback`` gets each accepted one, once."""

    callback_path = PATH
    max_body_bytes = MAX_BODY_BYTES

    def __init__(self, crypto: CallbackCrypto, clock: Clock, sessions: async_sessionmaker[AsyncSession],
                 on_callback: CallbackHandler) -> None:
        self._crypto = crypto
        # customer-contact events and staff messages are kept until handled (handled.py)
        self._ready = False  # until recover() ran: new callbacks wait (what was pending goes first)
        self._held: list[Callback] = []
        self.recovered = 0
        self.dropped_stale = 0
        self._clock = clock
        self._sessions = sessions
        self._on_callback = on_callback
        self._prune_timer: TimerHandle | None = None
        self._waiting: list[tuple[Callback, asyncio.Future]] = []
        self._writer: asyncio.Task | None = None
        self.accepted = 0
        self.duplicates = 0
        self.refused: dict[int, int] = {}

    def __repr__(self) -> str:
        return f"WeComCallbacks({self._crypto.receive_id!r})"

    async def start(self) -> None:
        await self.prune()

    async def stop(self) -> None:
        if self._prune_timer is not None:
            self._prune_timer.cancel()
            self._prune_timer = None
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    # -- the two requests -------------------------------------------------------------------------------------------

    async def verify(self, query: dict[str, str]) -> Answer:
        """GET: the URL check when the operator saves it in the admin console."""
        echostr = query.get("echostr", "")
        refused = self._check(query, echostr)
        if refused is not None:
            return self._refuse(refused)
        try:
            plain = self._crypto.decrypt(echostr)
        except CryptoError as exc:
            log.warning("WeCom URL check refused: %s", exc)
            return self._refuse(Answer(403 if "receive id" in str(exc) else 400, "bad echostr"))
        return Answer(200, plain.decode("utf-8", "replace"))

    async def receive(self, query: dict[str, str], body: bytes) -> Answer:
        try:
            outer, _ = fields_of(parse_xml(body))
        except (ET.ParseError, ValueError):
            return self._refuse(Answer(400, "the body is not WeCom's callback XML"))
        encrypted = outer.get("Encrypt", "")
        if not encrypted:
            return self._refuse(Answer(400, "no <Encrypt> in the body"))
        refused = self._check(query, encrypted)
        if refused is not None:
            return self._refuse(refused)
        if outer.get("ToUserName") and outer["ToUserName"] != self._crypto.receive_id:
            log.warning("WeCom callback refused: it is for another corp")
            return self._refuse(Answer(403, "unknown corp"))
        try:
            inner_raw = self._crypto.decrypt(encrypted)
            fields, items = fields_of(parse_xml(inner_raw))
        except CryptoError as exc:
            log.warning("WeCom callback refused: %s", exc)
            return self._refuse(Answer(403 if "receive id" in str(exc) else 400, "cannot decrypt"))
        except (ET.ParseError, ValueError):
            return self._refuse(Answer(400, "the decrypted event is not XML"))
        msg_id = fields.get("MsgId")
        key = f"msg:{msg_id}"[:128] if msg_id else "evt:" + hashlib.sha256(inner_raw).hexdigest()[:60]
        callback = Callback(key, fields, items)
        try:
            new = await asyncio.wait_for(self._remember(callback), REMEMBER_WITHIN_S)
        except Exception as exc:  # not accepted: WeCom sends it again
            log.error("WeCom callback not accepted in time: its key could not be recorded (%s)", type(exc).__name__)
            return self._refuse(Answer(503, "try again"))
        if not new:
            self.duplicates += 1
            return Answer(200)
        self._accept(callback)
        return Answer(200)

    def _accept(self, callback: Callback) -> None:
        self.accepted += 1
        if not self._ready:
            self._held.append(callback)
            return
        self._hand_on(callback)

    def _hand_on(self, callback: Callback) -> None:
        try:
            self._on_callback(callback)
        except Exception:  # accepted already: a bug in handling must not turn into a resend
            log.exception("WeCom callback %s failed in handling", callback.key)

    def _check(self, query: dict[str, str], encrypted: str) -> Answer | None:
        signature, timestamp, nonce = (query.get(k, "") for k in ("msg_signature", "timestamp", "nonce"))
        if not _TIMESTAMP.fullmatch(timestamp) or not _NONCE.fullmatch(nonce) or not signature \
                or not self._crypto.verify(signature, timestamp, nonce, encrypted):
            log.warning("WeCom callback refused: missing or wrong msg_signature")
            return Answer(401, "missing or wrong msg_signature")
        skew = abs(self._clock.now().timestamp() - int(timestamp))
        if skew > MAX_SKEW_S:
            log.warning("WeCom callback refused: its timestamp is %.0f s away from our clock", skew)
            return Answer(401, "stale timestamp")
        return None

    def _refuse(self, answer: Answer) -> Answer:
        self.refused[answer.status] = self.refused.get(answer.status, 0) + 1
        return answer

    async def _remember(self, callback: Callback) -> bool:
        """Keys of concurrent callbacks share one transaction (SQLite has one writer: one commit each queued)."""
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((callback, future))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="wecom-callback-keys")
        return await future

    async def _write(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                async with self._sessions() as session:
                    now = self._clock.now()
                    found = []
                    for c, _ in batch:
                        payload = (kept_until_handled.payload(c.fields, c.items) if kept_until_handled.kept(c.fields)
                                   else None)  # a kept one's payload goes in with its key
                        found.append(await store.remember(session, c.key, now, payload))
                    await session.commit()
            except Exception as exc:
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (callback, future), new in zip(batch, found, strict=True):
                if not future.done():
                    future.set_result(new)
                elif new:  # its request answered 503 meanwhile, yet the key is recorded: handle it now, once
                    self._accept(callback)

    async def recover(self) -> int:
        """Hand on again the kept callbacks not handled before the restart, oldest first; drop the ones received more
        than STALE_AFTER ago. Then the callbacks that came meanwhile. How many were handed on."""
        now = self._clock.now()
        try:
            kept, stale = await kept_until_handled.take_pending(self._sessions, now, ("msg:", "evt:"),
                                                                kept_until_handled.from_payload)
            fresh = [Callback(key, fields, items, received_at=received_at)
                     for key, received_at, (fields, items) in kept]
            if fresh or stale:
                log.info("WeCom callbacks received but not handled before the restart: %d handed on, %d dropped as "
                         "older than %s", len(fresh), stale, kept_until_handled.STALE_AFTER)
            fresh.sort(key=lambda c: (c.received_at, c.key))
            for callback in fresh:
                self._hand_on(callback)
            self.recovered += len(fresh)
            self.dropped_stale += stale
            return len(fresh)
        finally:
            self._ready = True
            held, self._held = self._held, []
            for callback in held:
                self._hand_on(callback)

    async def prune(self) -> None:
        self._prune_timer = self._clock.call_later(PRUNE_EVERY_S, self.prune, name="wecom-prune")
        try:
            async with self._sessions() as session:
                await store.prune(session, self._clock.now() - KEEP_KEYS)
                await session.commit()
        except Exception as exc:
            log.warning("could not prune old WeCom callback keys: %s", type(exc).__name__)
