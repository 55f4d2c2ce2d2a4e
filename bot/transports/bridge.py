"""The bridge transport, bot → provider: the calls of the provider-neutral HTTP contract (docs/operators/
going-live.md#bridge-providers; the contract itself: bridge.md v1). Events come the other way, into the bot's own
HTTP server (bot/transports/bridge_inbox.py).

Every call carries ``Authorization: Bearer <token>`` and gives up after 10 s. The provider's answers map onto the
transport errors the governor acts on:

* 401/403 → FatalTransportError: the token is wrong; nothing more is sent (the governor holds everything) until a
  login event, when the capabilities are asked again;
* 429, or a body ``{"error": "risk_control"}`` → RiskControlError: the governor backs off;
* 503 → NotConnectedError: not logged in, the governor holds until the next login;
* a timeout or a broken connection once the request was sent → UncertainDeliveryError: it may have arrived, so
  it is never sent again; a connection that could not even be opened → NotConnectedError (nothing left);
* any other status → TransportError: retried a few times, then dropped and logged.

While the account is known to be offline (``is_offline``: a logout, a login request, silence), sends fail with
NotConnectedError at once, without a call. Each send carries a ``client_id``, the same for every try of one queued
message in this process, so a provider can recognise a resend.
"""

from __future__ import annotations

import asyncio
import json
import logging
import uuid
from collections import OrderedDict
from collections.abc import Callable
from typing import Any
from urllib.parse import quote

import aiohttp
from yarl import URL

from bot.capabilities import Capabilities
from bot.events import OutgoingMessage, Person
from bot.transports.base import (
    FatalTransportError,
    NotConnectedError,
    RiskControlError,
    TransportError,
    UncertainDeliveryError,
)

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0
CONNECT_TIMEOUT_S = 5.0  # a connection not open by then: the request never left, nothing can have arrived
_CLIENT_IDS_KEPT = 4096  # messages whose client_id is remembered for their retries


class BridgeTransport:
    def __init__(self, base_url: str, token: str, *, timeout_s: float = TIMEOUT_S,
                 is_offline: Callable[[], bool] | None = None) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"the bridge URL must start with http:// or https://, not {base_url[:40]!r}")
        if not token:
            raise ValueError("the bridge transport needs its token")
        self.base_url = base_url.rstrip("/")
        self._token = token  # never logged
        self._timeout = aiohttp.ClientTimeout(total=timeout_s, sock_connect=min(CONNECT_TIMEOUT_S, timeout_s))
        self.is_offline = is_offline or (lambda: False)
        self.self_id: str | None = None
        self.capabilities = Capabilities()  # until the provider says
        self.learning: set[asyncio.Task] = set()  # look-ups of the capabilities after a login, under way
        self.refused: str | None = None  # why the provider refused our token (401/403), until it accepts it again
        self._http: aiohttp.ClientSession | None = None
        self._client_ids: OrderedDict[int, tuple[OutgoingMessage, str]] = OrderedDict()
        self.calls = 0

    def __repr__(self) -> str:  # the token stays out of every repr
        return f"BridgeTransport({self.origin!r}, self_id={self.self_id!r})"

    @property
    def origin(self) -> str:
        """The provider's scheme, host and port: what logs show of its URL (which might carry credentials)."""
        return str(URL(self.base_url).origin())

    # -- lifecycle ------------------------------------------------------------------------------------------------

    async def start(self) -> None:
        if self._http is None:
            self._http = aiohttp.ClientSession(
                timeout=self._timeout, headers={"Authorization": f"Bearer {self._token}"},
                raise_for_status=False)
        await self.refresh_capabilities()

    async def stop(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = None

    # -- calls ----------------------------------------------------------------------------------------------------

    async def refresh_capabilities(self) -> Capabilities | None:
        """Ask ``GET /capabilities`` (at start and at every login); None if the provider did not answer it."""
        try:
            status, body = await self._call("GET", "/capabilities")
        except TransportError as exc:
            log.warning("bridge provider: capabilities not learnt (%s); keeping %s", exc,
                        ", ".join(self.capabilities.names()))
            return None
        if not isinstance(body, dict):
            log.warning("bridge provider: GET /capabilities answered something other than a JSON object")
            return None
        self.refused = None
        self.capabilities = Capabilities.from_mapping(body)
        log.info("bridge provider can: %s", ", ".join(self.capabilities.names()) or "nothing")
        return self.capabilities

    async def send(self, message: OutgoingMessage) -> str | None:
        if self.refused is not None:
            raise FatalTransportError(f"the bridge provider refused the bot's token ({self.refused})")
        if self.is_offline():
            raise NotConnectedError("the account is offline: waiting for its next login")
        body: dict[str, Any] = {"text": message.text, "client_id": self._client_id(message)}
        if message.room_id is not None:
            body["room"] = message.room_id
            body["mentions"] = list(message.mentions)
        else:
            body["user"] = message.user_id
        status, answer = await self._call("POST", "/send", body, sending=True)
        self._client_ids.pop(id(message), None)
        platform_id = answer.get("id") if isinstance(answer, dict) else None
        return str(platform_id) if platform_id not in (None, "") else None

    async def kick(self, room_id: str, user_id: str) -> None:
        if not self.capabilities.kick:
            raise TransportError("the bridge provider cannot kick (capabilities)")
        await self._call("POST", "/kick", {"room": room_id, "user": user_id})

    async def members(self, room_id: str) -> list[Person]:
        _, body = await self._call("GET", f"/rooms/{_quote(room_id)}/members")
        members = body.get("members") if isinstance(body, dict) else None
        if not isinstance(members, list):
            raise TransportError("the bridge provider's member list is not {\"members\": [...]}")
        return [Person(str(m["id"]), str(m.get("name") or "")) for m in members
                if isinstance(m, dict) and isinstance(m.get("id"), str)]

    # -- internals ------------------------------------------------------------------------------------------------

    def _client_id(self, message: OutgoingMessage) -> str:
        """The bot's id for this send: the same for every try of one queued message (the governor retries the
        same object), new for any other message."""
        key = id(message)
        known = self._client_ids.get(key)
        if known is not None and known[0] is message:
            return known[1]
        client_id = uuid.uuid4().hex
        self._client_ids[key] = (message, client_id)  # holding the message keeps its id from being reused
        while len(self._client_ids) > _CLIENT_IDS_KEPT:
            self._client_ids.popitem(last=False)
        return client_id

    async def _call(self, method: str, path: str, body: dict | None = None, *,
                    sending: bool = False) -> tuple[int, Any]:
        if self._http is None:
            raise NotConnectedError("the bridge transport is not started")
        self.calls += 1
        where = f"{method} {path.split('/')[1] if path.startswith('/rooms/') else path}"
        try:
            async with self._http.request(method, self.base_url + path, json=body) as response:
                status = response.status
                raw = await response.read()
        except (aiohttp.ClientConnectorError, aiohttp.ConnectionTimeoutError) as exc:
            # the connection never opened: nothing was sent
            raise NotConnectedError(f"bridge provider unreachable ({type(exc).__name__})") from None
        except (TimeoutError, aiohttp.ClientError) as exc:
            if sending:  # the request may have been read and acted on: never again
                raise UncertainDeliveryError(f"{where}: no answer ({type(exc).__name__}); it may have arrived") \
                    from None
            raise TransportError(f"{where}: {type(exc).__name__}") from None
        answer = _json_or_none(raw)
        error = answer.get("error") if isinstance(answer, dict) else None
        if status in (401, 403):
            self.refused = f"HTTP {status} on {where}"
            raise FatalTransportError(f"the bridge provider refused the bot's token: HTTP {status} on {where}")
        if status == 429 or error == "risk_control":
            raise RiskControlError(f"{where}: the platform pushed back (HTTP {status})")
        if status == 503:
            raise NotConnectedError(f"{where}: the provider is not logged in (HTTP 503)")
        if not 200 <= status < 300:
            said = f": {str(error)[:120]}" if error else ""
            raise TransportError(f"{where}: HTTP {status}{said}")
        return status, answer


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except (UnicodeDecodeError, ValueError):
        return None


def _quote(segment: str) -> str:
    return quote(segment, safe="")
