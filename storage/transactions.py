"""After-commit work: the one mechanism for "do this once the transaction that decided it is committed".

``after_commit(session, fn)`` keeps ``fn`` with the session; it runs when the session's transaction commits (inside
the commit, before ``commit()`` returns), in the order registered, and never if the transaction is rolled back: a
rolled-back draw or entry is never announced, and a later commit of the same session does not resurrect it.

``held`` is the mechanism under it, shared with the outbox's rows staged before a commit (bot.outbox.stage): a list
kept in the session's ``info`` until its transaction ends, handed to a listener at commit, forgotten at rollback.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_PENDING = "after_commit.pending"
_HELD: set[str] = set()  # every key ``held`` has used: a rollback forgets them all


def held(session: AsyncSession, key: str, on: str, listener: Callable[[Session], None]) -> list:
    """The list kept under ``key`` with ``session`` until its transaction ends. ``listener`` runs on the session
    event ``on`` (``before_commit`` or ``after_commit``) and should pop ``key``; a rollback forgets the list."""
    sync = session.sync_session
    items = sync.info.get(key)
    if items is None:
        _HELD.add(key)
        items = sync.info[key] = []
        if not event.contains(sync, on, listener):
            event.listen(sync, on, listener)
            if not event.contains(sync, "after_rollback", _rolled_back):
                event.listen(sync, "after_rollback", _rolled_back)
    return items


def after_commit(session: AsyncSession, fn: Callable[[], None]) -> None:
    held(session, _PENDING, "after_commit", _committed).append(fn)


def _committed(sync: Session) -> None:
    for fn in sync.info.pop(_PENDING, None) or ():
        fn()


def _rolled_back(sync: Session) -> None:
    for key in _HELD:
        sync.info.pop(key, None)


def has_pending(session: AsyncSession) -> bool:
    return bool(session.sync_session.info.get(_PENDING))


def discard_pending(session: AsyncSession) -> None:
    """Forget the after-commit work (and staged outbox rows) of a session being rolled back. SQLAlchemy fires no
    rollback event when the transaction never began (a handler that only decided to send, wrote nothing, then
    failed): without this, the owner's next commit of the same session would run that failed handler's work."""
    _rolled_back(session.sync_session)
