"""Database helpers on a real SQLite file and a real Postgres server."""

# ruff: noqa: F811 - pytest fixtures imported from db_fixtures are parameters here

from __future__ import annotations

from pathlib import Path

import pytest
from db_fixtures import ENGINES, database_url, migrate  # noqa: F401 - database_url is a fixture

from caravan_commons.db import (
    Database,
    MigrationError,
    NotReadyError,
    apply_migrations,
    rows_as_dicts,
)
from caravan_commons.piccolo_app import APP_CONFIG
from caravan_commons.tables import IdempotencyRecord

pytestmark = pytest.mark.parametrize("database_url", ENGINES, indirect=True)


async def test_readiness_requires_migrations_then_passes(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        with pytest.raises(NotReadyError, match=r"1 pending migration\(s\): caravan_commons:"):
            await db.readiness_check()
        migrate(database_url, tmp_path)
        await db.readiness_check()
        assert await db.pending_migrations() == []
        # the table exists and the bound table class queries it through this engine
        assert IdempotencyRecord._meta.db is db.engine
        assert await IdempotencyRecord.count() == 0


async def test_apply_migrations_is_idempotent(database_url: str, tmp_path: Path) -> None:
    migrate(database_url, tmp_path)
    second = migrate(database_url, tmp_path)
    assert "no migrations need to be run" in second[0].lower() or "already" in second[0].lower(), second[0]
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        await db.readiness_check()


async def test_apply_migrations_with_a_broken_conf_fails_clearly(database_url: str, tmp_path: Path) -> None:
    (tmp_path / "broken_conf.py").write_text("raise RuntimeError('conf exploded')\n")
    with pytest.raises(MigrationError, match="caravan_commons"):
        apply_migrations(
            ["caravan_commons"], conf_module="broken_conf", database_url=database_url, cwd=tmp_path
        )


async def test_transaction_rolls_back_on_error(database_url: str, tmp_path: Path) -> None:
    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        with pytest.raises(ZeroDivisionError):
            async with db.transaction():
                await IdempotencyRecord.insert(
                    IdempotencyRecord(
                        key_id="x" * 64,
                        idempotency_key="k",
                        fingerprint="f",
                        status_code=201,
                        response_body=b"{}",
                        expires_at=1,
                    )
                )
                1 / 0  # noqa: B018
        assert await IdempotencyRecord.count() == 0


async def test_engine_specific_setup(database_url: str, tmp_path: Path) -> None:
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        if db.is_postgres:
            assert db.engine.pool is not None  # the pool follows the lifespan
            rows = rows_as_dicts(await db.engine.run_ddl("SELECT 1 AS one"))
            assert rows == [{"one": 1}]
        else:
            rows = rows_as_dicts(await db.engine.run_ddl("PRAGMA journal_mode"))
            assert rows[0]["journal_mode"] == "wal"
            assert db.engine.connection_kwargs["timeout"] == 5.0
    if db.is_postgres:
        assert db.engine.pool is None
