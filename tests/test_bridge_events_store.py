"""The bridge's accepted event ids (storage/bridge_events.py) on SQLite and PostgreSQL: an id is new once, and the
old ones are pruned."""

from __future__ import annotations

from datetime import timedelta

import pytest

from storage import bridge_events
from tests.support import START

pytestmark = pytest.mark.all_backends


async def test_an_id_is_new_once_until_it_is_pruned(sessions):
    async with sessions() as session:
        assert await bridge_events.remember(session, "e1", START - timedelta(days=4))
        assert await bridge_events.remember(session, "e2", START)
        assert not await bridge_events.remember(session, "e1", START)
        await session.commit()
    async with sessions() as session:  # another transaction sees them too
        assert not await bridge_events.remember(session, "e2", START)
        assert await bridge_events.prune(session, START - timedelta(days=3)) == 1
        await session.commit()
    async with sessions() as session:
        assert await bridge_events.remember(session, "e1", START)  # forgotten: new again
        assert not await bridge_events.remember(session, "e2", START)


async def test_a_batch_tells_each_id_new_once(sessions):
    async with sessions() as session:
        assert await bridge_events.remember(session, "old", START)
        ids = [f"b{i}" for i in range(70)]  # more than one statement's worth, the last one padded
        batch = ["b0", "old", *ids, "b5"]
        found = await bridge_events.remember_many(session, batch, START)
        # "b0" new the first time only (again at index 2), "old" known, "b5" a repeat within the batch
        assert found == [True, False, False, *[True] * 69, False]
        await session.commit()
    async with sessions() as session:
        assert await bridge_events.remember_many(session, ["b69", "new"], START) == [False, True]
        assert not await bridge_events.remember(session, "new", START)
