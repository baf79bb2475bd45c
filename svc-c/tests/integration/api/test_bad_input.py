"""Every bad input is a 4xx problem+json, never a 500, and changes nothing."""

from __future__ import annotations

import pytest
from api_support import OPERATOR, assert_problem, authorize, authorized, balances, eur, new_key
from litestar import Litestar
from litestar.testing import TestClient

GOOD = '"order_id": "o-1", "card_token": "tok_approve"'


@pytest.mark.parametrize(
    "body",
    [
        b"{" + GOOD.encode() + b', "amount": {"amount": 0, "currency": "EUR"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": -5, "currency": "EUR"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 1.5, "currency": "EUR"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": "10", "currency": "EUR"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 10000000000000001, "currency": "EUR"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 10, "currency": "eur"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 10, "currency": "XXX"}}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 10}}',
        b"{" + GOOD.encode() + b', "amount": 10}',
        b"{" + GOOD.encode() + b', "amount": {"amount": 10, "currency": "EUR"}, "tip": 1}',
        b'{"order_id": "o-1", "amount": {"amount": 10, "currency": "EUR"}}',
        b'{"order_id": "", "card_token": "tok_approve", "amount": {"amount": 10, "currency": "EUR"}}',
        b'{"order_id": "'
        + b"o" * 101
        + b'", "card_token": "tok_approve", "amount": {"amount": 10, "currency": "EUR"}}',
        b'{"order_id": "o-1", "card_token": "", "amount": {"amount": 10, "currency": "EUR"}}',
        b'{"order_id": "o-1", "card_token": "tok_approve", "amount": {"amount": 10, "currency": "EUR"}',
        b"[]",
        b"",
        b"not json",
    ],
)
def test_bad_authorise_bodies_are_400(client: TestClient[Litestar], body: bytes) -> None:
    response = client.post(
        "/payments/authorize",
        content=body,
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert_problem(response, 400)
    assert balances(client) == {"balances": [], "balanced": True}


def test_authorise_without_an_idempotency_key_is_400_naming_the_header(client: TestClient[Litestar]) -> None:
    response = client.post(
        "/payments/authorize",
        json={"order_id": "o", "amount": eur(10), "card_token": "tok_approve"},
    )
    document = assert_problem(response, 400, "validation-error")
    assert "Idempotency-Key" in document["detail"]


@pytest.mark.parametrize("key", ['""', "", "a b", "x" * 256, '"unterminated', "tab\there"])
def test_malformed_idempotency_keys_are_400(client: TestClient[Litestar], key: str) -> None:
    assert_problem(authorize(client, key=key), 400)


@pytest.mark.parametrize("operation", ["capture", "refund"])
@pytest.mark.parametrize(
    ("amount", "status", "slug"),
    [
        ({"amount": 100, "currency": "USD"}, 422, "payment-currency-mismatch"),  # the payment is in EUR
        ({"amount": 0, "currency": "EUR"}, 400, "validation-error"),
        ({"amount": -100, "currency": "EUR"}, 400, "validation-error"),
        ({"amount": 100, "currency": "XYZ"}, 400, "validation-error"),
    ],
)
def test_bad_amounts_on_a_payment_are_refused(
    client: TestClient[Litestar], operation: str, amount: dict[str, object], status: int, slug: str
) -> None:
    pid = authorized(client, 1000)["id"]
    if operation == "refund":
        client.post(f"/payments/{pid}/capture", json={"amount": eur(1000)})
    before = client.get(f"/payments/{pid}", headers=OPERATOR).json()
    assert_problem(client.post(f"/payments/{pid}/{operation}", json={"amount": amount}), status, slug)
    assert client.get(f"/payments/{pid}", headers=OPERATOR).json() == before


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/payments/no-such-payment", None),
        ("POST", "/payments/no-such-payment/capture", {"amount": eur(10)}),
        ("POST", "/payments/no-such-payment/void", None),
        ("POST", "/payments/no-such-payment/refund", {"amount": eur(10)}),
    ],
)
@pytest.mark.parametrize("with_key", [False, True])
def test_an_unknown_payment_is_404(
    client: TestClient[Litestar], method: str, path: str, body: object, with_key: bool
) -> None:
    headers = {"Idempotency-Key": new_key()} if with_key else {}
    response = client.request(method, path, json=body, headers={**OPERATOR, **headers})
    assert_problem(response, 404, "payment-not-found")


@pytest.mark.parametrize(
    "body", [b"{", b'{"amount": {"amount": 5, "currency": "EUR"}, "extra": true}', b"{}", b"null"]
)
def test_bad_capture_bodies_are_400(client: TestClient[Litestar], body: bytes) -> None:
    pid = authorized(client)["id"]
    response = client.post(
        f"/payments/{pid}/capture", content=body, headers={"Content-Type": "application/json"}
    )
    assert_problem(response, 400)


def test_a_too_long_payment_id_is_400(client: TestClient[Litestar]) -> None:
    assert_problem(client.get("/payments/" + "p" * 65, headers=OPERATOR), 400)


def test_a_malformed_deadline_header_is_400(client: TestClient[Litestar]) -> None:
    assert_problem(authorize(client, headers={"X-Request-Timeout-Ms": "soon"}), 400)


def test_an_unsupported_method_is_405(client: TestClient[Litestar]) -> None:
    assert_problem(client.put("/payments/authorize", json={}), 405)
