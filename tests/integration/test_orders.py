"""The cross-service suite, through the gateway only: what a customer of the whole system sees."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from reconcile import Snapshot, reconcile
from system import ACKNOWLEDGED, SERVICES, System


def snapshot(system: System, *skus: str) -> Snapshot:
    return Snapshot.read({s: system.database_url(s) for s in SERVICES}, skus)


def test_an_order_is_confirmed_and_its_stock_and_money_move_once(system: System) -> None:
    sku = system.new_product(stock=5, price=1250)
    placed = system.place_order([(sku, 2)])
    assert placed.status_code in ACKNOWLEDGED, placed.text
    order = system.settled(placed.json()["id"])
    assert order["status"] == "confirmed"
    assert order["total"] == {"amount": 2500, "currency": "EUR"}
    assert system.stock(sku) | {"sku": sku} == {"sku": sku, "on_hand": 3, "reserved": 0, "available": 3}
    state = snapshot(system, sku)
    assert reconcile(state, acknowledged=[order["id"]], attempted_keys=1, initial_stock={sku: 5}).ok


def test_a_declined_card_cancels_the_order_releases_the_stock_and_captures_nothing(system: System) -> None:
    sku = system.new_product(stock=5)
    placed = system.place_order([(sku, 3)], card="tok_decline")
    assert placed.status_code in ACKNOWLEDGED, placed.text
    order = system.settled(placed.json()["id"])
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_declined")
    assert system.stock(sku)["available"] == 5
    reservation = system.call("GET", "svc-a", f"/reservations/{order['id']}", customer="workspace")
    assert reservation.status_code == 200 and reservation.json()["status"] == "released"
    state = snapshot(system, sku)
    assert all(int(p["captured"]) == 0 for p in state.payments.get(order["id"], []))
    assert reconcile(state, acknowledged=[order["id"]], attempted_keys=1, initial_stock={sku: 5}).ok


def test_a_slow_processor_meets_the_deadline_and_the_order_never_sticks(system: System) -> None:
    sku = system.new_product(stock=5)
    placed = system.place_order([(sku, 1)], card="tok_slow", timeout_ms=2000)
    # the caller's deadline is honoured: an answer (the final order, or 202 with the order as far as
    # it got while svc-b's runner goes on) or a 504 problem
    assert placed.status_code in (*ACKNOWLEDGED, 504), placed.text
    if placed.status_code == 504:
        assert placed.headers["content-type"].startswith("application/problem+json")
        return  # nothing was acknowledged; a retry with the same key would find the order
    order = system.settled(placed.json()["id"], within=90)
    assert order["status"] in ("confirmed", "cancelled"), order
    state = snapshot(system, sku)
    assert reconcile(state, acknowledged=[order["id"]], attempted_keys=1, initial_stock={sku: 5}).ok


def test_cancelling_a_confirmed_order_refunds_and_restocks(system: System) -> None:
    sku = system.new_product(stock=4)
    order = system.settled(system.place_order([(sku, 4)]).json()["id"])
    assert order["status"] == "confirmed"
    assert system.stock(sku)["on_hand"] == 0
    cancelled = system.call("POST", "svc-b", f"/orders/{order['id']}/cancel")
    assert cancelled.status_code == 200, cancelled.text
    order = system.settled(order["id"])
    assert order["status"] == "cancelled"
    assert system.stock(sku)["available"] == 4
    state = snapshot(system, sku)
    (payment,) = state.payments[order["id"]]
    assert int(payment["captured"]) == int(payment["refunded"]) > 0
    assert reconcile(state, acknowledged=[order["id"]], attempted_keys=1, initial_stock={sku: 4}).ok


def test_concurrent_orders_for_the_last_unit_confirm_exactly_one(system: System) -> None:
    sku = system.new_product(stock=1)
    with ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: system.place_order([(sku, 1)]), range(6)))
    assert all(a.status_code in ACKNOWLEDGED for a in answers), [a.text for a in answers]
    orders = [system.settled(a.json()["id"]) for a in answers]
    statuses = sorted(o["status"] for o in orders)
    assert statuses == ["cancelled"] * 5 + ["confirmed"]
    assert {o["cancel_reason"] for o in orders if o["status"] == "cancelled"} == {"out_of_stock"}
    assert system.stock(sku) | {"sku": sku} == {"sku": sku, "on_hand": 0, "reserved": 0, "available": 0}
    state = snapshot(system, sku)
    assert reconcile(
        state, acknowledged=[o["id"] for o in orders], attempted_keys=6, initial_stock={sku: 1}
    ).ok


def test_another_customer_cannot_see_an_order(system: System) -> None:
    sku = system.new_product(stock=2)
    order = system.settled(system.place_order([(sku, 1)]).json()["id"])
    other = system.call("GET", "svc-b", f"/orders/{order['id']}", customer="demo-2")
    assert other.status_code == 404
    assert other.headers["content-type"].startswith("application/problem+json")
