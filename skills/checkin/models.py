"""Tables of the check-in skill: daily check-ins (the streak lives here), reward stock, redemptions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class Checkin(Base):
    """One row per member per LOCAL day (the bot's time zone, not UTC): the unique pair makes it once a day."""

    __tablename__ = "checkins"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128))
    local_date: Mapped[str] = mapped_column(String(10))  # YYYY-MM-DD in the configured time zone
    streak: Mapped[int] = mapped_column(Integer)  # consecutive local days, this one included
    points: Mapped[int] = mapped_column(Integer)  # awarded for this check-in, bonus included
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # None: 1-on-1
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    # the unique index also serves "this member's latest check-in" (member_id, local_date DESC)
    __table_args__ = (UniqueConstraint("member_id", "local_date", name="uq_checkins_member_date"),)


class RewardStock(Base):
    """Stock of one reward of the catalog. Seeded from config once; after that only redemptions change it."""

    __tablename__ = "reward_stock"
    item: Mapped[str] = mapped_column(String(64), primary_key=True)
    stock: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class Redemption(Base):
    """A reward a member paid for; an admin hands it out (pending → done) or refuses it (pending → refused, the
    points returned). The conditional UPDATE on ``status = 'pending'`` decides which of two racing admins acts."""

    __tablename__ = "redemptions"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128))
    member_name: Mapped[str] = mapped_column(String(256), default="")  # as shown when redeeming, for operators
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    item: Mapped[str] = mapped_column(String(64))
    cost: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16), default="pending")  # pending | done | refused
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    handled_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the admin's id
    reason: Mapped[str | None] = mapped_column(String(200), nullable=True)  # why it was refused, told the member

    __table_args__ = (Index("ix_redemptions_status_at", "status", "at"),)
