"""The contract between the core and a transport (Wechaty, console, replay).

The core never imports a concrete transport; the entry point picks one and hands it to the app.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Protocol

from bot.events import Event, OutgoingMessage

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

EventSink = Callable[[Event], Awaitable[None]]
# An event kept by its transport until handled (bot.dispatcher.Dispatcher.submit): ``Mark`` notes it handled in the
# transaction that handles it; ``Done(handled, marked)`` is called once its turn is over (marked: by that Mark).
Done = Callable[[bool, bool], None]
Mark = Callable[["AsyncSession"], Awaitable[None]]


class TransportError(Exception):
    """The send failed for a reason that may pass (connection lost, gateway down)."""


class NotConnectedError(TransportError):
    """Not sent: the transport is disconnected (it knew before trying). The governor holds every message until
    the next login instead of spending retries, then sends each once (or drops it as stale)."""


class UncertainDeliveryError(TransportError):
    """The connection broke or timed out mid-send: the message may have arrived. Never retried (never twice)."""


class FatalTransportError(TransportError):
    """Sending cannot work until an operator acts (the provider refused the bot's token: HTTP 401/403). The
    governor holds every message and tries nothing more until the next login; the operators get one alert."""


class RefusedError(TransportError):
    """The platform refused this one message for good (WeCom: a monthly quota used up, the 微信客服 reply window
    closed, no channel to the member): dropped with ``reason``, never retried."""

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason


class RiskControlError(TransportError):
    """The platform pushed back on sending too much ("操作过于频繁"): the governor backs off."""


# Phrases WeChat and puppets use when an account sends too fast.
RISK_CONTROL_MARKERS = ("频繁", "too frequent", "rate limit", "risk control", "风控", "限制")


def looks_like_risk_control(text: str) -> bool:
    lowered = text.lower()
    return any(marker in lowered for marker in RISK_CONTROL_MARKERS)


class Transport(Protocol):
    #: The bot's own WeChat id once logged in (None before).
    self_id: str | None

    async def start(self, sink: EventSink) -> None:
        """Connect and begin delivering events to ``sink``; returns once connected."""

    async def send(self, message: OutgoingMessage) -> str | None:
        """Send one message; return the platform's message id if it gives one.

        Raise RiskControlError when the platform says the account is sending too fast,
        TransportError for anything else that failed to send.
        """

    async def stop(self) -> None:
        """Disconnect; idempotent."""
