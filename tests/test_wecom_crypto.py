"""WeCom's callback scheme (bot/transports/wecom/crypto.py) against its documented construction, and the callback
URL over real HTTP: the URL check, forged and stale callbacks, another corp, replays across a restart."""

from __future__ import annotations

import base64
import hashlib
import struct

import pytest
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from sqlalchemy import func, select

from bot.transports.wecom.crypto import CallbackCrypto, CryptoError, aes_key, signature
from storage.models import Activity
from storage.models_wecom import WeComCallback
from tests.support.wecom_mock import AES_KEY, CORP_ID, TOKEN, Customer, WeComMock
from tests.support.wecom_support import WeComHarness, wecom_config

pytestmark = pytest.mark.all_backends


def test_signature_is_sha1_over_the_sorted_four():
    expected = hashlib.sha1("".join(sorted(["tok", "1700000000", "n1", "CIPHER"])).encode()).hexdigest()
    assert signature("tok", "1700000000", "n1", "CIPHER") == expected


def test_ciphertext_follows_the_documented_layout():
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    message = "<xml><Content>你好</Content></xml>".encode()
    encrypted = crypto.encrypt(message, random16=b"R" * 16)
    key = base64.b64decode(AES_KEY + "=")
    raw = base64.b64decode(encrypted)
    decryptor = Cipher(algorithms.AES(key), modes.CBC(key[:16])).decryptor()
    plain = decryptor.update(raw) + decryptor.finalize()
    pad = plain[-1]
    assert len(plain) % 32 == 0 and 1 <= pad <= 32 and plain[-pad:] == bytes([pad]) * pad
    plain = plain[:-pad]
    assert plain[:16] == b"R" * 16
    assert struct.unpack(">I", plain[16:20])[0] == len(message)
    assert plain[20:20 + len(message)] == message and plain[20 + len(message):] == CORP_ID.encode()
    assert crypto.decrypt(encrypted) == message


def test_another_receive_id_and_broken_ciphertext_are_refused():
    crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
    with pytest.raises(CryptoError, match="receive id"):
        crypto.decrypt(crypto.encrypt(b"<xml/>", receive_id="ww_other"))
    for bad in ("not base64!", base64.b64encode(b"short").decode(), base64.b64encode(b"x" * 32).decode()):
        with pytest.raises(CryptoError):
            crypto.decrypt(bad)
    with pytest.raises(ValueError):
        aes_key("too-short")


async def callback_rows(h) -> int:
    async with h.app.services.sessions() as s:
        return await s.scalar(select(func.count()).select_from(WeComCallback))


async def contact_rows(h) -> int:
    await h.app.activity.flush()
    async with h.app.services.sessions() as s:
        return await s.scalar(select(func.count()).select_from(Activity).where(Activity.kind == "contact_added"))


async def test_url_check_answers_the_echostr_and_refuses_forgeries(db_url):
    mock = await WeComMock().start()
    try:
        async with WeComHarness(db_url, mock) as h:
            assert await h.callbacks.verify_url("echo-42") == (200, "echo-42")
            status, text = await h.callbacks.verify_url("echo-42", signature="0" * 40)
            assert status == 401 and "echo-42" not in text
            stale = int(h.clock.now().timestamp()) - 301
            assert (await h.callbacks.verify_url("echo-42", timestamp=stale))[0] == 401
    finally:
        await mock.stop()


async def test_forged_stale_foreign_and_replayed_callbacks_change_nothing(db_url, caplog):
    mock = await WeComMock().start()
    mock.customers["wmA"] = Customer("wmA", "阿花")
    try:
        async with WeComHarness(db_url, mock, wecom_config(mock, welcome="欢迎！")) as h:
            cb = h.callbacks
            fields = {"FromUserName": "sys", "MsgType": "event", "Event": "change_external_contact",
                      "ChangeType": "add_external_contact", "UserID": "staff1", "ExternalUserID": "wmA",
                      "WelcomeCode": mock.new_welcome_code()}
            encrypted, body = cb.envelope(fields)
            # forged: a signature not made with our token
            forged = cb.signed(encrypted)
            forged["msg_signature"] = hashlib.sha1(b"forged").hexdigest()
            assert (await cb.post(fields, query=forged, body=body))[0] == 401
            # stale: 6 minutes old (signed correctly)
            old = cb.signed(encrypted, timestamp=int(h.clock.now().timestamp()) - 360)
            assert (await cb.post(fields, query=old, body=body))[0] == 401
            # another corp: ToUserName, or the receive id inside the ciphertext
            assert (await cb.post(fields, to="ww_other"))[0] == 403
            assert (await cb.post(fields, receive_id="ww_other"))[0] == 403
            # not XML, a DOCTYPE
            assert (await cb.post(fields, body=b"<xml><Encrypt>"))[0] == 400
            assert (await cb.post(fields, body=b'<!DOCTYPE x [<!ENTITY a "b">]><xml/>'))[0] == 400
            await h.idle()
            assert await callback_rows(h) == 0 and await contact_rows(h) == 0 and mock.welcomes == []
            assert "wrong msg_signature" in caplog.text and "away from our clock" in caplog.text
            assert "another corp" in caplog.text and "receive id" in caplog.text
            assert h.bot.callbacks.refused == {401: 2, 403: 2, 400: 2}
            # the real one, then the same callback again: handled once
            good = cb.signed(encrypted)
            assert (await cb.post(fields, query=good, body=body)) == (200, "")
            await h.idle()
            again = cb.signed(encrypted)
            assert (await cb.post(fields, query=again, body=body)) == (200, "")
            await h.idle()
            assert await contact_rows(h) == 1 and len(mock.welcomes) == 1
            assert h.bot.callbacks.duplicates == 1
        # after a restart, WeCom's resend still changes nothing
        async with WeComHarness(db_url, mock, wecom_config(mock, welcome="欢迎！")) as h:
            assert (await h.callbacks.post(fields, query=h.callbacks.signed(encrypted), body=body)) == (200, "")
            await h.idle()
            assert await contact_rows(h) == 1 and len(mock.welcomes) == 1
            assert h.bot.callbacks.duplicates == 1 and h.bot.callbacks.accepted == 0
    finally:
        await mock.stop()
