"""Tables of the points ledger (used by check-in, redemption, lotteries, referral rewards)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class PointsLedger(Base):
    """Append-only: a balance always equals the sum of its member's rows."""

    __tablename__ = "points_ledger"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128))
    delta: Mapped[int] = mapped_column(BigInteger)  # PostgreSQL's int32 would cap a wallet at 2.1 billion
    reason: Mapped[str] = mapped_column(String(200))
    source: Mapped[str] = mapped_column(String(32))  # checkin | redeem | admin | lottery | referral | activity
    ref_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    actor_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the admin behind a manual change
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (
        UniqueConstraint("source", "ref_id", name="uq_points_ledger_source_ref"),  # exactly-once per reference
        Index("ix_points_ledger_member_at", "member_id", "at"),
    )


class PointsBalance(Base):
    __tablename__ = "points_balances"
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger, default=0)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_points_balances_balance", "balance"), {"sqlite_with_rowid": False})
