"""The reservation sweeper, run with the app (a Litestar lifespan hook): commons' graceful periodic
loop (caravan_commons.background.periodic). The Idempotency-Key sweeper is commons' own."""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from loguru import logger

from caravan_commons.background import periodic
from svc_a.service_layer import handlers
from svc_a.service_layer.ports import AbstractUnitOfWork


def reservation_sweeper(
    _app: object = None,
    *,
    uow_factory: Callable[[], AbstractUnitOfWork],
    interval: float,
    clock: handlers.Clock = handlers.utc_now,
) -> contextlib.AbstractAsyncContextManager[None]:
    """Every ``interval`` seconds, release the held reservations past their expiry."""

    async def sweep() -> None:
        released = await handlers.sweep_expired(uow_factory, clock=clock)
        if released:
            logger.info("released {} expired reservation(s)", released)

    return periodic("reservation sweep", sweep, interval=interval)
