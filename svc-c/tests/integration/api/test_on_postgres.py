"""The API's money movements and Idempotency-Key records on Postgres (advisory locks, one
transaction for the movement and the stored answer); skipped unless CARAVAN_TEST_POSTGRES_DSN
names a server, where a throwaway database is created and dropped."""

from __future__ import annotations

import asyncio
import os
import secrets
from collections.abc import Iterator
from urllib.parse import urlsplit, urlunsplit

import pytest
from api_support import OPERATOR, assert_problem, authorize, balances, eur, new_key
from litestar import Litestar
from litestar.testing import TestClient

from svc_c.bootstrap import build_app
from svc_c.config import Settings
from svc_c.infrastructure.db.migrate import migrate

DSN_ENV = "CARAVAN_TEST_POSTGRES_DSN"


async def _admin(dsn: str, sql: str) -> None:
    import asyncpg  # the postgres extra

    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


@pytest.fixture
def pg_client() -> Iterator[TestClient[Litestar]]:
    dsn = os.environ.get(DSN_ENV)
    if not dsn:
        pytest.skip(f"{DSN_ENV} is not set (no Postgres server to test on)")
    name = f"svc_c_api_{secrets.token_hex(6)}"
    asyncio.run(_admin(dsn, f'CREATE DATABASE "{name}"'))
    try:
        url = urlunsplit(urlsplit(dsn)._replace(path=f"/{name}"))
        migrate(url)
        app = build_app(Settings(trace_exporter="none", database_url=url, processor_slow_delay_s=0.01))
        with TestClient(app=app) as client:
            yield client
    finally:
        asyncio.run(_admin(dsn, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_round_trip_with_replays_on_postgres(pg_client: TestClient[Litestar]) -> None:
    client = pg_client
    assert client.get("/health/ready").status_code == 200
    key = new_key()
    first = authorize(client, 1500, key=key, order_id="order-pg")
    assert first.status_code == 201, first.text
    replay = authorize(client, 1500, key=key, order_id="order-pg")
    assert replay.json() == first.json()
    assert replay.headers.get("Idempotent-Replayed") == "true"
    assert_problem(authorize(client, 1499, key=key, order_id="order-pg"), 422)

    pid = first.json()["id"]
    capture_key = new_key()
    for _ in range(2):
        captured = client.post(
            f"/payments/{pid}/capture", json={"amount": eur(1500)}, headers={"Idempotency-Key": capture_key}
        )
        assert captured.status_code == 200, captured.text
    refund_key = new_key()
    for _ in range(2):
        refunded = client.post(
            f"/payments/{pid}/refund", json={"amount": eur(500)}, headers={"Idempotency-Key": refund_key}
        )
        assert refunded.status_code == 200, refunded.text
    assert_problem(
        client.post(
            f"/payments/{pid}/refund", json={"amount": eur(1001)}, headers={"Idempotency-Key": new_key()}
        ),
        409,
        "refund-exceeds-captured",
    )
    payment = client.get(f"/payments/{pid}", headers=OPERATOR).json()
    assert payment["captured"] == eur(1500) and payment["refunded"] == eur(500)
    assert [m["kind"] for m in payment["movements"]] == ["authorize", "capture", "refund"]
    assert balances(client)["balanced"] is True
