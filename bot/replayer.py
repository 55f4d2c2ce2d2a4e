"""Drive the bot through a replay script on the virtual clock (shared/docs/replay.md)."""

from __future__ import annotations

import random
import sys
from collections.abc import Callable, Iterable, Iterator
from dataclasses import replace
from datetime import datetime
from typing import IO

from bot.app import BotApp, load_skill
from bot.clock import VirtualClock
from bot.config import Config
from bot.events import Event
from bot.http import FieldError
from bot.transports.replay import InputLine, ReplayLineError, ReplayOutput, Tick, parse_event


MAX_LINE_BYTES = 1_000_000  # no event needs more; a longer line is reported and skipped, never held in memory
_BOM = b"\xef\xbb\xbf"


class LongLine(bytes):
    """Stands for a line over MAX_LINE_BYTES (its bytes dropped as they were read)."""


def read_lines(source: str) -> Iterator[tuple[int, bytes]]:
    """(line number, line as bytes) for every non-blank line of a file, or of stdin for "-". Lines are decoded one
    by one (parse_event), so a line that is not UTF-8 is reported like any bad line; a UTF-8 BOM is dropped.
    The file is opened at once: a missing one raises OSError here, not at the first line."""
    stream = sys.stdin.buffer if source == "-" else open(source, "rb")  # noqa: SIM115
    return _lines(stream, close=source != "-")


def _lines(stream: IO[bytes], close: bool) -> Iterator[tuple[int, bytes]]:
    try:
        number = 0
        while line := stream.readline(MAX_LINE_BYTES + 1):
            number += 1
            if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                while (rest := stream.readline(MAX_LINE_BYTES)) and not rest.endswith(b"\n"):
                    pass
                yield number, LongLine()
                continue
            if number == 1 and line.startswith(_BOM):
                line = line[len(_BOM):]
            if line.strip():
                yield number, line
    finally:
        if close:
            stream.close()


def _parse(line: str | bytes, inputs) -> Event | Tick | InputLine:
    if isinstance(line, LongLine):
        raise ReplayLineError(f"longer than {MAX_LINE_BYTES:,} bytes")
    return parse_event(line, inputs)


async def run_replay(
    config: Config,
    lines: Iterable[tuple[int, str | bytes]],
    *,
    db_url: str | None = None,
    until: datetime | None = None,
    out: IO[str] | None = None,
    err: IO[str] | None = None,
    on_event: Callable[[float], None] | None = None,
) -> int:
    """Exit status: 0 when every line was handled, 2 when some were reported and skipped. ``lines``: (number,
    line) pairs, a line as bytes (read_lines) or str.

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
            first, first_number = _parse(line, inputs), number
            break
        except ReplayLineError as exc:
            report(number, str(exc))
    start = first.at if first is not None else (until or datetime.now().astimezone())
    clock = VirtualClock(start, config.tz)
    output = ReplayOutput(clock, out)
    # a fixed seed: the same script gives the same actions, jitter included
    app = BotApp(config, clock, output.send, db_url=db_url, rng=random.Random(0), transport_name="replay")
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
            except Exception as exc:  # a bug, not a bad line: logged (once a minute) and the replay goes on
                app.errors(exc, {"during": "replay", "kind": event.spec.kind})
                problem = f"{event.spec.kind}: could not be applied ({type(exc).__name__})"
        elif not isinstance(event, Tick):
            if event.at < clock.now():
                # the clock never goes back: a backdated line happens now, and says so to every skill
                event = replace(event, at=clock.now().astimezone(event.at.tzinfo))
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
                event = _parse(line, inputs)
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
