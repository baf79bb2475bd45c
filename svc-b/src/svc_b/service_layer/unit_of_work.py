"""Repository and unit-of-work ports. The unit of work rolls back unless ``commit()`` is called;
the order and its saga step log are written in one transaction."""

from __future__ import annotations

import abc
import enum
from dataclasses import dataclass
from datetime import datetime

from caravan_commons.unit_of_work import AbstractUnitOfWork as BaseUnitOfWork
from svc_b.domain.model import Order


class StepOutcome(enum.StrEnum):
    STARTED = "started"
    DONE = "done"
    FAILED = "failed"


@dataclass(frozen=True, slots=True)
class SagaStep:
    order_id: str
    seq: int
    step: str
    outcome: StepOutcome
    detail: str = ""


class AbstractOrderRepository(abc.ABC):
    @abc.abstractmethod
    def add(self, order: Order, created_at: datetime) -> None: ...

    @abc.abstractmethod
    async def get(self, order_id: str) -> Order | None: ...

    @abc.abstractmethod
    async def unfinished(self, limit: int = 100) -> list[tuple[Order, datetime]]:
        """Orders not yet confirmed or cancelled, oldest first, with when they were placed."""

    @abc.abstractmethod
    async def list_for_customer(self, customer_id: str, *, limit: int, offset: int) -> list[Order]: ...

    @abc.abstractmethod
    async def page_for_customer(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        """The customer's orders, newest first (by placing time, then id, both descending),
        starting after the ``(placed_at, id)`` of the previous page's last order."""


class AbstractSagaLog(abc.ABC):
    @abc.abstractmethod
    def record(self, order_id: str, step: str, outcome: StepOutcome, detail: str = "") -> None: ...

    @abc.abstractmethod
    async def steps(self, order_id: str) -> list[SagaStep]: ...


class AbstractUnitOfWork(BaseUnitOfWork):
    orders: AbstractOrderRepository
    saga: AbstractSagaLog

    @abc.abstractmethod
    async def commit(self) -> None:
        """Write everything added, changed and recorded, atomically; ``ConflictError`` when an
        order changed since it was read (optimistic concurrency)."""
