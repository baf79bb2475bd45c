"""Ports of Catalog's use cases: repositories and the unit of work. Infrastructure implements
them (piccolo); unit tests use small in-memory fakes."""

from __future__ import annotations

import abc
import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from caravan_commons.unit_of_work import AbstractUnitOfWork as BaseUnitOfWork
from svc_a.domain.model import Product, Stock
from svc_a.domain.reservation import Line, Reservation, Status


class Move(enum.Enum):
    """What a reservation's transition does to the stock of each of its lines (a :class:`Stock`
    method of that name; the repository does it in one conditional statement)."""

    HOLD = "hold"  # needs: enough available, and the product active
    UNHOLD = "unhold"  # needs: that many reserved
    SHIP = "ship"  # needs: that many reserved
    TAKE_BACK = "take_back"  # needs: room below the on-hand ceiling


@dataclass(frozen=True, slots=True)
class KeyClaim:
    """An Idempotency-Key kept on the reservation it created: the key's id (caller-scoped digest,
    :func:`caravan_commons.idempotency.key_id`) and the request's fingerprint."""

    key_id: str
    fingerprint: str


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

    @abc.abstractmethod
    async def move(self, lines: Sequence[Line], move: Move) -> list[str]:
        """Apply ``move`` to the stock of every line whose stock allows it, in one step without
        reading first; the skus it could not move (unknown, short, off sale). The caller rolls
        the unit of work back when any is left: all or nothing."""


class AbstractReservationRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, reservation: Reservation) -> None:
        """Insert; :class:`ReservationConflict` if the order already has one."""

    @abc.abstractmethod
    async def get(self, order_id: str) -> Reservation | None: ...

    @abc.abstractmethod
    async def save(self, reservation: Reservation) -> None: ...

    @abc.abstractmethod
    async def add_if_absent(self, reservation: Reservation, key: KeyClaim | None = None) -> bool:
        """Insert unless the order (or ``key``) already has a reservation; whether it did."""

    @abc.abstractmethod
    async def by_key(self, key_id: str) -> tuple[Reservation, str] | None:
        """The reservation an Idempotency-Key created, with that request's fingerprint."""

    @abc.abstractmethod
    async def transition(
        self, order_id: str, was: Status, becomes: Status, *, live_at: datetime | None = None
    ) -> Reservation | None:
        """Change the status from ``was`` to ``becomes`` (and only if it is not expired at
        ``live_at``, when given); the changed reservation, or None when it was not so."""

    @abc.abstractmethod
    async def expired(self, now: datetime, *, limit: int = 100) -> list[Reservation]:
        """Held reservations whose expiry is at or before ``now``."""


class AbstractUnitOfWork(BaseUnitOfWork):
    """``async with uow:`` opens a transaction that rolls back unless :meth:`commit` is called."""

    products: AbstractProductRepository
    stocks: AbstractStockRepository
    reservations: AbstractReservationRepository
