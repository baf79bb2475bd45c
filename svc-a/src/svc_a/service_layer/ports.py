"""Ports of Catalog's use cases: repositories and the unit of work. Infrastructure implements
them (piccolo); unit tests use small in-memory fakes."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime

from caravan_commons.unit_of_work import AbstractUnitOfWork as BaseUnitOfWork
from svc_a.domain.model import Product, Stock
from svc_a.domain.reservation import Reservation


class AbstractProductRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, product: Product) -> None:
        """Insert a new product; :class:`DuplicateProduct` if the sku exists."""

    @abc.abstractmethod
    async def get(self, sku: str) -> Product | None: ...

    @abc.abstractmethod
    async def update(self, product: Product) -> None: ...

    @abc.abstractmethod
    async def list(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        active: bool | None = None,
        skus: Sequence[str] | None = None,
        hidden_prefix: str | None = None,
    ) -> list[Product]:
        """Products ordered by sku, those after ``after`` (a cursor), at most ``limit``; only
        ``active`` ones (or inactive ones) when given, only ``skus`` when given, and none whose
        sku starts with ``hidden_prefix`` when given."""


class AbstractStockRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, stock: Stock) -> None: ...

    @abc.abstractmethod
    async def get(self, sku: str) -> Stock | None: ...

    @abc.abstractmethod
    async def get_for_update(self, skus: Sequence[str]) -> dict[str, Stock]:
        """The stocks of ``skus`` (those that exist), locked until the unit of work ends."""

    @abc.abstractmethod
    async def save(self, stock: Stock) -> None:
        """Write a changed stock; :class:`ConcurrentUpdate` if someone else changed it since it was read."""


class AbstractReservationRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, reservation: Reservation) -> None:
        """Insert; :class:`ReservationConflict` if the order already has one."""

    @abc.abstractmethod
    async def get(self, order_id: str) -> Reservation | None: ...

    @abc.abstractmethod
    async def save(self, reservation: Reservation) -> None: ...

    @abc.abstractmethod
    async def expired(self, now: datetime, *, limit: int = 100) -> list[Reservation]:
        """Held reservations whose expiry is at or before ``now``."""


class AbstractUnitOfWork(BaseUnitOfWork):
    """``async with uow:`` opens a transaction that rolls back unless :meth:`commit` is called."""

    products: AbstractProductRepository
    stocks: AbstractStockRepository
    reservations: AbstractReservationRepository
