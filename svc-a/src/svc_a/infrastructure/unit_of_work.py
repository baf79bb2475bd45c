"""svc-a's unit of work on commons' database unit of work (one transaction, rolled back unless
``commit()`` is called; none at all for a read-only unit). On Postgres the rows a reservation
changes are locked by its conditional ``UPDATE`` statements (and stock read for the sweeper or a
restock ``FOR UPDATE``); SQLite serialises writers instead."""

from __future__ import annotations

from caravan_commons.db_unit_of_work import DatabaseUnitOfWork
from svc_a.infrastructure.repository import (
    PiccoloProductRepository,
    PiccoloReservationRepository,
    PiccoloStockRepository,
)
from svc_a.service_layer.ports import AbstractUnitOfWork


class PiccoloUnitOfWork(DatabaseUnitOfWork, AbstractUnitOfWork):
    def open_repositories(self) -> None:
        self.products = PiccoloProductRepository()
        self.stocks = PiccoloStockRepository(lock_rows=self.database.is_postgres and not self.read_only)
        self.reservations = PiccoloReservationRepository()
