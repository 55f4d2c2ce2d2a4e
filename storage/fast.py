"""The fast path, as skills use it: run a prebuilt Core statement, compiled once (storage/prepared.py).

A skill's ``store.py`` builds its statements once, as module constants, from its own tables, and runs them here::

    _OPEN_IN_ROOM = select(lotteries).where(lotteries.c.room_id == bindparam("room"), lotteries.c.status == "open")

    async def open_in_room(session, room_id):
        return (await fast.execute(session, _OPEN_IN_ROOM, {"room": room_id})).first()

On the bot's own SQLite connection the compiled SQL runs straight on sqlite3; anywhere else it is an ordinary
execute. Skills never see ``Prepared``; results answer ``first``, ``one``, ``scalar``, ``all`` and ``rowcount``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from storage.prepared import Prepared, savepoint

__all__ = ["execute", "savepoint"]

# statement object → its Prepared; statements are module constants, alive as long as the process
_PREPARED: dict[int, tuple[Executable, Prepared]] = {}


def _prepared(statement: Executable) -> Prepared:
    found = _PREPARED.get(id(statement))
    if found is None or found[0] is not statement:
        found = _PREPARED[id(statement)] = (statement, Prepared(statement))
    return found[1]


async def execute(session: AsyncSession, statement: Executable, params: dict[str, Any] | None = None) -> Any:
    """Run ``statement`` in the session's transaction (its own connection), compiled once per process."""
    return await _prepared(statement).run(await session.connection(), params)
