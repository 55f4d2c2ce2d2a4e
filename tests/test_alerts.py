"""Alerts to the operators ([alerts]): a group robot's webhook in its own payload shape, and mail through a real
SMTP conversation on loopback; failures are logged without the secrets and never raised."""

from __future__ import annotations

import asyncio
import base64
import logging
from datetime import UTC, datetime
from email import message_from_bytes
from email.header import decode_header, make_header

import pytest

from bot.alerts import Alert, AlertSender, webhook_body
from bot.config import AlertSettings, ConfigError, parse_config
from tests.support.bridge_support import AlertReceiver

ALERT = Alert("login_needed", "【小助手】微信账号需要重新登录。\n请扫码登录：https://qr.example/abc",
              datetime(2026, 11, 23, 1, 0, tzinfo=UTC), qr_url="https://qr.example/abc", note="verify your face")


class SmtpServer:
    """Enough of SMTP (RFC 5321) for smtplib: EHLO, AUTH PLAIN, MAIL, RCPT, DATA, QUIT; records each mail."""

    def __init__(self) -> None:
        self.mails: list[dict] = []
        self.port = 0
        self._server: asyncio.Server | None = None

    async def start(self) -> SmtpServer:
        self._server = await asyncio.start_server(self._session, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _session(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        mail: dict = {"rcpt": []}

        def say(text: str) -> None:
            writer.write(text.encode() + b"\r\n")

        say("220 localhost test smtp")
        while line := (await reader.readline()).decode().rstrip("\r\n"):
            verb = line.split(" ", 1)[0].upper()
            if verb == "EHLO":
                say("250-localhost")
                say("250 AUTH PLAIN")
            elif verb == "AUTH":
                _, user, password = base64.b64decode(line.split()[2]).split(b"\0")
                mail["login"] = (user.decode(), password.decode())
                say("235 2.7.0 accepted")
            elif verb == "MAIL":
                mail["from"] = line
                say("250 ok")
            elif verb == "RCPT":
                mail["rcpt"].append(line)
                say("250 ok")
            elif verb == "DATA":
                say("354 go on")
                data = await reader.readuntil(b"\r\n.\r\n")
                mail["message"] = message_from_bytes(data[:-5])
                self.mails.append(mail)
                say("250 queued")
            elif verb == "QUIT":
                say("221 bye")
                await writer.drain()
                break
            else:
                say("250 ok")
            await writer.drain()
        writer.close()


def test_each_webhook_format_has_its_receivers_shape():
    assert webhook_body(ALERT, "wecom") == {"msgtype": "text", "text": {"content": ALERT.text}}
    assert webhook_body(ALERT, "feishu") == {"msg_type": "text", "content": {"text": ALERT.text}}
    assert webhook_body(ALERT, "json") == {"event": "login_needed", "text": ALERT.text,
                                           "at": "2026-11-23T01:00:00+00:00", "qr_url": "https://qr.example/abc",
                                           "note": "verify your face"}


async def test_a_wecom_robot_gets_the_alert():
    receiver = await AlertReceiver().start()
    try:
        sender = AlertSender(AlertSettings(webhook_url_env="ROBOT"), env={"ROBOT": receiver.url})
        assert sender.channels == ("webhook (wecom)",)
        await sender.send(ALERT)
        assert receiver.received == [{"msgtype": "text", "text": {"content": ALERT.text}}]
        assert sender.sent == 1
    finally:
        await receiver.stop()


async def test_a_webhook_that_fails_is_logged_without_its_url(caplog):
    caplog.set_level(logging.INFO)
    receiver = await AlertReceiver().start()
    await receiver.stop()  # nobody listens there any more
    sender = AlertSender(AlertSettings(webhook_url_env="ROBOT"), env={"ROBOT": receiver.url})
    await sender.send(ALERT)  # no exception
    assert sender.failed == 1
    assert "alert webhook not reached" in caplog.text
    assert "secret-robot-key" not in caplog.text


async def test_mail_goes_to_every_operator_with_the_password_from_the_environment(caplog):
    caplog.set_level(logging.DEBUG)
    smtp = await SmtpServer().start()
    try:
        settings = AlertSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                                 smtp_user="bot@brand.example", smtp_password_env="SMTP_PW",
                                 mail_from="bot@brand.example", mail_to=("ops@brand.example", "lead@brand.example"))
        sender = AlertSender(settings, env={"SMTP_PW": "pw-from-env"})
        assert sender.channels == ("mail",)
        await sender.send(ALERT)
    finally:
        await smtp.stop()
    (mail,) = smtp.mails
    assert mail["login"] == ("bot@brand.example", "pw-from-env")
    assert [r.split(":", 1)[1] for r in mail["rcpt"]] == ["<ops@brand.example>", "<lead@brand.example>"]
    message = mail["message"]
    assert str(make_header(decode_header(message["Subject"]))) == "【小助手】微信账号需要重新登录。"
    assert "https://qr.example/abc" in message.get_payload(decode=True).decode("utf-8")
    assert "pw-from-env" not in caplog.text


async def test_mail_to_a_server_that_is_down_is_logged_not_raised(caplog):
    smtp = await SmtpServer().start()
    await smtp.stop()
    sender = AlertSender(AlertSettings(smtp_host="127.0.0.1", smtp_port=smtp.port, smtp_security="none",
                                       mail_from="bot@brand.example", mail_to=("ops@brand.example",)), env={})
    await sender.send(ALERT)
    assert sender.failed == 1 and "alert mail not sent" in caplog.text


@pytest.mark.parametrize("alerts, problem", [
    ({"webhook_format": "dingtalk"}, 'alerts.webhook_format: must be "wecom", "feishu" or "json"'),
    ({"smtp_host": "smtp.example", "mail_to": ["ops@brand.example"]}, "alerts.mail_from: is needed to send mail"),
    ({"smtp_host": "smtp.example", "mail_from": "bot@brand.example"}, "alerts.mail_to: is needed to send mail"),
    ({"mail_to": ["not an address"]}, "alerts.mail_to[0]: not a mail address"),
    ({"smtp_port": 0}, "alerts.smtp_port: must be between 1 and 65535"),
    ({"smtp_password": "hunter2"}, "alerts.smtp_password: secrets are not read from files"),
    ({"webhook_url_env": "https://qyapi.example/send?key=k"}, "alerts.webhook_url_env: must be the name of an"),
])
def test_check_config_validates_alerts(alerts, problem):
    with pytest.raises(ConfigError) as caught:
        parse_config({"alerts": alerts})
    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems
