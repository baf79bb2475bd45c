"""Repository tests run on every configured database: a fresh SQLite file always, the database in
CARAVAN_TEST_DATABASE_URL when set (the stage gate sets it), and a throwaway Postgres database
when CARAVAN_TEST_POSTGRES_DSN names a server (created per session, dropped afterwards). The
gate's SQLite file is its own, never the running Catalog's database."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import urlsplit, urlunsplit

import pytest

from caravan_commons import piccolo_app as commons_app
from caravan_commons.db import Database
from svc_a.infrastructure.db import piccolo_app
from svc_a.infrastructure.db.migrate import migrate
from svc_a.infrastructure.db.tables import ProductRow, ReservationRow, StockRow

T = TypeVar("T")
POSTGRES_ENV = "CARAVAN_TEST_POSTGRES_DSN"
CONFIGURED_ENV = "CARAVAN_TEST_DATABASE_URL"


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


async def _admin(dsn: str, statement: str) -> None:
    import asyncpg

    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(statement)
    finally:
        await connection.close()


@contextlib.contextmanager
def throwaway_postgres(server_dsn: str) -> Iterator[str]:
    name = f"svc_a_test_{secrets.token_hex(6)}"
    asyncio.run(_admin(server_dsn, f'CREATE DATABASE "{name}"'))
    try:
        yield with_database(server_dsn, name)
    finally:
        asyncio.run(_admin(server_dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def empty_database(kind: str, tmp: Path) -> Iterator[str]:
    """A new, empty database of ``kind`` (``sqlite`` or ``postgres``)."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / f'empty-{secrets.token_hex(4)}.sqlite3'}"
        return
    dsn = os.environ.get(POSTGRES_ENV) or os.environ.get(CONFIGURED_ENV, "")
    if not is_postgres_url(dsn):
        pytest.skip(f"{POSTGRES_ENV} is not set: no Postgres server to test against")
    with throwaway_postgres(dsn) as url:
        yield url


def backends() -> list[str]:
    kinds = ["sqlite", "postgres"]
    configured = os.environ.get(CONFIGURED_ENV, "")
    if configured and not is_postgres_url(configured):
        kinds.append("configured-sqlite")  # the gate's own SQLite file
    return kinds


@pytest.fixture(scope="session", params=backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of one kind, for the whole session."""
    kind = request.param
    if kind == "configured-sqlite":
        url = os.environ[CONFIGURED_ENV]
        migrate(url)
        yield url
        return
    with empty_database(kind, tmp_path_factory.mktemp("db")) as url:
        migrate(url)
        yield url


Runner = Callable[[Callable[[Database], Awaitable[T]]], T]


@pytest.fixture
def run(database_url: str) -> Runner:
    """``run(scenario)``: open the database, empty Catalog's tables, ``await scenario(db)``, close."""

    def runner(scenario: Callable[[Database], Awaitable[T]]) -> T:
        async def main() -> T:
            db = Database(database_url, [commons_app.APP_CONFIG, piccolo_app.APP_CONFIG], pool_max_size=8)
            await db.open()
            try:
                for table in (ReservationRow, StockRow, ProductRow):
                    await table.delete(force=True)
                return await scenario(db)
            finally:
                await db.close()

        return asyncio.run(main())

    return runner
