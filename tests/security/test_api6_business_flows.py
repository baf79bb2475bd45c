"""API6:2023 Unrestricted Access to Sensitive Business Flows — placing orders: one order per key
and customer, keys of one customer useless to another, cancelling only one's own."""

from __future__ import annotations

import uuid
from concurrent.futures import ThreadPoolExecutor

from attack import Attacker, assert_problem
from system import System


def test_a_burst_with_one_key_places_one_order(system: System) -> None:
    sku = system.new_product(stock=10)
    key = f"flow-{uuid.uuid4()}"
    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(lambda _: system.place_order([(sku, 1)], key=key), range(8)))
    placed = {a.json()["id"] for a in answers if a.status_code in (201, 202)}
    assert len(placed) == 1
    assert {a.status_code for a in answers} <= {201, 202, 409}
    system.settled(placed.pop())
    assert system.stock(sku)["on_hand"] == 9


def test_the_same_key_with_another_payload_is_422(system: System) -> None:
    sku = system.new_product(stock=10)
    key = f"flow-{uuid.uuid4()}"
    first = system.place_order([(sku, 1)], key=key)
    system.settled(first.json()["id"])
    assert_problem(system.place_order([(sku, 2)], key=key), 422)


def test_one_customer_cannot_cancel_anothers_order(attacker: Attacker, system: System) -> None:
    sku = system.new_product(stock=2)
    order = system.settled(system.place_order([(sku, 1)], customer="demo").json()["id"])
    assert_problem(attacker.call("POST", f"/api/svc-b/orders/{order['id']}/cancel", customer="demo-2"), 404)
    assert system.order(order["id"])["status"] == "confirmed"
