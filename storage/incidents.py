"""Open session incidents the operators were alerted about (table ``session_incidents``; bot/health.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import SessionIncident

MAX_REASON = 500


async def open_incidents(session: AsyncSession, account_id: str) -> list[SessionIncident]:
    return list((await session.execute(
        select(SessionIncident).where(SessionIncident.account_id == account_id))).scalars())


async def save(session: AsyncSession, account_id: str, slot: str, kind: str, since: datetime, reason: str) -> None:
    """Record (or replace) the account's open incident in ``slot``."""
    await session.execute(delete(SessionIncident).where(SessionIncident.account_id == account_id,
                                                        SessionIncident.slot == slot))
    session.add(SessionIncident(account_id=account_id, slot=slot, kind=kind, since=since,
                                reason=reason[:MAX_REASON]))


async def forget(session: AsyncSession, account_id: str, slot: str) -> None:
    await session.execute(delete(SessionIncident).where(SessionIncident.account_id == account_id,
                                                        SessionIncident.slot == slot))
