"""apply_migrations creates a service's database when it does not exist yet (from empty, really)."""

from __future__ import annotations

import os
import secrets
from pathlib import Path

import pytest
from db_fixtures import POSTGRES_DSN_ENV, migrate, with_database

from caravan_commons.db import MigrationError, ensure_database


async def test_sqlite_gets_its_folder(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'new' / 'svc.sqlite3'}"
    assert await ensure_database(url) is True
    assert (tmp_path / "new").is_dir()
    assert await ensure_database(url) is False


async def test_postgres_database_is_created_once_and_migrations_apply(tmp_path: Path) -> None:
    dsn = os.environ.get(POSTGRES_DSN_ENV)
    if not dsn:
        pytest.skip(f"{POSTGRES_DSN_ENV} is not set: no Postgres server to test against (CI sets it)")
    import asyncpg

    name = f"ccl_create_{secrets.token_hex(6)}"
    url = with_database(dsn, name)
    try:
        assert await ensure_database(url) is True
        assert await ensure_database(url) is False
        await _drop(dsn, name)
        # from nothing at all: the database is created, then migrated (inside a running loop, too)
        migrate(url, tmp_path)
        connection = await asyncpg.connect(url)
        try:
            assert await connection.fetchval("SELECT count(*) FROM migration") >= 1
        finally:
            await connection.close()
    finally:
        await _drop(dsn, name)


async def _drop(dsn: str, name: str) -> None:
    import asyncpg

    admin = await asyncpg.connect(dsn)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def test_an_unreachable_server_is_one_clear_error(tmp_path: Path) -> None:
    with pytest.raises(MigrationError, match="cannot create or reach the database"):
        migrate("postgresql://nobody:x@127.0.0.1:9/none", tmp_path)
