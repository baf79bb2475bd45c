"""Real databases for the repository tests.

Each test runs on every engine available: the database the gate configures
(``CARAVAN_TEST_DATABASE_URL``), a SQLite file in a temp dir (always) and a throwaway Postgres
database when ``CARAVAN_TEST_POSTGRES_DSN`` names a server (created once per session, dropped at
the end). Engines that are not configured skip with the reason.
"""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from caravan_commons.db import Database
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_c.infrastructure.db.migrate import migrate
from svc_c.infrastructure.db.piccolo_app import APP_CONFIG

CONFIGURED_ENV = "CARAVAN_TEST_DATABASE_URL"
POSTGRES_DSN_ENV = "CARAVAN_TEST_POSTGRES_DSN"
ENGINES = ["configured", "sqlite", "postgres"]


def is_postgres_url(url: str) -> bool:
    return urlsplit(url).scheme in ("postgres", "postgresql")


def with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))


async def _admin(dsn: str, sql: str) -> None:
    import asyncpg  # the postgres extra

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


class PostgresServer:
    """Throwaway databases on one server, dropped when the session ends."""

    def __init__(self, dsn: str) -> None:
        self.dsn = dsn
        self.created: list[str] = []

    def new_database(self) -> str:
        name = f"svc_c_test_{secrets.token_hex(6)}"
        asyncio.run(_admin(self.dsn, f'CREATE DATABASE "{name}"'))
        self.created.append(name)
        return with_database(self.dsn, name)

    def drop_all(self) -> None:
        for name in self.created:
            asyncio.run(_admin(self.dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@pytest.fixture(scope="session")
def postgres_servers() -> Iterator[dict[str, PostgresServer]]:
    servers: dict[str, PostgresServer] = {}
    yield servers
    for server in servers.values():
        server.drop_all()


def _server(servers: dict[str, PostgresServer], dsn: str) -> PostgresServer:
    return servers.setdefault(dsn, PostgresServer(dsn))


def fresh_url(engine: str, tmp_path: Path, servers: dict[str, PostgresServer]) -> str:
    """An empty database of ``engine`` (skips when that engine is not configured)."""
    if engine == "sqlite":
        return f"sqlite:///{tmp_path / f'svc-c-{secrets.token_hex(4)}.sqlite3'}"
    if engine == "postgres":
        dsn = os.environ.get(POSTGRES_DSN_ENV)
        if not dsn:
            pytest.skip(f"{POSTGRES_DSN_ENV} is not set: no Postgres server to test against")
        return _server(servers, dsn).new_database()
    url = os.environ.get(CONFIGURED_ENV)
    if not url:
        pytest.skip(f"{CONFIGURED_ENV} is not set (the stage gate sets it)")
    if is_postgres_url(url):  # a server: never write into its own database, make a throwaway one
        return _server(servers, url).new_database()
    return url  # a SQLite file the gate owns: migrations are idempotent, ids are unique per test


@pytest.fixture(scope="session")
def migrated_urls() -> dict[str, str]:
    return {}


@pytest.fixture(params=ENGINES)
def database_url(
    request: pytest.FixtureRequest,
    migrated_urls: dict[str, str],
    tmp_path_factory: pytest.TempPathFactory,
    postgres_servers: dict[str, PostgresServer],
) -> str:
    """A migrated database of the engine, made once per session and shared by the tests."""
    engine = request.param
    if engine not in migrated_urls:
        url = fresh_url(engine, tmp_path_factory.mktemp(f"db-{engine}"), postgres_servers)
        migrate(url)
        migrated_urls[engine] = url
    return migrated_urls[engine]


@pytest.fixture
async def db(database_url: str) -> AsyncIterator[Database]:
    database = Database(database_url, [COMMONS_APP, APP_CONFIG])
    async with database.lifespan():
        yield database
