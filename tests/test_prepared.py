"""storage/prepared.py: a statement run straight on the inline sqlite3 connection gives what SQLAlchemy gives
(types processed both ways, literal values, row counts, upserts, IN lists of any length), inside the session's
transaction; on PostgreSQL it is SQLAlchemy's own execution."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import bindparam, func, select, tuple_, update
from sqlalchemy.exc import IntegrityError

from storage.models import ScheduledJob
from storage.prepared import Prepared, savepoint
from storage.upsert import insert_for

pytestmark = pytest.mark.all_backends

JOBS = ScheduledJob.__table__
AT = datetime(2026, 11, 23, 2, 30, 15, 123456, tzinfo=UTC)


def job(key: str, **kw) -> dict:
    return {"key": key, "handler": "t.h", "payload": {"room": "g1", "n": [1, 2], "文": "字"}, "schedule": "once",
            "spec": "", "next_run_at": AT, "status": "active", "misfire_grace_s": 60, "run_count": 0, "attempts": 0,
            "created_at": AT} | kw


async def test_prepared_matches_sqlalchemy_and_joins_the_sessions_transaction(sessions, backend):
    select_active = select(JOBS.c.id, JOBS.c.key, JOBS.c.payload, JOBS.c.next_run_at, JOBS.c.last_run_at).where(
        JOBS.c.key == bindparam("wanted"), JOBS.c.status == "active")  # a literal value bound in the statement
    prepared = Prepared(select_active)
    async with sessions() as s:
        conn = await s.connection()
        upsert = insert_for(conn.dialect.name, JOBS)
        upsert = Prepared(upsert.on_conflict_do_update(index_elements=["key"],
                                                       set_={"payload": upsert.excluded.payload}))
        assert (await upsert.run(conn, job("a"))).rowcount == 1
        assert (await upsert.run(conn, job("b", status="paused"))).rowcount == 1
        assert (await upsert.run(conn, job("a", payload={"v": 2}))).rowcount == 1  # the conflict: an update

        direct = (await prepared.run(conn, {"wanted": "a"})).one()
        expected = (await conn.execute(select_active, {"wanted": "a"})).one()
        assert tuple(direct) == tuple(expected)
        assert direct.payload == {"v": 2} and direct.next_run_at == AT and direct.last_run_at is None
        assert direct._asdict()["key"] == "a"
        assert (await prepared.run(conn, {"wanted": "b"})).first() is None  # paused: the literal still applies
        assert (await prepared.run(conn, {"wanted": "b"})).scalar() is None

        touch = Prepared(update(JOBS).where(JOBS.c.key == bindparam("wanted")).values(last_run_at=bindparam("at")))
        assert (await touch.run(conn, {"wanted": "a", "at": AT})).rowcount == 1
        assert (await touch.run(conn, {"wanted": "nobody", "at": AT})).rowcount == 0
        await s.rollback()  # the direct statements were in the session's transaction: all gone
    async with sessions() as s:
        assert (await Prepared(select(JOBS.c.id)).run(await s.connection())).all() == []


async def test_one_prepared_in_list_takes_lists_of_any_length(sessions, backend):
    """An expanding parameter: every length, empty included, through one Prepared, with the answer SQLAlchemy's
    own execution gives; values encoded by the column's type (datetimes), tuple IN lists, literal IN lists."""
    async with sessions() as s:
        conn = await s.connection()
        insert = Prepared(JOBS.insert())
        for k in range(40):
            await insert.run(conn, job(f"k{k:02d}", status="paused" if k % 5 == 0 else "active",
                                       next_run_at=AT + timedelta(minutes=k)))
        pick = Prepared(select(JOBS.c.key).where(JOBS.c.key.in_(bindparam("keys", expanding=True)),
                                                 JOBS.c.status.in_(["active", "done"]))  # a literal IN list too
                        .order_by(JOBS.c.key))
        runs = Prepared.direct_runs
        for n in (0, 1, 2, 3, 16, 17, 30, 40, 3):
            keys = [f"k{k:02d}" for k in range(n)]
            got = [r.key for r in (await pick.run(conn, {"keys": keys})).all()]
            assert got == [r.key for r in (await conn.execute(pick.statement, {"keys": keys})).all()]
            assert got == [k for i, k in enumerate(keys) if i % 5]
        assert Prepared.direct_runs - runs == (9 if backend == "sqlite" else 0)  # all of them straight on sqlite3

        at = Prepared(select(func.count()).select_from(JOBS).where(
            JOBS.c.next_run_at.in_(bindparam("ats", expanding=True))))
        ats = [AT + timedelta(minutes=k) for k in (0, 7, 39)] + [AT - timedelta(days=1)]
        assert (await at.run(conn, {"ats": ats})).scalar() == 3
        assert (await at.run(conn, {"ats": [a.astimezone(timezone(timedelta(hours=8))) for a in ats]})).scalar() == 3

        pairs = Prepared(select(JOBS.c.key).where(
            tuple_(JOBS.c.key, JOBS.c.status).in_(bindparam("pairs", expanding=True))).order_by(JOBS.c.key))
        found = (await pairs.run(conn, {"pairs": [("k00", "paused"), ("k01", "paused"), ("k02", "active")]})).all()
        assert [r.key for r in found] == ["k00", "k02"]

        cancel = Prepared(update(JOBS).where(JOBS.c.key.in_(bindparam("keys", expanding=True)),
                                             JOBS.c.status == "active").values(status="cancelled"))
        assert (await cancel.run(conn, {"keys": ["k01", "k02", "k05", "nobody"]})).rowcount == 2
        assert (await cancel.run(conn, {"keys": [f"k{k:02d}" for k in range(40)] * 2})).rowcount == 30  # 80 long
        assert (await cancel.run(conn, {"keys": []})).rowcount == 0
        await s.commit()
    async with sessions() as s:
        statuses = dict((await s.execute(select(JOBS.c.key, JOBS.c.status))).all())
        assert sum(v == "cancelled" for v in statuses.values()) == 32 and statuses["k05"] == "paused"


async def test_savepoint_undoes_only_its_block_and_never_commits_on_its_own(sessions):
    insert = Prepared(JOBS.insert())
    keys = Prepared(select(JOBS.c.key).order_by(JOBS.c.key))
    async with sessions() as s:
        # the first statement of the transaction is in the savepoint: releasing it must not commit it
        async with savepoint(s):
            await insert.run(await s.connection(), job("first"))
        await s.rollback()
    async with sessions() as s:
        assert (await keys.run(await s.connection())).all() == []
        await insert.run(await s.connection(), job("kept"))
        with pytest.raises(IntegrityError):
            async with savepoint(s):
                await insert.run(await s.connection(), job("undone"))
                await insert.run(await s.connection(), job("kept"))  # the unique key
        await insert.run(await s.connection(), job("after"))  # the transaction goes on
        await s.commit()
    async with sessions() as s:
        assert [r.key for r in (await keys.run(await s.connection())).all()] == ["after", "kept"]
