"""The piccolo unit of work: one database transaction that rolls back unless ``commit()`` is called.

On SQLite the transaction starts ``IMMEDIATE`` (the write lock is taken at the start, so two
writers queue behind the busy timeout instead of failing on a stale snapshot); on Postgres it is
a normal READ COMMITTED transaction and the payments' ``version`` check settles races. A
read-only unit (GET requests: one statement each) opens no transaction: its statement runs on one of
commons' SQLite reader connections, or a pooled Postgres connection, on its own.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any, Self

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from caravan_commons.db import Database
from svc_c.infrastructure.repository import PiccoloLedgerRepository, PiccoloPaymentRepository
from svc_c.service_layer.ports import AbstractUnitOfWork


class PiccoloUnitOfWork(AbstractUnitOfWork):
    def __init__(self, db: Database, *, read_only: bool = False) -> None:
        self.db = db
        self.transaction: Any = None
        self._done = False
        self.read_only = read_only

    async def __aenter__(self) -> Self:
        self.payments = PiccoloPaymentRepository()
        self.ledger = PiccoloLedgerRepository()
        if self.read_only:
            self._done = True  # nothing to commit or roll back
            return self
        engine = self.db.engine
        if isinstance(engine, SQLiteEngine):
            self.transaction = engine.transaction(transaction_type=TransactionType.immediate)
        else:
            self.transaction = engine.transaction()
        await self.transaction.__aenter__()
        self._done = False
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.read_only:
            return
        try:
            if not self._done:
                await self.rollback()
        finally:
            await self.transaction.__aexit__(exc_type, exc, tb)

    async def commit(self) -> None:
        await self.transaction.commit()
        self._done = True

    async def rollback(self) -> None:
        if not self._done:
            await self.transaction.rollback()
            self._done = True
