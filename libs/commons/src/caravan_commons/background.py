"""Background loops that run with a service (Litestar lifespan hooks).

:func:`periodic` runs some work now and then every ``interval`` seconds while the app runs. On
shutdown the loop is asked to stop and the round in progress may finish (up to ``grace`` seconds)
instead of being cancelled mid-query — a cancelled SQLite query leaves aiosqlite's worker thread
answering a closed event loop. A failed round is logged and tried again on the next tick.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable

from loguru import logger


@contextlib.asynccontextmanager
async def periodic(
    name: str, work: Callable[[], Awaitable[object]], *, interval: float, grace: float = 10.0
) -> AsyncIterator[None]:
    """Run ``work`` now and every ``interval`` seconds until the block ends."""
    stop = asyncio.Event()

    async def loop() -> None:
        while not stop.is_set():
            try:
                await work()
            except Exception:  # e.g. the database briefly unavailable: tried again on the next tick
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
