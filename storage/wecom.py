"""The WeCom transport's queries (tables in storage/models_wecom.py): accepted callback keys, shared access tokens,
微信客服 cursors and customers, the monthly 企业群发 quota."""

from __future__ import annotations

from collections.abc import Callable, Sequence
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
_REMEMBER = {d: insert_for(d, _CALLBACKS).values(
    key=bindparam("k"), received_at=bindparam("at"), handled_at=bindparam("h", type_=_CALLBACKS.c.handled_at.type),
    payload=bindparam("p", type_=_CALLBACKS.c.payload.type))
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


async def remember(session: AsyncSession, key: str, at: datetime, payload: str | None = None) -> bool:
    """Note a callback's key; False if it was accepted before (nothing changes then). With ``payload``, a new one is
    kept to be handed on: pending until ``mark_handled``."""
    statement = _REMEMBER[session.bind.dialect.name]
    params = {"k": key, "at": at, "h": None if payload is not None else at, "p": payload}
    return (await fast.execute(session, statement, params)).rowcount == 1


_KEEP = update(_CALLBACKS).where(_CALLBACKS.c.key == bindparam("k")).values(payload=bindparam("p"), handled_at=None)
_MARK = update(_CALLBACKS).where(_CALLBACKS.c.key.in_(bindparam("keys", expanding=True))).values(
    handled_at=bindparam("at"), payload=None)
_DROP = update(_CALLBACKS).where(_CALLBACKS.c.key.in_(bindparam("keys", expanding=True))).values(
    handled_at=bindparam("at"), payload=None, dropped=bindparam("reason"))
_PENDING = (select(_CALLBACKS.c.key, _CALLBACKS.c.received_at, _CALLBACKS.c.payload)
            .where(_CALLBACKS.c.handled_at.is_(None), _CALLBACKS.c.key.startswith(bindparam("prefix")))
            .order_by(_CALLBACKS.c.received_at, _CALLBACKS.c.key))


async def keep_payload(session: AsyncSession, key: str, payload: str) -> None:
    """The callback noted as ``key`` (this transaction) is to be handed on: pending, with ``payload``, until
    ``mark_handled``."""
    await session.execute(_KEEP, {"k": key, "p": payload})


_MARK_ONE = update(_CALLBACKS).where(_CALLBACKS.c.key == bindparam("k")).values(
    handled_at=bindparam("at"), payload=None)


async def mark_handled(session: AsyncSession, keys: Sequence[str], at: datetime) -> None:
    keys = list(keys)
    if len(keys) == 1:  # in the message's own transaction: the compiled-once path
        await fast.execute(session, _MARK_ONE, {"k": keys[0], "at": at})
        return
    for start in range(0, len(keys), 500):
        await session.execute(_MARK, {"keys": keys[start:start + 500], "at": at})


async def drop(session: AsyncSession, keys: Sequence[str], at: datetime, reason: str) -> None:
    """Not to be handed on, because of ``reason`` (≤ 64 characters)."""
    keys = list(keys)
    for start in range(0, len(keys), 500):
        await session.execute(_DROP, {"keys": keys[start:start + 500], "at": at, "reason": reason[:64]})


async def pending(session: AsyncSession, prefix: str) -> list[tuple[str, datetime, str | None]]:
    """The callbacks whose keys start with ``prefix`` kept to be handed on and not handled yet, oldest first."""
    return [tuple(row) for row in (await session.execute(_PENDING, {"prefix": prefix})).all()]


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


async def give_back_quota(session: AsyncSession, month_of: Callable[[datetime], str], *,
                          ids: Sequence[int] = (), msgid: str | None = None,
                          targets: Sequence[str] = ()) -> int:
    """Targets that received nothing (their task was never made, WeCom reported them failed, or the task expired
    unconfirmed): the 群发 counted for them when they were queued is given back, in the month they were queued in
    (``month_of`` turns ``queued_at`` into "YYYY-MM"); the targets by row ``ids``, or by ``msgid`` and ``targets``.
    How many were given back."""
    stmt = select(_TARGETS.c.chat_type, _TARGETS.c.target, _TARGETS.c.queued_at)
    if msgid is not None:
        stmt = stmt.where(_TARGETS.c.msgid == msgid, _TARGETS.c.target.in_(list(targets)))
    else:
        stmt = stmt.where(_TARGETS.c.id.in_(list(ids)))
    n = 0
    for chat_type, target, queued_at in list(await session.execute(stmt)):
        key = f"{'group' if chat_type == 'group' else 'customer'}:{target}"
        result = await session.execute(update(_QUOTA).where(_QUOTA.c.month == month_of(queued_at),
                                                            _QUOTA.c.target == key, _QUOTA.c.sent > 0)
                                       .values(sent=_QUOTA.c.sent - 1))
        n += result.rowcount or 0
    return n


def _external_ids(member_id: str):
    return select(MemberIdentity.value).where(MemberIdentity.member_id == member_id,
                                              MemberIdentity.kind == "external_userid")


async def erase_member(session: AsyncSession, member_id: str, stand_in: str) -> int:
    """Every WeCom row naming the member (at their request: bot/privacy.py; before the identity rows, which say who
    their external_userids are): 微信客服 rows, the staff members who have them as a contact, their tier tag mark,
    their monthly 群发 counts and the 1-on-1 task targets are deleted; a 1-on-1 task's ``chat_id`` (its first
    customer) gets the pseudonym ``stand_in`` (the task itself is the staff member's, and stays)."""
    ids = [v for v in (await session.execute(_external_ids(member_id))).scalars()]
    n = (await session.execute(delete(_TARGETS).where(_TARGETS.c.chat_type == "single",
                                                      _TARGETS.c.target.in_(ids)))).rowcount or 0
    n += (await session.execute(update(_SENDS).where(_SENDS.c.chat_type == "single", _SENDS.c.chat_id.in_(ids))
                                .values(chat_id=stand_in))).rowcount or 0
    n += (await session.execute(delete(_FOLLOWS).where(_FOLLOWS.c.external_userid.in_(ids)))).rowcount or 0
    n += (await session.execute(delete(_MARKS).where(_MARKS.c.external_userid.in_(ids)))).rowcount or 0
    n += (await session.execute(delete(_QUOTA).where(_QUOTA.c.target.in_([f"customer:{e}" for e in ids])))
          ).rowcount or 0
    return n + ((await session.execute(delete(_CUSTOMERS).where(_CUSTOMERS.c.member_id == member_id))).rowcount or 0)


async def member_rows(session: AsyncSession, member_id: str) -> dict[str, int]:
    """How many WeCom rows name the member, by what they are (/我的数据)."""
    async def count(table, *where) -> int:
        return int(await session.scalar(select(func.count()).select_from(table).where(*where)) or 0)

    externals = [v for v in (await session.execute(_external_ids(member_id))).scalars()]
    return {
        "kf": await count(_CUSTOMERS, _CUSTOMERS.c.member_id == member_id),
        "staff": await count(_FOLLOWS, _FOLLOWS.c.external_userid.in_(externals)),
        "tag": await count(_MARKS, _MARKS.c.external_userid.in_(externals)),
        "quota": await count(_QUOTA, _QUOTA.c.target.in_([f"customer:{e}" for e in externals])),
        "tasks": await count(_TARGETS, _TARGETS.c.chat_type == "single", _TARGETS.c.target.in_(externals)),
    }


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
    """The latest tasks, newest first, each with its targets ({target: status}) (the dashboard); tasks WeCom may or
    may not have made (``uncertain``: no msgid known) come first, one row per (owner, chat type, text)."""
    rows = await uncertain_tasks(session)
    rows += [dict(r._mapping) for r in await session.execute(
        select(_SENDS).order_by(_SENDS.c.created_at.desc(), _SENDS.c.msgid).limit(limit))]
    if rows:
        found = await session.execute(select(_TARGETS.c.msgid, _TARGETS.c.target, _TARGETS.c.status)
                                      .where(_TARGETS.c.msgid.in_([r["msgid"] for r in rows]))
                                      .order_by(_TARGETS.c.id))
        by_task: dict[str, dict[str, str]] = {}
        for msgid, target, status in found:
            by_task.setdefault(msgid, {})[target] = status
        for r in rows:
            r.setdefault("targets", by_task.get(r["msgid"], {r["chat_id"]: r["status"]}))
    return rows


async def uncertain_tasks(session: AsyncSession, limit: int = 50) -> list[dict]:
    """Targets whose task WeCom may have made without the bot learning its msgid (the call's answer lost, or the
    process stopped during it), as task-like rows: never made again automatically; staff check their client."""
    rows = await session.execute(select(_TARGETS.c.owner, _TARGETS.c.chat_type, _TARGETS.c.text, _TARGETS.c.target,
                                        _TARGETS.c.queued_at, _TARGETS.c.finished_at)
                                 .where(_TARGETS.c.status == "uncertain", _TARGETS.c.msgid.is_(None))
                                 .order_by(_TARGETS.c.id.desc()).limit(limit * 20))
    tasks: dict[tuple[str, str, str], dict] = {}
    for owner, chat_type, text, target, queued_at, finished_at in rows:
        task = tasks.setdefault((owner, chat_type, text), {
            "msgid": "", "owner": owner, "chat_type": chat_type, "chat_id": target, "text": text,
            "status": "uncertain", "created_at": queued_at, "finished_at": finished_at, "targets": {}})
        task["targets"][target] = "uncertain"
    return list(tasks.values())[:limit]


async def start_creating(session: AsyncSession, ids: list[int]) -> None:
    """The queued targets ``ids`` are about to become a task (add_msg_template): committed before WeCom is asked,
    so a process that stops during the call leaves them ``creating``, never queued to be made again."""
    await session.execute(update(_TARGETS).where(_TARGETS.c.id.in_(ids), _TARGETS.c.status == "queued")
                          .values(status="creating"))


async def creating_to_queued(session: AsyncSession, ids: list[int]) -> None:
    """WeCom was not reached (the connection never opened): the targets wait for the next try."""
    await session.execute(update(_TARGETS).where(_TARGETS.c.id.in_(ids), _TARGETS.c.status == "creating")
                          .values(status="queued"))


async def creating_to_uncertain(session: AsyncSession, at: datetime) -> list[tuple[str, str, str]]:
    """At start: targets still ``creating`` (the last run stopped while WeCom was making their task) become
    ``uncertain``; their (owner, chat_type, target)."""
    rows = [tuple(r) for r in await session.execute(
        select(_TARGETS.c.owner, _TARGETS.c.chat_type, _TARGETS.c.target).where(_TARGETS.c.status == "creating"))]
    if rows:
        await session.execute(update(_TARGETS).where(_TARGETS.c.status == "creating")
                              .values(status="uncertain", finished_at=at))
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
    await session.execute(update(_TARGETS).where(_TARGETS.c.id.in_(ids), _TARGETS.c.status.in_(("queued", "creating")))
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


async def followers(session: AsyncSession, external_userids: Sequence[str] | None = None) -> dict[str, str]:
    """external_userid → one staff member who has them as a contact (the first added); of ``external_userids``
    only, when given (one message's customer: not the whole table once per message of a campaign)."""
    stmt = select(_FOLLOWS.c.external_userid, _FOLLOWS.c.userid).order_by(_FOLLOWS.c.added_at.desc())
    if external_userids is not None:
        stmt = stmt.where(_FOLLOWS.c.external_userid.in_(list(external_userids)[:500]))
    return {r.external_userid: r.userid for r in await session.execute(stmt)}


async def tag_marks(session: AsyncSession) -> dict[str, str]:
    return {r.external_userid: r.tag_id for r in await session.execute(select(_MARKS.c.external_userid,
                                                                               _MARKS.c.tag_id))}


async def mark(session: AsyncSession, external_userid: str, tag_id: str, at: datetime) -> None:
    stmt = insert_for(session.bind.dialect.name, _MARKS).values(external_userid=external_userid, tag_id=tag_id,
                                                                marked_at=at)
    await session.execute(stmt.on_conflict_do_update(index_elements=["external_userid"],
                                                     set_={"tag_id": stmt.excluded.tag_id,
                                                           "marked_at": stmt.excluded.marked_at}))


async def group_send_counts(session: AsyncSession) -> dict[tuple[str, str], dict[str, int]]:
    """(owner, chat type) → {status: tasks}: a group task's owner is the groups' 群主, a 1-on-1 task's the staff
    member who has the customers (the last 30 days' worth is what matters; tasks are few)."""
    rows = await session.execute(select(_SENDS.c.owner, _SENDS.c.chat_type, _SENDS.c.status, func.count())
                                 .group_by(_SENDS.c.owner, _SENDS.c.chat_type, _SENDS.c.status))
    out: dict[tuple[str, str], dict[str, int]] = {}
    for owner, chat_type, status, n in rows:
        out.setdefault((owner, chat_type), {})[status] = n
    for task in await uncertain_tasks(session):
        counts = out.setdefault((task["owner"], task["chat_type"]), {})
        counts["uncertain"] = counts.get("uncertain", 0) + 1
    return dict(sorted(out.items()))


async def expire_group_sends(session: AsyncSession, before: datetime,
                             at: datetime) -> list[tuple[str, str, str]]:
    """Tasks still waiting that were made before ``before`` (staff never confirmed them): ``expired``, and so are
    their targets still waiting; the (msgid, owner, chat_type) of each, for the activity store and the quota."""
    rows = [tuple(r) for r in await session.execute(
        select(_SENDS.c.msgid, _SENDS.c.owner, _SENDS.c.chat_type).where(_SENDS.c.status == "waiting", _SENDS.c.created_at < before)
        .order_by(_SENDS.c.created_at).limit(1000))]
    if rows:
        await session.execute(update(_SENDS).where(_SENDS.c.msgid.in_([r[0] for r in rows]),
                                                   _SENDS.c.status == "waiting")
                              .values(status="expired", finished_at=at))
    return rows


async def expire_targets(session: AsyncSession, msgid: str, at: datetime) -> list[str]:
    """The targets of task ``msgid`` still waiting become ``expired``; which they were."""
    targets = [t for t in (await session.execute(select(_TARGETS.c.target).where(
        _TARGETS.c.msgid == msgid, _TARGETS.c.status == "waiting"))).scalars()]
    if targets:
        await session.execute(update(_TARGETS).where(_TARGETS.c.msgid == msgid, _TARGETS.c.status == "waiting")
                              .values(status="expired", finished_at=at))
    return targets
