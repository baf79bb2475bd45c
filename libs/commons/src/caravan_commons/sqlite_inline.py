"""An aiosqlite-shaped SQLite connection that runs each statement on the event loop's own thread.

aiosqlite runs every call on a thread of its own connection and hands the result back through the
event loop: a queue put, a thread switch, a ``call_soon_threadsafe`` and a wake-up of the loop per
statement (``BEGIN`` and ``COMMIT`` included). For the services' statements — single rows by key,
microseconds in SQLite itself — that hand-over was most of what a statement cost:
bench/order_floor.py measures it at about 0.15 ms of CPU per statement, more than the order path's
hops with nothing else ("hops+sqlite" against "hops+sqlite-inline").

:class:`InlineConnection` keeps the calling convention piccolo and
:class:`~caravan_commons.db_engines.ServiceSQLiteEngine` use (``await connection.execute(...)``,
``async with connection.execute(...) as cursor``, ``await cursor.fetchall()``) and runs the
statement at once. What it changes:

- **Waiting for a lock never blocks the loop.** The connection's own busy timeout is 0; a
  statement that finds the database locked by another process (``SQLITE_BUSY``: another writer,
  a migration) is tried again after a short asynchronous sleep (1 ms, doubling up to 50 ms) until
  ``busy_timeout`` has passed, and only then fails with SQLite's "database is locked" — what
  SQLite's own busy handler would do, without holding the event loop while it waits.
- **A statement is not interrupted half-way**: a cancelled task (a deadline, a client gone) stops
  between statements, and the transaction is rolled back as before.
- A long statement holds the loop while it runs. The services' statements are by key or bounded
  pages; WAL with ``synchronous=NORMAL`` syncs at checkpoints only.
"""

from __future__ import annotations

import asyncio
import sqlite3
import time
from collections.abc import Callable, Generator, Sequence
from typing import Any

#: the first wait after "database is locked", doubled after each further one up to the cap
_FIRST_WAIT_S = 0.001
_MAX_WAIT_S = 0.05


def _locked(exc: sqlite3.OperationalError) -> bool:
    """``SQLITE_BUSY`` itself — not ``SQLITE_BUSY_SNAPSHOT``, which waiting cannot cure (SQLite's
    busy handler is not called for it either)."""
    return getattr(exc, "sqlite_errorname", "") == "SQLITE_BUSY"


class InlineCursor:
    """The result of :meth:`InlineConnection.execute`: await it, or use it with ``async with``."""

    __slots__ = ("_connection", "_cursor", "_parameters", "_sql")

    def __init__(self, connection: InlineConnection, sql: str, parameters: Sequence[Any]) -> None:
        self._connection, self._sql, self._parameters = connection, sql, parameters
        self._cursor: sqlite3.Cursor | None = None

    async def _run(self) -> InlineCursor:
        self._cursor = await self._connection.run(self._sql, self._parameters)
        return self

    def __await__(self) -> Generator[Any, None, InlineCursor]:
        return self._run().__await__()

    async def __aenter__(self) -> InlineCursor:
        return await self._run()

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid if self._cursor is not None else None

    @property
    def description(self) -> Any:
        return self._cursor.description if self._cursor is not None else None

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall() if self._cursor is not None else []

    async def fetchone(self) -> Any:
        return self._cursor.fetchone() if self._cursor is not None else None

    async def fetchmany(self, size: int) -> list[Any]:
        return self._cursor.fetchmany(size) if self._cursor is not None else []

    async def close(self) -> None:
        if self._cursor is not None:
            self._cursor.close()


class InlineConnection:
    """One ``sqlite3`` connection in autocommit mode (transactions are the statements ``BEGIN`` …
    ``COMMIT`` the caller sends), used from the event loop's thread."""

    __slots__ = ("_connection", "busy_timeout")

    def __init__(self, connection: sqlite3.Connection, *, busy_timeout: float) -> None:
        self._connection = connection
        self.busy_timeout = busy_timeout

    @classmethod
    async def connect(cls, *, busy_timeout: float = 5.0, **connection_kwargs: Any) -> InlineConnection:
        """``connection_kwargs`` go to :func:`sqlite3.connect` (piccolo's: ``database``,
        ``detect_types``); its own busy timeout is 0 and waiting is :meth:`run`'s."""
        options = {**connection_kwargs, "timeout": 0, "isolation_level": None, "check_same_thread": False}
        return cls(sqlite3.connect(**options), busy_timeout=busy_timeout)

    @property
    def row_factory(self) -> Any:
        return self._connection.row_factory

    @row_factory.setter
    def row_factory(self, factory: Any) -> None:
        self._connection.row_factory = factory

    async def run(self, sql: str, parameters: Sequence[Any] = ()) -> sqlite3.Cursor:
        """Execute now; while another process holds the lock, wait (asynchronously) and try again."""
        try:
            return self._connection.execute(sql, parameters)
        except sqlite3.OperationalError as exc:
            if not _locked(exc) or self.busy_timeout <= 0:
                raise
        give_up_at = time.monotonic() + self.busy_timeout
        wait = _FIRST_WAIT_S
        while True:
            await asyncio.sleep(wait)
            try:
                return self._connection.execute(sql, parameters)
            except sqlite3.OperationalError as exc:
                if not _locked(exc) or time.monotonic() >= give_up_at:
                    raise
            wait = min(wait * 2, _MAX_WAIT_S)

    def execute(self, sql: str, parameters: Sequence[Any] | None = None) -> InlineCursor:
        return InlineCursor(self, sql, parameters or ())

    async def set_trace_callback(self, callback: Callable[[str], object] | None) -> None:
        self._connection.set_trace_callback(callback)

    async def close(self) -> None:
        self._connection.close()


__all__ = ["InlineConnection", "InlineCursor"]
