"""The background loops: a round in progress at shutdown finishes (it is not cancelled mid-query),
a failed round is retried on the next tick, and a stuck round is cancelled after the grace."""

from __future__ import annotations

import asyncio

from caravan_commons.background import periodic


def test_a_round_in_progress_finishes_at_shutdown() -> None:
    finished: list[str] = []
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        await asyncio.sleep(0.05)
        finished.append("round")

    async def main() -> None:
        async with periodic("test", work, interval=3600):
            await started.wait()  # shut down while the first round runs

    asyncio.run(main())
    assert finished == ["round"]


def test_a_failed_round_is_retried_on_the_next_tick() -> None:
    calls: list[int] = []
    enough = asyncio.Event()

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) >= 3:
            enough.set()
        raise RuntimeError("database not migrated yet")

    async def main() -> None:
        async with periodic("test", work, interval=0.01):
            await asyncio.wait_for(enough.wait(), 30)

    asyncio.run(main())
    assert len(calls) >= 3


def test_a_stuck_round_is_cancelled_after_the_grace() -> None:
    cancelled: list[bool] = []
    started = asyncio.Event()

    async def work() -> None:
        started.set()
        try:
            await asyncio.Event().wait()  # never finishes
        except asyncio.CancelledError:
            cancelled.append(True)
            raise

    async def main() -> None:
        async with periodic("test", work, interval=3600, grace=0.05):
            await started.wait()

    asyncio.run(main())
    assert cancelled == [True]
