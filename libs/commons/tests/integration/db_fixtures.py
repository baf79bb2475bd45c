"""Real databases for tests: a SQLite file always; a throwaway Postgres database when
``CARAVAN_TEST_POSTGRES_DSN`` names a server (CI sets it), otherwise those cases skip with the reason.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest
from piccolo.querystring import QueryString

from caravan_commons.db import Database, apply_migrations, rows_as_dicts
from caravan_commons.piccolo_app import APP_CONFIG

POSTGRES_DSN_ENV = "CARAVAN_TEST_POSTGRES_DSN"
ENGINES = ["sqlite", "postgres"]

CONF_MODULE = "ccl_test_piccolo_conf"
CONF_SOURCE = """\
from caravan_commons.db import piccolo_conf

DB, APP_REGISTRY = piccolo_conf(["caravan_commons.piccolo_app"])
"""


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path=f"/{name}"))


@pytest.fixture
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """A fresh, empty database of the engine the test is parametrised with."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'svc.sqlite3'}"
        return
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        pytest.skip(f"{POSTGRES_DSN_ENV} is not set: no Postgres server to test against (CI sets it)")
    import asyncpg  # the postgres extra; only needed when a server is configured

    name = f"ccl_test_{secrets.token_hex(6)}"
    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield with_database(dsn, name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def write_conf(directory: Path) -> Path:
    (directory / f"{CONF_MODULE}.py").write_text(CONF_SOURCE)
    return directory


def migrate(database_url: str, directory: Path) -> list[str]:
    write_conf(directory)
    return apply_migrations(
        ["caravan_commons"], conf_module=CONF_MODULE, database_url=database_url, cwd=directory
    )


@pytest.fixture
async def migrated_db(database_url: str, tmp_path: Path) -> AsyncIterator[Database]:
    """An open :class:`Database` with commons' migrations applied."""
    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        yield db


async def create_notes_table(db: Database, table: str) -> Database:
    """A scratch table of notes: where a test's effects go."""
    await db.engine.run_ddl(f"CREATE TABLE {table} (note VARCHAR(100) NOT NULL)")
    return db


async def notes_in(db: Database, table: str) -> list[str]:
    rows = rows_as_dicts(await db.engine.run_querystring(QueryString(f"SELECT note FROM {table}")))
    return sorted(r["note"] for r in rows)
