"""Run a Caravan app under granian, with graceful shutdown, from a service's entry point.

:func:`run_service` is the whole ``main()`` of a service::

    def main() -> None:
        run_service(create_catalog_app, CatalogSettings)

It reads the settings once (a bad variable prints one line and exits 2), configures JSON logging,
builds the app and serves it with granian's embedded server on ``settings.host:settings.port``
(loopback by default), on uvloop. On SIGTERM or SIGINT the server stops accepting connections, lets in-flight
requests finish (for at most ``settings.shutdown_timeout_s``), runs the app's shutdown hooks
(flushing traces) and returns.

Once it has stopped, nothing left behind keeps the process alive: a request cancelled in the
middle of a SQLite transaction (a deadline, a client gone) can leave its aiosqlite connection
unreachable but not yet collected, and that connection's worker thread — not a daemon — would
hold the interpreter's exit until the supervisor kills the process at the end of its drain.
:func:`serve` collects such garbage (aiosqlite stops a collected connection's thread), gives any
other thread a moment, and exits without it, naming it in the log.
"""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import TypeVar

import uvloop
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.server.embed import Server
from litestar import Litestar
from loguru import logger

from caravan_commons.log_sink import flush_logs
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


#: How long threads still running after the app stopped get to finish before the process exits.
LEFTOVER_THREAD_GRACE_S = 2.0


def serve(app_factory: Callable[[S], Litestar], settings: S) -> None:
    """Build the app with ``app_factory(settings)`` and serve it (blocking) until SIGTERM, on
    uvloop's event loop (libuv: cheaper sockets and callbacks than asyncio's own loop)."""
    app = app_factory(settings)
    uvloop.run(serve_app(app, settings))
    flush_logs()  # the access log's last lines, written before anything else can go wrong
    leave_no_thread_behind()


def leave_no_thread_behind(grace: float = LEFTOVER_THREAD_GRACE_S) -> None:
    """After the app stopped: collect what cancelled work left unreachable (an aiosqlite connection's
    finaliser stops its worker thread), wait up to ``grace`` for other threads, and if one is still
    running, name it in the log and exit now instead of waiting for it."""
    gc.unfreeze()  # serve_app froze the start-up objects out of the collector's reach
    gc.collect()
    deadline = time.monotonic() + grace
    for thread in _leftover_threads():
        thread.join(max(0.0, deadline - time.monotonic()))
    left = _leftover_threads()
    if left:
        names = ", ".join(sorted(t.name for t in left))
        logger.warning("threads still running after the app stopped: {}; exiting without them", names)
        logger.complete()
        flush_logs()  # os._exit skips loguru's atexit hook
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(0)


def _leftover_threads() -> list[threading.Thread]:
    main = threading.main_thread()
    return [t for t in threading.enumerate() if t is not main and not t.daemon and t.is_alive()]


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


__all__ = ["leave_no_thread_behind", "run_service", "serve", "serve_app"]
