"""Repository and unit-of-work ports. The unit of work rolls back unless ``commit()`` is called.

The saga's progress (:class:`SagaProgress`: the step it is at, whether that step's call is still
awaiting its answer, every step ever started) is stored on the order's own row, so one write — a
compare-and-set on the order's version — persists "step k done, step k+1 started" together with
the order's new state.
"""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from caravan_commons.unit_of_work import AbstractUnitOfWork as BaseUnitOfWork
from svc_b.domain.model import Order


class StepOutcome(enum.StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@dataclass(slots=True)
class SagaProgress:
    """Where an order's saga stands: the last step noted and its outcome (``started`` = a call is
    awaiting its answer, or its worker died), the detail of a failure, and every step ever
    started (compensation undoes a started step whose answer was lost)."""

    step: str = ""
    outcome: StepOutcome = StepOutcome.DONE
    started: tuple[str, ...] = ()
    detail: str = ""
    #: when the order is next due for a runner (None: at once, or never once final) and which
    #: runner holds its lease meanwhile (None: nobody — it waits, or it is final)
    next_attempt_at: datetime | None = None
    lease_owner: str | None = None

    def note(self, step: str, outcome: StepOutcome, detail: str = "") -> None:
        self.step, self.outcome, self.detail = step, outcome, detail[:2000]
        if outcome is StepOutcome.STARTED and step not in self.started:
            self.started = (*self.started, step)

    @property
    def calling(self) -> bool:
        return self.outcome is StepOutcome.STARTED


class AbstractOrderRepository(abc.ABC):
    """Reads at once; writes are collected here and made by the unit of work's ``commit``."""

    def __init__(self) -> None:
        self.added: dict[str, tuple[Order, datetime, SagaProgress]] = {}
        self.saved: dict[str, tuple[Order, SagaProgress]] = {}

    def add(self, order: Order, created_at: datetime, progress: SagaProgress) -> None:
        """Insert at commit (``ConflictError`` when the id exists)."""
        self.added[order.id] = (order, created_at, progress)

    def save(self, order: Order, progress: SagaProgress) -> None:
        """Write an order held in memory at commit, only if its stored version is still
        ``order.version`` (``ConflictError`` otherwise); the commit then bumps ``order.version``."""
        self.saved[order.id] = (order, progress)

    def forget(self) -> None:
        """Drop the collected writes (after a commit or a rollback)."""
        self.added.clear()
        self.saved.clear()

    @abc.abstractmethod
    async def load(self, order_id: str) -> tuple[Order, SagaProgress] | None: ...

    async def get(self, order_id: str) -> Order | None:
        loaded = await self.load(order_id)
        return None if loaded is None else loaded[0]

    @abc.abstractmethod
    async def unfinished(self, limit: int = 100) -> list[tuple[Order, datetime]]:
        """Orders not yet confirmed or cancelled, oldest first, with when they were placed."""

    @abc.abstractmethod
    async def claim_due(self, owner: str, *, now: datetime, until: datetime, limit: int) -> list[str]:
        """Claim up to ``limit`` unfinished orders due at ``now`` (``next_attempt_at`` passed or
        unset) for ``owner`` until ``until``, at once (one statement; orders another worker is
        claiming at the same moment are skipped, never claimed twice). Claiming bumps each order's
        version, so a stale holder's next write fails. Returns the claimed ids."""

    @abc.abstractmethod
    async def renew(self, owner: str, order_ids: Sequence[str], *, until: datetime) -> int:
        """Extend ``owner``'s lease on those of ``order_ids`` it still holds (one statement; the
        version is left alone); how many."""

    @abc.abstractmethod
    async def list_for_customer(self, customer_id: str, *, limit: int, offset: int) -> list[Order]: ...

    @abc.abstractmethod
    async def page_for_customer(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        """The customer's orders, newest first (by placing time, then id, both descending),
        starting after the ``(placed_at, id)`` of the previous page's last order."""


class AbstractUnitOfWork(BaseUnitOfWork):
    orders: AbstractOrderRepository

    @abc.abstractmethod
    async def commit(self) -> None:
        """Write everything added and saved, atomically; ``ConflictError`` when an order changed
        since it was read (optimistic concurrency) or an added id exists."""
