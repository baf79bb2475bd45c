"""Serve the console with granian on loopback until Ctrl-C or SIGTERM."""

from __future__ import annotations

import asyncio
import signal

from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server

from caravan_workspace.console_web.app import create_app
from caravan_workspace.console_web.settings import LOOPBACK, ConsoleSettings


async def _serve(settings: ConsoleSettings) -> None:
    if settings.host != LOOPBACK:
        raise ValueError(f"the console binds loopback only ({LOOPBACK}), not {settings.host}")
    server = Server(
        create_app(settings), address=settings.host, port=settings.port, interface=Interfaces.ASGI,
        log_level=LogLevels.warning,
    )  # fmt: skip
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, server.stop)
    await server.serve()


def serve(settings: ConsoleSettings) -> None:
    """Blocks until the console is stopped."""
    asyncio.run(_serve(settings))
