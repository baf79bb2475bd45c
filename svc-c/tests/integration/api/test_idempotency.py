"""Idempotency-Key on the money movements: replay, 422 for another request, 409 while in flight,
400 when authorise has none; a replay never moves money twice."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
from api_support import OPERATOR, assert_problem, authorize, authorized, balance, balances, eur, new_key
from litestar import Litestar
from litestar.testing import TestClient

from svc_c.domain.processor import SimulatedProcessor


def test_the_same_authorisation_replays_the_first_answer(client: TestClient[Litestar]) -> None:
    key = new_key()
    first = authorize(client, 1000, key=key, order_id="order-r")
    again = authorize(client, 1000, key=key, order_id="order-r")
    assert first.status_code == again.status_code == 201
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert balance(client, "card_holds") == 1000  # held once


def test_a_quoted_key_is_the_same_key(client: TestClient[Litestar]) -> None:
    first = authorize(client, 500, key="plain-key-1", order_id="order-q")
    again = authorize(client, 500, key='"plain-key-1"', order_id="order-q")
    assert again.json()["id"] == first.json()["id"]


def test_a_declined_authorisation_replays_declined(client: TestClient[Litestar]) -> None:
    key = new_key()
    first = authorize(client, 300, "tok_decline", key=key, order_id="order-d")
    again = authorize(client, 300, "tok_decline", key=key, order_id="order-d")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.json()["status"] == "declined"


def test_the_key_with_another_request_is_422(client: TestClient[Litestar]) -> None:
    key = new_key()
    first = authorize(client, 1000, key=key, order_id="order-x")
    assert first.status_code == 201
    for response in (
        authorize(client, 999, key=key, order_id="order-x"),  # another amount
        authorize(client, 1000, key=key, order_id="order-y"),  # another order
        authorize(client, 1000, "tok_decline", key=key, order_id="order-x"),  # another card
        client.post(
            f"/payments/{first.json()['id']}/capture",
            json={"amount": eur(10)},
            headers={"Idempotency-Key": key},
        ),
    ):
        assert_problem(response, 422)
    assert balance(client, "card_holds") == 1000


def test_a_capture_retried_with_its_key_moves_money_once(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    key = new_key()
    first = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(1000)}, headers={"Idempotency-Key": key}
    )
    again = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(1000)}, headers={"Idempotency-Key": key}
    )
    assert first.status_code == again.status_code == 200
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"
    assert balance(client, "processor_receivable") == 1000
    other_amount = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(999)}, headers={"Idempotency-Key": key}
    )
    assert_problem(other_amount, 422)


def test_a_refund_retried_with_its_key_refunds_once(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    client.post(f"/payments/{pid}/capture", json={"amount": eur(1000)})
    key = new_key()
    for _ in range(3):
        response = client.post(
            f"/payments/{pid}/refund", json={"amount": eur(250)}, headers={"Idempotency-Key": key}
        )
        assert response.status_code == 200
        assert response.json()["refunded"] == eur(250)
    assert client.get(f"/payments/{pid}", headers=OPERATOR).json()["refunded"] == eur(250)
    assert balance(client, "processor_receivable") == 750


def test_a_void_retried_with_its_key_replays(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    key = new_key()
    first = client.post(f"/payments/{pid}/void", headers={"Idempotency-Key": key})
    again = client.post(f"/payments/{pid}/void", headers={"Idempotency-Key": key})
    assert again.json() == first.json()
    assert again.headers.get("Idempotent-Replayed") == "true"


def test_a_failed_movement_stores_nothing_under_its_key(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    key = new_key()
    too_much = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(2000)}, headers={"Idempotency-Key": key}
    )
    assert_problem(too_much, 409, "capture-exceeds-authorized")
    # the error was not stored: the corrected request under the same key runs
    fixed = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(2000)}, headers={"Idempotency-Key": key}
    )
    assert_problem(fixed, 409, "capture-exceeds-authorized")
    ok = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(1000)}, headers={"Idempotency-Key": new_key()}
    )
    assert ok.status_code == 200


class HeldProcessor(SimulatedProcessor):
    """The simulated processor whose slow token waits until the test lets it answer."""

    def __init__(self) -> None:
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

        async def sleep(_seconds: float) -> None:
            self.entered.set()
            await self.release.wait()

        super().__init__(slow_delay=1.0, sleep=sleep)


async def test_the_same_key_while_the_first_is_in_flight_is_409(app: Litestar) -> None:
    held = HeldProcessor()
    app.state.payments.processor = held
    body: dict[str, Any] = {"order_id": "order-f", "amount": eur(400), "card_token": "tok_slow"}
    headers = {"Idempotency-Key": new_key()}
    # httpx's ASGI transport serves the app in this test's event loop, so the events above are shared
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://svc-c") as client:
        first = asyncio.create_task(client.post("/payments/authorize", json=body, headers=headers))
        async with asyncio.timeout(60):  # a guard against a hang, not a speed assertion
            await held.entered.wait()  # the first request is with the processor
        twin = await client.post("/payments/authorize", json=body, headers=headers)
        assert_problem(twin, 409, "conflict")
        held.release.set()
        done = await first
        assert done.status_code == 201
        replay = await client.post("/payments/authorize", json=body, headers=headers)
        assert replay.json() == done.json()
        ledger = await client.get("/ledger/balances", headers={"X-Caravan-Scopes": "operator"})
        assert {b["account"]: b["balance"]["amount"] for b in ledger.json()["balances"]}["card_holds"] == 400


def test_balances_stay_balanced_after_every_kind_of_movement(client: TestClient[Litestar]) -> None:
    for amount in (100, 250, 999):
        pid = authorized(client, amount)["id"]
        client.post(f"/payments/{pid}/capture", json={"amount": eur(amount)})
        client.post(f"/payments/{pid}/refund", json={"amount": eur(amount // 2)})
    client.post(f"/payments/{authorized(client, 70)['id']}/void")
    assert balances(client)["balanced"] is True
