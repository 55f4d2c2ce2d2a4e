"""Tables of the poll skill (群投票): one row per poll, one per member's vote."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class Poll(Base):
    """A poll in one room; its options are numbered from 1 in the order given."""

    __tablename__ = "polls"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    room_id: Mapped[str] = mapped_column(String(128))
    question: Mapped[str] = mapped_column(String(256))  # at most skills/poll/input.py MAX_QUESTION characters
    options: Mapped[list] = mapped_column(JSON)  # ["面", "饭", ...]
    status: Mapped[str] = mapped_column(String(16))  # open | closed
    created_by: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    deadline: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # an admin's id; None: the deadline

    __table_args__ = (
        # one open poll per room, held by the database too (a partial unique index: SQLite and PostgreSQL)
        Index("uq_polls_room_open", "room_id", unique=True, sqlite_where=text("status = 'open'"),
              postgresql_where=text("status = 'open'")),
        Index("ix_polls_room_id", "room_id", "id"),
    )


class PollVote(Base):
    """One member's vote: the primary key makes it one per member per poll."""

    __tablename__ = "poll_votes"
    poll_id: Mapped[int] = mapped_column(ForeignKey("polls.id"), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    option: Mapped[int] = mapped_column(Integer)  # 1-based
    at: Mapped[datetime] = mapped_column(UTCDateTime())
