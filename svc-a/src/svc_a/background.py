"""Background loops that run with the app (Litestar lifespan hooks): the reservation sweeper."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from loguru import logger

from svc_a.service_layer import handlers
from svc_a.service_layer.ports import AbstractUnitOfWork


@contextlib.asynccontextmanager
async def reservation_sweeper(
    _app: object = None,
    *,
    uow_factory: Callable[[], AbstractUnitOfWork],
    interval: float,
    clock: handlers.Clock = handlers.utc_now,
) -> AsyncIterator[None]:
    """Every ``interval`` seconds, release the held reservations past their expiry."""

    async def loop() -> None:
        while True:
            try:
                released = await handlers.sweep_expired(uow_factory, clock=clock)
                if released:
                    logger.info("released {} expired reservation(s)", released)
            except Exception:  # retried on the next tick (e.g. migrations not applied yet)
                logger.exception("reservation sweep failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop(), name="svc-a-reservation-sweeper")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
