"""The reservation API on a real Postgres (skipped with a reason when CARAVAN_TEST_POSTGRES_DSN is
not set): row locks, the Idempotency-Key's advisory lock and its record in the reservation's
transaction, the sweeper — the same answers as on SQLite."""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar.testing import TestClient
from repository.conftest import POSTGRES_ENV, throwaway_postgres  # tests/integration is on sys.path

from svc_a.bootstrap import build_app
from svc_a.config import Settings
from svc_a.infrastructure.db.migrate import migrate

from .conftest import add_product, assert_problem

pytestmark = pytest.mark.postgres


@pytest.fixture(scope="module")
def postgres_url() -> Iterator[str]:
    dsn = os.environ.get(POSTGRES_ENV, "")
    if not dsn:
        pytest.skip(f"{POSTGRES_ENV} is not set: no Postgres server to test against")
    with throwaway_postgres(dsn) as url:
        migrate(url)
        yield url


@pytest.fixture
def pg_client(postgres_url: str) -> Iterator[TestClient[Any]]:
    settings = Settings(
        trace_exporter="none",
        database_url=postgres_url,
        reservation_ttl_s=0.5,
        reservation_sweep_interval_s=0.05,
    )
    with TestClient(app=build_app(settings)) as client:
        yield client


def test_reserve_replay_settle_and_expire_on_postgres(pg_client: TestClient[Any]) -> None:
    add_product(pg_client, "PG-TENT", stock=5)
    order = {"order_id": "pg-1", "lines": [{"sku": "PG-TENT", "quantity": 2}]}
    key = {"Idempotency-Key": "pg-key-1"}
    first = pg_client.post("/reservations", json=order, headers=key)
    assert first.status_code == 201, first.text
    replay = pg_client.post("/reservations", json=order, headers=key)
    assert replay.status_code == 201 and replay.headers["idempotent-replayed"] == "true"
    assert replay.json() == first.json()
    assert_problem(pg_client.post("/reservations", json={**order, "order_id": "pg-2"}, headers=key), 422)
    assert pg_client.post("/reservations/pg-1/commit").json()["status"] == "committed"
    assert pg_client.get("/stock/PG-TENT").json()["on_hand"] == 3
    assert pg_client.post("/reservations/pg-1/release").json()["status"] == "released"
    assert pg_client.get("/stock/PG-TENT").json() == {
        "sku": "PG-TENT",
        "on_hand": 5,
        "reserved": 0,
        "available": 5,
    }

    assert pg_client.post("/reservations", json={**order, "order_id": "pg-3"}).status_code == 201
    deadline = time.monotonic() + 30  # a bound for a hung loop, not a timing assertion
    while pg_client.get("/reservations/pg-3").json()["status"] == "held" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert pg_client.get("/reservations/pg-3").json()["status"] == "released"
    assert pg_client.get("/stock/PG-TENT").json()["reserved"] == 0


def test_concurrent_requests_for_the_last_units_on_postgres(pg_client: TestClient[Any]) -> None:
    add_product(pg_client, "PG-LAMP", stock=1)

    def reserve(n: int) -> int:
        body = {"order_id": f"pg-lamp-{n}", "lines": [{"sku": "PG-LAMP", "quantity": 1}]}
        return pg_client.post("/reservations", json=body).status_code

    with ThreadPoolExecutor(max_workers=4) as pool:
        statuses = sorted(pool.map(reserve, range(4)))
    assert statuses == [201, 409, 409, 409]
    assert pg_client.get("/stock/PG-LAMP").json()["reserved"] == 1
