"""svc-b's calls checked against the OpenAPI documents svc-a and svc-c publish (``<svc>/openapi.json``
in the repository, kept equal to what each serves by its own test): paths, methods, success and
handled statuses documented, required headers and parameters sent, the request bodies the
clients build valid there, and every answer decodable into the types the clients read."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from caravan_commons import contracts
from caravan_commons.contracts import Expectation
from caravan_commons.money import Money
from svc_b.infrastructure.clients import (
    PaymentAnswer,
    ProductPage,
    amount_body,
    authorize_body,
    reservation_body,
)
from svc_b.service_layer.ports import StockRequest

REPOSITORY = Path(__file__).resolve().parents[3]
KEY = ("Idempotency-Key",)
ORDER = "6f1c1f52-8a0e-4c59-9d55-5b3c0f4e2a71"
EUR = Money(12_900, "EUR")

CATALOG = [
    Expectation("GET", "/products", success=(200,), response=ProductPage, query=("sku", "limit", "cursor")),
    Expectation(
        "POST",
        "/reservations",
        success=(200, 201),
        request=reservation_body(ORDER, [StockRequest("TENT-2P", 2)]),
        headers=KEY,
        statuses=(404, 409),
    ),
    Expectation("POST", "/reservations/{order_id}/commit", success=(200,), headers=KEY, statuses=(404, 409)),
    Expectation("POST", "/reservations/{order_id}/release", success=(200,), headers=KEY, statuses=(404,)),
]
PAYMENTS = [
    Expectation(
        "POST",
        "/payments/authorize",
        success=(201,),
        response=PaymentAnswer,
        request=authorize_body(ORDER, EUR, "tok_approve"),
        headers=KEY,
        statuses=(409, 422, 502),
    ),
    Expectation(
        "POST",
        "/payments/{payment_id}/capture",
        success=(200,),
        request={"amount": amount_body(EUR)},
        headers=KEY,
        statuses=(409, 422),
    ),
    Expectation("POST", "/payments/{payment_id}/void", success=(200,), headers=KEY),
    Expectation(
        "POST",
        "/payments/{payment_id}/refund",
        success=(200,),
        request={"amount": amount_body(EUR)},
        headers=KEY,
    ),
]


def published(service: str) -> dict[str, Any]:
    document: dict[str, Any] = contracts.load_document(REPOSITORY / service / "openapi.json")
    return document


@pytest.mark.parametrize(("service", "expectations"), [("svc-a", CATALOG), ("svc-c", PAYMENTS)])
def test_our_calls_match_the_published_document(service: str, expectations: list[Any]) -> None:
    assert contracts.check_all(published(service), expectations) == []


def test_a_mismatch_is_reported() -> None:
    """The check can fail: a body field svc-a does not know, and a path it does not have."""
    document = published("svc-a")
    wrong = Expectation(
        "POST", "/reservations", success=(201,), request={"order_id": ORDER, "lines": [], "x": 1}
    )
    gone = Expectation("POST", "/reservations/{order_id}/ship")
    problems = contracts.check_all(document, [wrong, gone])
    assert any("x is not a field" in p for p in problems), problems
    assert any("no such path" in p for p in problems), problems
