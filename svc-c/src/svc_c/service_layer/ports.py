"""The ports the use cases need: repositories and a unit of work. Infrastructure implements them
(svc_c.infrastructure.repository, svc_c.infrastructure.unit_of_work); unit tests use fakes."""

from __future__ import annotations

import abc

from caravan_commons.money import Money
from caravan_commons.unit_of_work import AbstractUnitOfWork as BaseUnitOfWork
from svc_c.domain.ledger import Account, Entry
from svc_c.domain.model import Payment


class AbstractPaymentRepository(abc.ABC):
    @abc.abstractmethod
    async def add(self, payment: Payment) -> None:
        """Store a new payment and its movements (authorisation hold) in the unit of work."""

    @abc.abstractmethod
    async def get(self, payment_id: str) -> Payment:
        """The payment with its movements; PaymentNotFound when there is none."""

    @abc.abstractmethod
    async def get_by_authorize_key(self, key: str) -> Payment | None:
        """The payment an authorisation with this idempotency key created, if any."""

    @abc.abstractmethod
    async def save(self, payment: Payment) -> None:
        """Write the payment's new state and its new movements; ConflictError when another unit of
        work changed it since it was read (optimistic concurrency on ``version``)."""


class AbstractLedgerRepository(abc.ABC):
    @abc.abstractmethod
    async def balances(self) -> dict[tuple[Account, str], Money]:
        """The balance of every (account, currency), summed from the entries."""

    @abc.abstractmethod
    async def entries_for(self, payment_id: str) -> list[Entry]: ...

    @abc.abstractmethod
    async def totals_by_currency(self) -> dict[str, int]:
        """The sum of all entries per currency: zero for every currency when the ledger balances."""


class AbstractUnitOfWork(BaseUnitOfWork):
    """One transaction: everything done through ``payments`` and ``ledger`` inside ``async with``
    commits together on ``commit()`` and is rolled back otherwise."""

    payments: AbstractPaymentRepository
    ledger: AbstractLedgerRepository
