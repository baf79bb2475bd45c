"""The order sweeper runs with the app: svc-b as a real process, its upstreams fakes of
svc-a's and svc-c's documented contracts on loopback (tests/upstream_fakes.py). An order whose
capture could not reach payments is answered half-way (202 ``payment_authorized``); once payments
is back, the sweeper — not a request — confirms it when it is due, capturing once."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from upstream_fakes import FakeCatalogService, FakePaymentsService, serving

from caravan_commons.testing import run_module, served

CUSTOMER = {"X-Caravan-Customer": "recovery"}


@pytest.fixture
def upstreams() -> Iterator[tuple[FakeCatalogService, FakePaymentsService]]:
    """The fakes served from an event loop of their own (the test itself blocks)."""
    catalog = FakeCatalogService(
        products={"TENT-2P": {"price": {"amount": 12_900, "currency": "EUR"}}}, stock={"TENT-2P": 5}
    )
    payments = FakePaymentsService()
    loop = asyncio.new_event_loop()
    started, stop = threading.Event(), asyncio.Event()

    async def run() -> None:
        async with serving(catalog, payments):
            started.set()
            await stop.wait()

    thread = threading.Thread(target=loop.run_until_complete, args=(run(),), daemon=True)
    thread.start()
    assert started.wait(10)
    try:
        yield catalog, payments
    finally:
        loop.call_soon_threadsafe(stop.set)
        thread.join(10)


def test_the_background_loop_finishes_an_order_left_half_way(
    tmp_path: Path, upstreams: tuple[FakeCatalogService, FakePaymentsService]
) -> None:
    catalog, payments = upstreams
    url = f"sqlite:///{tmp_path}/db.sqlite3"
    assert (
        run_module("svc_b.infrastructure.db.migrate", tmp_path, {"CARAVAN_DATABASE_URL": url}).returncode == 0
    )
    env = {
        "CARAVAN_DATABASE_URL": url,
        "CARAVAN_DISCOVERY_BACKEND": "static",
        "CARAVAN_UPSTREAM_SVC_A": catalog.url,
        "CARAVAN_UPSTREAM_SVC_C": payments.url,
        "CARAVAN_SWEEP_INTERVAL_S": "0.2",
        "CARAVAN_SAGA_RETRY_DEADLINE_S": "1",
    }
    payments.down.add("/capture")
    with (
        served("svc_b", tmp_path, env) as service,
        httpx.Client(base_url=f"http://127.0.0.1:{service.port}") as http,
    ):
        placed = http.post(
            "/orders",
            json={"lines": [{"sku": "TENT-2P", "quantity": 2}], "payment": {"card_token": "tok_approve"}},
            headers={**CUSTOMER, "Idempotency-Key": str(uuid.uuid4())},
            timeout=30,
        )
        assert placed.status_code == 202, placed.text  # accepted, still moving
        order = placed.json()
        assert (order["status"], order["stock"], order["payment"]) == (
            "payment_authorized",
            "committed",
            "authorized",
        )
        payments.down.clear()
        status = order["status"]
        for _ in range(300):  # the sweeper runs every 0.2 s, the order is due 2 s after its wait began
            status = http.get(f"/orders/{order['id']}", headers=CUSTOMER).json()["status"]
            if status == "confirmed":
                break
            time.sleep(0.1)
        assert status == "confirmed"
    captures = [r for r in payments.requests if r.path.endswith("/capture")]
    assert [p["status"] for p in payments.payments.values()] == ["captured"]
    assert all(r.headers["Idempotency-Key"] == f'"order-{order["id"]}-capture"' for r in captures)
    assert catalog.reservations[order["id"]]["status"] == "committed"
    assert catalog.stock["TENT-2P"] == 3
