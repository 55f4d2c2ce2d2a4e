"""The send governor's persisted gentleness state beside the daily counts: opt-outs and each room's last
proactive message (so the minimum gap between proactive messages survives a restart)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import UTCDateTime


class MemberOptOut(Base):
    """A member who sent /退订 or TD: no non-transactional 1-on-1 messages until /订阅 deletes the row."""

    __tablename__ = "member_optouts"
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class ProactiveLast(Base):
    """When a scope (room:ID) last got a proactive message."""

    __tablename__ = "proactive_last"
    scope: Mapped[str] = mapped_column(String(140), primary_key=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}
