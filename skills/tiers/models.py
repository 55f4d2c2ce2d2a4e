"""Tables of member tiers (skills/tiers.py) and the rollups the tier pass and the dashboard read.

The activity log keeps only its time index (extra indexes slowed its hot batch inserts), so everything per member
or per room is answered from these small tables, built by the nightly pass from day-sized ``at`` range scans.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Float, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class MemberTier(Base):
    """Each member's tier and RFM scores as of the last pass (tier_runs has when), with the figures behind them.

    Dates are ISO strings of local days: a pass compares 100,000 rows with what it computed, and only rows that
    differ are written.
    """

    __tablename__ = "member_tiers"
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16))  # new | core | active | casual | silent | lost
    since: Mapped[datetime] = mapped_column(UTCDateTime())  # the pass that put the member in this tier
    joined_day: Mapped[str | None] = mapped_column(String(10), nullable=True)  # local date of the first join, ISO
    last_active_day: Mapped[str | None] = mapped_column(String(10), nullable=True)  # local date, ISO
    active_days_7: Mapped[int] = mapped_column(Integer, default=0)
    active_days_window: Mapped[int] = mapped_column(Integer, default=0)
    messages_window: Mapped[int] = mapped_column(Integer, default=0)
    checkins_window: Mapped[int] = mapped_column(Integer, default=0)
    orders_window: Mapped[int] = mapped_column(Integer, default=0)
    amount_window: Mapped[float] = mapped_column(Float, default=0.0)  # yuan
    points: Mapped[int] = mapped_column(Integer, default=0)
    r: Mapped[int] = mapped_column(Integer, default=1)  # 1–4 by quartile; 4 is best
    f: Mapped[int] = mapped_column(Integer, default=1)
    m: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (Index("ix_member_tiers_tier", "tier"), {"sqlite_with_rowid": False})


class TierChange(Base):
    """Append-only history: one row each time a member's tier changes (from_tier is None the first time)."""

    __tablename__ = "tier_changes"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128))
    from_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)
    to_tier: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_tier_changes_member_at", "member_id", "at"), Index("ix_tier_changes_at", "at"))


class TierDaily(Base):
    """How many members were in each tier after the pass of a local day: the 'tiers over time' chart."""

    __tablename__ = "tier_daily"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    tier: Mapped[str] = mapped_column(String(16), primary_key=True)
    members: Mapped[int] = mapped_column(Integer)

    __table_args__ = {"sqlite_with_rowid": False}


class MemberDay(Base):
    """Rollup: one row per local day and member with any activity of theirs (all rooms together)."""

    __tablename__ = "member_days"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    actions: Mapped[int] = mapped_column(Integer, default=0)  # rows of the active kinds
    messages: Mapped[int] = mapped_column(Integer, default=0)
    checkins: Mapped[int] = mapped_column(Integer, default=0)

    # (day, member) order: a day is written (and rewritten) as one contiguous run at the end of the B-tree, so
    # rolling up a day costs the same however long the history; no second index to keep up.
    __table_args__ = {"sqlite_with_rowid": False}


class MemberWindow(Base):
    """Per member, member_days summed over the tiers' windows, kept up to date day by day (see skills/tiers/windows.py):
    the pass reads 100,000 rows here instead of grouping millions of member_days rows."""

    __tablename__ = "member_windows"
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    days_window: Mapped[int] = mapped_column(Integer, default=0)  # active days in the window (90)
    days_recent: Mapped[int] = mapped_column(Integer, default=0)  # active days in the last active_window_days (7)
    messages_window: Mapped[int] = mapped_column(Integer, default=0)
    checkins_window: Mapped[int] = mapped_column(Integer, default=0)
    last_active_day: Mapped[str | None] = mapped_column(String(10), nullable=True)  # ever, not only in the window

    __table_args__ = {"sqlite_with_rowid": False}


class WindowDay(Base):
    """Which member_days days member_windows counts, and in which sums: the invariant that makes it exact."""

    __tablename__ = "window_days"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    in_window: Mapped[int] = mapped_column(Integer, default=0)  # 0 or 1
    in_recent: Mapped[int] = mapped_column(Integer, default=0)


class RoomDay(Base):
    """Rollup: per local day and room (room_id '*' for all rooms and 1-on-1 together) what the dashboard charts."""

    __tablename__ = "room_days"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    active_members: Mapped[int] = mapped_column(Integer, default=0)
    messages: Mapped[int] = mapped_column(Integer, default=0)
    checkins: Mapped[int] = mapped_column(Integer, default=0)
    faq_answered: Mapped[int] = mapped_column(Integer, default=0)
    faq_missed: Mapped[int] = mapped_column(Integer, default=0)
    joins: Mapped[int] = mapped_column(Integer, default=0)
    leaves: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = {"sqlite_with_rowid": False}


class TierOrder(Base):
    """Orders as the activity store reports them (kind "order"), one row per order id at its latest status.

    ``placed_at`` is when it first reached paid (or later); an order counts as placed if that is set and its
    latest status isn't cancelled.
    """

    __tablename__ = "tier_orders"
    order_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128))
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    status: Mapped[str] = mapped_column(String(32))
    amount: Mapped[float] = mapped_column(Float, default=0.0)
    group_buy: Mapped[str | None] = mapped_column(String(128), nullable=True)
    placed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = (Index("ix_tier_orders_member", "member_id"), {"sqlite_with_rowid": False})


class TierRun(Base):
    """One row per tier pass: when, how long, what changed, and up to which local day the rollups are final."""

    __tablename__ = "tier_runs"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    day: Mapped[str] = mapped_column(String(10))  # the local day of the pass
    rolled_through: Mapped[str | None] = mapped_column(String(10), nullable=True)  # last complete day rolled up
    # the largest activity id when rolling started: rows after it (even late ones, with an older ``at``) tell the
    # next pass which days to roll again
    activity_id: Mapped[int] = mapped_column(BigInteger, default=0)
    members: Mapped[int] = mapped_column(Integer, default=0)
    changed: Mapped[int] = mapped_column(Integer, default=0)
    duration_ms: Mapped[int] = mapped_column(Integer, default=0)
