"""Out-of-band alerts to the people who can act (docs/operators/configuration.md#alerts): a group robot's webhook
(WeCom, Feishu, or plain JSON) and/or mail, as ``[alerts]`` configures them.

An alert must never take the bot down nor leak a secret: every failure is logged without the webhook URL (a group
robot's URL is its key) or the SMTP password, and swallowed. Mail goes through the standard library's smtplib in
a worker thread (a few alerts a day do not justify a dependency).
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage

import aiohttp

from bot.config import AlertSettings

log = logging.getLogger(__name__)

TIMEOUT_S = 10.0


@dataclass(frozen=True, slots=True)
class Alert:
    """One message to the operators. ``event``: offline, login_needed, refused, online, resumed."""

    event: str
    text: str  # the whole message, in Chinese
    at: datetime
    qr_url: str | None = None
    note: str | None = None


def webhook_body(alert: Alert, fmt: str) -> dict:
    """The webhook's JSON body in the shape its receiver expects (``[alerts] webhook_format``)."""
    if fmt == "wecom":
        return {"msgtype": "text", "text": {"content": alert.text}}
    if fmt == "feishu":
        return {"msg_type": "text", "content": {"text": alert.text}}
    return {"event": alert.event, "text": alert.text, "at": alert.at.isoformat(), "qr_url": alert.qr_url,
            "note": alert.note}


class AlertSender:
    """Sends an :class:`Alert` to every channel ``[alerts]`` configures; ``channels`` names them."""

    def __init__(self, settings: AlertSettings, env: Mapping[str, str] | None = None) -> None:
        env = os.environ if env is None else env
        self.settings = settings
        self._webhook_url = env.get(settings.webhook_url_env) or None  # never logged
        self._smtp_password = env.get(settings.smtp_password_env) or None  # never logged
        self.sent = 0
        self.failed = 0

    @property
    def channels(self) -> tuple[str, ...]:
        found = []
        if self._webhook_url:
            found.append(f"webhook ({self.settings.webhook_format})")
        if self.settings.smtp_host and self.settings.mail_to:
            found.append("mail")
        return tuple(found)

    def __repr__(self) -> str:
        return f"AlertSender(channels={self.channels!r})"

    async def send(self, alert: Alert) -> None:
        jobs = []
        if self._webhook_url:
            jobs.append(self._post(alert))
        if self.settings.smtp_host and self.settings.mail_to:
            jobs.append(asyncio.to_thread(self._mail, alert))
        if not jobs:
            log.warning("no alert channel configured ([alerts] in config.toml): %s", alert.text)
            return
        for outcome in await asyncio.gather(*jobs, return_exceptions=True):
            if isinstance(outcome, BaseException):  # _post and _mail log their own failures; this is a bug
                self.failed += 1
                log.error("alert channel failed: %s", type(outcome).__name__)

    async def _post(self, alert: Alert) -> None:
        fmt = self.settings.webhook_format
        try:
            async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=TIMEOUT_S)) as http:
                async with http.post(self._webhook_url, json=webhook_body(alert, fmt)) as response:
                    status = response.status
                    answer = await response.json(content_type=None) if status == 200 else None
        except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
            # the exception's text may carry the URL (the robot's key): its type only
            self.failed += 1
            log.error("alert webhook not reached: %s", type(exc).__name__)
            return
        # WeCom answers {"errcode": 0}, Feishu {"code": 0}: anything else was refused with status 200
        code = answer.get("errcode", answer.get("code", 0)) if isinstance(answer, dict) else 0
        if status != 200 or code not in (0, None):
            self.failed += 1
            log.error("alert webhook refused the alert: HTTP %s, code %r", status, code)
            return
        self.sent += 1
        log.info("alert sent to the webhook: %s", alert.event)

    def _mail(self, alert: Alert) -> None:
        s = self.settings
        mail = EmailMessage()
        mail["Subject"] = alert.text.splitlines()[0][:120]
        mail["From"] = s.mail_from
        mail["To"] = ", ".join(s.mail_to)
        mail.set_content(alert.text)
        try:
            if s.smtp_security == "ssl":
                smtp = smtplib.SMTP_SSL(s.smtp_host, s.smtp_port, timeout=TIMEOUT_S,
                                        context=ssl.create_default_context())
            else:
                smtp = smtplib.SMTP(s.smtp_host, s.smtp_port, timeout=TIMEOUT_S)
            with smtp:
                if s.smtp_security == "starttls":
                    smtp.starttls(context=ssl.create_default_context())
                if s.smtp_user and self._smtp_password:
                    smtp.login(s.smtp_user, self._smtp_password)
                smtp.send_message(mail)
        except (OSError, smtplib.SMTPException) as exc:
            self.failed += 1
            log.error("alert mail not sent via %s:%s: %s", s.smtp_host, s.smtp_port, type(exc).__name__)
            return
        self.sent += 1
        log.info("alert mailed to %d address(es): %s", len(s.mail_to), alert.event)
