"""The OpenAPI document states the contract svc-b builds against: paths, statuses, the key header."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar
from litestar.testing import TestClient

EXPECTED = {
    ("post", "/payments/authorize"): {"201", "400", "401", "403", "409", "422", "500", "502", "504"},
    ("post", "/payments/{payment_id}/capture"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "422",
        "500",
        "504",
    },
    ("post", "/payments/{payment_id}/void"): {"200", "400", "401", "403", "404", "409", "422", "500", "504"},
    ("post", "/payments/{payment_id}/refund"): {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "422",
        "500",
        "504",
    },
    ("get", "/payments/{payment_id}"): {"200", "400", "401", "403", "404", "500", "504"},
    ("get", "/ledger/balances"): {"200", "401", "403", "500", "504"},
}


@pytest.fixture
def document(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/schema/openapi.json")
    assert response.status_code == 200
    return response.json()  # type: ignore[no-any-return]


@pytest.mark.parametrize(("method", "path"), sorted(EXPECTED))
def test_every_answer_is_documented(document: dict[str, Any], method: str, path: str) -> None:
    operation = document["paths"][path][method]
    assert set(operation["responses"]) == EXPECTED[(method, path)]
    for status, response in operation["responses"].items():
        if status[0] in "45":
            assert "application/problem+json" in response["content"]


def test_the_idempotency_key_is_required_only_to_authorise(document: dict[str, Any]) -> None:
    def key(method: str, path: str) -> dict[str, Any]:
        params = document["paths"][path][method].get("parameters", [])
        return next(p for p in params if p["name"] == "Idempotency-Key")

    assert key("post", "/payments/authorize")["required"] is True
    for action in ("capture", "void", "refund"):
        assert key("post", f"/payments/{{payment_id}}/{action}")["required"] is False


def test_the_authorisation_links_to_the_payment(document: dict[str, Any]) -> None:
    links = document["paths"]["/payments/authorize"]["post"]["responses"]["201"]["links"]
    assert {link["operationId"] for link in links.values()} == {
        "getPayment",
        "capturePayment",
        "voidPayment",
        "refundPayment",
    }
