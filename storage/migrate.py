"""Schema migrations: the core's Alembic tree plus one labelled branch per skill that owns tables.

A skill package with a ``migrations/`` folder contributes it as a version location; its first revision carries the
skill's name as ``branch_labels``. ``upgrade heads`` brings every branch up to date, so a skill's tables exist
whether or not the skill is enabled (a database can be shared by bots with different skills). Revision ids are
four-digit numbers unique across the project, file names ``NNNN_what.py``; revisions renamed since a database was
made are renamed in its ``alembic_version`` table first (``RENAMED``), so an existing database upgrades in place.
"""

from __future__ import annotations

import importlib.util
import os
from collections.abc import Iterator
from pathlib import Path

from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import inspect, text
from sqlalchemy.ext.asyncio import AsyncEngine

CORE = Path(__file__).with_name("migrations")
SKILL_PACKAGES = ("skills",)  # packages whose subpackages may bring migrations/ and models.py
# old revision id → new: the ids before the skills owned their migrations
RENAMED = {"0200_gentle_orders": "0200", "0300_tiers": "0300"}
PG_MIGRATION_LOCK = 7261840001


def skill_dirs() -> Iterator[tuple[str, Path]]:
    """(``skills.NAME``, folder) of every skill package, found on disk without importing it."""
    for package in SKILL_PACKAGES:
        spec = importlib.util.find_spec(package)
        for location in (spec.submodule_search_locations or []) if spec else []:
            for child in sorted(Path(location).iterdir()):
                if (child / "__init__.py").is_file():
                    yield f"{package}.{child.name}", child


def version_locations() -> list[str]:
    return [str(CORE / "versions"), *(str(d / "migrations") for _, d in skill_dirs() if (d / "migrations").is_dir())]


def model_modules() -> list[str]:
    """The modules that declare tables (for Alembic's autogenerate): the core's and every skill's ``models``."""
    return ["storage.models", "storage.models_points", "storage.models_gentle", "storage.models_wecom",
            *(f"{name}.models" for name, d in skill_dirs() if (d / "models.py").is_file())]


def alembic_config(url: str | None = None) -> AlembicConfig:
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(CORE))
    cfg.set_main_option("path_separator", "os")
    cfg.set_main_option("version_locations", os.pathsep.join(version_locations()))
    if url:
        cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def _rename_revisions(sync_conn) -> None:
    if "alembic_version" not in inspect(sync_conn).get_table_names():
        return
    for old, new in RENAMED.items():
        sync_conn.execute(text("UPDATE alembic_version SET version_num = :new WHERE version_num = :old"),
                          {"new": new, "old": old})


async def migrate(engine: AsyncEngine) -> None:
    """Bring the schema to head. Safe to call at every start."""

    def upgrade(sync_conn) -> None:
        _rename_revisions(sync_conn)
        cfg = alembic_config()
        cfg.attributes["connection"] = sync_conn
        command.upgrade(cfg, "heads")

    sqlite = engine.dialect.name == "sqlite"
    if sqlite:
        # SQLite alters a table by rebuilding it (copy, drop, rename): with foreign keys on, dropping a table that
        # other rows reference fails. Off for the migration (it only takes effect outside a transaction), then the
        # whole database is checked before they are on again.
        await _sqlite_foreign_keys(engine, False)
    try:
        async with engine.begin() as conn:
            if engine.dialect.name == "postgresql":
                # several bot processes may start together on one database: one migrates, the others wait for it
                await conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({PG_MIGRATION_LOCK})")
            await conn.run_sync(upgrade)
        if sqlite:
            async with engine.connect() as conn:
                broken = (await conn.exec_driver_sql("PRAGMA foreign_key_check")).all()
            if broken:
                raise RuntimeError(f"migration left {len(broken)} rows whose foreign keys point nowhere "
                                   f"(first: table {broken[0][0]})")
    finally:
        if sqlite:
            await _sqlite_foreign_keys(engine, True)


async def _sqlite_foreign_keys(engine: AsyncEngine, on: bool) -> None:
    async with engine.connect() as conn:
        await conn.exec_driver_sql(f"PRAGMA foreign_keys={'ON' if on else 'OFF'}")
        await conn.commit()
