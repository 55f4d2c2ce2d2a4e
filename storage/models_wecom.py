"""The core's WeCom tables (bot/transports/wecom/) and the member identity table (统一用户ID, storage/identity.py)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from storage.models import Base
from storage.types import UTCDateTime


class WeComCallback(Base):
    """Keys of accepted WeCom callbacks (``msg:<MsgId>``, ``evt:<digest of the event>``, ``kf:<msgid>``): a
    callback WeCom sends again, even after a restart, changes nothing. Pruned after a few days. A 微信客服 message, a
    customer-contact callback or a staff member's message to the app keeps its ``payload`` until the dispatcher has
    handled it (``handled_at``; the other keys are handled
    when noted), so one fetched before a crash is handled after the restart; ``dropped`` says why one was not."""

    __tablename__ = "wecom_callbacks"
    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime(), index=True)
    payload: Mapped[str | None] = mapped_column(Text, nullable=True)
    handled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    dropped: Mapped[str | None] = mapped_column(String(64), nullable=True)

    __table_args__ = (
        Index("ix_wecom_callbacks_pending", "received_at", sqlite_where=text("handled_at IS NULL"),
              postgresql_where=text("handled_at IS NULL")),
        {"sqlite_with_rowid": False},
    )


class WeComToken(Base):
    """An access token per (corp id, secret's name), shared by the processes on one database: WeCom answers the
    same token to every gettoken within its validity, so two processes refreshing at once is harmless."""

    __tablename__ = "wecom_tokens"
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    token: Mapped[str] = mapped_column(String(512))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class WeComKfCursor(Base):
    """kf/sync_msg's cursor per 客服账号 (open_kfid): messages are fetched once, across restarts."""

    __tablename__ = "wecom_kf_cursors"
    open_kfid: Mapped[str] = mapped_column(String(128), primary_key=True)
    cursor: Mapped[str] = mapped_column(String(256))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class WeComKfCustomer(Base):
    """A 微信客服 customer: which 客服账号 they wrote to (answers go back through it) and the member they are."""

    __tablename__ = "wecom_kf_customers"
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    open_kfid: Mapped[str] = mapped_column(String(128))
    member_id: Mapped[str] = mapped_column(String(128), index=True)
    last_message_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # messages sent to them since their last message (the reply window's count, kept across restarts)
    window_sent: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = {"sqlite_with_rowid": False}


class MemberIdentity(Base):
    """(kind, value) → the canonical member id: ``wechat`` (a personal-WeChat id), ``external_userid`` (WeCom),
    ``unionid`` (WeChat's across one subject's apps), ``shop`` (the shop's member id, as in member_bindings). One
    person, one member id: one points wallet, one tier, whatever channel they came through."""

    __tablename__ = "member_identities"
    kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    value: Mapped[str] = mapped_column(String(128), primary_key=True)
    member_id: Mapped[str] = mapped_column(String(128), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class WeComQuota(Base):
    """Counts against WeCom's monthly 企业群发 quota, per (month, target): persisted so restarts don't reset them."""

    __tablename__ = "wecom_quota"
    month: Mapped[str] = mapped_column(String(7), primary_key=True)  # "2026-12"
    target: Mapped[str] = mapped_column(String(160), primary_key=True)  # "group:<chat_id>" | "customer:<id>"
    sent: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = {"sqlite_with_rowid": False}


class WeComGroupSend(Base):
    """A 企业群发 task (add_msg_template) waiting for its owner staff member to confirm it in their client, and its
    outcome polled with get_groupmsg_send_result: waiting → sent | failed."""

    __tablename__ = "wecom_group_sends"
    msgid: Mapped[str] = mapped_column(String(64), primary_key=True)
    owner: Mapped[str] = mapped_column(String(128), index=True)
    chat_type: Mapped[str] = mapped_column(String(8))  # "group" (chat_id: the group) | "single" (a customer)
    chat_id: Mapped[str] = mapped_column(String(128))
    text: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(String(16), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)

    __table_args__ = {"sqlite_with_rowid": False}


class WeComFollow(Base):
    """Which staff member (UserID) has which customer (external_userid) as a contact: tags are marked through them."""

    __tablename__ = "wecom_follows"
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    added_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class WeComTagMark(Base):
    """The corp tag (of ``[wecom] tier_tags``) the bot last marked on a customer: only changes are sent."""

    __tablename__ = "wecom_tag_marks"
    external_userid: Mapped[str] = mapped_column(String(128), primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(128))
    marked_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}


class WeComTaskTarget(Base):
    """One group (or customer) of a 企业群发 task: queued while the bot gathers the broadcast's targets per owner
    staff member, then part of one ``add_msg_template`` task (``msgid``) with its own outcome from
    get_groupmsg_send_result: queued → waiting → sent | failed (or dropped / uncertain when the task was not made)."""

    __tablename__ = "wecom_task_targets"
    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    owner: Mapped[str] = mapped_column(String(128))
    chat_type: Mapped[str] = mapped_column(String(8))  # "group" | "single"
    target: Mapped[str] = mapped_column(String(128))  # the chat_id, or the customer's external_userid
    text: Mapped[str] = mapped_column(Text)
    queued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), index=True)
    msgid: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class WeComCorpTag(Base):
    """The corp tag the bot made (or found by name) for a tier, keyed by the tier's stable key: a renamed tier
    renames its tag (edit_corp_tag) instead of making another."""

    __tablename__ = "wecom_corp_tags"
    tier: Mapped[str] = mapped_column(String(64), primary_key=True)
    tag_id: Mapped[str] = mapped_column(String(128))
    name: Mapped[str] = mapped_column(String(64))
    group_id: Mapped[str] = mapped_column(String(128))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())

    __table_args__ = {"sqlite_with_rowid": False}
