"""Column types that behave the same on SQLite and PostgreSQL, and the one place a value's stored form on SQLite
is decided.

Three paths write rows: the ORM / Core (SQLAlchemy's own bind processing), ``Prepared`` (storage/prepared.py,
statements run straight on sqlite3) and the bulk writer (storage/bulk.py, multi-row INSERTs on sqlite3). The two
fast paths convert values with ``sqlite_encoder(column_type)``, and the engine hands SQLAlchemy the same JSON
serializer (``json_text``, storage/db.py), so a row's bytes on disk are the same whichever path wrote it:

- ``UTCDateTime``: naive UTC text with microseconds, ``2026-11-23 02:30:15.123456`` (a naive value is refused);
- ``DateTime``: its fields as given, in the same layout (SQLAlchemy's SQLite default);
- ``JSON``: compact UTF-8 JSON (orjson), and None is SQL NULL, never the text ``null``;
- ``Boolean``: 0 / 1;
- anything else: SQLAlchemy's own bind processor for SQLite (None for text and integers: sqlite3 takes them as
  they are; floats become ``float``).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import orjson
from sqlalchemy import JSON, BigInteger, Boolean, DateTime, Enum, Integer, String
from sqlalchemy.dialects.sqlite import aiosqlite as _aiosqlite
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real BIGINT.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator):
    """Stored as naive UTC (SQLite keeps no offset), always handed back aware in UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC)


Encoder = Callable[[Any], Any]


def json_text(value: Any) -> str | None:
    """A JSON column's stored text: compact UTF-8 JSON (orjson, ~10x faster than the json module per detail
    dict); None (and SQLAlchemy's ``JSON.NULL``) is SQL NULL.

    Also the engines' ``json_serializer``: SQLAlchemy then writes what the fast paths write. Returning None from
    it makes SQLAlchemy bind NULL, where it would otherwise store the four characters ``null`` for None.
    """
    if value is None:
        return None
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def utc_text(value: datetime | None) -> str | None:
    """A ``UTCDateTime`` value's stored text on SQLite."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a UTC column")
    return value.astimezone(UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def naive_text(value: datetime | None) -> str | None:
    """A plain ``DateTime`` value's stored text on SQLite: its fields as they are (SQLAlchemy ignores tzinfo)."""
    if value is None:
        return None
    return value.replace(tzinfo=None).isoformat(" ", "microseconds")


def bool_int(value: Any) -> int | None:
    if value is None:
        return None
    if value not in (True, False):  # as SQLAlchemy's Boolean: 0, 1, True, False only
        raise ValueError(f"value {value!r} is not None, True, or False")
    return 1 if value else 0


_SQLITE = _aiosqlite.dialect(json_serializer=json_text)  # for SQLAlchemy's processors of the other types


def sqlite_encoder(type_: TypeEngine, dialect: Dialect | None = None) -> Encoder | None:
    """How a value of column type ``type_`` is stored on SQLite: a function of the value, or None when sqlite3
    takes it as it is. The fast paths call it once per column or parameter, not per value."""
    if isinstance(type_, UTCDateTime):
        return utc_text
    if type(type_) is DateTime:
        return naive_text
    if isinstance(type_, JSON):
        return json_text
    if isinstance(type_, Boolean):
        return bool_int
    if isinstance(type_, (String, Integer)) and not isinstance(type_, (Enum, TypeDecorator)):
        return None
    dialect = dialect or _SQLITE
    return type_.dialect_impl(dialect).bind_processor(dialect)
