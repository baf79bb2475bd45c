"""piccolo engines tuned for a long-running service, and statement/commit counters.

piccolo's stock SQLite engine opens a new connection (and aiosqlite thread) for every statement
outside a transaction and every transaction, runs ``PRAGMA foreign_keys = 1`` before every
statement, and the WAL is checkpointed whenever the last connection closes. Its Postgres engine
lets asyncpg reset each connection on release (a round trip per transaction). Here:

- :class:`ServiceSQLiteEngine`: ONE long-lived writer connection, serialised by an asyncio lock
  (every write transaction, and every write statement outside a transaction, takes it — so
  writers queue in memory instead of spinning on SQLite's busy lock), and long-lived reader
  connections for ``SELECT`` outside a transaction and for read-only transactions (WAL readers
  never wait for the writer). Pragmas are set once per connection: ``journal_mode=WAL``,
  ``foreign_keys=ON``, ``synchronous=NORMAL`` by default. NORMAL survives a crash of the process
  (the WAL is in the OS's page cache); a power loss or kernel crash may lose the last
  transactions committed since the last checkpoint (never corrupt the file). ``FULL`` (an fsync
  per commit) is the setting ``sqlite_synchronous`` for hosts where that matters. Statements run
  on the event loop's thread (:mod:`caravan_commons.sqlite_inline`: no aiosqlite thread hand-over
  per statement; waiting for another process's lock is an asynchronous retry).
- :class:`ServicePostgresEngine`: the pool is sized by the caller, released connections are not
  reset (nothing the services do changes session state: no LISTEN, no advisory locks, no SET), and
  asyncpg's per-connection prepared-statement cache serves the hot path (piccolo's query text is
  stable per query shape, so each is prepared once per connection).

Both count what they send (:class:`StatementStats`: statements — not counting ``BEGIN``,
``COMMIT``, ``ROLLBACK`` — and commits: ``COMMIT`` plus write statements that commit on their
own), exported as ``caravan_db_statements_total`` and ``caravan_db_commits_total`` by
:mod:`caravan_commons.metrics`.
"""

from __future__ import annotations

import asyncio
import weakref
from collections.abc import Iterator
from typing import Any, Literal

from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, SQLiteTransaction, TransactionType, dict_factory
from prometheus_client.metrics_core import CounterMetricFamily, Metric

from caravan_commons.sqlite_inline import InlineConnection

Synchronous = Literal["NORMAL", "FULL"]
_WRITE_TRANSACTIONS = (TransactionType.immediate, TransactionType.exclusive)
_TRANSACTION_CONTROL = ("BEGIN", "COMMIT", "ROLLBACK", "SAVEPOINT", "RELEASE")


class StatementStats:
    """Statements and commits sent to the database by this process (plain ints, incremented on the
    event loop's thread or, for Postgres, asyncpg's logging callbacks on it)."""

    __slots__ = ("commits", "statements")

    def __init__(self) -> None:
        self.statements = 0
        self.commits = 0

    def seen(self, sql: str) -> None:
        """One statement ran inside a transaction (``BEGIN``/``ROLLBACK`` are not counted as
        statements; ``COMMIT`` counts as a commit)."""
        head = sql.lstrip()[:9].upper()
        if head.startswith(_TRANSACTION_CONTROL):
            if head.startswith("COMMIT"):
                self.commits += 1
        else:
            self.statements += 1

    def seen_on_its_own(self, sql: str) -> None:
        """One statement ran outside a transaction: a write commits by itself."""
        self.statements += 1
        if not _is_read(sql):
            self.commits += 1

    def collect(self) -> Iterator[Metric]:
        """As Prometheus counters (a ``prometheus_client`` collector)."""
        yield CounterMetricFamily(
            "caravan_db_statements", "SQL statements sent to the database.", value=self.statements
        )
        yield CounterMetricFamily(
            "caravan_db_commits", "Transactions committed (and statements committing on their own).",
            value=self.commits,
        )  # fmt: skip


#: The counters of every engine of this process (a service has one database).
STATS = StatementStats()


def _is_read(sql: str) -> bool:
    head = sql.lstrip()[:8].upper()
    return head.startswith(("SELECT", "WITH", "PRAGMA", "EXPLAIN"))


class _LoopConnections:
    """One event loop's writer (and the lock writers queue on) and readers."""

    __slots__ = ("idle", "opening", "readers", "writer", "writer_lock")

    def __init__(self) -> None:
        self.writer_lock = asyncio.Lock()
        self.opening = asyncio.Lock()
        self.writer: InlineConnection | None = None
        self.readers: list[InlineConnection] = []
        self.idle: asyncio.Queue[InlineConnection] = asyncio.Queue()

    def checkin(self, connection: InlineConnection) -> None:
        if connection in self.readers:
            self.idle.put_nowait(connection)

    def all(self) -> list[InlineConnection]:
        return [*self.readers, *([self.writer] if self.writer else [])]


class ServiceSQLiteTransaction(SQLiteTransaction):
    """A transaction on the engine's long-lived connections. A write transaction holds the writer
    lock from ``BEGIN`` to ``COMMIT``/``ROLLBACK``; a read-only one has a reader to itself. The
    connection stays open afterwards."""

    __slots__ = ("_connections", "_holds_writer", "_reader", "read_only")

    def __init__(
        self, engine: ServiceSQLiteEngine, *args: Any, read_only: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(engine, *args, **kwargs)
        self.read_only = read_only
        self._holds_writer = False
        self._reader: InlineConnection | None = None
        self._connections: _LoopConnections | None = None

    async def get_connection(self) -> InlineConnection:
        engine: ServiceSQLiteEngine = self.engine  # type: ignore[assignment]
        connections = self._connections = engine.here()
        if self.read_only:
            self._reader = await engine.checkout_reader()
            return self._reader
        await connections.writer_lock.acquire()
        self._holds_writer = True
        try:
            return await engine.writer()
        except BaseException:
            self._release()
            raise

    def _release(self) -> None:
        connections = self._connections
        if connections is None:
            return
        if self._holds_writer:
            self._holds_writer = False
            connections.writer_lock.release()
        if self._reader is not None:
            connections.checkin(self._reader)
            self._reader = None

    async def __aexit__(self, exception_type: Any, exception: Any, traceback: Any) -> bool:
        if self._parent:
            return exception is None
        try:
            if exception:
                if not self._rolled_back:
                    await self.rollback()
            elif not self._committed and not self._rolled_back:
                await self.commit()
        finally:
            self.engine.current_transaction.reset(self.context)
            self._release()
        return exception is None


class ServiceSQLiteEngine(SQLiteEngine):
    """SQLite with one long-lived writer and ``readers`` long-lived reader connections."""

    def __init__(
        self,
        path: str,
        *,
        synchronous: Synchronous = "NORMAL",
        readers: int = 2,
        busy_timeout: float = 5.0,
        log_queries: bool = False,
        stats: StatementStats = STATS,
    ) -> None:
        super().__init__(path=path, log_queries=log_queries, timeout=busy_timeout)
        self.busy_timeout = busy_timeout
        self.synchronous = synchronous
        self.stats = stats
        self.readers_wanted = max(1, readers)
        self._loops: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopConnections] = (
            weakref.WeakKeyDictionary()
        )

    def here(self) -> _LoopConnections:
        """The connections of the running event loop (a service has one loop; a test may drive an
        app on another loop than its own code: each loop gets its own, SQLite serialises them)."""
        loop = asyncio.get_running_loop()
        connections = self._loops.get(loop)
        if connections is None:
            connections = self._loops[loop] = _LoopConnections()
        return connections

    @property
    def writer_lock(self) -> asyncio.Lock:
        return self.here().writer_lock

    async def _connect(self) -> InlineConnection:
        kwargs = {k: v for k, v in self.connection_kwargs.items() if k != "timeout"}
        connection = await InlineConnection.connect(busy_timeout=self.busy_timeout, **kwargs)
        connection.row_factory = dict_factory
        await connection.execute("PRAGMA journal_mode=WAL")
        await connection.execute(f"PRAGMA synchronous={self.synchronous}")
        await connection.execute("PRAGMA foreign_keys=ON")
        await connection.set_trace_callback(lambda sql: self.stats.seen(sql))
        return connection

    async def writer(self) -> InlineConnection:
        connections = self.here()
        if connections.writer is None:
            async with connections.opening:
                if connections.writer is None:
                    connections.writer = await self._connect()
        return connections.writer

    async def checkout_reader(self) -> InlineConnection:
        """A reader for the caller alone (give it back with :meth:`checkin_reader`)."""
        connections = self.here()
        if connections.idle.empty() and len(connections.readers) < self.readers_wanted:
            async with connections.opening:
                if len(connections.readers) < self.readers_wanted:
                    connection = await self._connect()
                    connections.readers.append(connection)
                    return connection
        return await connections.idle.get()

    def checkin_reader(self, connection: InlineConnection) -> None:
        self.here().checkin(connection)

    async def get_connection(self) -> InlineConnection:  # type: ignore[override]  # aiosqlite-shaped
        return await self.writer()

    @property
    def is_open(self) -> bool:
        return any(connections.all() for connections in self._loops.values())

    async def close(self) -> None:
        """Close every connection (the last one to close checkpoints the WAL)."""
        loops, self._loops = list(self._loops.values()), weakref.WeakKeyDictionary()
        for connections in loops:
            for connection in connections.all():
                await connection.close()

    def transaction(
        self, transaction_type: TransactionType = TransactionType.deferred, allow_nested: bool = True
    ) -> ServiceSQLiteTransaction:
        """A write transaction (it takes the writer, whatever ``transaction_type`` says: piccolo's
        default, deferred, may write too)."""
        return ServiceSQLiteTransaction(self, transaction_type=transaction_type, allow_nested=allow_nested)

    def read_transaction(self) -> ServiceSQLiteTransaction:
        """A read-only transaction on a reader of its own: one consistent snapshot, no write lock."""
        return ServiceSQLiteTransaction(self, read_only=True)

    async def _run_in_existing_connection(
        self,
        connection: InlineConnection,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> list[dict[str, Any]]:
        async with connection.execute(query, args or []) as cursor:
            return await cursor.fetchall()

    async def _run_in_new_connection(
        self,
        query: str,
        args: list[Any] | None = None,
        query_type: str = "generic",
        table: Any = None,
    ) -> list[dict[str, Any]]:
        """Outside a transaction: a read on a reader; a write, alone under the writer lock (it
        commits on its own: SQLite's autocommit)."""
        if _is_read(query) and query_type != "insert":
            reader = await self.checkout_reader()
            try:
                return await self._run_in_existing_connection(reader, query, args)
            finally:
                self.checkin_reader(reader)
        async with self.writer_lock:
            rows = await self._run_in_existing_connection(await self.writer(), query, args)
        if not _is_read(query):
            self.stats.commits += 1
        return rows


class ServicePostgresEngine(PostgresEngine):
    """piccolo's Postgres engine without the blocking version check at construction, with a pool
    whose released connections are not reset, and statement counting."""

    def __init__(self, *args: Any, stats: StatementStats = STATS, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.stats = stats

    async def check_version(self) -> None:
        return None

    async def prep_database(self) -> None:
        return None

    async def check_version_now(self) -> None:
        await super().check_version()
        await super().prep_database()

    async def start_service_pool(self, *, min_size: int, max_size: int) -> None:
        engine = self

        async def init(connection: Any) -> None:
            def log(record: Any) -> None:  # called after the statement ran
                sql = record.query
                control = sql.lstrip()[:9].upper().startswith(_TRANSACTION_CONTROL)
                if control or connection.is_in_transaction():
                    engine.stats.seen(sql)
                else:
                    engine.stats.seen_on_its_own(sql)

            connection.add_query_logger(log)

        async def keep(_connection: Any) -> None:
            """Nothing to reset: asyncpg's default costs a round trip per release."""

        await self.start_connection_pool(min_size=min_size, max_size=max_size, init=init, reset=keep)
