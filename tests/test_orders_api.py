"""POST /api/orders and /health against the real aiohttp server, started by BotApp on a free port."""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import random
from dataclasses import replace

import aiohttp
import pytest
from sqlalchemy import func, select

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.config import HttpSettings
from skills.orders.models import Order, OrderEvent
from tests.support import START, RecordingTransport, make_config

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike

TOKEN = "test-token-0123456789"
SECRET = "hmac-secret-abcdef"
ORDER = {"order_id": "W1", "member_id": "u1", "amount": 99.5, "status": "created", "items": ["大米 5kg"],
         "pay_by": "2026-11-23T18:00:00+08:00"}


@pytest.fixture
async def server(db_url, monkeypatch):
    monkeypatch.setenv("BOT_API_TOKEN", TOKEN)
    monkeypatch.setenv("BOT_API_HMAC_SECRET", SECRET)
    config = make_config({"bot": {"skills": ["orders"]}}, min_interval_s=1.0)
    config = replace(config, http=HttpSettings(port=0))
    clock = VirtualClock(START, config.tz)
    app = BotApp(config, clock, RecordingTransport(clock).send, db_url=db_url, rng=random.Random(0), web=True)
    await app.start()
    async with aiohttp.ClientSession(f"http://127.0.0.1:{app.web.port}") as client:
        yield app, client
    await app.stop()


def bearer(token: str = TOKEN) -> dict:
    return {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}


def signed(body: bytes, secret: str = SECRET) -> dict:
    return {"X-Signature": "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()}


async def count(app: BotApp, model) -> int:
    async with app.services.sessions() as s:
        return await s.scalar(select(func.count()).select_from(model))


async def test_health_needs_no_token(server):
    _, client = server
    async with client.get("/health") as r:
        assert r.status == 200 and await r.json() == {"status": "ok"}


async def test_an_order_with_the_bearer_token_is_applied_and_a_replay_is_a_duplicate(server):
    app, client = server
    async with client.post("/api/orders", json=ORDER, headers=bearer()) as r:
        assert r.status == 200 and await r.json() == {"result": "applied", "order_id": "W1", "status": "created"}
    async with client.post("/api/orders", json=ORDER, headers=bearer()) as r:
        assert r.status == 200 and (await r.json())["result"] == "duplicate"
    assert await count(app, Order) == 1 and await count(app, OrderEvent) == 1
    job = await app.scheduler.get("order:W1:unpaid")
    assert job.status == "active"


async def test_an_hmac_signed_order_is_accepted(server):
    app, client = server
    body = json.dumps(ORDER | {"order_id": "W2"}).encode()
    async with client.post("/api/orders", data=body, headers=signed(body)) as r:
        assert r.status == 200, await r.text()
    assert await count(app, Order) == 1


@pytest.mark.parametrize("headers", [
    {},
    bearer("wrong-token"),
    {"Authorization": TOKEN},  # not "Bearer ..."
    {"X-Signature": "sha256=" + "0" * 64},
    {"X-Signature": "deadbeef"},
])
async def test_missing_or_wrong_credentials_are_401_and_never_logged(server, headers, caplog):
    app, client = server
    caplog.set_level(logging.DEBUG)
    body = json.dumps(ORDER).encode()
    async with client.post("/api/orders", data=body, headers=headers) as r:
        assert r.status == 401
        assert "credentials" in (await r.json())["error"]
    assert await count(app, Order) == 0
    assert TOKEN not in caplog.text and "wrong-token" not in caplog.text


async def test_a_signature_over_another_body_is_refused(server):
    app, client = server
    body = json.dumps(ORDER).encode()
    tampered = json.dumps(ORDER | {"amount": 0.01}).encode()
    async with client.post("/api/orders", data=tampered, headers=signed(body)) as r:
        assert r.status == 401
    async with client.post("/api/orders", data=body, headers=signed(body, "other-secret")) as r:
        assert r.status == 401
    assert await count(app, Order) == 0


def raw(field: str, number: str) -> bytes:
    """ORDER with ``field`` a JSON number written out as given (json.dumps can't write 5,000 digits)."""
    return (json.dumps({k: v for k, v in ORDER.items() if k != field})[:-1] + f', "{field}": {number}}}').encode()


@pytest.mark.parametrize("body, status, field", [
    (b"{not json", 400, None),
    (b"\xff\xfe", 400, None),
    (b"[1, 2]", 422, "body"),
    (json.dumps({k: v for k, v in ORDER.items() if k != "order_id"}).encode(), 422, "order_id"),
    (json.dumps({k: v for k, v in ORDER.items() if k != "status"}).encode(), 422, "status"),
    (json.dumps(ORDER | {"status": "lost"}).encode(), 422, "status"),
    (json.dumps(ORDER | {"amount": "lots"}).encode(), 422, "amount"),
    (json.dumps(ORDER | {"amount": -1}).encode(), 422, "amount"),
    (json.dumps(ORDER | {"pay_by": "tomorrow"}).encode(), 422, "pay_by"),
    (json.dumps(ORDER | {"pay_by": "2026-11-23T18:00:00"}).encode(), 422, "pay_by"),
    (json.dumps(ORDER | {"items": [{"name": "米", "qty": 0}]}).encode(), 422, "items[0].qty"),
    (json.dumps({k: v for k, v in ORDER.items() if k != "member_id"}).encode(), 422, "member_id"),
    (json.dumps({k: v for k, v in ORDER.items() if k != "amount"}).encode(), 422, "amount"),
    # extreme dates, huge numbers, deep nesting: each a clean 4xx, never a 500
    (json.dumps(ORDER | {"pay_by": "9999-12-31T23:00:00-08:00"}).encode(), 422, "pay_by"),
    (json.dumps(ORDER | {"pay_by": "0001-01-01T00:00:00+08:00"}).encode(), 422, "pay_by"),
    (json.dumps(ORDER | {"group_buy_id": "GB1", "cutoff_at": "9999-12-31T23:59:59-01:00"}).encode(), 422, "cutoff_at"),
    (raw("amount", "9" * 5000), 422, "amount"),
    (raw("order_id", "1" * 5000), 422, "order_id"),
    (json.dumps(ORDER | {"amount": "9" * 5000}).encode(), 422, "amount"),
    (json.dumps(ORDER | {"items": [{"name": "米", "qty": 10 ** 40}]}).encode(), 422, "items[0].qty"),
    (b"[" * 100_000, 400, None),
    (b'{"order_id": ' + b"[" * 100_000, 400, None),
    # over-long or unstorable ids: PostgreSQL refused them with a 500
    (json.dumps(ORDER | {"member_id": "u" * 129}).encode(), 422, "member_id"),
    (json.dumps(ORDER | {"external_member_id": "x" * 129}).encode(), 422, "external_member_id"),
    (json.dumps(ORDER | {"room": "r" * 129}).encode(), 422, "room"),
    (json.dumps(ORDER | {"member_id": "u\x00"}).encode(), 422, "member_id"),
    (json.dumps(ORDER | {"tracking": "SF\ud800"}).encode(), 422, "tracking"),
])
async def test_bad_bodies_get_a_4xx_naming_the_field_and_change_nothing(server, body, status, field):
    app, client = server
    async with client.post("/api/orders", data=body, headers=bearer()) as r:
        assert r.status == status
        answer = await r.json()
        assert answer.get("field") == field and answer["error"]
    assert await count(app, Order) == 0 and await count(app, OrderEvent) == 0


async def test_a_full_width_order_id_is_the_same_order(server):
    app, client = server
    async with client.post("/api/orders", json=ORDER | {"order_id": "ＡＢ１２３", "member_id": "ｕ１"},
                           headers=bearer()) as r:
        assert r.status == 200 and await r.json() == {"result": "applied", "order_id": "AB123", "status": "created"}
    async with client.post("/api/orders", json=ORDER | {"order_id": "AB123"}, headers=bearer()) as r:
        assert r.status == 200 and (await r.json())["result"] == "duplicate"
    async with app.services.sessions() as s:
        assert [(o.id, o.member_id) for o in (await s.execute(select(Order))).scalars()] == [("AB123", "u1")]


async def test_a_body_over_1_mb_is_413(server):
    app, client = server
    big = json.dumps(ORDER | {"tracking": "x" * (1024 * 1024)}).encode()
    async with client.post("/api/orders", data=big, headers=bearer()) as r:
        assert r.status == 413
    assert await count(app, Order) == 0


async def test_without_a_configured_secret_the_api_is_closed(server, monkeypatch):
    _, client = server
    monkeypatch.delenv("BOT_API_TOKEN")
    monkeypatch.delenv("BOT_API_HMAC_SECRET")
    async with client.post("/api/orders", json=ORDER, headers=bearer()) as r:
        assert r.status == 503 and "BOT_API_TOKEN" in (await r.json())["error"]


async def test_a_taken_port_is_reported_and_the_bot_runs_on(db_url, caplog):
    import socket

    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    port = taken.getsockname()[1]
    try:
        config = replace(make_config({"bot": {"skills": ["ping"]}}, min_interval_s=1.0), http=HttpSettings(port=port))
        clock = VirtualClock(START, config.tz)
        transport = RecordingTransport(clock)
        app = BotApp(config, clock, transport.send, db_url=db_url, web=True)
        await app.start()
        try:
            assert app.web is None
            assert f"HTTP server not started on 127.0.0.1:{port}" in caplog.text
        finally:
            await app.stop()
    finally:
        taken.close()
