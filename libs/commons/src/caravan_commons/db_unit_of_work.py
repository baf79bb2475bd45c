"""The unit of work on a commons :class:`~caravan_commons.db.Database`: one transaction that rolls
back unless :meth:`commit` is called — the one implementation every service's piccolo unit of
work builds on (SQLite and Postgres alike).

On SQLite the transaction takes commons' one writer connection up front (``BEGIN IMMEDIATE``:
writers queue instead of deadlocking on a lock upgrade); on Postgres it is a READ COMMITTED
transaction. A read-only unit (``read_only=True``, e.g. for GET requests whose reads are one
statement each) opens no transaction at all: each statement runs on one of commons' SQLite reader
connections, or on a pooled Postgres connection, on its own.

A service subclasses it and creates its repositories in :meth:`open_repositories`::

    class PiccoloUnitOfWork(DatabaseUnitOfWork, AbstractUnitOfWork):
        def open_repositories(self) -> None:
            self.payments = PiccoloPaymentRepository()
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Any, Self

from caravan_commons.db import Database
from caravan_commons.unit_of_work import AbstractUnitOfWork


class DatabaseUnitOfWork(AbstractUnitOfWork):
    def __init__(self, database: Database, *, read_only: bool = False) -> None:
        self.database = database
        #: a unit that only reads: no transaction, no write lock, no row locks
        self.read_only = read_only
        self._transaction: Any = None
        self._pending = False  # the transaction is open and neither committed nor rolled back

    @abc.abstractmethod
    def open_repositories(self) -> None:
        """Create this unit's repositories (called as the unit opens)."""

    async def __aenter__(self) -> Self:
        self.open_repositories()
        if not self.read_only:
            transaction = self.database.write_transaction(allow_nested=False)
            self._transaction = await transaction.__aenter__()
            self._pending = True
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        transaction, self._transaction = self._transaction, None
        if transaction is None:
            return
        try:
            if self._pending:  # never let piccolo commit what the use case did not
                await transaction.rollback()
        finally:
            self._pending = False
            await transaction.__aexit__(exc_type, exc, tb)

    @property
    def transaction(self) -> Any:
        """The open transaction (for work that must commit with this unit); only inside ``async with``
        of a unit that writes."""
        if self._transaction is None:
            raise RuntimeError("the unit of work has no open transaction")
        return self._transaction

    async def commit(self) -> None:
        await self.transaction.commit()
        self._pending = False

    async def rollback(self) -> None:
        if self._pending:
            self._pending = False
            await self._transaction.rollback()


__all__ = ["DatabaseUnitOfWork"]
