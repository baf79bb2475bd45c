"""The piccolo unit of work: one database transaction that rolls back unless ``commit()`` is called.

On SQLite the transaction takes commons' one writer connection up front (writers queue in memory
instead of deadlocking on a lock upgrade); on Postgres the rows a reservation changes are locked by
its conditional ``UPDATE`` statements (and stock read for the sweeper or a restock ``FOR UPDATE``).
A read-only unit (GET requests, one statement each) opens no transaction at all: its statement runs
on one of commons' SQLite reader connections, or on a pooled Postgres connection, on its own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from caravan_commons.db import Database
from svc_a.infrastructure.repository import (
    PiccoloProductRepository,
    PiccoloReservationRepository,
    PiccoloStockRepository,
)
from svc_a.service_layer.ports import AbstractUnitOfWork


class PiccoloUnitOfWork(AbstractUnitOfWork):
    def __init__(self, database: Database, *, read_only: bool = False) -> None:
        self._db = database
        self._transaction: Any = None
        #: a unit that only reads (GET): a reader's snapshot, no write lock, no row locks
        self.read_only = read_only

    async def __aenter__(self) -> Self:
        engine = self._db.engine
        self.products = PiccoloProductRepository()
        self.stocks = PiccoloStockRepository(lock_rows=self._db.is_postgres and not self.read_only)
        self.reservations = PiccoloReservationRepository()
        if self.read_only:
            return self  # each read is one statement: no BEGIN/COMMIT round trips
        if isinstance(engine, SQLiteEngine):
            transaction = engine.transaction(transaction_type=TransactionType.immediate, allow_nested=False)
        else:
            transaction = engine.transaction(allow_nested=False)
        self._transaction = await transaction.__aenter__()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return
        try:
            if not (transaction._committed or transaction._rolled_back):
                await transaction.rollback()
        finally:
            await transaction.__aexit__(exc_type, exc, tb)

    @property
    def transaction(self) -> Any:
        """The open piccolo transaction (for work that must commit with this unit, e.g. an
        Idempotency-Key record); only inside ``async with``."""
        if self._transaction is None:
            raise RuntimeError("the unit of work is not open")
        return self._transaction

    async def commit(self) -> None:
        await self._transaction.commit()

    async def rollback(self) -> None:
        if self._transaction is not None and not (
            self._transaction._committed or self._transaction._rolled_back
        ):
            await self._transaction.rollback()
