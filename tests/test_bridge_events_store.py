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


async def test_an_event_with_a_payload_is_pending_until_marked_handled_or_dropped(sessions):
    async with sessions() as session:
        found = await bridge_events.remember_many(session, ["p1", "life", "p2", "p3"], START,
                                                  ['{"id": "p1"}', None, '{"id": "p2"}', '{"id": "p3"}'])
        assert found == [True, True, True, True]
        await session.commit()
    async with sessions() as session:  # the session's events (no payload) are handled already
        assert [(i, p) for i, _, p in await bridge_events.pending(session)] == [
            ("p1", '{"id": "p1"}'), ("p2", '{"id": "p2"}'), ("p3", '{"id": "p3"}')]
        await bridge_events.mark_handled(session, ["p1"], START + timedelta(seconds=1))
        await bridge_events.drop(session, ["p3"], START + timedelta(seconds=2), "stale")
        await session.commit()
    async with sessions() as session:
        assert [i for i, _, _ in await bridge_events.pending(session)] == ["p2"]
        assert not await bridge_events.remember(session, "p1", START)  # handled, still known as accepted
