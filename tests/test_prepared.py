"""storage/prepared.py: a statement run straight on the inline sqlite3 connection gives what SQLAlchemy gives
(types processed both ways, literal values, row counts, upserts), inside the session's transaction; on
PostgreSQL it is SQLAlchemy's own execution."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import bindparam, select, update
from sqlalchemy.exc import IntegrityError

from storage.db import create_engine, migrate, session_factory
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


async def test_prepared_refuses_expanding_lists_on_sqlite(tmp_path):
    engine = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}")  # the direct path compiles it itself
    await migrate(engine)
    stmt = Prepared(select(JOBS.c.id).where(JOBS.c.key.in_(bindparam("keys", expanding=True))))
    try:
        async with session_factory(engine)() as s:
            with pytest.raises(ValueError, match="expanding"):
                await stmt.run(await s.connection(), {"keys": ["a"]})
    finally:
        await engine.dispose()


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
