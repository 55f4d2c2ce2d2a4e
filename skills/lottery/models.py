"""Tables of the provably fair lottery (skills/lottery)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint, text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class Lottery(Base):
    """One lottery in one room; ``commitment`` = sha256(seed) is public from the start.

    The seed is HMAC(key from the environment, ``nonce``:id) and ``seed`` holds it only once revealed (drawn or
    cancelled): the database alone does not tell it before. Legacy lotteries (started before revision 0402, no
    ``nonce``) stored their seed from the start.
    """

    __tablename__ = "lotteries"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(128))
    prize: Mapped[str] = mapped_column(String(200))
    winners: Mapped[int] = mapped_column(Integer)
    keyword: Mapped[str] = mapped_column(String(64))
    cost: Mapped[int] = mapped_column(Integer, default=0)
    min_tier: Mapped[str | None] = mapped_column(String(16), nullable=True)  # skills/tiers/store.py; None: everyone
    commitment: Mapped[str] = mapped_column(String(64))
    seed: Mapped[str | None] = mapped_column(String(64), nullable=True)  # revealed seed (legacy: from the start)
    nonce: Mapped[str | None] = mapped_column(String(64), nullable=True)  # None: a legacy lottery
    alias_salt: Mapped[str | None] = mapped_column(String(32), nullable=True)  # the entrants' aliases (draw.alias)
    entrants_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)  # announced when it ended
    status: Mapped[str] = mapped_column(String(16))  # open | drawn | cancelled
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    drawn_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    winner_ids: Mapped[list | None] = mapped_column(JSON, nullable=True)  # in draw order

    __table_args__ = (
        # At most one open lottery per room, enforced by the database too (a partial unique index, which both
        # SQLite and PostgreSQL have), not only by the skill's check.
        Index("uq_lotteries_room_open", "room_id", unique=True, sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
        Index("ix_lotteries_room_created", "room_id", "created_at"),
    )


class LotteryEntry(Base):
    __tablename__ = "lottery_entries"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    lottery_id: Mapped[int] = mapped_column(ForeignKey("lotteries.id"))
    member_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(128))  # display name at entry, for the winners' @-mentions
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    alias: Mapped[str | None] = mapped_column(String(16), nullable=True)  # published instead of member_id; legacy: None

    __table_args__ = (UniqueConstraint("lottery_id", "member_id", name="uq_lottery_entries_member"),
                      Index("uq_lottery_entries_alias", "lottery_id", "alias", unique=True))
