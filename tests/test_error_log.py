"""ErrorLog: the same error repeating is logged once a minute with a count, the first time with its traceback."""

from __future__ import annotations

import logging

from bot.app import ErrorLog


class Seconds:
    """An injected time function the test moves by hand."""

    def __init__(self) -> None:
        self.t = 1000.0

    def __call__(self) -> float:
        return self.t


def _fail(message: str = "database or disk is full") -> BaseException:
    try:
        raise OSError(message)  # one raising line: every call is "the same error"
    except OSError as exc:
        return exc


def _other() -> BaseException:
    try:
        raise KeyError("x")
    except KeyError as exc:
        return exc


def records(caplog) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "bot"]


def test_a_repeated_error_is_logged_once_a_minute_with_a_count(caplog):
    clock = Seconds()
    errors = ErrorLog(now=clock)
    with caplog.at_level(logging.ERROR, logger="bot"):
        for _ in range(2151):  # a disk-full burst: thousands within seconds
            errors(_fail(), {"event": "MessageReceived"})
            clock.t += 0.004
        assert errors.count == 2151
        first, *rest = records(caplog)
        assert rest == []
        assert first.exc_info is not None  # the first one with its traceback
        clock.t += 60
        errors(_fail(), {"event": "MessageReceived"})
    later = records(caplog)[1]
    assert later.exc_info is None
    assert "OSError" in later.getMessage() and "(repeated 2150 times in the last 69 s)" in later.getMessage()


def test_different_errors_are_counted_apart_and_a_quiet_error_comes_back_with_its_traceback(caplog):
    clock = Seconds()
    errors = ErrorLog(now=clock)
    with caplog.at_level(logging.ERROR, logger="bot"):
        errors(_fail(), {})
        errors(_other(), {})  # another type and place: logged at once
        errors(_fail("another message, same place"), {})  # same type and line: counted
        assert [r.exc_info is not None for r in records(caplog)] == [True, True]
        errors.report_repeats()  # at shutdown the count not yet said is said
        assert "repeated 1 more times" in records(caplog)[-1].getMessage()
        clock.t += 3600
        errors(_other(), {})  # quiet for an hour: a fresh occurrence, traceback again
    assert records(caplog)[-1].exc_info is not None
    assert len(records(caplog)) == 4
