"""Make python-wechaty 0.10.7 usable on Python 3.11, in one place.

Why a shim at all: wechaty 0.10.7 is the last python-wechaty release, and it predates Python 3.11.

* ``wechaty.wechaty.WechatyOptions`` is a dataclass with ``puppet_options: PuppetOptions = PuppetOptions()``.
  Since 3.11, dataclasses reject a default whose class is unhashable (the "mutable default" check), and
  ``wechaty_puppet.PuppetOptions`` is an ``eq=True`` dataclass, hence ``__hash__ = None``: ``import wechaty``
  raises ValueError. We give ``PuppetOptions`` identity hashing, which is all the check looks at. The shared
  default instance that results is exactly what older Pythons had; never rely on it (always pass a fresh
  ``PuppetOptions``).
* Its loggers (``wechaty_puppet.get_logger``) install their own stderr handler and stop propagation, so they
  would bypass the app's logging config; we hand them back to the root logger.

The transport itself only needs the gRPC client layer (``wechaty_puppet_service.PuppetService``), not the
high-level ``wechaty.Wechaty`` class, whose ``start()`` stops the event loop on puppet errors, retries after a
fixed 60 s and, at login, starts a plugin web server on 0.0.0.0:5000 plus an APScheduler. The shim still
makes ``import wechaty`` work for anyone who wants the high-level API.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

_WECHATY_LOG_FORMAT = "%(asctime)s - %(name)s - %(levelname)s - %(message)s"
_applied = False


def apply_compat() -> None:
    """Patch what python-wechaty 0.10.7 needs on 3.11; idempotent; call before ``import wechaty``."""
    global _applied
    if _applied:
        return
    import wechaty_puppet

    if getattr(wechaty_puppet.PuppetOptions, "__hash__", None) is None:
        # Identity hash: satisfies dataclasses' mutable-default check; equality is unchanged.
        wechaty_puppet.PuppetOptions.__hash__ = object.__hash__  # type: ignore[method-assign,assignment]
    _applied = True


def route_wechaty_loggers() -> None:
    """Let loggers made by ``wechaty_puppet.get_logger`` propagate to the app's handlers instead of their own."""
    for logger in list(logging.root.manager.loggerDict.values()):
        if not isinstance(logger, logging.Logger) or logger.propagate:
            continue
        own = [h for h in logger.handlers if getattr(h.formatter, "_fmt", None) == _WECHATY_LOG_FORMAT]
        if own:
            for handler in own:
                logger.removeHandler(handler)
            logger.propagate = True
            logger.setLevel(logging.NOTSET)


class RedactFilter(logging.Filter):
    """Replaces a secret (the service token) in log records; python-wechaty logs the token in warnings."""

    def __init__(self, secret: str) -> None:
        super().__init__()
        self.secret = secret

    def filter(self, record: logging.LogRecord) -> bool:
        if self.secret:
            message = record.getMessage()
            if self.secret in message:
                record.msg = message.replace(self.secret, "***")
                record.args = ()
        return True


@dataclass(frozen=True)
class WechatyAPI:
    """The pieces of the python-wechaty stack the transport uses."""

    PuppetService: Any  # wechaty_puppet_service.PuppetService: the gRPC client puppet
    PuppetOptions: Any  # wechaty_puppet.PuppetOptions
    EventType: Any  # wechaty_grpc EventType enum (event stream types)
    MessageType: Any  # wechaty_grpc MessageType enum (after PuppetService's type mapping)
    service_logger: logging.Logger  # the 'PuppetService' logger (gets the token redaction filter)


def import_wechaty() -> WechatyAPI:
    """Apply the shim, import the python-wechaty puppet-service client and return what the transport needs."""
    apply_compat()
    from wechaty_puppet import EventType, MessageType, PuppetOptions
    from wechaty_puppet_service import PuppetService

    route_wechaty_loggers()
    return WechatyAPI(
        PuppetService=PuppetService,
        PuppetOptions=PuppetOptions,
        EventType=EventType,
        MessageType=MessageType,
        service_logger=logging.getLogger("PuppetService"),
    )
