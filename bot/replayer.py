"""Drive the bot through a replay script on the virtual clock (shared/docs/replay.md)."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import IO

from bot.app import BotApp, load_skill
from bot.clock import VirtualClock
from bot.config import Config
from bot.http import FieldError
from bot.transports.replay import InputLine, ReplayLineError, ReplayOutput, Tick, parse_event


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

    # line kinds the enabled skills add (order, say): known before the clock starts at the first valid line
    inputs = {spec.kind: spec for name in config.bot.skills for spec in load_skill(name).replay_inputs}
    lines = iter(lines)
    first = None
    first_number = 0
    for number, line in lines:  # the clock starts at the first valid event
        try:
            first, first_number = parse_event(line, inputs), number
            break
        except ReplayLineError as exc:
            report(number, str(exc))
    start = first.at if first is not None else (until or datetime.now().astimezone())
    clock = VirtualClock(start, config.tz)
    output = ReplayOutput(clock, out)
    # a fixed seed: the same script gives the same actions, jitter included
    app = BotApp(config, clock, output.send, db_url=db_url, rng=random.Random(0))
    await app.start()
    app.set_account(config.bot.account_id or output.self_id)  # no warm-up: a replay starts mid-life, not at a fresh login

    if on_event is not None:
        from time import perf_counter

    async def feed(event) -> str | None:
        """Handle one event; a problem only the bot can see (an order it cannot take) comes back as text."""
        t0 = perf_counter() if on_event is not None else 0.0
        problem = None
        await clock.advance_to(event.at)
        if isinstance(event, InputLine):
            try:
                await event.spec.apply(app.services, event.value)
            except FieldError as exc:
                problem = f"{event.spec.kind}: {exc}"
        elif not isinstance(event, Tick):
            await app.dispatcher.handle(event)
        await clock.run_pending()
        if on_event is not None:
            on_event(perf_counter() - t0)
        return problem

    try:
        if first is not None and (problem := await feed(first)):
            report(first_number, problem)
        for number, line in lines:
            try:
                event = parse_event(line, inputs)
            except ReplayLineError as exc:
                report(number, str(exc))
                continue
            if problem := await feed(event):
                report(number, problem)
        if until is not None:
            await clock.advance_to(until)
        await app.settle()
    finally:
        await app.stop()
    return 2 if bad else 0
