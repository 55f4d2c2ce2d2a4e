"""Dialect-aware INSERT … ON CONFLICT: the one non-standard statement we need, on SQLite and PostgreSQL alike."""

from __future__ import annotations

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect_name: str, table: Table):
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise ValueError(f"the bot's storage supports SQLite and PostgreSQL, not {dialect_name}")
