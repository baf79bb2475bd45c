"""Run a Caravan app under granian, with graceful shutdown, from a service's entry point.

:func:`run_service` is the whole ``main()`` of a service::

    def main() -> None:
        run_service(create_catalog_app, CatalogSettings)

It reads the settings once (a bad variable prints one line and exits 2), configures JSON logging,
builds the app and serves it with granian's embedded server on ``settings.host:settings.port``
(loopback by default), on uvloop. On SIGTERM or SIGINT the server stops accepting connections, lets in-flight
requests finish (for at most ``settings.shutdown_timeout_s``), runs the app's shutdown hooks
(flushing traces) and returns.
"""

from __future__ import annotations

import asyncio
import gc
import signal
from collections.abc import Callable, Mapping
from typing import TypeVar

import uvloop
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from litestar import Litestar
from loguru import logger

from caravan_commons.logging import configure_logging
from caravan_commons.settings import ServiceSettings, load_settings_or_exit

S = TypeVar("S", bound=ServiceSettings)

# granian logs through the standard logging module; send its records to the root logger (which
# configure_logging points at loguru) instead of granian's own stdout handlers.
_GRANIAN_LOGGING = {
    "loggers": {
        "_granian": {"handlers": [], "level": "INFO", "propagate": True},
        "granian.access": {"handlers": [], "level": "INFO", "propagate": True},
    }
}


async def serve_app(app: Litestar, settings: ServiceSettings) -> None:
    """Serve ``app`` until SIGTERM/SIGINT, then drain in-flight requests and shut down."""
    server = Server(
        app,
        address=settings.host,
        port=settings.port,
        interface=Interfaces.ASGI,
        log_level=LogLevels.warning,
        log_dictconfig=_GRANIAN_LOGGING,
        backlog=1024,
    )
    server.workers_kill_timeout = max(1, round(settings.shutdown_timeout_s))
    # Everything built so far (modules, the app, its routes) lives as long as the process: keep it
    # out of the cyclic collector's reach so full collections stay short under load.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()

    def stop(signum: int) -> None:
        logger.info("received {}: draining in-flight requests", signal.Signals(signum).name)
        server.stop()

    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop, signum)
    logger.info("serving {} {} on http://{}:{}", settings.service_name, settings.service_version,
                settings.host, settings.port)  # fmt: skip
    try:
        await server.serve()
    except TimeoutError:
        logger.error("requests still running after {}s: stopped anyway", settings.shutdown_timeout_s)
    finally:
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    logger.info("stopped")


def serve(app_factory: Callable[[S], Litestar], settings: S) -> None:
    """Build the app with ``app_factory(settings)`` and serve it (blocking) until SIGTERM, on
    uvloop's event loop (libuv: cheaper sockets and callbacks than asyncio's own loop)."""
    app = app_factory(settings)
    uvloop.run(serve_app(app, settings))


def run_service(
    app_factory: Callable[[S], Litestar],
    settings_cls: type[S],
    *,
    environ: Mapping[str, str] | None = None,
    prefix: str = "CARAVAN_",
) -> None:
    """A service's ``main()``: settings from the environment, JSON logging, then :func:`serve`."""
    settings = load_settings_or_exit(settings_cls, environ, prefix, program=settings_cls.__name__)
    configure_logging(settings)
    serve(app_factory, settings)


__all__ = ["run_service", "serve", "serve_app"]
