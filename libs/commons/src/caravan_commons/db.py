"""Database helpers for piccolo: engine from a URL, lifespan, migrations, readiness.

``settings.database_url`` picks the engine:

- ``sqlite:///relative/file.sqlite3`` or ``sqlite:////absolute/file.sqlite3`` (the default is a
  per-service file, ``sqlite:///<service_name>.sqlite3``): WAL journal, a busy timeout so
  concurrent writers wait instead of failing, foreign keys on (piccolo does that per connection);
- ``postgresql://user:password@host:port/db`` (or ``postgres://``): a connection pool (asyncpg)
  opened and closed with the app's lifespan.

:class:`Database` owns the engine and the piccolo apps of a service; it binds their tables to the
engine, gives ``lifespan`` to ``create_app(..., lifespan=[db.lifespan])`` and
``readiness_check`` to ``create_app(..., readiness_checks={"database": db.readiness_check})``.
Migrations are applied by a command, :func:`apply_migrations`, which runs piccolo's own
``migrations forwards`` for every app in one child process with ``PICCOLO_CONF`` set (piccolo reads its
configuration from that module), and are *checked* by readiness: a database with pending
migrations is not ready.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from collections.abc import AsyncIterator, Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from piccolo.apps.migrations.commands.base import BaseMigrationManager
from piccolo.conf.apps import AppConfig, AppRegistry
from piccolo.engine.base import Engine
from piccolo.engine.postgres import PostgresEngine
from piccolo.engine.sqlite import SQLiteEngine, TransactionType
from piccolo.querystring import QueryString

from caravan_commons.db_engines import ServicePostgresEngine, ServiceSQLiteEngine, Synchronous
from caravan_commons.settings import ServiceSettings

DATABASE_URL_ENV = "CARAVAN_DATABASE_URL"
MIGRATION_TABLE = "migration"


class DatabaseConfigError(ValueError):
    """The database URL cannot be used; the message says why and what is accepted."""


class MigrationError(RuntimeError):
    """``piccolo migrations forwards`` failed; the message carries its last output lines."""


class NotReadyError(RuntimeError):
    """The database is unreachable or has pending migrations (raised by the readiness check)."""


#: piccolo's Postgres engine without the blocking server-version check in its constructor (piccolo
#: connects while constructing an engine, which blocks and touches the network at app build time;
#: :meth:`Database.open` runs the check instead).
LazyPostgresEngine = ServicePostgresEngine


def sqlite_path(database_url: str, base_dir: Path | None = None) -> Path:
    """The file of a ``sqlite:///`` URL (relative paths resolved against ``base_dir`` or cwd)."""
    raw = database_url.removeprefix("sqlite://")
    if not raw.startswith("/") or raw in ("/", "/:memory:"):
        raise DatabaseConfigError(
            f"database_url {database_url!r}: use sqlite:///relative.sqlite3 or sqlite:////abs/path.sqlite3 "
            "(an in-memory database is not shared between piccolo's connections)"
        )
    path = Path(unquote(raw[1:]))
    return path if path.is_absolute() else (base_dir or Path.cwd()) / path


def create_engine(
    database_url: str,
    *,
    base_dir: Path | None = None,
    busy_timeout: float = 5.0,
    log_queries: bool = False,
    service: bool = False,
    synchronous: Synchronous = "NORMAL",
    sqlite_readers: int = 2,
) -> Engine:
    """A piccolo engine for ``database_url`` (not connected yet; see :class:`Database`).

    ``service=True`` (what :class:`Database` uses): on SQLite the long-lived-connection engine of
    :mod:`caravan_commons.db_engines`; otherwise piccolo's own (the migration CLI)."""
    scheme = urlsplit(database_url).scheme
    if scheme == "sqlite":
        path = sqlite_path(database_url, base_dir)
        if service:
            return ServiceSQLiteEngine(
                str(path),
                synchronous=synchronous,
                readers=sqlite_readers,
                busy_timeout=busy_timeout,
                log_queries=log_queries,
            )
        return SQLiteEngine(path=str(path), log_queries=log_queries, timeout=busy_timeout)
    if scheme in ("postgresql", "postgres"):
        if not urlsplit(database_url).hostname and "host=" not in database_url:
            raise DatabaseConfigError(
                f"database_url: a Postgres URL needs a host, got scheme {scheme!r} only"
            )
        return ServicePostgresEngine(config={"dsn": database_url}, log_queries=log_queries)
    raise DatabaseConfigError(
        f"database_url: unsupported scheme {scheme or '(none)'!r}; use sqlite:///file.sqlite3 or postgresql://..."
    )


def is_postgres(engine: Engine) -> bool:
    return engine.engine_type == "postgres"


def rows_as_dicts(rows: Sequence[Any]) -> list[dict[str, Any]]:
    """Raw query results as dicts on both engines (asyncpg returns Records)."""
    return [dict(row) for row in rows]


async def pending_migrations(engine: Engine, apps: Sequence[AppConfig]) -> list[str]:
    """``app:migration_id`` of every migration of ``apps`` not recorded as run in ``engine``."""
    manager = BaseMigrationManager()
    ran: set[tuple[str, str]] = set()
    try:
        rows = await engine.run_querystring(QueryString(f"SELECT app_name, name FROM {MIGRATION_TABLE}"))
    except Exception as exc:  # the table does not exist before the first forwards run
        if "migration" not in str(exc).lower() and "no such table" not in str(exc).lower():
            raise
        rows = []
    ran = {(row["app_name"], row["name"]) for row in rows_as_dicts(rows)}
    pending: list[str] = []
    for app in apps:
        modules = manager.get_migration_modules(app.resolved_migrations_folder_path)
        pending.extend(
            f"{app.app_name}:{mid}"
            for mid in manager.get_migration_ids(modules)
            if (app.app_name, mid) not in ran
        )
    return pending


class Database:
    """One service's database: engine, tables bound to it, pool lifespan, readiness."""

    def __init__(
        self,
        database_url: str,
        apps: Sequence[AppConfig],
        *,
        base_dir: Path | None = None,
        busy_timeout: float = 5.0,
        pool_min_size: int = 1,
        pool_max_size: int = 10,
        log_queries: bool = False,
        synchronous: Synchronous = "NORMAL",
        sqlite_readers: int = 2,
    ) -> None:
        self.database_url = database_url
        self.apps = list(apps)
        self.engine = create_engine(
            database_url,
            base_dir=base_dir,
            busy_timeout=busy_timeout,
            log_queries=log_queries,
            service=True,
            synchronous=synchronous,
            sqlite_readers=sqlite_readers,
        )
        self._pool_sizes = {"min_size": pool_min_size, "max_size": pool_max_size}
        for app in self.apps:
            for table in app.table_classes:
                table._meta.db = self.engine

    @classmethod
    def for_settings(cls, settings: ServiceSettings, apps: Sequence[AppConfig]) -> Database:
        """The service's database as its settings say (URL, pool size, SQLite durability)."""
        assert settings.database_url is not None  # ServiceSettings fills the default in
        return cls(
            settings.database_url,
            apps,
            pool_max_size=settings.database_pool_size,
            pool_min_size=min(2, settings.database_pool_size),
            synchronous=settings.sqlite_synchronous,
            sqlite_readers=settings.sqlite_readers,
        )

    @property
    def is_postgres(self) -> bool:
        return is_postgres(self.engine)

    async def open(self) -> None:
        """Start the Postgres pool, or open the SQLite connections (WAL, set per connection)."""
        if isinstance(self.engine, ServicePostgresEngine):
            if self.engine.pool is None:
                await self.engine.start_service_pool(**self._pool_sizes)
                await self.engine.check_version_now()
        elif isinstance(self.engine, PostgresEngine):
            if self.engine.pool is None:
                await self.engine.start_connection_pool(**self._pool_sizes)
        elif isinstance(self.engine, SQLiteEngine):
            Path(self.engine.path).parent.mkdir(parents=True, exist_ok=True)
            await self.engine.run_ddl("PRAGMA journal_mode=WAL")

    async def close(self) -> None:
        if isinstance(self.engine, PostgresEngine) and self.engine.pool is not None:
            await self.engine.close_connection_pool()
        elif isinstance(self.engine, ServiceSQLiteEngine):
            await self.engine.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[Database]:
        """Litestar lifespan hook: ``create_app(..., lifespan=[db.lifespan])``."""
        await self.open()
        try:
            yield self
        finally:
            await self.close()

    async def ping(self) -> None:
        await self.engine.run_querystring(QueryString("SELECT 1"))

    async def pending_migrations(self) -> list[str]:
        return await pending_migrations(self.engine, self.apps)

    async def readiness_check(self) -> None:
        """Ready = reachable and every migration applied; :class:`NotReadyError` says what is wrong."""
        try:
            await self.ping()
        except Exception as exc:
            raise NotReadyError(f"database unreachable: {type(exc).__name__}: {exc}") from exc
        pending = await self.pending_migrations()
        if pending:
            raise NotReadyError(f"{len(pending)} pending migration(s): {', '.join(pending[:5])}")

    def transaction(self) -> Any:
        """The engine's transaction (rolls back unless the block ends without an exception)."""
        return self.engine.transaction()

    def write_transaction(self, *, allow_nested: bool = True) -> Any:
        """A transaction that will write: on SQLite it takes the write lock up front (the service
        engine's writer; piccolo's own engine: ``BEGIN IMMEDIATE``), so writers queue instead of
        failing on a lock upgrade. ``allow_nested=False``: opening it inside another transaction
        is an error (piccolo's ``TransactionError``) instead of joining that one."""
        if isinstance(self.engine, SQLiteEngine):
            return self.engine.transaction(
                transaction_type=TransactionType.immediate, allow_nested=allow_nested
            )
        return self.engine.transaction(allow_nested=allow_nested)

    def read_transaction(self) -> Any:
        """A transaction that only reads: on the SQLite service engine a reader of its own (no
        write lock; one consistent snapshot); on Postgres a plain transaction."""
        if isinstance(self.engine, ServiceSQLiteEngine):
            return self.engine.read_transaction()
        return self.engine.transaction()


def piccolo_conf(apps: Sequence[str], environ: Mapping[str, str] | None = None) -> tuple[Engine, AppRegistry]:
    """``DB, APP_REGISTRY`` for a service's ``piccolo_conf`` module, from ``CARAVAN_DATABASE_URL``.

    piccolo's CLI imports the module named by ``PICCOLO_CONF`` and reads ``DB`` and
    ``APP_REGISTRY`` from it; this is the one place that reads the URL for the CLI::

        # svc_a/infrastructure/db/piccolo_conf.py
        from caravan_commons.db import piccolo_conf
        DB, APP_REGISTRY = piccolo_conf(
            ["caravan_commons.piccolo_app", "svc_a.infrastructure.db.piccolo_app"]
        )
    """
    env = os.environ if environ is None else environ
    url = env.get(DATABASE_URL_ENV)
    if not url:
        raise DatabaseConfigError(f"{DATABASE_URL_ENV} is not set (piccolo_conf needs the database URL)")
    return create_engine(url), AppRegistry(apps=list(apps))


async def ensure_database(database_url: str) -> bool:
    """Create the database ``database_url`` names when it does not exist yet (Postgres: through the
    server's ``postgres`` database, so the URL's role needs CREATEDB; SQLite: the file's folder).
    Returns True when it created something."""
    parts = urlsplit(database_url)
    if parts.scheme == "sqlite":
        folder = sqlite_path(database_url).parent
        if folder.is_dir():
            return False
        folder.mkdir(parents=True)
        return True
    if parts.scheme not in ("postgresql", "postgres"):
        raise DatabaseConfigError(f"database_url: unsupported scheme {parts.scheme or '(none)'!r}")
    import asyncpg  # the postgres extra

    name = unquote(parts.path.lstrip("/"))
    if not name:
        raise DatabaseConfigError("database_url: a Postgres URL needs a database name")
    maintenance = parts._replace(path="/postgres").geturl()
    connection = await asyncpg.connect(maintenance)
    try:
        if await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            return False
        quoted = '"' + name.replace('"', '""') + '"'
        try:
            await connection.execute(f"CREATE DATABASE {quoted}")
        except asyncpg.DuplicateDatabaseError:  # created concurrently by another migrator
            return False
        return True
    finally:
        await connection.close()


def apply_migrations(
    app_names: Sequence[str],
    *,
    conf_module: str,
    database_url: str,
    cwd: Path | None = None,
    extra_env: Mapping[str, str] | None = None,
    timeout: float = 300.0,
) -> list[str]:
    """Run piccolo's ``migrations forwards`` for each app, in order, in one child process; return
    its output (one element).

    ``conf_module`` is the importable piccolo conf (``PICCOLO_CONF``) whose ``DB`` reads
    ``CARAVAN_DATABASE_URL`` (see :func:`piccolo_conf`). Creates the database first when it does
    not exist (:func:`ensure_database`). Idempotent: applied migrations are skipped. Raises
    :class:`MigrationError` naming the app and quoting piccolo's output.
    """
    if not app_names:
        raise ValueError("apply_migrations needs at least one app name")
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:  # on a thread of its own: callers may be inside an event loop
        with ThreadPoolExecutor(1) as pool:
            pool.submit(asyncio.run, ensure_database(database_url)).result()
    except DatabaseConfigError:
        raise
    except Exception as exc:  # the server refused or is unreachable: one clear line
        raise MigrationError(f"cannot create or reach the database: {exc}") from exc
    env = {**os.environ, **(extra_env or {}), "PICCOLO_CONF": conf_module, DATABASE_URL_ENV: database_url}
    proc = subprocess.run(  # one child for every app (see caravan_commons.db_forwards)
        [sys.executable, "-m", "caravan_commons.db_forwards", *app_names],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = (proc.stdout + proc.stderr).strip()
    if proc.returncode != 0 or "Traceback" in output:
        tail = " | ".join(line for line in output.splitlines()[-6:] if line.strip())
        apps = ", ".join(repr(app) for app in app_names)
        raise MigrationError(f"migrations of {apps} failed (exit {proc.returncode}): {tail}")
    return [output]
