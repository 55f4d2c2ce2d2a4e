"""Drive the bot through a replay script on the virtual clock (shared/docs/replay.md)."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import IO

from bot.app import BotApp
from bot.clock import VirtualClock
from bot.config import Config
from bot.transports.replay import ReplayLineError, ReplayOutput, Tick, parse_event


def read_lines(source: str) -> Iterator[tuple[int, str]]:
    """(line number, line) for every non-blank line of a file, or of stdin for "-"."""
    stream = sys.stdin if source == "-" else open(source, encoding="utf-8")  # noqa: SIM115
    try:
        for number, line in enumerate(stream, start=1):
            if line.strip():
                yield number, line
    finally:
        if stream is not sys.stdin:
            stream.close()


async def run_replay(
    config: Config,
    lines: Iterable[tuple[int, str]],
    *,
    db_url: str | None = None,
    until: datetime | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    on_event: Callable[[float], None] | None = None,
) -> int:
    """Exit status: 0 when every line was handled, 2 when some were reported and skipped.

    ``on_event`` receives each event's handling time in seconds (for the benchmark).
    """
    err = err or sys.stderr
    bad = 0

    def report(number: int, problem: str) -> None:
        nonlocal bad
        bad += 1
        print(f"line {number}: {problem}; skipped", file=err, flush=True)

    lines = iter(lines)
    first = None
    for number, line in lines:  # the clock starts at the first valid event
        try:
            first = parse_event(line)
            break
        except ReplayLineError as exc:
            report(number, str(exc))
    start = first.at if first is not None else (until or datetime.now().astimezone())
    clock = VirtualClock(start, config.tz)
    output = ReplayOutput(clock, out)
    # a fixed seed: the same script gives the same actions, jitter included
    app = BotApp(config, clock, output.send, db_url=db_url, rng=random.Random(0))
    await app.start()
    app.services.bot_id = output.self_id  # no warm-up: a replay starts mid-life, not at a fresh login

    if on_event is not None:
        from time import perf_counter

    async def feed(event) -> None:
        t0 = perf_counter() if on_event is not None else 0.0
        await clock.advance_to(event.at)
        if not isinstance(event, Tick):
            await app.dispatcher.handle(event)
        await clock.run_pending()
        if on_event is not None:
            on_event(perf_counter() - t0)

    try:
        if first is not None:
            await feed(first)
        for number, line in lines:
            try:
                event = parse_event(line)
            except ReplayLineError as exc:
                report(number, str(exc))
                continue
            await feed(event)
        if until is not None:
            await clock.advance_to(until)
        await app.settle()
    finally:
        await app.stop()
    return 2 if bad else 0
