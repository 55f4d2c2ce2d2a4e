"""Tables of the FAQ skill: the handoff tickets (人工接管) a question nobody could answer opens."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime

TICKET_STATUSES = ("open", "answered", "closed")  # open: waiting for an operator; answered: an operator replied


class Ticket(Base):
    """A member's question handed to people. ``room_id`` None: asked 1-on-1 (the reply goes 1-on-1 too)."""

    __tablename__ = "faq_tickets"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    member_id: Mapped[str] = mapped_column(String(128))
    member_name: Mapped[str] = mapped_column(String(256), default="")
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    room_topic: Mapped[str] = mapped_column(String(256), default="")
    question: Mapped[str] = mapped_column(Text)  # the first question (cleaned, cut to MAX_QUESTION)
    follow_ups: Mapped[list] = mapped_column(JSON, default=list)  # [{"at": iso, "text": ...}] asked while open
    status: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    waiting_since: Mapped[datetime] = mapped_column(UTCDateTime())  # since the member last waited for a person
    first_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_reply_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    replied_by: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the last operator who replied
    renotified_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    closed_by: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (
        Index("ix_faq_tickets_member", "member_id", "status"),
        Index("ix_faq_tickets_status", "status", "waiting_since"),
    )
