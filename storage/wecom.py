"""The WeCom transport's queries (tables in storage/models_wecom.py): accepted callback keys, shared access tokens,
微信客服 cursors and customers, the monthly 企业群发 quota."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage import fast
from storage.models_wecom import (
    MemberIdentity,
    WeComCallback,
    WeComFollow,
    WeComGroupSend,
    WeComKfCursor,
    WeComKfCustomer,
    WeComCorpTag,
    WeComQuota,
    WeComTagMark,
    WeComTaskTarget,
    WeComToken,
)
from storage.upsert import insert_for

_CALLBACKS = WeComCallback.__table__
_REMEMBER = {d: insert_for(d, _CALLBACKS).values(key=bindparam("k"), received_at=bindparam("at"))
             .on_conflict_do_nothing(index_elements=["key"]) for d in ("sqlite", "postgresql")}
_PRUNE = delete(_CALLBACKS).where(_CALLBACKS.c.received_at < bindparam("before"))
_TOKENS = WeComToken.__table__
_TOKEN = select(_TOKENS.c.token, _TOKENS.c.expires_at).where(_TOKENS.c.name == bindparam("n"))
_CURSORS = WeComKfCursor.__table__
_CURSOR = select(_CURSORS.c.cursor).where(_CURSORS.c.open_kfid == bindparam("kf"))
_CUSTOMERS = WeComKfCustomer.__table__
_ROUTE = select(_CUSTOMERS.c.open_kfid, _CUSTOMERS.c.external_userid).where(
    _CUSTOMERS.c.member_id == bindparam("m")).order_by(_CUSTOMERS.c.last_message_at.desc()).limit(1)
_QUOTA = WeComQuota.__table__


async def remember(session: AsyncSession, key: str, at: datetime) -> bool:
    """Note a callback's key; False if it was accepted before (nothing changes then)."""
    statement = _REMEMBER[session.bind.dialect.name]
    return (await fast.execute(session, statement, {"k": key, "at": at})).rowcount == 1


async def prune(session: AsyncSession, before: datetime) -> int:
    return (await fast.execute(session, _PRUNE, {"before": before})).rowcount


async def token(session: AsyncSession, name: str) -> tuple[str, datetime] | None:
    row = (await session.execute(_TOKEN, {"n": name})).first()
    return (row.token, row.expires_at) if row else None


async def save_token(session: AsyncSession, name: str, value: str, expires_at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _TOKENS).values(name=name, token=value, expires_at=expires_at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["name"], set_={"token": stmt.excluded.token, "expires_at": stmt.excluded.expires_at}))


async def drop_token(session: AsyncSession, name: str, value: str) -> None:
    """Forget ``value`` (WeCom said it is invalid), unless another process has stored a newer one meanwhile."""
    await session.execute(delete(_TOKENS).where(_TOKENS.c.name == name, _TOKENS.c.token == value))


async def cursor(session: AsyncSession, open_kfid: str) -> str | None:
    return (await session.execute(_CURSOR, {"kf": open_kfid})).scalar()


async def save_cursor(session: AsyncSession, open_kfid: str, value: str, at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _CURSORS).values(open_kfid=open_kfid, cursor=value, updated_at=at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["open_kfid"], set_={"cursor": stmt.excluded.cursor, "updated_at": stmt.excluded.updated_at}))


async def note_customer(session: AsyncSession, external_userid: str, open_kfid: str, member_id: str,
                        at: datetime) -> None:
    """The customer wrote at ``at`` through ``open_kfid``: their reply window opens again (its count back to 0)."""
    stmt = insert_for(session.bind.dialect.name, _CUSTOMERS).values(
        external_userid=external_userid, open_kfid=open_kfid, member_id=member_id, last_message_at=at,
        window_sent=0)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["external_userid"],
        set_={"open_kfid": stmt.excluded.open_kfid, "member_id": stmt.excluded.member_id,
              "last_message_at": stmt.excluded.last_message_at, "window_sent": 0}))


async def count_window_send(session: AsyncSession, external_userid: str) -> None:
    await session.execute(update(_CUSTOMERS).where(_CUSTOMERS.c.external_userid == external_userid)
                          .values(window_sent=_CUSTOMERS.c.window_sent + 1))


async def open_windows(session: AsyncSession, since: datetime) -> list[tuple[str, datetime, int]]:
    """(member, their last message, messages sent since) of the customers who wrote after ``since``."""
    rows = await session.execute(select(_CUSTOMERS.c.member_id, _CUSTOMERS.c.last_message_at,
                                        _CUSTOMERS.c.window_sent).where(_CUSTOMERS.c.last_message_at >= since))
    return [tuple(r) for r in rows]


async def kf_route(session: AsyncSession, member_id: str) -> tuple[str, str] | None:
    """(open_kfid, external_userid) the member last wrote through, if they are a 微信客服 customer."""
    row = (await session.execute(_ROUTE, {"m": member_id})).first()
    return (row.open_kfid, row.external_userid) if row else None


async def quota_used(session: AsyncSession, month: str, target: str) -> int:
    value = await session.scalar(select(_QUOTA.c.sent).where(_QUOTA.c.month == month, _QUOTA.c.target == target))
    return value or 0


async def count_quota(session: AsyncSession, month: str, target: str) -> None:
    stmt = insert_for(session.bind.dialect.name, _QUOTA).values(month=month, target=target, sent=1)
    await session.execute(stmt.on_conflict_do_update(index_elements=["month", "target"],
                                                     set_={"sent": _QUOTA.c.sent + 1}))


async def erase_member(session: AsyncSession, member_id: str) -> int:
    """A member's 微信客服 rows and the 1-on-1 task targets naming them (at their request: bot/privacy.py; before
    the identity rows, which say who their external_userids are)."""
    ids = select(MemberIdentity.value).where(MemberIdentity.member_id == member_id,
                                             MemberIdentity.kind == "external_userid")
    n = (await session.execute(delete(_TARGETS).where(_TARGETS.c.chat_type == "single",
                                                      _TARGETS.c.target.in_(ids)))).rowcount or 0
    return n + ((await session.execute(delete(_CUSTOMERS).where(_CUSTOMERS.c.member_id == member_id))).rowcount or 0)


_SENDS = WeComGroupSend.__table__


async def add_group_send(session: AsyncSession, msgid: str, owner: str, chat_type: str, chat_id: str, text: str,
                         at: datetime) -> None:
    await session.execute(_SENDS.insert().values(msgid=msgid, owner=owner, chat_type=chat_type, chat_id=chat_id,
                                                 text=text, status="waiting", created_at=at, finished_at=None))


async def waiting_group_sends(session: AsyncSession, limit: int = 200) -> list[tuple[str, str, str, str]]:
    """(msgid, owner, chat_type, chat_id) of the tasks still waiting for their staff member, oldest first."""
    rows = await session.execute(select(_SENDS.c.msgid, _SENDS.c.owner, _SENDS.c.chat_type, _SENDS.c.chat_id)
                                 .where(_SENDS.c.status == "waiting").order_by(_SENDS.c.created_at).limit(limit))
    return [tuple(r) for r in rows]


async def finish_group_send(session: AsyncSession, msgid: str, status: str, at: datetime) -> bool:
    result = await session.execute(update(_SENDS).where(_SENDS.c.msgid == msgid, _SENDS.c.status == "waiting")
                                   .values(status=status, finished_at=at))
    return (result.rowcount or 0) == 1


async def group_sends(session: AsyncSession, limit: int = 100) -> list[dict]:
    """The latest tasks, newest first, each with its targets ({target: status}) (the dashboard)."""
    rows = [dict(r._mapping) for r in await session.execute(
        select(_SENDS).order_by(_SENDS.c.created_at.desc(), _SENDS.c.msgid).limit(limit))]
    if rows:
        found = await session.execute(select(_TARGETS.c.msgid, _TARGETS.c.target, _TARGETS.c.status)
                                      .where(_TARGETS.c.msgid.in_([r["msgid"] for r in rows]))
                                      .order_by(_TARGETS.c.id))
        by_task: dict[str, dict[str, str]] = {}
        for msgid, target, status in found:
            by_task.setdefault(msgid, {})[target] = status
        for r in rows:
            r["targets"] = by_task.get(r["msgid"], {r["chat_id"]: r["status"]})
    return rows


_TARGETS = WeComTaskTarget.__table__


async def queue_target(session: AsyncSession, owner: str, chat_type: str, target: str, text: str,
                       at: datetime) -> int:
    """A group (or customer) waiting to join its owner's next task; its row id."""
    result = await session.execute(_TARGETS.insert().values(owner=owner, chat_type=chat_type, target=target,
                                                            text=text, queued_at=at, status="queued"))
    return int(result.inserted_primary_key[0])


async def queued_targets(session: AsyncSession) -> list[tuple[int, str, str, str, str]]:
    """(id, owner, chat_type, target, text) of the targets not yet in a task, in the order they came."""
    rows = await session.execute(select(_TARGETS.c.id, _TARGETS.c.owner, _TARGETS.c.chat_type, _TARGETS.c.target,
                                        _TARGETS.c.text).where(_TARGETS.c.status == "queued")
                                 .order_by(_TARGETS.c.id))
    return [tuple(r) for r in rows]


async def task_made(session: AsyncSession, ids: list[int], msgid: str | None, status: str,
                    at: datetime) -> None:
    """The queued targets ``ids`` are now in task ``msgid`` (waiting), or were not made into one (status)."""
    await session.execute(update(_TARGETS).where(_TARGETS.c.id.in_(ids), _TARGETS.c.status == "queued")
                          .values(msgid=msgid, status=status, finished_at=None if status == "waiting" else at))


async def task_targets(session: AsyncSession, msgid: str) -> dict[str, str]:
    rows = await session.execute(select(_TARGETS.c.target, _TARGETS.c.status).where(_TARGETS.c.msgid == msgid))
    return {r.target: r.status for r in rows}


async def target_outcome(session: AsyncSession, msgid: str, target: str, status: str, at: datetime) -> bool:
    result = await session.execute(update(_TARGETS).where(_TARGETS.c.msgid == msgid, _TARGETS.c.target == target,
                                                          _TARGETS.c.status == "waiting")
                                   .values(status=status, finished_at=at))
    return (result.rowcount or 0) >= 1


_TAGS = WeComCorpTag.__table__


async def corp_tags(session: AsyncSession) -> dict[str, tuple[str, str, str]]:
    """tier key → (tag id, name, group id) of the corp tags the bot made or found."""
    rows = await session.execute(select(_TAGS.c.tier, _TAGS.c.tag_id, _TAGS.c.name, _TAGS.c.group_id))
    return {r.tier: (r.tag_id, r.name, r.group_id) for r in rows}


async def save_corp_tag(session: AsyncSession, tier: str, tag_id: str, name: str, group_id: str,
                        at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _TAGS).values(tier=tier, tag_id=tag_id, name=name,
                                                               group_id=group_id, updated_at=at)
    await session.execute(stmt.on_conflict_do_update(
        index_elements=["tier"], set_={"tag_id": stmt.excluded.tag_id, "name": stmt.excluded.name,
                                       "group_id": stmt.excluded.group_id, "updated_at": stmt.excluded.updated_at}))


_FOLLOWS = WeComFollow.__table__
_MARKS = WeComTagMark.__table__


async def follow(session: AsyncSession, external_userid: str, userid: str, at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _FOLLOWS).values(external_userid=external_userid, userid=userid,
                                                                  added_at=at)
    await session.execute(stmt.on_conflict_do_nothing(index_elements=["external_userid", "userid"]))


async def unfollow(session: AsyncSession, external_userid: str, userid: str) -> None:
    await session.execute(delete(_FOLLOWS).where(_FOLLOWS.c.external_userid == external_userid,
                                                 _FOLLOWS.c.userid == userid))


async def followers(session: AsyncSession) -> dict[str, str]:
    """external_userid → one staff member who has them as a contact (the first added)."""
    rows = await session.execute(select(_FOLLOWS.c.external_userid, _FOLLOWS.c.userid)
                                 .order_by(_FOLLOWS.c.added_at.desc()))
    return {r.external_userid: r.userid for r in rows}


async def tag_marks(session: AsyncSession) -> dict[str, str]:
    return {r.external_userid: r.tag_id for r in await session.execute(select(_MARKS.c.external_userid,
                                                                               _MARKS.c.tag_id))}


async def mark(session: AsyncSession, external_userid: str, tag_id: str, at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _MARKS).values(external_userid=external_userid, tag_id=tag_id,
                                                                marked_at=at)
    await session.execute(stmt.on_conflict_do_update(index_elements=["external_userid"],
                                                     set_={"tag_id": stmt.excluded.tag_id,
                                                           "marked_at": stmt.excluded.marked_at}))


async def group_send_counts(session: AsyncSession) -> dict[str, dict[str, int]]:
    """owner → {status: tasks} (the last 30 days' worth is what matters; tasks are few)."""
    rows = await session.execute(select(_SENDS.c.owner, _SENDS.c.status, func.count())
                                 .group_by(_SENDS.c.owner, _SENDS.c.status).order_by(_SENDS.c.owner))
    out: dict[str, dict[str, int]] = {}
    for owner, status, n in rows:
        out.setdefault(owner, {})[status] = n
    return out
