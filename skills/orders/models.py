"""Orders and their reminders (skills/orders.py): orders come in by the HTTP API, CSV import or replay."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import BigIntPK, UTCDateTime


class Order(Base):
    """The current state of one order; ``order_events`` has every status it went through."""

    __tablename__ = "orders"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)  # the shop's order id
    member_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)  # WeChat id, once known
    external_member_id: Mapped[str | None] = mapped_column(String(128), nullable=True, index=True)
    items: Mapped[list | None] = mapped_column(JSON, nullable=True)  # ["商品 x2", ...]
    amount_cents: Mapped[int] = mapped_column(BigInteger, default=0)  # integer fen: no float money in storage
    status: Mapped[str] = mapped_column(String(20))
    pay_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    pickup_by: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    group_buy_id: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    room_id: Mapped[str | None] = mapped_column(String(128), nullable=True)  # the group the order came from
    tracking: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OrderEvent(Base):
    """One (order, status) as received: the idempotency key of the webhook and the CSV import."""

    __tablename__ = "order_events"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    order_id: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))
    source: Mapped[str] = mapped_column(String(16))  # api | csv | replay
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    applied: Mapped[bool] = mapped_column(default=True)  # False: older than the order's status, kept for the record

    __table_args__ = (UniqueConstraint("order_id", "status", name="uq_order_events_order_status"),)


class GroupBuy(Base):
    """A group buy (团购) and its cut-off; orders name it by ``group_buy_id``."""

    __tablename__ = "group_buys"
    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    cutoff_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = {"sqlite_with_rowid": False}


class MemberBinding(Base):
    """An external member id (the shop's customer number) → the member's WeChat id; operators fill it."""

    __tablename__ = "member_bindings"
    external_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    wechat_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class ReminderSent(Base):
    """A reminder decided for (reference, kind, target): the unique key makes each one happen at most once,
    across restarts and duplicate webhooks. ``ref`` is the order id (group buys: the group-buy id)."""

    __tablename__ = "reminders_sent"
    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    ref: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(20))  # unpaid | pickup_ready | pickup_due | shipped | gb_cutoff
    target: Mapped[str] = mapped_column(String(140))  # user:ID or room:ID
    decided_at: Mapped[datetime] = mapped_column(UTCDateTime())
    detail: Mapped[dict | None] = mapped_column(JSON, nullable=True)

    __table_args__ = (UniqueConstraint("ref", "kind", "target", name="uq_reminders_sent"),)
