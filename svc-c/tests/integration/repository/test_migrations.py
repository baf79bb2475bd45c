"""Migrations apply to an empty database, are idempotent and roll back to nothing; the migrate
command fails with one line and a non-zero exit on bad input."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import PostgresServer, fresh_url

from caravan_commons.db import Database, rows_as_dicts
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_c.infrastructure.db.migrate import CONF_MODULE, migrate
from svc_c.infrastructure.db.piccolo_app import APP_CONFIG

TABLES = {"payments", "ledger_movements", "ledger_entries"}


async def _tables(url: str) -> set[str]:
    db = Database(url, [COMMONS_APP, APP_CONFIG])
    async with db.lifespan():
        if db.is_postgres:
            sql = "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
        else:
            sql = "SELECT name FROM sqlite_master WHERE type = 'table'"
        return {row["name"] for row in rows_as_dicts(await db.engine.run_ddl(sql))}


async def _ready(url: str) -> None:
    db = Database(url, [COMMONS_APP, APP_CONFIG])
    async with db.lifespan():
        await db.readiness_check()  # reachable, nothing pending


def tables_in(url: str) -> set[str]:
    return asyncio.run(_tables(url))


def piccolo(url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PICCOLO_CONF": CONF_MODULE, "CARAVAN_DATABASE_URL": url}
    return subprocess.run(
        [sys.executable, "-m", "piccolo.main", "migrations", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


@pytest.mark.parametrize("engine", ["sqlite", "postgres"])
def test_migrations_apply_from_empty_and_roll_back(
    engine: str, tmp_path: Path, postgres_servers: dict[str, PostgresServer]
) -> None:
    url = fresh_url(engine, tmp_path, postgres_servers)
    assert not TABLES & tables_in(url)
    migrate(url)
    assert tables_in(url) >= TABLES
    migrate(url)  # idempotent
    asyncio.run(_ready(url))
    done = piccolo(url, "backwards", "svc_c", "--migration_id=all", "--auto_agree")
    assert done.returncode == 0, done.stdout + done.stderr
    assert not TABLES & tables_in(url)
    assert "caravan_idempotency" in tables_in(url)  # commons' app is untouched
    migrate(url)  # and forwards again
    assert tables_in(url) >= TABLES


def test_the_command_as_a_process_reports_success(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.sqlite3'}"
    done = subprocess.run(
        [sys.executable, "-m", "svc_c.infrastructure.db.migrate"],
        env={**os.environ, "CARAVAN_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    assert "up to date" in done.stdout
