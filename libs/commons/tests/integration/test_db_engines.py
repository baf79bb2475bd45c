"""The service engines (caravan_commons.db_engines) on a real SQLite file and a real Postgres server:
long-lived connections, reads outside the write lock, counted statements and commits."""

# ruff: noqa: F811 - pytest fixtures imported from db_fixtures are parameters here

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from db_fixtures import database_url, migrate  # noqa: F401 - database_url is a fixture

from caravan_commons.db import Database, rows_as_dicts
from caravan_commons.db_engines import StatementStats
from caravan_commons.piccolo_app import APP_CONFIG
from caravan_commons.tables import IdempotencyRecord


def record(key: str) -> IdempotencyRecord:
    return IdempotencyRecord(
        key_id=key.ljust(64, "0"),
        idempotency_key=key,
        fingerprint="f",
        status_code=201,
        response_body=b"{}",
        expires_at=1,
    )


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_keeps_its_connections_and_sets_pragmas_once(database_url: str, tmp_path: Path) -> None:
    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG], synchronous="FULL")
    async with db.lifespan():
        engine = db.engine
        engine.stats = stats = StatementStats()  # type: ignore[attr-defined]
        writers = set()
        for i in range(3):
            async with db.write_transaction() as txn:
                writers.add(id(txn.connection))
                await IdempotencyRecord.insert(record(f"k{i}"))
        assert len(writers) == 1  # one long-lived writer, not a connection per transaction
        assert stats.commits == 3
        # one INSERT per transaction: no per-statement PRAGMA
        assert stats.statements == 3, stats.statements
        writer = await engine.writer()  # type: ignore[attr-defined]
        async with writer.execute("PRAGMA synchronous") as cursor:
            assert (await cursor.fetchone())["synchronous"] == 2  # FULL, as set
        async with writer.execute("PRAGMA foreign_keys") as cursor:
            assert (await cursor.fetchone())["foreign_keys"] == 1
    assert not db.engine.is_open  # type: ignore[attr-defined]  # closed with the lifespan


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_reads_do_not_wait_for_the_writer(database_url: str, tmp_path: Path) -> None:
    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG])
    async with db.lifespan():
        await IdempotencyRecord.insert(record("seen"))
        inside = asyncio.Event()
        leave = asyncio.Event()

        async def long_writer() -> None:
            async with db.write_transaction():
                await IdempotencyRecord.insert(record("unseen"))
                inside.set()
                await leave.wait()

        task = asyncio.create_task(long_writer())
        await inside.wait()
        # the write transaction holds the writer; reads go to readers and see the last commit
        assert await asyncio.wait_for(IdempotencyRecord.count(), 2) == 1
        async with db.read_transaction():
            assert await asyncio.wait_for(IdempotencyRecord.count(), 2) == 1
        # a second writer queues behind the first instead of failing on SQLite's lock
        second = asyncio.create_task(IdempotencyRecord.insert(record("queued")).run())
        await asyncio.sleep(0.05)
        assert not second.done()
        leave.set()
        await task
        await second
        assert await IdempotencyRecord.count() == 3


@pytest.mark.parametrize("database_url", ["sqlite", "postgres"], indirect=True)
async def test_statements_and_commits_are_counted(database_url: str, tmp_path: Path) -> None:
    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG], pool_max_size=2)
    async with db.lifespan():
        db.engine.stats = stats = StatementStats()  # type: ignore[attr-defined]
        async with db.write_transaction():
            await IdempotencyRecord.insert(record("a"))
            await IdempotencyRecord.insert(record("b"))
        await IdempotencyRecord.insert(record("c"))  # on its own: one statement, one commit
        await IdempotencyRecord.count()  # a read commits nothing
        assert (stats.statements, stats.commits) == (4, 2)
        if db.is_postgres:  # a released connection is not reset (no extra round trip)
            rows = rows_as_dicts(await db.engine.run_ddl("SELECT 1 AS one"))
            assert rows == [{"one": 1}] and stats.statements == 5


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_waits_for_another_process_lock_without_holding_the_loop(
    database_url: str, tmp_path: Path
) -> None:
    """Statements run on the loop's thread (caravan_commons.sqlite_inline); a write lock held by
    another connection (another process, a migration) is waited for asynchronously: the loop
    keeps running, and the write goes through once the lock is released."""
    import sqlite3

    migrate(database_url, tmp_path)
    db = Database(database_url, [APP_CONFIG])
    other = sqlite3.connect(str(db.engine.path), isolation_level=None)  # type: ignore[attr-defined]
    async with db.lifespan():
        other.execute("BEGIN IMMEDIATE")  # the write lock, held elsewhere
        ticks = 0

        async def tick() -> None:
            nonlocal ticks
            while True:
                await asyncio.sleep(0.005)
                ticks += 1

        ticker = asyncio.create_task(tick())
        write = asyncio.create_task(IdempotencyRecord.insert(record("after-the-lock")).run())
        await asyncio.sleep(0.3)
        assert not write.done()  # still waiting for the lock ...
        assert ticks >= 20, ticks  # ... while the loop went on
        other.execute("ROLLBACK")
        await asyncio.wait_for(write, 5)
        ticker.cancel()
        rows = await IdempotencyRecord.select(IdempotencyRecord.idempotency_key)
        assert rows == [{"idempotency_key": "after-the-lock"}]
    other.close()


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
async def test_sqlite_gives_up_on_a_lock_after_the_busy_timeout(database_url: str, tmp_path: Path) -> None:
    import sqlite3

    from piccolo.engine.sqlite import TransactionType

    from caravan_commons.db_engines import ServiceSQLiteEngine

    migrate(database_url, tmp_path)
    engine = ServiceSQLiteEngine(str(Database(database_url, [APP_CONFIG]).engine.path), busy_timeout=0.2)  # type: ignore[attr-defined]
    other = sqlite3.connect(engine.path, isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    try:
        started = asyncio.get_running_loop().time()
        with pytest.raises(sqlite3.OperationalError, match="database is locked"):
            async with engine.transaction(TransactionType.immediate):
                pytest.fail("BEGIN IMMEDIATE cannot have gone through while another holds the lock")
        assert asyncio.get_running_loop().time() - started >= 0.2  # it did wait, then gave up
    finally:
        other.execute("ROLLBACK")
        other.close()
        await engine.close()
