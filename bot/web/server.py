"""The bot's aiohttp server: a health check plus web modules mounted at start.

Each module in ``WEB_MODULES`` exposes ``setup(app: aiohttp.web.Application, services) -> None`` and adds its
routes; handlers call storage/ or skill-level plain functions, never the transport. Started by
``python -m bot run`` (and by ``BotApp`` when asked) on ``[http] host``/``port`` (default 127.0.0.1:8080).
"""

from __future__ import annotations

import importlib
import logging
from typing import TYPE_CHECKING

from aiohttp import web

from bot.config import HttpSettings

if TYPE_CHECKING:
    from bot.context import Services

log = logging.getLogger(__name__)

# Mounted in this order.
WEB_MODULES: list[str] = ["bot.web.orders_api", "bot.web.dashboard"]

SERVICES = web.AppKey("services", object)


async def health(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def build_app(services: Services, settings: HttpSettings, modules: list[str] | None = None) -> web.Application:
    app = web.Application(client_max_size=settings.max_body_bytes)
    app[SERVICES] = services
    app.router.add_get("/health", health)
    for name in WEB_MODULES if modules is None else modules:
        importlib.import_module(name).setup(app, services)
    return app


class WebServer:
    def __init__(self, services: Services, settings: HttpSettings, modules: list[str] | None = None) -> None:
        self.settings = settings
        self.app = build_app(services, settings, modules)
        self._runner: web.AppRunner | None = None
        self.port: int | None = None  # the bound port (useful with port = 0)

    async def start(self) -> None:
        # the access log line has method, path, status and size: never headers, so tokens stay out of the log
        self._runner = web.AppRunner(self.app, access_log=logging.getLogger("bot.web.access"))
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
        await site.start()
        addresses = self._runner.addresses
        self.port = addresses[0][1] if addresses else self.settings.port
        log.info("HTTP server on http://%s:%s (health: /health)", self.settings.host, self.port)

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
