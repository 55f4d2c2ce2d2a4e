"""The bridge's accepted event ids (table ``bridge_events``): remember one, and prune the old ones."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fast
from storage.models import BridgeEvent

_T = BridgeEvent.__table__
_REMEMBER = {
    "sqlite": sqlite.insert(_T).values(id=bindparam("event_id"), received_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["id"]),
    "postgresql": postgresql.insert(_T).values(id=bindparam("event_id"), received_at=bindparam("at"))
    .on_conflict_do_nothing(index_elements=["id"]),
}
_PRUNE = delete(_T).where(_T.c.received_at < bindparam("before"))


async def remember(session: AsyncSession, event_id: str, at: datetime) -> bool:
    """Note ``event_id`` as accepted at ``at``; False if it was accepted before (nothing changes then)."""
    statement = _REMEMBER[session.bind.dialect.name]
    return (await fast.execute(session, statement, {"event_id": event_id, "at": at})).rowcount == 1


async def prune(session: AsyncSession, before: datetime) -> int:
    """Forget the ids accepted before ``before``; how many."""
    return (await fast.execute(session, _PRUNE, {"before": before})).rowcount
