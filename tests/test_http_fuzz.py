"""Seeded, bounded fuzz of the bot's HTTP server: 2,000 hostile requests at the orders API, the dashboard and the
health check, raw bytes included (undecodable headers, broken JSON, huge numbers, deep nesting, odd paths and
methods). No answer is a 500, no error is logged, and the server still answers normally afterwards."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import replace

import pytest

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.config import HttpSettings
from tests.support import START, RecordingTransport, make_config

pytestmark = pytest.mark.all_backends  # the API writes orders: on SQLite and PostgreSQL

REQUESTS = 2_000
PATHS = ["/api/orders", "/dashboard", "/dashboard/", "/dashboard/login", "/dashboard/logout", "/dashboard/members",
         "/dashboard/members/wxid_1", "/dashboard/jobs", "/dashboard/rooms", "/dashboard/lotteries",
         "/dashboard/misses", "/health", "/nowhere", "/dashboard/members/%ED%A0%80", "/dashboard/%6Dembers"]
BODIES = [b"", b"{", b"[" * 5000, b'{"order_id": 1e999999}', b'{"order_id": "' + b"9" * 5000 + b'"}',
          b'{"order_id": "A1", "status": "paid", "amount": "' + b"9" * 5000 + b'"}',
          b'{"order_id": "A1", "status": "paid", "pay_by": "0001-01-01T00:00:00+14:00"}',
          b'{"order_id": "\\ud800", "status": "created"}', b"\xff\xfe\x00\x00garbage", b"null", b"[]",
          b'{"order_id": "A1", "status": "created", "member_id": "u1", "amount": 5}', b"token=%ff%fe"]
HEADERS = [b"Authorization: Bearer \xff\xfe", b"Authorization: Bearer api-token-0123456789",
           b"Cookie: dashboard_session=\xc3\x28", b"X-Signature: sha256=\xff", b"Content-Type: application/json",
           b"Origin: http://evil.example", b"Content-Length: 999999999999999999999", b"X-Weird: \x00\x01"]
METHODS = [b"GET", b"POST", b"PUT", b"DELETE", b"HEAD", b"BREW"]


@pytest.fixture
async def server(db_url, monkeypatch):
    monkeypatch.setenv("DASHBOARD_TOKEN", "dash-token-0123456789")
    monkeypatch.setenv("BOT_API_TOKEN", "api-token-0123456789")
    config = make_config({"bot": {"admins": ["admin1"], "skills": ["orders", "tiers", "faq", "lottery"]}})
    config = replace(config, http=HttpSettings(port=0))
    clock = VirtualClock(START, config.tz)
    app = BotApp(config, clock, RecordingTransport(clock).send, db_url=db_url, rng=random.Random(0), web=True)
    await app.start()
    try:
        yield app.web.port
    finally:
        await app.stop()


def hostile(rng: random.Random) -> bytes:
    path = rng.choice(PATHS)
    if rng.random() < 0.3:
        path += "?" + rng.choice(["page=" + "9" * 5000, "q=%ff%fe", "tier=\x00", "token=secret", "q=" + "%" * 50])
    body = rng.choice(BODIES)
    headers = rng.sample(HEADERS, rng.randrange(0, 4))
    lines = [rng.choice(METHODS) + b" " + path.encode("latin-1", "replace") + b" HTTP/1.1", b"Host: 127.0.0.1",
             b"Connection: close", *headers]
    if not any(h.startswith(b"Content-Length") for h in headers):
        lines.append(b"Content-Length: " + str(len(body)).encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


async def status_of(port: int, request: bytes) -> int | None:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        line = await asyncio.wait_for(reader.readline(), 10)
        return int(line.split()[1]) if line.startswith(b"HTTP/") else None  # None: the server closed on us
    finally:
        writer.close()


async def test_two_thousand_hostile_requests(server, caplog):
    rng = random.Random(20261201)
    statuses: dict[int | None, int] = {}
    with caplog.at_level(logging.WARNING):
        for _ in range(REQUESTS):
            status = await status_of(server, hostile(rng))
            statuses[status] = statuses.get(status, 0) + 1
    assert sum(statuses.values()) == REQUESTS
    assert not [s for s in statuses if s is not None and s >= 500 and s != 503], statuses
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR or r.exc_info]
    assert errors == [], [r.getMessage()[:200] for r in errors[:5]]
    refused = [r for r in caplog.records if "malformed HTTP request" in r.getMessage()]
    assert len(refused) <= 2  # the parser's refusals: a line a minute at most (the filter is per process)
    assert await status_of(server, b"GET /health HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n") == 200


def test_malformed_requests_are_one_warning_a_minute_with_a_count():
    from aiohttp.http_exceptions import BadHttpMessage

    from bot.web.malformed import MalformedRequests

    now = [0.0]
    filt = MalformedRequests(now=lambda: now[0])

    def record() -> logging.LogRecord:
        try:
            raise BadHttpMessage("Invalid header value char")
        except BadHttpMessage as exc:
            return logging.LogRecord("aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
                                     ("127.0.0.1",), (type(exc), exc, exc.__traceback__))

    first = record()
    assert filt.filter(first) and first.levelno == logging.WARNING and first.exc_info is None
    assert not any(filt.filter(record()) for _ in range(5))  # the same minute: held back, counted
    now[0] = 61.0
    later = record()
    assert filt.filter(later) and "5 more in the last minute" in later.getMessage()
