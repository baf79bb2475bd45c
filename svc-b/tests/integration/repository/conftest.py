"""Real databases for the repository tests.

Each test runs on a fresh SQLite file in a temp dir, on a throwaway Postgres database when
CARAVAN_TEST_POSTGRES_DSN names a server (created per test session, dropped afterwards; skipped
with the reason otherwise), and on the database the stage gate configures
(CARAVAN_TEST_DATABASE_URL: a SQLite file — then instead of a fresh one —, or a Postgres server
whose throwaway database is used).
"""

from __future__ import annotations

import os
import secrets
import shutil
import sqlite3
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from caravan_commons.db import Database, sqlite_path
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_b.infrastructure.db.migrate import migrate
from svc_b.infrastructure.db.piccolo_app import APP_CONFIG

POSTGRES_DSN_ENV = "CARAVAN_TEST_POSTGRES_DSN"
CONFIGURED_ENV = "CARAVAN_TEST_DATABASE_URL"


def engines(configured: str | None) -> list[str]:
    """A fresh SQLite file, Postgres, the configured database — but no fresh SQLite file when the
    configured database is SQLite already (the stage gate's usual case: the same engine twice)."""
    if not configured:
        return ["sqlite", "postgres"]
    return (["postgres"] if is_sqlite(configured) else ["sqlite", "postgres"]) + ["configured"]


def is_sqlite(url: str) -> bool:
    return urlsplit(url).scheme == "sqlite"


def is_postgres(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


class PostgresServer:
    """One throwaway database per server per test session; tests use unique order ids."""

    def __init__(self) -> None:
        self.created: dict[str, str] = {}

    async def database(self, dsn: str) -> str:
        if dsn not in self.created:
            import asyncpg

            name = f"svc_b_test_{secrets.token_hex(6)}"
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute(f'CREATE DATABASE "{name}"')
            finally:
                await admin.close()
            url = with_database(dsn, name)
            migrate(url)
            self.created[dsn] = url
        return self.created[dsn]

    async def drop_all(self) -> None:
        import asyncpg

        for dsn, url in self.created.items():
            admin = await asyncpg.connect(dsn)
            try:
                await admin.execute(f'DROP DATABASE IF EXISTS "{urlsplit(url).path[1:]}" WITH (FORCE)')
            finally:
                await admin.close()


_server = PostgresServer()


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    import asyncio

    yield _server
    if _server.created:
        asyncio.run(_server.drop_all())


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, made once per session (migrating runs piccolo in a child process:
    seconds; copying the file: milliseconds). When the configured database is SQLite (the stage
    gate), a copy of it — migrated once per session anyway — saves that child process."""
    path = tmp_path_factory.mktemp("template") / "orders.sqlite3"
    configured = os.environ.get(CONFIGURED_ENV)
    if configured and is_sqlite(configured):
        migrate_once(configured)
        source, copy = sqlite3.connect(sqlite_path(configured)), sqlite3.connect(path)
        try:
            source.backup(copy)  # consistent, WAL and all
        finally:
            source.close()
            copy.close()
    else:
        migrate(f"sqlite:///{path}")
    return path


_migrated: set[str] = set()


def migrate_once(url: str) -> None:
    """The configured database is shared: migrate it once per session."""
    if url not in _migrated:
        migrate(url)
        _migrated.add(url)


ENGINES = engines(os.environ.get(CONFIGURED_ENV))


@pytest.fixture(params=ENGINES)
async def database_url(
    request: pytest.FixtureRequest, tmp_path: Path, postgres_server: PostgresServer
) -> AsyncIterator[str]:
    """A migrated database of the engine the test is parametrised with."""
    if request.param == "sqlite":
        path = tmp_path / "orders.sqlite3"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        yield f"sqlite:///{path}"
        return
    if request.param == "postgres":
        dsn = os.environ.get(POSTGRES_DSN_ENV)
        if not dsn:
            pytest.skip(f"{POSTGRES_DSN_ENV} is not set: no Postgres server to test against")
        yield await postgres_server.database(dsn)
        return
    url = os.environ[CONFIGURED_ENV]
    if is_postgres(url):
        yield await postgres_server.database(url)
        return
    migrate_once(url)
    yield url


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, [COMMONS_APP, APP_CONFIG])
    async with database.lifespan():
        yield database


@pytest.fixture
def new_id() -> Iterator[object]:
    """Unique ids: the configured database is shared between runs."""
    yield lambda prefix="o": f"{prefix}-{secrets.token_hex(8)}"
