"""API10:2023 Unsafe Consumption of APIs — what the gateway and svc-b take from the services they
call: answers are relayed without internal headers, upstream refusals become the caller's
documented problems, and svc-b believes no upstream about who the customer is."""

from __future__ import annotations

import uuid

import httpx
from attack import Attacker, assert_problem, instance_url
from system import System

from caravan_commons.identity import Signer

INTERNAL = ("x-caravan-identity", "x-caravan-customer", "x-caravan-scopes")


def test_answers_carry_no_internal_header(attacker: Attacker, system: System) -> None:
    sku = system.new_product(stock=1)
    for answer in (
        attacker.call("GET", f"/api/svc-a/products/{sku}"),
        attacker.call("GET", "/api/svc-b/orders"),
        attacker.call("GET", "/api/svc-a/products/NOPE-404"),
    ):
        assert not set(answer.headers) & set(INTERNAL), answer.headers


def test_an_unknown_sku_is_the_callers_problem_not_an_upstream_error(attacker: Attacker) -> None:
    body = {"lines": [{"sku": "NO-SUCH-SKU", "quantity": 1}], "payment": {"card_token": "tok_approve"}}
    answer = attacker.call(
        "POST", "/api/svc-b/orders", json=body, headers={"Idempotency-Key": f'"{uuid.uuid4()}"'}
    )
    assert answer.status_code in (201, 202, 404, 409, 422), answer.text
    if answer.status_code in (201, 202):
        assert attacker.system.settled(answer.json()["id"])["status"] == "cancelled"


def test_svc_b_acts_for_no_customer_on_svc_a(system: System) -> None:
    """A service's assertion carries no customer: svc-b signing for one is ignored by svc-a."""
    svc_b = Signer.from_file("svc-b", system.runtime.identity_dir / "svc-b.key")
    sku = system.new_product(stock=1)
    path = f"/stock/{sku}/restock"
    headers = svc_b.headers_for("svc-a", "POST", path, customer="workspace", scopes=["operator"])
    answer = httpx.post(instance_url(system, "svc-a") + path, json={"quantity": 5}, headers=headers)
    assert_problem(answer, 403, slug="forbidden")
