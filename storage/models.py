"""The schema. Changes go through an Alembic revision in storage/migrations/versions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, Boolean, Index, Integer, String, Text, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from storage.types import BigIntPK, UTCDateTime


class Base(DeclarativeBase):
    pass


class Member(Base):
    """One person, keyed by the stable WeChat id; display names change and are kept in MemberName."""

    __tablename__ = "members"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)

    __table_args__ = {"sqlite_with_rowid": False}  # text primary key: one B-tree instead of two


class MemberName(Base):
    __tablename__ = "member_names"
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    name: Mapped[str] = mapped_column(String(256), primary_key=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class Room(Base):
    """A group chat, keyed by room id (topics change; ids don't)."""

    __tablename__ = "rooms"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    topic: Mapped[str] = mapped_column(String(256), default="")
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class RoomMember(Base):
    __tablename__ = "room_members"
    room_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), primary_key=True, index=True)
    first_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    joined_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    inviter_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = {"sqlite_with_rowid": False}


class Activity(Base):
    """Append-only log of every interaction. ``detail`` is small JSON; kinds are listed in bot/activity.py."""

    __tablename__ = "activity"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    member_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    kind: Mapped[str] = mapped_column(String(32))
    skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    # Only the time index: the log is append-only and written on the hot path, and every extra index on a
    # random key (member, room) made each batch several times slower. Per-member and per-room questions are
    # answered from rollups built for them, not by indexing the raw log.
    __table_args__ = (Index("ix_activity_at", "at"),)


class ScheduledJob(Base):
    """A persisted job: run once, daily at a local time, or on a cron expression."""

    __tablename__ = "scheduled_jobs"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)  # idempotent scheduling: one job per key
    handler: Mapped[str] = mapped_column(String(100))
    payload: Mapped[dict | None] = mapped_column(JSON, nullable=True)
    schedule: Mapped[str] = mapped_column(String(16))  # once | daily | cron
    spec: Mapped[str] = mapped_column(String(100), default="")  # "" | "HH:MM" | cron expression
    next_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_run_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="active")  # active | paused | done | failed
    misfire_grace_s: Mapped[int] = mapped_column(Integer, default=3600)
    run_count: Mapped[int] = mapped_column(Integer, default=0)  # successful runs
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failures since the last success
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the room the job acts in, if any: on a database shared by several accounts, only a process whose account
    # is in that room runs it (see AccountRoom)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)

    __table_args__ = (Index("ix_scheduled_jobs_due", "status", "next_run_at"),)


class ProactiveCount(Base):
    """Proactive sends per local day, scope (room:ID / user:ID) and kind: the daily caps survive restarts."""

    __tablename__ = "proactive_counts"
    day: Mapped[str] = mapped_column(String(10), primary_key=True)
    scope: Mapped[str] = mapped_column(String(140), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = {"sqlite_with_rowid": False}


class AccountRoom(Base):
    """Which rooms each bot account is in, learned from the events it receives (a room you hear from is a room
    you are in). Several accounts sharing one database use it to decide who may run a room's jobs."""

    __tablename__ = "account_rooms"
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    room_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    last_seen: Mapped[datetime] = mapped_column(UTCDateTime())
    __table_args__ = ({"sqlite_with_rowid": False},)


class BridgeEvent(Base):
    """The ids of the events a bridge provider posted and the bot accepted (bot/transports/bridge_inbox.py): a
    provider that posts one again, even after a restart, gets 200 and changes nothing. Pruned after a few days.
    ``payload`` is the cleaned event (JSON, the contract's form) of a message, join or leave, kept until it is
    handled (``handled_at``), so an event accepted before a crash is handled after the restart; ``dropped`` says
    why one was not handled (``stale``: too old by then)."""

    __tablename__ = "bridge_events"
    id: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dropped: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_bridge_events_pending", "received_at", sqlite_where=text("handled_at IS NULL"),
              postgresql_where=text("handled_at IS NULL")),
        {"sqlite_with_rowid": False},
    )


class SessionIncident(Base):
    """A session incident the operators were alerted about and that is not over yet (bot/health.py): a bot
    restarted during an outage neither alerts it again nor forgets to say when it ends. ``slot`` is ``offline``
    or ``refused`` (the two incidents that can be open at once); ``account_id`` "" when none is configured."""

    __tablename__ = "session_incidents"
    account_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    slot: Mapped[str] = mapped_column(String(16), primary_key=True)
    kind: Mapped[str] = mapped_column(String(16))
    since: Mapped[datetime] = mapped_column(UTCDateTime())
    reason: Mapped[str] = mapped_column(String(500), default="")

    __table_args__ = {"sqlite_with_rowid": False}


class OutboxMessage(Base):
    """A message the send governor must not lose (bot/outbox.py): decided inside a transaction and sent once that
    commits, or held back (quiet hours, a room's gap, a lively room, back-off, the transport offline).

    ``status``: pending → sending (committed before the transport is called) → sent | dropped | uncertain. A row
    still ``sending`` when its process stopped may have arrived: it becomes ``uncertain`` and is never resent.
    """

    __tablename__ = "outbox"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    # the account that decided it: on a database shared by several accounts each process resumes only its own
    account_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(128), nullable=True)
    text: Mapped[str] = mapped_column(Text)
    mentions: Mapped[list | None] = mapped_column(JSON, nullable=True)
    priority: Mapped[int] = mapped_column(Integer)  # bot.events.Priority
    kind: Mapped[str | None] = mapped_column(String(16), nullable=True)  # ProactiveKind; None: a reply
    skill: Mapped[str | None] = mapped_column(String(64), nullable=True)
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reason: Mapped[str | None] = mapped_column(String(64), nullable=True)  # why dropped (or uncertain)
    attempts: Mapped[int] = mapped_column(Integer, default=0)  # failed sends so far
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # OutgoingMessage.audience when not "member" ("staff": a note to an operator); None for members
    audience: Mapped[str | None] = mapped_column(String(8), nullable=True)

    # the start's look for unfinished rows; finished ones are most of the table
    __table_args__ = (Index("ix_outbox_status", "status"),)
