from __future__ import annotations

import pytest

from tests.support import Harness, make_config


@pytest.fixture
def db_url(tmp_path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'bot.db'}"


@pytest.fixture
async def bot(db_url):
    """The whole bot (ping skill, admin1 as global admin) on a virtual clock at 2026-11-23 09:00 Shanghai."""
    async with Harness(make_config(), db_url) as h:
        yield h
