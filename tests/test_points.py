"""The points ledger: exactly-once per reference, never below zero, balance == ledger sum, under real concurrency."""

import asyncio

import pytest

from storage.points import AlreadyRecorded, InsufficientPoints, balance, change_points, ledger_sum
from tests.support import START

pytestmark = pytest.mark.all_backends  # the storage contract: SQLite and PostgreSQL alike


async def change(sessions, member, delta, ref=None, source="test"):
    async with sessions() as s, s.begin():
        return await change_points(s, member, delta, reason="测试", source=source, ref_id=ref, at=START)


async def test_earn_spend_and_balance_equals_ledger(sessions):
    assert await change(sessions, "u1", 10, "a") == 10
    assert await change(sessions, "u1", -4, "b") == 6
    with pytest.raises(InsufficientPoints) as info:
        await change(sessions, "u1", -7, "c")
    assert (info.value.balance, info.value.needed) == (6, 7)
    async with sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == 6


async def test_a_reference_is_recorded_once(sessions):
    await change(sessions, "u1", 5, "checkin:u1:2026-11-23", source="checkin")
    with pytest.raises(AlreadyRecorded):
        await change(sessions, "u1", 5, "checkin:u1:2026-11-23", source="checkin")
    async with sessions() as s:
        assert await balance(s, "u1") == 5


async def test_a_failed_change_leaves_the_rest_of_the_transaction_alone(sessions):
    await change(sessions, "u1", 5, "x")
    async with sessions() as s, s.begin():
        await change_points(s, "u1", 3, reason="ok", source="test", ref_id="y", at=START)
        with pytest.raises(AlreadyRecorded):
            await change_points(s, "u1", 3, reason="dup", source="test", ref_id="x", at=START)
    async with sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == 8


async def test_racing_spends_never_overdraw(sessions):
    await change(sessions, "u1", 10, "seed")
    results = await asyncio.gather(*(change(sessions, "u1", -3, f"spend{i}") for i in range(8)),
                                   return_exceptions=True)
    spent = [r for r in results if isinstance(r, int)]
    refused = [r for r in results if isinstance(r, InsufficientPoints)]
    assert len(spent) == 3 and len(refused) == 5
    async with sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == 1


async def test_racing_same_reference_counts_once(sessions):
    results = await asyncio.gather(*(change(sessions, "u1", 5, "same") for _ in range(6)), return_exceptions=True)
    assert sum(isinstance(r, int) for r in results) == 1
    assert sum(isinstance(r, AlreadyRecorded) for r in results) == 5
    async with sessions() as s:
        assert await balance(s, "u1") == await ledger_sum(s, "u1") == 5


async def test_a_wallet_past_two_billion_is_kept_exactly(sessions):
    """PostgreSQL's int32 columns overflowed here: balances and deltas are 64-bit on both backends."""
    assert await change(sessions, "whale", 2_000_000_000, "a") == 2_000_000_000
    assert await change(sessions, "whale", 2_000_000_000, "b") == 4_000_000_000
    async with sessions() as s:
        assert await balance(s, "whale") == await ledger_sum(s, "whale") == 4_000_000_000
