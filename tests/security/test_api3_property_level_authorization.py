"""API3:2023 Broken Object Property Level Authorization — properties a client may not set (mass
assignment) and properties nobody needs kept or shown (the card token)."""

from __future__ import annotations

import sqlite3
import uuid
from urllib.parse import urlsplit

import pytest
from attack import Attacker, assert_problem
from system import System


@pytest.mark.parametrize(
    "extra",
    [{"status": "confirmed"}, {"id": "00000000-0000-4000-8000-000000000000"}, {"customer_id": "demo-2"},
     {"total": {"amount": 1, "currency": "EUR"}}],
)  # fmt: skip
def test_an_order_takes_no_property_the_server_owns(attacker: Attacker, system: System, extra: dict) -> None:
    sku = system.new_product(stock=1)
    body = {"lines": [{"sku": sku, "quantity": 1}], "payment": {"card_token": "tok_approve"}, **extra}
    answer = attacker.call(
        "POST", "/api/svc-b/orders", json=body, headers={"Idempotency-Key": f'"{uuid.uuid4()}"'}
    )
    assert_problem(answer, 400, slug="validation-error")


@pytest.mark.parametrize("extra", [{"reserved": 5}, {"on_hand": 1000}, {"active": False, "admin": True}])
def test_a_product_takes_no_unknown_property(attacker: Attacker, extra: dict) -> None:
    sku = f"SEC-{uuid.uuid4().hex[:8].upper()}"
    body = {"sku": sku, "name": "x", "price": {"amount": 1, "currency": "EUR"}, "initial_stock": 1, **extra}
    assert_problem(attacker.call("POST", "/api/svc-a/products", customer="workspace", json=body), 400)


def test_an_order_shows_no_card_token_and_keeps_none_after_authorisation(system: System) -> None:
    """Regression (issue 18, defect 9): svc-b stored the card token with the order after
    authorisation."""
    sku = system.new_product(stock=3)
    placed = system.place_order([(sku, 1)], card="tok_approve")
    assert placed.status_code in (201, 202), placed.text
    assert "tok_approve" not in placed.text
    confirmed = system.settled(placed.json()["id"])
    assert confirmed["status"] == "confirmed"
    declined = system.settled(system.place_order([(sku, 1)], card="tok_decline").json()["id"])
    assert declined["status"] == "cancelled"
    database = urlsplit(system.database_url("svc-b")).path
    with sqlite3.connect(database.replace("//", "/")) as db:
        rows = db.execute(
            "SELECT id, card_token FROM svc_b_orders WHERE id IN (?, ?)", (confirmed["id"], declined["id"])
        ).fetchall()
    assert sorted(rows) == sorted([(confirmed["id"], None), (declined["id"], None)])
