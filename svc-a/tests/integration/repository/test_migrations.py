"""Migrations apply to an empty database, roll back to nothing, and apply again."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import pytest

from caravan_commons.db import Database
from svc_a.infrastructure.db import piccolo_app
from svc_a.infrastructure.db.migrate import CONF_MODULE, migrate

from .conftest import empty_database

TABLES = {"catalog_product", "catalog_stock", "catalog_reservation"}


async def _tables(url: str) -> set[str]:
    db = Database(url, [piccolo_app.APP_CONFIG])
    await db.open()
    try:
        if db.is_postgres:
            rows = await db.engine._run_in_new_connection(
                "SELECT tablename AS name FROM pg_tables WHERE schemaname = 'public'"
            )
        else:
            rows = await db.engine._run_in_new_connection(
                "SELECT name FROM sqlite_master WHERE type = 'table'"
            )
        return {row["name"] for row in rows}
    finally:
        await db.close()


def tables(url: str) -> set[str]:
    return asyncio.run(_tables(url))


def backwards(url: str) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "piccolo.main", "migrations", "backwards", "svc_a", "all", "--auto_agree"],
        env={**os.environ, "PICCOLO_CONF": CONF_MODULE, "CARAVAN_DATABASE_URL": url},
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr


@pytest.mark.parametrize("kind", ["sqlite", "postgres"])
def test_migrations_apply_from_empty_and_roll_back(kind: str, tmp_path: Path) -> None:
    with empty_database(kind, tmp_path) as url:
        migrate(url)
        assert tables(url) >= TABLES
        assert "caravan_idempotency" in tables(url)
        migrate(url)  # idempotent
        backwards(url)
        assert not TABLES & tables(url)
        assert "caravan_idempotency" in tables(url)  # commons' own app is untouched
        migrate(url)
        assert tables(url) >= TABLES
