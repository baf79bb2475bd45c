"""API5:2023 Broken Function Level Authorization — operator functions, svc-b-only movements,
and the scopes a client or a replayed assertion would claim."""

from __future__ import annotations

import uuid

import httpx
import pytest
from attack import Attacker, assert_problem, gateway_signer, instance_url
from system import System

PRODUCT = {"sku": "SEC-FLA", "name": "x", "price": {"amount": 1, "currency": "EUR"}, "initial_stock": 1}


@pytest.mark.parametrize(
    ("method", "path", "body", "detail"),
    [
        ("POST", "/api/svc-a/products", PRODUCT, "this operation needs the 'operator' scope"),
        ("PATCH", "/api/svc-a/products/SEC-FLA", {"name": "y"}, "this operation needs the 'operator' scope"),
        ("POST", "/api/svc-a/stock/SEC-FLA/restock", {"quantity": 5},
         "this operation needs the 'operator' scope"),
        ("POST", "/api/svc-a/reservations", {"order_id": str(uuid.uuid4()), "lines": []},
         "POST /reservations is not open to this caller"),
        ("POST", f"/api/svc-a/reservations/{uuid.uuid4()}/commit", None,
         "POST /reservations/{id}/commit is not open to this caller"),
        ("POST", "/api/svc-c/payments/authorize", {}, "POST /payments/authorize is not open to this caller"),
        ("POST", f"/api/svc-c/payments/{uuid.uuid4()}/refund", {},
         "POST /payments/{id}/refund is not open to this caller"),
        ("GET", "/api/svc-c/ledger/balances", None, "this operation needs the 'operator' scope"),
        ("GET", f"/api/svc-c/payments/{uuid.uuid4()}", None,
         "payments are read by operators (the 'operator' scope) or by services directly"),
        ("GET", "/api/svc-a/info", None, "GET /info is not open to this caller"),
        ("GET", "/api/svc-c/info", None, "GET /info is not open to this caller"),
    ],
)  # fmt: skip
def test_a_customer_gets_403_on_what_it_may_not_do(
    attacker: Attacker, method: str, path: str, body: object, detail: str
) -> None:
    """The 403 details name neither the gateway nor a service (issue 18, defect 9)."""
    answer = attacker.call(method, path, json=body, headers={"X-Caravan-Scopes": "operator"})
    document = assert_problem(answer, 403, slug="forbidden")
    expected = detail.replace("{id}", path.split("/")[4]) if "{id}" in detail else detail
    assert document["detail"] == expected
    for name in ("gateway", "svc-a", "svc-b", "svc-c"):
        assert name not in document["detail"]


@pytest.mark.parametrize(
    ("path", "allow"), [("/api/svc-a/info", {"GET"}), ("/api/svc-c/info", {"GET"}),
                        ("/api/svc-a/stock/X", {"GET"}),
                        ("/api/svc-b/orders", {"GET", "POST"})],
)  # fmt: skip
def test_a_method_a_route_lacks_is_405_not_403(attacker: Attacker, path: str, allow: set[str]) -> None:
    """Regression (issue 18, defect 10): ``PUT /api/svc-a/info`` answered 403 "gateway may not call
    svc-a PUT /info"."""
    answer = attacker.call("PUT", path, json={})
    assert_problem(answer, 405, slug="method-not-allowed")
    assert set(answer.headers["allow"].replace(" ", "").split(",")) >= allow


def test_an_assertion_cannot_be_given_the_operator_scope(system: System) -> None:
    """Regression (issue 18, defect 1): a token replayed to svc-a's port with
    ``X-Caravan-Scopes: operator`` passed the operator guard on restock."""
    svc_a = instance_url(system, "svc-a")
    sku = system.new_product(stock=1)
    path = f"/stock/{sku}/restock"
    token = gateway_signer(system).headers_for("svc-a", "POST", path, customer="demo")
    raised = httpx.post(
        svc_a + path, json={"quantity": 1000}, headers={**token, "X-Caravan-Scopes": "operator"}
    )
    assert_problem(raised, 401)
    token = gateway_signer(system).headers_for("svc-a", "POST", path, customer="demo")
    assert_problem(httpx.post(svc_a + path, json={"quantity": 1000}, headers=token), 403)
    assert system.stock(sku)["on_hand"] == 1


def test_the_gateway_strips_every_header_only_it_may_assert(attacker: Attacker, system: System) -> None:
    sku = system.new_product(stock=1)
    token = gateway_signer(system).token_for("svc-a", "POST", f"/stock/{sku}/restock")
    forged = {"X-Caravan-Scopes": "operator", "X-Caravan-Customer": "workspace", "X-Caravan-Identity": token}
    answer = attacker.call("POST", f"/api/svc-a/stock/{sku}/restock", json={"quantity": 5}, headers=forged)
    assert_problem(answer, 403, slug="forbidden")
    assert system.stock(sku)["on_hand"] == 1
