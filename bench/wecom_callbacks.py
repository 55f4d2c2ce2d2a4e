"""WeCom callback ingest: encrypted, signed 微信客服 callbacks over real HTTP on loopback into the bot on WeCom,
each synced from the mock WeCom API (tests/support/wecom_mock.py) and dispatched; and the API round trips per 1-on-1 answer.

    python bench/wecom_callbacks.py [--events 2000] [--concurrency 16] [--answers 50]

In one process (the bot on a virtual clock, its HTTP server, the mock API and the poster share one event loop, so
the figures are a floor for the bot alone): ``--events`` customer messages, each announced by its own
``kf_msg_or_event`` callback as WeCom does, posted over ``--concurrency`` connections; every callback is checked
(msg_signature), decrypted, its key committed, a kf/sync_msg fetched from the persisted cursor and the message
dispatched (chatter: no replies). Then ``--answers`` customers each ask /ping and the mock API's calls are counted.

Prints one JSON object: callbacks_per_s (posted until every message was dispatched), the p50/p99 ms of a callback's
answer, decrypt_us (the crypto alone, per callback), syncs (kf/sync_msg calls: concurrent callbacks share one),
round_trips_per_answer ((gettoken + kf/send_msg) / answers: 1 when the token is cached).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bot.transports.wecom.crypto import CallbackCrypto  # noqa: E402
from tests.support.wecom_mock import AES_KEY, CORP_ID, KF, TOKEN, WeComMock, event_xml  # noqa: E402
from tests.support.wecom_support import WeComHarness, wecom_config  # noqa: E402


async def run(events: int, concurrency: int, answers: int) -> dict:
    mock = await WeComMock().start()
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{tmp}/bot.db"
        config = wecom_config(mock, skills=("ping",))
        async with WeComHarness(db_url, mock, config) as h:
            import logging

            logging.getLogger("bot").setLevel(logging.WARNING)
            cb = h.callbacks
            for i in range(events):
                mock.customer_says(f"wmBench{i % 500:04d}", f"第 {i} 条消息，随便聊聊")
            queue: asyncio.Queue[int] = asyncio.Queue()
            for i in range(events):
                queue.put_nowait(i)
            latencies: list[float] = []

            async def poster() -> None:
                while not queue.empty():
                    queue.get_nowait()
                    started = time.perf_counter()
                    status, _ = await cb.kf_event(KF)
                    latencies.append((time.perf_counter() - started) * 1000)
                    assert status == 200, status

            started = time.perf_counter()
            await asyncio.gather(*(poster() for _ in range(concurrency)))
            while h.bot.kf.delivered < events:
                await h.idle()
                await asyncio.sleep(0.01)
            await h.app.dispatcher.join()
            elapsed = time.perf_counter() - started
            syncs = mock.count("kf/sync_msg")

            # decrypt alone
            crypto = CallbackCrypto(TOKEN, AES_KEY, CORP_ID)
            sample = crypto.encrypt(event_xml({"ToUserName": CORP_ID, "MsgType": "event", "Event": "kf_msg_or_event",
                                               "Token": "ENCxyz", "OpenKfId": KF}))
            n = 2000
            t0 = time.perf_counter()
            for _ in range(n):
                crypto.verify(crypto.sign("1700000000", "nonce", sample), "1700000000", "nonce", sample)
                crypto.decrypt(sample)
            decrypt_us = (time.perf_counter() - t0) / n * 1e6

            # round trips per 1-on-1 answer
            before = mock.count("gettoken") + mock.count("kf/send_msg")
            for i in range(answers):
                await h.customer(f"wmAsk{i:03d}", "/ping")
            await h.settle()
            sent = len([b for b in mock.sent if b["touser"].startswith("wmAsk")])
            trips = mock.count("gettoken") + mock.count("kf/send_msg") - before
    await mock.stop()
    q = statistics.quantiles(latencies, n=100)
    return {"events": events, "concurrency": concurrency, "callbacks_per_s": round(events / elapsed, 1),
            "p50_ms": round(statistics.median(latencies), 2), "p99_ms": round(q[98], 2),
            "decrypt_us": round(decrypt_us, 1), "syncs": syncs, "answers": sent,
            "round_trips_per_answer": round(trips / max(sent, 1), 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--answers", type=int, default=50)
    args = parser.parse_args()
    print(json.dumps(asyncio.run(run(args.events, args.concurrency, args.answers))))


if __name__ == "__main__":
    main()
