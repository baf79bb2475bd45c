"""Helpers of the in-process API tests (fixtures are in conftest.py)."""

from __future__ import annotations

import uuid
from typing import Any

from litestar import Litestar
from litestar.testing import TestClient

OPERATOR = {"X-Caravan-Scopes": "operator", "X-Caravan-Customer": "ops"}


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def new_key() -> str:
    return f"key-{uuid.uuid4()}"


def authorize(
    client: TestClient[Litestar],
    amount: int = 1000,
    token: str = "tok_approve",
    *,
    key: str | None = None,
    order_id: str | None = None,
    headers: dict[str, str] | None = None,
) -> Any:
    body = {"order_id": order_id or f"order-{uuid.uuid4()}", "amount": eur(amount), "card_token": token}
    return client.post(
        "/payments/authorize",
        json=body,
        headers={"Idempotency-Key": new_key() if key is None else key, **(headers or {})},
    )


def authorized(client: TestClient[Litestar], amount: int = 1000) -> dict[str, Any]:
    response = authorize(client, amount)
    assert response.status_code == 201, response.text
    return response.json()  # type: ignore[no-any-return]


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    document = response.json()
    assert document["status"] == status
    if slug is not None:
        assert document["type"] == f"https://caravan.dev/problems/{slug}"
    return document  # type: ignore[no-any-return]


def balances(client: TestClient[Litestar]) -> dict[str, Any]:
    response = client.get("/ledger/balances", headers=OPERATOR)
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def balance(client: TestClient[Litestar], account: str, currency: str = "EUR") -> int:
    for row in balances(client)["balances"]:
        if row["account"] == account and row["balance"]["currency"] == currency:
            return int(row["balance"]["amount"])
    return 0
