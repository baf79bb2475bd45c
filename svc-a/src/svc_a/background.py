"""Background loops that run with the app (Litestar lifespan hooks): the reservation sweeper and
the Idempotency-Key sweeper.

On shutdown a loop is asked to stop and its current round is awaited (up to ``grace`` seconds)
instead of being cancelled mid-query: a cancelled SQLite query leaves aiosqlite's worker thread
answering a closed event loop.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from loguru import logger

from svc_a.service_layer import handlers
from svc_a.service_layer.ports import AbstractUnitOfWork


@contextlib.asynccontextmanager
async def periodic(
    name: str, work: Callable[[], Awaitable[object]], *, interval: float, grace: float = 10.0
) -> AsyncIterator[None]:
    """Run ``work`` now and then every ``interval`` seconds until the block ends; a failed round
    is logged and retried on the next tick."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await work()
            except Exception:  # e.g. migrations not applied yet: retried on the next tick
                logger.exception("{} failed", name)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval)

    task = asyncio.create_task(loop(), name=name)
    try:
        yield
    finally:
        stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(task), grace)
        except TimeoutError:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


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


def idempotency_sweeper(
    _app: object = None, *, sweep: Callable[[], Awaitable[int]], interval: float
) -> contextlib.AbstractAsyncContextManager[None]:
    """Every ``interval`` seconds, delete expired Idempotency-Key records (commons' store)."""
    return periodic("idempotency sweep", sweep, interval=interval)
