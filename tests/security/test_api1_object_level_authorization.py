"""API1:2023 Broken Object Level Authorization — another customer's objects, by id, on every
object route; ids that cannot be computed; the principal taken only from the signed assertion."""

from __future__ import annotations

import uuid

import httpx
import pytest
from attack import Attacker, assert_problem, gateway_signer, instance_url
from system import System


@pytest.fixture(scope="module")
def demos_order(system: System) -> dict:
    """An order of customer ``demo``, settled."""
    sku = system.new_product(stock=5)
    placed = system.place_order([(sku, 1)], customer="demo")
    assert placed.status_code in (201, 202), placed.text
    return system.settled(placed.json()["id"])


def test_another_customers_order_is_not_found(attacker: Attacker, demos_order: dict) -> None:
    order_id = demos_order["id"]
    assert attacker.call("GET", f"/api/svc-b/orders/{order_id}", customer="demo").status_code == 200
    assert_problem(attacker.call("GET", f"/api/svc-b/orders/{order_id}", customer="demo-2"), 404)
    assert_problem(attacker.call("POST", f"/api/svc-b/orders/{order_id}/cancel", customer="demo-2"), 404)
    listed = attacker.call("GET", "/api/svc-b/orders", customer="demo-2")
    assert listed.status_code == 200
    assert order_id not in {o["id"] for o in listed.json()["items"]}


def test_a_customer_reads_no_reservation_whether_it_exists_or_not(
    attacker: Attacker, demos_order: dict
) -> None:
    """Regression (issue 18, defect 3): another customer's reservation was returned (200), and a
    missing one answered 404, so existence leaked."""
    mine = attacker.call("GET", f"/api/svc-a/reservations/{demos_order['id']}", customer="demo")
    others = attacker.call("GET", f"/api/svc-a/reservations/{demos_order['id']}", customer="demo-2")
    missing = attacker.call("GET", f"/api/svc-a/reservations/{uuid.uuid4()}", customer="demo-2")
    for answer in (mine, others, missing):
        assert assert_problem(answer, 403, slug="forbidden")["detail"] == (
            "reservations are open to operators only; read your order instead"
        )
    assert (
        attacker.call("GET", f"/api/svc-a/reservations/{demos_order['id']}", customer="workspace").status_code
        == 200
    )


def test_a_customer_reads_no_payment(attacker: Attacker, system: System, demos_order: dict) -> None:
    operator = attacker.call("GET", "/api/svc-c/ledger/balances", customer="workspace")
    assert operator.status_code == 200
    assert_problem(attacker.call("GET", f"/api/svc-c/payments/{uuid.uuid4()}", customer="demo"), 403)
    assert_problem(attacker.call("GET", "/api/svc-c/ledger/balances", customer="demo"), 403)


def test_order_ids_cannot_be_computed_from_the_customer_and_the_key(system: System) -> None:
    """Regression (issue 18, defect 3): ids were uuid5(<constant in the source>, customer + key)."""
    key = f"bola-{uuid.uuid4()}"
    sku = system.new_product(stock=2)
    placed = system.place_order([(sku, 1)], key=key, customer="demo")
    assert placed.status_code in (201, 202), placed.text
    old_namespace = uuid.UUID("6f1c1f52-8a0e-4c59-9d55-5b3c0f4e2a71")
    assert placed.json()["id"] != str(uuid.uuid5(old_namespace, f"demo\n{key}"))
    again = system.place_order([(sku, 1)], key=key, customer="demo")  # still idempotent
    assert again.json()["id"] == placed.json()["id"]
    theirs = system.place_order([(sku, 1)], key=key, customer="demo-2")  # the key is per customer
    assert theirs.status_code in (201, 202) and theirs.json()["id"] != placed.json()["id"]


def test_a_gateway_assertion_replayed_for_another_customer_is_unauthorized(
    system: System, demos_order: dict
) -> None:
    """Regression (issue 18, defect 1): a token read off one customer's request, replayed to
    svc-b's port with ``X-Caravan-Customer: <another customer>``, returned that customer's order."""
    svc_b = instance_url(system, "svc-b")
    path = f"/orders/{demos_order['id']}"
    token = gateway_signer(system).headers_for("svc-b", "GET", path, customer="demo-2")
    stolen = httpx.get(svc_b + path, headers={**token, "X-Caravan-Customer": "demo"})
    assert assert_problem(stolen, 401)["detail"] == (
        "the asserted customer or scopes do not match the caller identity"
    )
    # the assertion for demo-2 itself does not reach demo's order either
    token = gateway_signer(system).headers_for("svc-b", "GET", path, customer="demo-2")
    assert_problem(httpx.get(svc_b + path, headers=token), 404)
