"""IdempotencyStore on a real SQLite file and a real Postgres database (same transaction as the effect)."""

# ruff: noqa: F811 - pytest fixtures imported from db_fixtures are parameters here

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from db_fixtures import ENGINES, create_notes_table, database_url, migrated_db, notes_in  # noqa: F401 - fixtures
from piccolo.querystring import QueryString

from caravan_commons.db import Database, rows_as_dicts
from caravan_commons.errors import ConflictError, NotFoundError, UnprocessableError
from caravan_commons.idempotency import IdempotencyStore, fingerprint, sweep_expired

pytestmark = pytest.mark.parametrize("database_url", ENGINES, indirect=True)

BODY = b'{"sku": "A-1", "quantity": 2}'
FP = fingerprint("POST", "/reservations", BODY)


class Clock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def db(migrated_db: Database) -> Database:
    return await create_notes_table(migrated_db, "effects")


async def effects(db: Database) -> list[str]:
    return await notes_in(db, "effects")


async def handle(
    db: Database, store: IdempotencyStore, key: str, fp: str, note: str
) -> tuple[int, bytes, bool]:
    """A POST handler's unit of work: effect + idempotency record in one transaction."""
    async with db.transaction() as txn, store.begin(key, fp, txn) as slot:
        if slot.replay is not None:
            return slot.replay.status, slot.replay.body, True
        await db.engine.run_querystring(QueryString("INSERT INTO effects (note) VALUES ({})", note))
        body = f'{{"reservation": "{note}"}}'.encode()
        slot.complete(201, body, {"Location": f"/reservations/{note}", "X-Request-Id": "not-kept"})
        return 201, body, False


async def test_same_key_and_payload_replays_the_stored_response(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    first = await handle(db, store, "key-1", FP, "r1")
    second = await handle(db, store, "key-1", FP, "r2")
    assert first == (201, b'{"reservation": "r1"}', False)
    assert second == (201, b'{"reservation": "r1"}', True)
    assert await effects(db) == ["r1"]  # the effect happened once

    async with db.transaction() as txn, store.begin("key-1", FP, txn) as slot:
        assert slot.replay is not None
        assert slot.replay.headers == {"location": "/reservations/r1", "content-type": "application/json"}
        response = slot.replay.to_response()
    assert response.status_code == 201 and response.headers["Idempotent-Replayed"] == "true"


async def test_same_key_with_a_different_payload_is_422(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    await handle(db, store, "key-2", FP, "r1")
    other = fingerprint("POST", "/reservations", b'{"sku": "A-1", "quantity": 3}')
    with pytest.raises(UnprocessableError, match="different request") as info:
        await handle(db, store, "key-2", other, "r2")
    assert info.value.status == 422
    assert await effects(db) == ["r1"]


async def test_a_key_still_in_flight_is_409(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    inside, release = asyncio.Event(), asyncio.Event()

    async def slow_first() -> None:
        async with db.transaction() as txn, store.begin("key-3", FP, txn) as slot:
            inside.set()
            await release.wait()
            slot.complete(201, b"{}")

    first = asyncio.create_task(slow_first())
    await asyncio.wait_for(inside.wait(), timeout=10)
    if not db.is_postgres:
        # SQLite (commons' one writer): the twin queues behind the first's write transaction and
        # then gets its stored answer
        twin = asyncio.create_task(handle(db, store, "key-3", FP, "twin"))
        await asyncio.sleep(0.1)
        assert not twin.done()
        release.set()
        await asyncio.wait_for(first, timeout=10)
        assert (await asyncio.wait_for(twin, timeout=10))[2] is True
        return
    with pytest.raises(ConflictError, match="still being processed") as info:
        await handle(db, store, "key-3", FP, "twin")
    assert info.value.status == 409
    release.set()
    await asyncio.wait_for(first, timeout=10)
    # once the first committed, the twin gets the stored answer
    assert (await handle(db, store, "key-3", FP, "late"))[2] is True
    assert await effects(db) == []


async def test_an_error_inside_the_unit_of_work_stores_nothing_and_rolls_back(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    with pytest.raises(NotFoundError):
        async with db.transaction() as txn, store.begin("key-4", FP, txn):
            await db.engine.run_querystring(QueryString("INSERT INTO effects (note) VALUES ({})", "lost"))
            raise NotFoundError("no such product")
    assert await effects(db) == []
    assert (await handle(db, store, "key-4", FP, "retried")) == (201, b'{"reservation": "retried"}', False)
    assert await effects(db) == ["retried"]


async def test_forgetting_complete_is_an_error_and_rolls_back(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    with pytest.raises(RuntimeError, match=r"slot.complete"):
        async with db.transaction() as txn, store.begin("key-5", FP, txn):
            await db.engine.run_querystring(QueryString("INSERT INTO effects (note) VALUES ({})", "x"))
    assert await effects(db) == []


async def test_begin_outside_its_transaction_is_refused(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    async with db.transaction() as txn:
        pass
    with pytest.raises(RuntimeError, match="inside the transaction"):
        async with store.begin("key-6", FP, txn):
            pass


async def test_keys_expire_after_the_ttl_and_the_sweeper_deletes_them(db: Database) -> None:
    clock = Clock()
    store = IdempotencyStore(db.engine, ttl=timedelta(hours=24), clock=clock)
    await handle(db, store, "old", FP, "r1")
    clock.now += 3600
    await handle(db, store, "young", FP, "r2")
    other = fingerprint("POST", "/reservations", b"{}")

    clock.now += 23 * 3600 + 1  # "old" is 24h+1s old, "young" 23h+1s
    assert await sweep_expired(db.engine, now=clock.now) == 1
    assert await store.sweep() == 0
    # the expired key is free again (no 422), the young one still guards its payload
    assert (await handle(db, store, "old", other, "r3"))[2] is False
    with pytest.raises(UnprocessableError):
        await handle(db, store, "young", other, "r4")
    assert await effects(db) == ["r1", "r2", "r3"]


async def test_scoped_keys_do_not_collide(db: Database) -> None:
    store = IdempotencyStore(db.engine)
    for scope, note in (("svc-b", "from-b"), ("gateway", "from-gw")):
        async with db.transaction() as txn, store.begin("same", FP, txn, scope=scope) as slot:
            assert slot.replay is None
            await db.engine.run_querystring(QueryString("INSERT INTO effects (note) VALUES ({})", note))
            slot.complete(201, b"{}")
    assert await effects(db) == ["from-b", "from-gw"]


async def test_the_sweeper_lifespan_deletes_expired_keys(db: Database) -> None:
    clock = Clock()
    store = IdempotencyStore(db.engine, ttl=timedelta(seconds=60), clock=clock)
    await handle(db, store, "short-lived", FP, "r1")
    clock.now += 61
    async with store.sweeper(interval=0.01):
        for _ in range(500):  # wait for the outcome, not for a duration
            rows = await db.engine.run_querystring(
                QueryString("SELECT COUNT(*) AS n FROM caravan_idempotency")
            )
            if rows_as_dicts(rows)[0]["n"] == 0:
                break
            await asyncio.sleep(0.01)
    assert rows_as_dicts(rows)[0]["n"] == 0
