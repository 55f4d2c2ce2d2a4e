"""The member directory as commands ask it (is this member in that room?), and one member's own data in the core
tables — members, member_names, room_members, activity — exported or erased at the member's request (PIPL; the
commands are in bot/privacy.py, the points ledger's part in storage/points.py).

Erasing deletes the directory rows and keeps the activity log's rows (counts and rollups rest on them) under a
stable pseudonym, their free text removed. The activity log has no member index (see storage/models.py), so both
the export's counts and the erasure scan it once: a rare request, not a hot path.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import String, bindparam, cast, delete, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Activity, Member, MemberName, Room, RoomMember

ERASED_NAME = "已注销用户"
# Of a member's own activity rows, the detail values kept after erasure besides numbers and booleans: what the
# rollups and the counts read (kinds of things, never words the member or an admin typed).
KEPT_TEXT_KEYS = frozenset({"command", "outcome", "mode", "entry", "date", "item", "order_id", "status", "group_buy",
                            "tier", "reminder", "kind", "reason", "priority", "proactive", "what", "schedule"})

_IN_ROOM = (select(RoomMember.member_id)
            .where(RoomMember.room_id == bindparam("room"), RoomMember.member_id == bindparam("m")).limit(1))


def pseudonym() -> str:
    """A new stand-in for an erased member's id in what bookkeeping keeps (ledger rows, orders, activity counts):
    one per erasure, shared by every row it rewrites, and random — a hash of the id could be recomputed from any
    candidate id and would undo the erasure for whoever holds the database."""
    return "erased:" + secrets.token_hex(8)


async def in_room(session: AsyncSession, member_id: str, room_id: str) -> bool:
    """Whether the bot has seen ``member_id`` in ``room_id`` (spoke there, joined or left it). Rows are written with
    the activity store's batches: flush it first when the member may have just arrived."""
    return (await session.execute(_IN_ROOM, {"room": room_id, "m": member_id})).first() is not None


# -- a member's own data ----------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class MemberRecord:
    member_id: str
    name: str = ""
    first_seen: datetime | None = None
    last_seen: datetime | None = None
    names: list[str] = field(default_factory=list)  # every display name seen
    rooms: list[tuple[str, bool]] = field(default_factory=list)  # (room topic or id, still in it)
    activity: dict[str, int] = field(default_factory=dict)  # activity rows by kind

    @property
    def known(self) -> bool:
        return self.first_seen is not None or bool(self.rooms) or bool(self.activity)


async def member_record(session: AsyncSession, member_id: str) -> MemberRecord:
    m = await session.get(Member, member_id)
    names = list((await session.execute(select(MemberName.name).where(MemberName.member_id == member_id)
                                        .order_by(MemberName.first_seen))).scalars())
    rooms = [(topic or room_id, bool(active)) for room_id, topic, active in (await session.execute(
        select(RoomMember.room_id, Room.topic, RoomMember.active).outerjoin(Room, Room.id == RoomMember.room_id)
        .where(RoomMember.member_id == member_id).order_by(RoomMember.first_seen))).all()]
    counts = dict((await session.execute(select(Activity.kind, func.count()).where(Activity.member_id == member_id)
                                         .group_by(Activity.kind))).all())
    return MemberRecord(member_id, m.name if m else "", m.first_seen if m else None, m.last_seen if m else None,
                        names, rooms, {k: int(n) for k, n in counts.items()})


def scrub_detail(detail: object, member_id: str, stand_in: str) -> dict | None:
    """A member's own activity detail after erasure: numbers, booleans and the structural keys' words; the member's
    id (as a value) becomes ``stand_in``; typed text, names and other ids are dropped."""
    if not isinstance(detail, dict):
        return None
    kept: dict = {}
    for key, value in detail.items():
        if value is None or isinstance(value, (bool, int, float)):
            kept[key] = value
        elif isinstance(value, str) and value == member_id:
            kept[key] = stand_in
        elif isinstance(value, str) and key in KEPT_TEXT_KEYS:
            kept[key] = value[:64]
    return kept or None


def _replace(value: object, member_id: str, stand_in: str, names: tuple[str, ...]) -> object:
    """Another row's detail: the member's id becomes ``stand_in`` and their display names 已注销用户, wherever they
    appear in its values."""
    if isinstance(value, str):
        if value == member_id:
            return stand_in
        value = re.sub(rf"(?<![\w-]){re.escape(member_id)}(?![\w-])", stand_in, value)
        for name in names:
            value = value.replace(name, ERASED_NAME)
        return value
    if isinstance(value, list):
        return [_replace(v, member_id, stand_in, names) for v in value]
    if isinstance(value, dict):
        return {k: _replace(v, member_id, stand_in, names) for k, v in value.items()}
    return value


def like_anywhere(text: str) -> str:
    """A LIKE pattern (escape character \\) matching ``text`` literally anywhere: ids have underscores."""
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(text: str):
    return cast(Activity.detail, String).like(like_anywhere(text), escape="\\")


_A = Activity.__table__
_SET_ROW = update(_A).where(_A.c.id == bindparam("row_id")).values(member_id=bindparam("new_member"),
                                                                    detail=bindparam("new_detail"))


async def erase_member(session: AsyncSession, member_id: str, stand_in: str) -> int:
    """Delete the member's directory rows (members, member_names, room_members) and pseudonymise the activity log:
    their rows keep kind, time and room under ``stand_in`` with the typed text gone; other rows that name them
    (an @-mention, the inviter of a join, the member of an admin's points change) name ``stand_in`` instead.
    Returns the rows changed. Runs in the caller's transaction."""
    names = tuple(n for n in (await session.execute(
        select(MemberName.name).where(MemberName.member_id == member_id))).scalars() if len(n) >= 2)
    changed = 0
    # the id as stored inside JSON text, too: a non-ASCII id is written \u-escaped
    escaped_id = json.dumps(member_id)[1:-1]
    patterns = {member_id, escaped_id}
    rows = (await session.execute(
        select(Activity.id, Activity.member_id, Activity.detail)
        .where(or_(Activity.member_id == member_id, *(_contains(p) for p in patterns))))).all()
    updates = []
    for row_id, owner, detail in rows:
        if owner == member_id:
            updates.append({"row_id": row_id, "new_member": stand_in,
                            "new_detail": scrub_detail(detail, member_id, stand_in)})
        else:
            updates.append({"row_id": row_id, "new_member": owner,
                            "new_detail": _replace(detail, member_id, stand_in, names)})
    if updates:
        await session.execute(_SET_ROW, updates)
        changed += len(updates)
    names_t, rooms_t, members_t = MemberName.__table__, RoomMember.__table__, Member.__table__
    for stmt in (delete(names_t).where(names_t.c.member_id == member_id),
                 delete(rooms_t).where(rooms_t.c.member_id == member_id),
                 delete(members_t).where(members_t.c.id == member_id),
                 update(rooms_t).where(rooms_t.c.inviter_id == member_id).values(inviter_id=stand_in)):
        changed += (await session.execute(stmt)).rowcount or 0
    return changed
