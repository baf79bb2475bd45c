"""Orders through the gateway, against the running system (svc-a, svc-b and svc-c deployed, the
demo catalogue loaded). The stage-9 gate "API working through the gateway" runs this folder with
the variables RuntimeAccess reads; normal runs do not collect it (norecursedirs).

Every run uses fresh Idempotency-Keys (so fresh orders): the gate runs it again and again on the
same databases. Stock is compared before and after on the same SKU; nothing else orders it
during the gate.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from caravan_commons.testing import RuntimeAccess

APPROVE, DECLINE = "tok_approve", "tok_decline"
#: ``Prefer: wait=N`` on every order: svc-b answers the final order (201) when its saga ends within
#: N seconds (never past the request's own deadline), else 202 — within the client's 30 s timeout
PLACE_WAIT_S = 20


@pytest.fixture(scope="module")
def access() -> RuntimeAccess:
    return RuntimeAccess.from_env()


@pytest.fixture(scope="module")
def http() -> Iterator[httpx.Client]:
    with httpx.Client(timeout=30.0) as client:
        yield client


class Shop:
    def __init__(self, access: RuntimeAccess, http: httpx.Client) -> None:
        self.access = access
        self.http = http

    def headers(self, key: str | None = None) -> dict[str, str]:
        return RuntimeAccess.key_header(key or self.access.customer_key)

    def place(
        self, sku: str, token: str, *, quantity: int = 1, idempotency_key: str | None = None
    ) -> httpx.Response:
        headers = self.headers()
        # the final order, not "accepted, still moving" (202), even on a busy machine (RFC 7240)
        headers["Prefer"] = f"wait={PLACE_WAIT_S}"
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        body = {"lines": [{"sku": sku, "quantity": quantity}], "payment": {"card_token": token}}
        return self.http.post(self.access.api("svc-b", "/orders"), json=body, headers=headers)

    def order(self, order_id: str, key: str | None = None) -> httpx.Response:
        return self.http.get(self.access.api("svc-b", f"/orders/{order_id}"), headers=self.headers(key))

    def available(self, sku: str) -> int:
        response = self.http.get(self.access.api("svc-a", f"/stock/{sku}"), headers=self.headers())
        assert response.status_code == 200, response.text
        return int(response.json()["available"])

    def reservation(self, order_id: str) -> dict[str, Any]:
        """Read as an operator: customers read no reservation (403)."""
        response = self.http.get(
            self.access.api("svc-a", f"/reservations/{order_id}"),
            headers=self.headers(self.access.operator_key),
        )
        assert response.status_code == 200, response.text
        return dict(response.json())


@pytest.fixture(scope="module")
def shop(access: RuntimeAccess, http: httpx.Client) -> Shop:
    return Shop(access, http)


@pytest.fixture(scope="module")
def sku(shop: Shop) -> str:
    """An active product of the demo catalogue with a few units to spare, listed through the gateway."""
    response = shop.http.get(shop.access.api("svc-a", "/products"), headers=shop.headers())
    assert response.status_code == 200, response.text
    for product in response.json()["items"]:
        if product["active"] and shop.available(product["sku"]) >= 3:
            return str(product["sku"])
    pytest.fail(f"the demo catalogue has no active product with stock: {response.text[:500]}")


def test_an_order_with_an_approving_card_is_confirmed(shop: Shop, sku: str) -> None:
    before = shop.available(sku)
    response = shop.place(sku, APPROVE, idempotency_key=str(uuid.uuid4()))
    assert response.status_code == 201, response.text
    assert response.headers["preference-applied"] == f"wait={PLACE_WAIT_S}"
    order = response.json()
    assert (order["status"], order["stock"], order["payment"]) == ("confirmed", "committed", "captured"), (
        order
    )
    assert order["lines"][0]["sku"] == sku
    read = shop.order(order["id"])
    assert read.status_code == 200, read.text
    assert read.json()["status"] == "confirmed"
    assert shop.reservation(order["id"])["status"] == "committed"
    assert shop.available(sku) == before - 1


def test_a_declined_card_cancels_the_order_and_releases_the_stock(shop: Shop, sku: str) -> None:
    before = shop.available(sku)
    response = shop.place(sku, DECLINE, idempotency_key=str(uuid.uuid4()))
    assert response.status_code == 201, response.text
    order = response.json()
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_declined"), order
    assert order["stock"] == "released"
    assert shop.reservation(order["id"])["status"] == "released"
    assert shop.available(sku) == before


def test_another_customer_cannot_read_the_order(shop: Shop, sku: str) -> None:
    order = shop.place(sku, DECLINE, idempotency_key=str(uuid.uuid4())).json()
    assert shop.order(order["id"]).status_code == 200
    other = shop.order(order["id"], key=shop.access.other_customer_key)
    assert other.status_code == 404, other.text
    assert other.headers["content-type"].startswith("application/problem+json")


def test_placing_without_an_idempotency_key_is_400(shop: Shop, sku: str) -> None:
    response = shop.place(sku, APPROVE)
    assert response.status_code == 400, response.text
    assert "Idempotency-Key" in response.json()["detail"]


def test_a_replay_with_the_same_key_answers_the_same_order(shop: Shop, sku: str) -> None:
    key = str(uuid.uuid4())
    before = shop.available(sku)
    first = shop.place(sku, APPROVE, idempotency_key=key)
    again = shop.place(sku, APPROVE, idempotency_key=key)
    assert first.status_code == again.status_code == 201, (first.text, again.text)
    assert again.json() == first.json()
    assert again.headers.get("idempotent-replayed") == "true"
    assert shop.available(sku) == before - 1  # one order, one unit
    other_body = shop.place(sku, APPROVE, quantity=2, idempotency_key=key)
    assert other_body.status_code == 422, other_body.text


def test_cancelling_a_confirmed_order_refunds_and_releases(shop: Shop, sku: str) -> None:
    before = shop.available(sku)
    order = shop.place(sku, APPROVE, idempotency_key=str(uuid.uuid4())).json()
    assert order["status"] == "confirmed", order
    response = shop.http.post(
        shop.access.api("svc-b", f"/orders/{order['id']}/cancel"), headers=shop.headers()
    )
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert (cancelled["status"], cancelled["cancel_reason"], cancelled["payment"]) == (
        "cancelled",
        "customer_cancelled",
        "refunded",
    )
    assert shop.available(sku) == before


def test_the_customer_lists_their_own_orders(shop: Shop, sku: str) -> None:
    order = shop.place(sku, DECLINE, idempotency_key=str(uuid.uuid4())).json()
    mine = shop.http.get(shop.access.api("svc-b", "/orders"), params={"limit": 5}, headers=shop.headers())
    assert mine.status_code == 200, mine.text
    assert order["id"] in [item["id"] for item in mine.json()["items"]]
    theirs = shop.http.get(
        shop.access.api("svc-b", "/orders"),
        params={"limit": 100},
        headers=shop.headers(shop.access.other_customer_key),
    )
    assert order["id"] not in [item["id"] for item in theirs.json()["items"]]
