"""Migrations apply to an empty database, are idempotent, roll back, and the CLI fails clearly."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from caravan_commons.db import Database
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_b.infrastructure.db.migrate import CONF_MODULE, migrate
from svc_b.infrastructure.db.piccolo_app import APP_CONFIG

TABLES = ["svc_b_orders", "svc_b_order_lines", "svc_b_saga_steps"]


def piccolo(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PICCOLO_CONF": CONF_MODULE, "CARAVAN_DATABASE_URL": database_url}
    return subprocess.run(
        [sys.executable, "-m", "piccolo.main", "migrations", *args],
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


async def table_exists(db: Database, table: str) -> bool:
    try:
        await db.engine.run_ddl(f"SELECT 1 FROM {table} LIMIT 1")
    except Exception:
        return False
    return True


async def test_migrations_are_applied_and_ready(database_url: str) -> None:
    migrate(database_url)  # a second run is a no-op (once per engine: a child process, seconds)
    db = Database(database_url, [COMMONS_APP, APP_CONFIG])
    async with db.lifespan():
        await db.readiness_check()
        for table in [*TABLES, "caravan_idempotency"]:
            assert await table_exists(db, table), table


async def test_migrations_roll_back_and_forward_again(tmp_path: Path, sqlite_template: Path) -> None:
    # on its own SQLite file (a copy of one migrated from empty): rolling back the shared
    # configured database would disturb others
    path = tmp_path / "rollback.sqlite3"
    shutil.copyfile(sqlite_template, path)
    url = f"sqlite:///{path}"
    done = piccolo(url, "backwards", "svc_b", "--migration_id=all", "--auto_agree")
    assert done.returncode == 0, done.stdout + done.stderr
    db = Database(url, [COMMONS_APP, APP_CONFIG])
    async with db.lifespan():
        assert not any([await table_exists(db, t) for t in TABLES])
        assert await table_exists(db, "caravan_idempotency")
        assert await db.pending_migrations() != []
        migrate(url)
        await db.readiness_check()
        assert all([await table_exists(db, t) for t in TABLES])
