"""Exponential back-off (bot/backoff.py): the arithmetic the governor, the scheduler and the Wechaty reconnect share."""

from __future__ import annotations

import math

import pytest

from bot.backoff import Backoff, backoff_delay


def test_doubles_from_initial_up_to_the_maximum():
    # the governor's risk-control pauses with backoff_initial_s=60, backoff_max_s=200
    assert [backoff_delay(n, 60.0, 200.0) for n in range(1, 6)] == [60.0, 120.0, 200.0, 200.0, 200.0]


def test_no_maximum_keeps_doubling():
    assert [backoff_delay(n, 2) for n in range(1, 5)] == [2, 4, 8, 16]


def test_other_factors():
    assert [backoff_delay(n, 10.0, 100.0, factor=3) for n in range(1, 5)] == [10.0, 30.0, 90.0, 100.0]
    assert backoff_delay(3, 8.0, factor=1.5) == 18.0
    assert [backoff_delay(n, 60, factor=1) for n in (1, 5, 50)] == [60, 60, 60]  # a fixed wait


def test_keeps_the_number_type_of_its_arguments():
    # a delay recorded in an activity row must read as before: 60 for integers, 60.0 for floats
    assert type(backoff_delay(1, 60)) is int and type(backoff_delay(2, 60)) is int
    assert type(backoff_delay(1, 60.0, 3600.0)) is float
    assert type(backoff_delay(9, 60, 200)) is int  # the maximum as given
    assert type(backoff_delay(2, 100.0, 200)) is float  # exactly at the maximum: the computed value


def test_a_long_run_of_failures_stays_at_the_maximum():
    assert backoff_delay(5000, 60.0, 3600.0) == 3600.0  # 60 × 2^4999 is past a float's range
    assert backoff_delay(5000, 1.0, 60.0, factor=2.0) == 60.0
    assert backoff_delay(5000, 60.0) == math.inf
    assert backoff_delay(5000, 0.0, 60.0, factor=2.0) == 0.0  # nothing to grow


@pytest.mark.parametrize("attempt", [0, -1])
def test_attempts_count_from_one(attempt):
    with pytest.raises(ValueError, match="counts from 1"):
        backoff_delay(attempt, 1.0, 60.0)


def test_backoff_counts_failures_and_resets_after_a_success():
    # the Wechaty transport's reconnect waits: 1 s doubling up to 60 s, from 1 s again after a connection
    reconnect = Backoff(1.0, 60.0)
    assert [reconnect.next() for _ in range(8)] == [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0]
    assert reconnect.failures == 8
    reconnect.reset()
    assert [reconnect.next() for _ in range(2)] == [1.0, 2.0]


def test_peek_tells_the_next_wait_without_counting():
    b = Backoff(5.0, 100.0)
    assert b.peek() == 5.0 and b.peek() == 5.0
    assert b.next() == 5.0
    assert b.peek() == 10.0 == b.next()
    assert b.failures == 2
