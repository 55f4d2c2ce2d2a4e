"""What a failed write's exception means, on SQLite (inline sqlite3 or through SQLAlchemy) and PostgreSQL
(asyncpg through SQLAlchemy), and how to name it in a log line without the statement's parameters.

A *data error* is about the rows, not the database: a value too long for its column, a NUL byte PostgreSQL
refuses, a type the driver can't bind, a constraint. Writing the same rows again fails again, so such a write is
never retried; every other failure (connection lost, database locked or full, a table missing) may pass.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator

from sqlalchemy import exc as sa_exc

# SQLSTATE classes: 22 data exception (too long, NUL, bad input syntax), 23 integrity constraint violation
_DATA_SQLSTATE_CLASSES = ("22", "23")


def _chain(exc: BaseException) -> Iterator[BaseException]:
    """The exception, what SQLAlchemy wrapped (``orig``) and the causes beneath, each once."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        e = todo.pop()
        if e is None or id(e) in seen:
            continue
        seen.add(id(e))
        yield e
        todo.extend((e.__cause__, getattr(e, "orig", None)))


def is_data_error(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, (sa_exc.DataError, sa_exc.IntegrityError, sqlite3.IntegrityError, sqlite3.DataError,
                          sqlite3.InterfaceError)):
            return True
        if isinstance(e, sqlite3.ProgrammingError) and "bind" in str(e):  # "Error binding parameter 2: ..."
            return True
        sqlstate = getattr(e, "sqlstate", None)
        if isinstance(sqlstate, str) and sqlstate[:2] in _DATA_SQLSTATE_CLASSES:
            return True
        # raised in Python while converting a value (an encoder, the driver binding it): a surrogate, an
        # unsupported type, an integer beyond 64 bits, a datetime out of range
        if isinstance(e, (TypeError, ValueError, OverflowError)) and not isinstance(e, OSError):
            return True
    return False


def error_class(exc: BaseException) -> str:
    """The most specific class name in the chain (asyncpg's StringDataRightTruncationError rather than
    SQLAlchemy's DBAPIError)."""
    return type(list(_chain(exc))[-1]).__name__


def describe(exc: BaseException, limit: int = 200) -> str:
    """Class and first line of the driver's message, without the SQL and parameters SQLAlchemy appends (they
    would put member data in the log)."""
    inner = list(_chain(exc))[-1]
    message = str(inner).split("\n", 1)[0].split(" [SQL:", 1)[0].strip()
    if isinstance(inner, sa_exc.StatementError) or is_data_error(exc):
        message = ""  # a data error's message quotes the value ("invalid input for query argument $2: ...")
    name = type(inner).__name__
    return f"{name}: {message[:limit]}" if message else name
