"""Command-line subcommands contributed by skills (``python -m bot orders import ...``): what they are given."""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bot.config import Config

if TYPE_CHECKING:
    from bot.context import Services


@dataclass
class CliContext:
    args: argparse.Namespace
    config: Config
    db_url: str | None  # --db, when given: overrides the config's storage.url

    @asynccontextmanager
    async def services(self) -> AsyncIterator[Services]:
        """The bot's storage and skills, started without the scheduler run, the HTTP server or a transport: what a
        tool writes (jobs, say) is run by the bot process. Sending is refused."""
        from bot.app import BotApp
        from bot.clock import RealClock

        async def refuse(message) -> None:
            raise RuntimeError("command-line tools send nothing")

        app = BotApp(self.config, RealClock(self.config.tz), refuse, db_url=self.db_url)
        await app.start(serve=False)
        try:
            yield app.services
        finally:
            await app.stop()
