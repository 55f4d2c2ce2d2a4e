"""storage/errors.py on both backends: which failures are about the rows (never retried) and which may pass, and
error text that carries no member data."""

from __future__ import annotations

import pytest
from sqlalchemy import insert, text

from storage.db import create_engine, migrate
from storage.errors import describe, is_data_error
from storage.models import Member
from tests.support import START

pytestmark = pytest.mark.all_backends

SECRET = "秘密的名字"


async def failure(engine, statement, params=None) -> BaseException:
    with pytest.raises(Exception) as info:
        async with engine.begin() as conn:
            await conn.execute(statement, params)
    return info.value


async def test_data_errors_are_told_from_passing_ones_and_logged_without_values(db_url):
    engine = create_engine(db_url)
    await migrate(engine)
    try:
        row = {"id": "u1", "name": SECRET, "first_seen": START, "last_seen": START}
        async with engine.begin() as conn:
            await conn.execute(insert(Member), [row])
        duplicate = await failure(engine, insert(Member), [row])
        not_null = await failure(engine, insert(Member), [{**row, "id": "u2", "name": None}])
        missing_table = await failure(engine, text("INSERT INTO no_such_table VALUES (1)"))
        for exc in (duplicate, not_null):
            assert is_data_error(exc)
            assert SECRET not in str(exc)  # the engine hides parameters: tracebacks carry no member data
            assert SECRET not in describe(exc) and "u1" not in describe(exc)
        assert not is_data_error(missing_table)  # not about the rows: may pass (kept and retried)
        assert describe(missing_table).split(":")[0] in ("OperationalError", "UndefinedTableError")
    finally:
        await engine.dispose()
