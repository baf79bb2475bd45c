"""svc-c's unit of work on commons' database unit of work (one transaction, rolled back unless
``commit()`` is called; none at all for a read-only unit). On Postgres the payments' ``version``
check settles races; SQLite serialises writers."""

from __future__ import annotations

from caravan_commons.db_unit_of_work import DatabaseUnitOfWork
from svc_c.infrastructure.repository import PiccoloLedgerRepository, PiccoloPaymentRepository
from svc_c.service_layer.ports import AbstractUnitOfWork


class PiccoloUnitOfWork(DatabaseUnitOfWork, AbstractUnitOfWork):
    def open_repositories(self) -> None:
        self.payments = PiccoloPaymentRepository()
        self.ledger = PiccoloLedgerRepository()
