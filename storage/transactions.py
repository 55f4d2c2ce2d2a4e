"""After-commit work: the one mechanism for "do this once the transaction that decided it is committed".

``after_commit(session, fn)`` keeps ``fn`` with the session; it runs when the session's transaction commits (inside
the commit, before ``commit()`` returns), in the order registered, and never if the transaction is rolled back: a
rolled-back draw or entry is never announced, and a later commit of the same session does not resurrect it.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

_PENDING = "after_commit.pending"


def after_commit(session: AsyncSession, fn: Callable[[], None]) -> None:
    sync = session.sync_session
    pending = sync.info.get(_PENDING)
    if pending is None:
        pending = sync.info[_PENDING] = []
        if not event.contains(sync, "after_commit", _committed):
            event.listen(sync, "after_commit", _committed)
            event.listen(sync, "after_rollback", _rolled_back)
    pending.append(fn)


def _committed(sync: Session) -> None:
    for fn in sync.info.pop(_PENDING, None) or ():
        fn()


def _rolled_back(sync: Session) -> None:
    sync.info.pop(_PENDING, None)


def has_pending(session: AsyncSession) -> bool:
    return bool(session.sync_session.info.get(_PENDING))


def discard_pending(session: AsyncSession) -> None:
    """Forget the after-commit work of a session being rolled back. SQLAlchemy fires no rollback event when the
    transaction never began (a handler that only decided to send, wrote nothing, then failed): without this, the
    owner's next commit of the same session would run that failed handler's work."""
    session.sync_session.info.pop(_PENDING, None)
