"""The unit-of-work port every service's service layer builds on (cosmicpython's pattern).

``async with uow:`` opens the unit; leaving the block rolls back whatever was not committed, so a
use case changes nothing unless it calls :meth:`commit` explicitly. A service subclasses it in
its service layer, declaring its repositories as attributes; infrastructure implements it on the
database, unit tests on fakes. Pure Python.
"""

from __future__ import annotations

import abc
from types import TracebackType
from typing import Self


class AbstractUnitOfWork(abc.ABC):
    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()

    @abc.abstractmethod
    async def commit(self) -> None:
        """Make everything done in this unit durable, atomically."""

    @abc.abstractmethod
    async def rollback(self) -> None:
        """Undo everything not committed (a no-op after commit)."""
