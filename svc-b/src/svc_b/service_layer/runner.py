"""The durable saga runner: drives orders concurrently, and a sweeper that resumes any order whose
runner died.

Every unfinished order carries a lease — ``lease_owner`` and ``next_attempt_at``, written with the
order by each saga transition (:meth:`Saga._hold`):

- while a runner drives an order, the runner holds it until ``next_attempt_at`` (``lease``, 3 s
  by default, from its last write); the runner renews the leases of every order it drives once per
  sweep (one statement), so a call or a backoff that takes longer keeps the order;
- an order that must wait (an upstream down past its deadline while committing, capturing or
  compensating) is nobody's and due at ``next_attempt_at``;
- a final order is nobody's and never due.

:meth:`OrderRunner.sweep_once` (every ``interval``, 1 s by default) renews, then **claims** due
orders — ``next_attempt_at`` passed: a waiting order's time came, or a dead runner's lease
expired — in one statement (Postgres ``FOR UPDATE SKIP LOCKED``; SQLite's single writer makes the
conditional UPDATE enough) that also bumps their version, and drives each. A crashed instance's
orders are thus resumed within ``lease`` + ``interval`` (≤ 4 s by default); several instances share
the due orders without ever claiming one twice, and a stale holder's next write fails the version
check, so no step's result is written twice (every call is idempotent per key anyway).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from loguru import logger

from caravan_commons.deadline import use_deadline
from caravan_commons.errors import ConflictError
from svc_b.domain.model import Order
from svc_b.service_layer.saga import Saga
from svc_b.service_layer.unit_of_work import SagaProgress


@dataclass(slots=True)
class SweepReport:
    claimed: list[str] = field(default_factory=list)  # due orders this sweep took over
    renewed: int = 0  # leases extended of orders this runner drives


class OrderRunner:
    """Drives orders of one svc-b instance (its ``saga.owner`` names the leases it holds)."""

    def __init__(
        self, saga: Saga, *, resume_within: timedelta = timedelta(minutes=15), batch: int = 100
    ) -> None:
        self.saga = saga
        self.resume_within = resume_within
        self.batch = batch
        self.tasks: dict[str, asyncio.Task[Order]] = {}
        self.finished: dict[str, str] = {}  # order id → status it was left in (the last 1000)
        self.failed: dict[str, str] = {}  # order id → the unexpected error (retried when due)
        self.sweeps = 0

    @property
    def owner(self) -> str:
        return self.saga.owner

    # ------------------------------------------------------------------------ driving

    def drive(self, order: Order, progress: SagaProgress) -> asyncio.Task[Order]:
        """Run an order this runner holds (just placed) in the background; await the task for
        its result. The task runs outside any request's deadline: the saga's own bound it."""
        return self._spawn(order.id, self.saga.run(order, progress))

    def _spawn(self, order_id: str, work: Awaitable[Order]) -> asyncio.Task[Order]:
        async def detached() -> Order:
            with use_deadline(None):
                return await work

        task = asyncio.create_task(detached(), name=f"order {order_id}")
        self.tasks[order_id] = task
        task.add_done_callback(lambda done: self._done(order_id, done))
        return task

    def _done(self, order_id: str, task: asyncio.Task[Order]) -> None:
        if self.tasks.get(order_id) is task:
            del self.tasks[order_id]
        if task.cancelled():
            return
        error = task.exception()  # retrieved here, whether or not anyone awaits the task
        if error is None:
            self.failed.pop(order_id, None)
            self.finished[order_id] = task.result().status.value
            while len(self.finished) > 1000:
                del self.finished[next(iter(self.finished))]
        elif isinstance(error, ConflictError):  # another runner claimed it meanwhile: its turn
            logger.debug("order {}: taken over by another runner ({})", order_id, error)
        else:  # its lease runs out and a sweep (this one's or another's) retries it
            self.failed[order_id] = f"{type(error).__name__}: {error}"
            logger.warning("order {} could not move on: {}", order_id, self.failed[order_id])

    # ---------------------------------------------------------------------- sweeping

    async def sweep_once(self, now: datetime | None = None) -> SweepReport:
        """Renew the leases of the orders this runner drives, claim due orders and drive them."""
        now = self.saga.clock() if now is None else now
        until = now + self.saga.lease
        report = SweepReport()
        async with self.saga.uow() as uow:
            if self.tasks:
                report.renewed = await uow.orders.renew(self.owner, list(self.tasks), until=until)
            room = self.batch - len(self.tasks)
            if room > 0:
                report.claimed = await uow.orders.claim_due(self.owner, now=now, until=until, limit=room)
        for order_id in report.claimed:
            if order_id not in self.tasks:
                self._spawn(order_id, self.saga.resume(order_id, now=now, resume_within=self.resume_within))
        self.sweeps += 1
        if report.claimed:
            logger.info("order sweeper: resumed {} due order(s)", len(report.claimed))
        return report

    async def idle(self) -> None:
        """Wait until every order this runner drives has stopped (final or waiting)."""
        while self.tasks:
            await asyncio.wait(list(self.tasks.values()))

    async def stop(self, grace: float) -> None:
        """Shutdown: let running orders finish for up to ``grace`` seconds, then cancel the rest
        (their leases run out and another instance, or this one restarted, resumes them)."""
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()), timeout=grace)
        for task in list(self.tasks.values()):
            task.cancel()
        if self.tasks:
            await asyncio.wait(list(self.tasks.values()))
