"""One stored form per column type (storage/types.py): a row written by the bulk writer, by a Prepared statement and
by the ORM is the same bytes on disk, and the ORM reads back what was written, for every column of the activity
and scheduled_jobs tables."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import Table, select, text

from storage.bulk import Write, write_with_session
from storage.models import Activity, ScheduledJob
from storage.prepared import Prepared
from storage.types import sqlite_encoder, utc_text

pytestmark = pytest.mark.all_backends

SHANGHAI = timezone(timedelta(hours=8))
AT = datetime(2026, 11, 23, 10, 30, 15, 123456, tzinfo=SHANGHAI)  # not UTC: stored as naive UTC

ACTIVITY_ROWS = [
    {"at": AT, "room_id": "1001@chatroom", "member_id": "wxid_成员", "kind": "message", "skill": "faq",
     "detail": {"q": "几点发货？", "score": 0.9, "n": [1, 2, None], "ok": True, "nested": {"文": "字"}}},
    {"at": AT + timedelta(microseconds=1), "room_id": None, "member_id": None, "kind": "sent", "skill": None,
     "detail": None},
    {"at": datetime(2026, 1, 1, tzinfo=UTC), "room_id": "", "member_id": "u", "kind": "order", "skill": "orders",
     "detail": {"amount": 12.5, "big": 2**40, "empty": {}, "list": []}},
]


def job_rows(path: str) -> list[dict]:
    return [
        {"key": f"{path}-1", "handler": "reminders.send", "payload": {"text": "明天 9:00 开团", "to": ["g1"]},
         "schedule": "cron", "spec": "0 9 * * *", "next_run_at": AT, "last_run_at": AT - timedelta(days=1),
         "status": "active", "misfire_grace_s": 60, "run_count": 3, "attempts": 0, "last_error": "上次：超时",
         "created_at": AT - timedelta(days=30), "room_id": "1001@chatroom"},
        {"key": f"{path}-2", "handler": "tiers.recompute", "payload": None, "schedule": "once", "spec": "",
         "next_run_at": None, "last_run_at": None, "status": "done", "misfire_grace_s": 3600, "run_count": 0,
         "attempts": 2, "last_error": None, "created_at": AT, "room_id": None},
    ]


async def write_three_ways(s, table: Table, model, rows_by_path: dict[str, list[dict]]) -> None:
    await write_with_session(s, [Write(table, rows_by_path["bulk"])])
    conn = await s.connection()
    insert = Prepared(table.insert())
    for row in rows_by_path["prepared"]:
        await insert.run(conn, row)
    s.add_all(model(**row) for row in rows_by_path["orm"])
    await s.commit()


def stored(sync_conn, table: str, columns: list[str], order: str) -> list[tuple]:
    """Each column exactly as stored: SQLite's quote() shows the bytes and the storage class (text, integer,
    real, NULL); PostgreSQL's text form of each value."""
    if sync_conn.dialect.name == "sqlite":
        exprs = ", ".join(f"quote({c})" for c in columns)
    else:
        exprs = ", ".join(f"{c}::text" for c in columns)
    return [tuple(r) for r in sync_conn.execute(text(f"SELECT {exprs} FROM {table} ORDER BY {order}"))]  # noqa: S608


async def test_activity_rows_are_the_same_bytes_from_bulk_prepared_and_orm(sessions):
    paths = ("bulk", "prepared", "orm")
    async with sessions() as s:
        await write_three_ways(s, Activity.__table__, Activity, {p: [dict(r) for r in ACTIVITY_ROWS] for p in paths})
    columns = [c.name for c in Activity.__table__.c if c.name != "id"]
    async with sessions() as s:
        conn = await s.connection()
        rows = await conn.run_sync(stored, "activity", columns, "id")
        read = list((await s.execute(select(Activity).order_by(Activity.id))).scalars())
    n = len(ACTIVITY_ROWS)
    assert rows[:n] == rows[n:2 * n] == rows[2 * n:]  # the three paths, value for value
    for i, a in enumerate(read):
        expected = ACTIVITY_ROWS[i % n]
        assert {c: getattr(a, c) for c in columns} == expected  # aware datetimes compare as instants
        assert a.at.tzinfo is UTC
    if conn.dialect.name == "sqlite":  # the forms themselves, as documented in storage/types.py
        assert rows[0][0] == "'2026-11-23 02:30:15.123456'"
        assert rows[0][-1] == ("'{\"q\":\"几点发货？\",\"score\":0.9,\"n\":[1,2,null],\"ok\":true,"
                               "\"nested\":{\"文\":\"字\"}}'")
        assert rows[1][-1] == "NULL"  # None in a JSON column: SQL NULL on every path, never the text null


async def test_scheduled_jobs_rows_are_the_same_bytes_from_bulk_prepared_and_orm(sessions):
    paths = ("bulk", "prepared", "orm")
    async with sessions() as s:
        await write_three_ways(s, ScheduledJob.__table__, ScheduledJob, {p: job_rows(p) for p in paths})
    columns = [c.name for c in ScheduledJob.__table__.c if c.name not in ("id", "key")]
    async with sessions() as s:
        conn = await s.connection()
        rows = await conn.run_sync(stored, "scheduled_jobs", columns, "id")
        read = list((await s.execute(select(ScheduledJob).order_by(ScheduledJob.id))).scalars())
    assert rows[0:2] == rows[2:4] == rows[4:6]
    for i, job in enumerate(read):
        expected = job_rows(("bulk", "prepared", "orm")[i // 2])[i % 2]
        assert {c.name: getattr(job, c.name) for c in ScheduledJob.__table__.c if c.name != "id"} == expected
    if conn.dialect.name == "sqlite":
        assert rows[1][columns.index("payload")] == "NULL"
        assert rows[0][columns.index("misfire_grace_s")] == "60"  # an integer, not text


def test_the_encoder_follows_the_column_type():
    c = Activity.__table__.c
    assert sqlite_encoder(c.at.type) is utc_text
    with pytest.raises(ValueError, match="naive"):
        utc_text(datetime(2026, 1, 1))
    assert sqlite_encoder(c.kind.type) is None and sqlite_encoder(c.id.type) is None
    assert sqlite_encoder(c.detail.type)({"a": 1}) == '{"a":1}'
    from storage.models import RoomMember
    from skills.tiers.models import MemberTier
    encode_bool = sqlite_encoder(RoomMember.__table__.c.active.type)
    assert (encode_bool(True), encode_bool(False), encode_bool(None)) == (1, 0, None)
    with pytest.raises(ValueError):
        encode_bool("yes")
    assert sqlite_encoder(MemberTier.__table__.c.amount_window.type)(5) == 5.0  # SQLAlchemy's own: a float
