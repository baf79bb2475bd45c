"""/reservations in-process: all or nothing, idempotent per order id and per Idempotency-Key,
commit / release (a committed one released gives its units back), expiry by the sweeper."""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from litestar.testing import TestClient

from .conftest import OPERATOR, add_product, assert_problem

ORDER = {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 2}, {"sku": "MUG01", "quantity": 1}]}


@pytest.fixture
def shop(client: TestClient[Any]) -> TestClient[Any]:
    add_product(client, "TENT-2P", stock=5)
    add_product(client, "MUG01", stock=1)
    return client


def stock(client: TestClient[Any], sku: str) -> tuple[int, int]:
    body = client.get(f"/stock/{sku}").json()
    return body["on_hand"], body["reserved"]


def test_a_reservation_holds_every_line_and_is_idempotent_per_order(shop: TestClient[Any]) -> None:
    created = shop.post("/reservations", json=ORDER)
    assert created.status_code == 201
    body = created.json()
    assert body["order_id"] == "o-1" and body["status"] == "held"
    assert body["lines"] == [{"sku": "MUG01", "quantity": 1}, {"sku": "TENT-2P", "quantity": 2}]
    assert body["expires_at"].endswith("Z") or "+00:00" in body["expires_at"]
    assert stock(shop, "TENT-2P") == (5, 2) and stock(shop, "MUG01") == (1, 1)
    again = shop.post("/reservations", json={**ORDER, "lines": list(reversed(ORDER["lines"]))})
    assert again.status_code == 200 and again.json() == body
    assert stock(shop, "TENT-2P") == (5, 2)
    assert shop.get("/reservations/o-1").json() == body
    other = shop.post("/reservations", json={**ORDER, "lines": [{"sku": "TENT-2P", "quantity": 1}]})
    assert_problem(other, 409, "reservation-conflict")


def test_lines_of_one_sku_add_up(shop: TestClient[Any]) -> None:
    lines = [{"sku": "TENT-2P", "quantity": 1}, {"sku": "TENT-2P", "quantity": 2}]
    response = shop.post("/reservations", json={"order_id": "o-2", "lines": lines})
    assert response.status_code == 201
    assert response.json()["lines"] == [{"sku": "TENT-2P", "quantity": 3}]
    assert stock(shop, "TENT-2P") == (5, 3)


def test_not_enough_stock_reserves_nothing(shop: TestClient[Any]) -> None:
    order = {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 2}, {"sku": "MUG01", "quantity": 2}]}
    problem = assert_problem(shop.post("/reservations", json=order), 409, "out-of-stock")
    assert problem["skus"] == ["MUG01"]
    assert stock(shop, "TENT-2P") == (5, 0) and stock(shop, "MUG01") == (1, 0)
    assert_problem(shop.get("/reservations/o-1"), 404, "reservation-not-found")


def test_an_unknown_sku_is_not_found_and_reserves_nothing(shop: TestClient[Any]) -> None:
    order = {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 1}, {"sku": "NOPE1", "quantity": 1}]}
    assert_problem(shop.post("/reservations", json=order), 404, "unknown-sku")
    assert stock(shop, "TENT-2P") == (5, 0)


def test_a_product_off_sale_is_not_reserved(shop: TestClient[Any]) -> None:
    shop.patch("/products/MUG01", json={"active": False}, headers=OPERATOR)
    assert_problem(shop.post("/reservations", json=ORDER), 409, "product-inactive")
    assert stock(shop, "TENT-2P") == (5, 0) and stock(shop, "MUG01") == (1, 0)


def test_commit_sells_and_release_of_a_sold_order_puts_its_units_back(shop: TestClient[Any]) -> None:
    shop.post("/reservations", json=ORDER)
    for _ in range(2):  # idempotent
        committed = shop.post("/reservations/o-1/commit")
        assert committed.status_code == 200 and committed.json()["status"] == "committed"
    assert stock(shop, "TENT-2P") == (3, 0) and stock(shop, "MUG01") == (0, 0)
    for _ in range(2):  # idempotent: the units come back once
        released = shop.post("/reservations/o-1/release")
        assert released.status_code == 200 and released.json()["status"] == "released"
    assert stock(shop, "TENT-2P") == (5, 0) and stock(shop, "MUG01") == (1, 0)
    assert_problem(shop.post("/reservations/o-1/commit"), 409, "reservation-conflict")
    again = shop.post("/reservations", json=ORDER)  # the same lines: the released reservation, as it is
    assert again.status_code == 200 and again.json()["status"] == "released"


def test_release_gives_held_units_back(shop: TestClient[Any]) -> None:
    shop.post("/reservations", json=ORDER)
    assert shop.post("/reservations/o-1/release").json()["status"] == "released"
    assert stock(shop, "TENT-2P") == (5, 0) and stock(shop, "MUG01") == (1, 0)
    assert_problem(shop.post("/reservations/o-1/commit"), 409, "reservation-conflict")


@pytest.mark.parametrize("action", ["commit", "release"])
def test_settling_an_unknown_order_is_not_found(shop: TestClient[Any], action: str) -> None:
    assert_problem(shop.post(f"/reservations/o-404/{action}"), 404, "reservation-not-found")


@pytest.mark.parametrize(
    "body",
    [
        {"order_id": "o-1", "lines": []},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 0}]},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": -1}]},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 10_000_001}]},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": "1"}]},
        {"order_id": "o-1", "lines": [{"sku": "tent", "quantity": 1}]},
        {"order_id": "o/1", "lines": [{"sku": "TENT-2P", "quantity": 1}]},
        {"order_id": "", "lines": [{"sku": "TENT-2P", "quantity": 1}]},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 1}] * 101},
        {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 1, "price": 5}]},
        {"order_id": "o-1"},
    ],
)
def test_bad_reservation_bodies_are_400(shop: TestClient[Any], body: dict[str, Any]) -> None:
    assert_problem(shop.post("/reservations", json=body), 400, "validation-error")
    assert stock(shop, "TENT-2P") == (5, 0)


def test_malformed_json_and_bad_order_ids_in_paths_are_400(shop: TestClient[Any]) -> None:
    response = shop.post("/reservations", content=b"{", headers={"content-type": "application/json"})
    assert_problem(response, 400, "validation-error")
    for path in ("/reservations/o%20x", "/reservations/" + "o" * 101):
        assert_problem(shop.get(path), 400, "validation-error")


def test_an_idempotency_key_replays_the_first_answer(shop: TestClient[Any]) -> None:
    key = {"Idempotency-Key": '"order-o-1-reserve"'}
    first = shop.post("/reservations", json=ORDER, headers=key)
    assert first.status_code == 201 and "idempotent-replayed" not in first.headers
    replay = shop.post("/reservations", json=ORDER, headers=key)
    assert replay.status_code == 201  # the first answer, as it was (without the key: 200)
    assert replay.headers["idempotent-replayed"] == "true" and replay.json() == first.json()
    assert stock(shop, "TENT-2P") == (5, 2)
    other = shop.post("/reservations", json={**ORDER, "order_id": "o-2"}, headers=key)
    assert_problem(other, 422, "unprocessable")
    assert_problem(shop.get("/reservations/o-2"), 404)
    assert shop.post("/reservations", json=ORDER).status_code == 200


def test_a_failed_request_stores_nothing_under_its_key(shop: TestClient[Any]) -> None:
    key = {"Idempotency-Key": "k-1"}
    short = {"order_id": "o-1", "lines": [{"sku": "MUG01", "quantity": 2}]}
    assert_problem(shop.post("/reservations", json=short, headers=key), 409, "out-of-stock")
    shop.post("/stock/MUG01/restock", json={"quantity": 1}, headers=OPERATOR)
    assert shop.post("/reservations", json=short, headers=key).status_code == 201  # runs again


def test_twin_requests_with_one_key_reserve_once(shop: TestClient[Any]) -> None:
    """The reservation's row is the key's record: twins queue on it (SQLite's one writer; on
    Postgres the unique key) and the later one replays the first answer instead of a 409."""
    key = {"Idempotency-Key": "k-twin"}

    with ThreadPoolExecutor(2) as pool:  # both requests in the app's event loop at once
        answers = list(pool.map(lambda _: shop.post("/reservations", json=ORDER, headers=key), range(2)))
    assert [a.status_code for a in answers] == [201, 201]
    assert sorted(a.headers.get("idempotent-replayed", "") for a in answers) == ["", "true"]
    assert stock(shop, "TENT-2P") == (5, 2)


@pytest.mark.parametrize("value", ['""', " ", "x" * 256, "a\tb"])
def test_malformed_idempotency_keys_are_400(shop: TestClient[Any], value: str) -> None:
    response = shop.post("/reservations", json=ORDER, headers={"Idempotency-Key": value})
    assert_problem(response, 400, "validation-error")
    assert stock(shop, "TENT-2P") == (5, 0)


def test_the_sweeper_releases_expired_reservations(make_client: Callable[..., TestClient[Any]]) -> None:
    client = make_client(reservation_ttl_s=0.2, reservation_sweep_interval_s=0.05)
    add_product(client, "TENT-2P", stock=5)
    assert (
        client.post(
            "/reservations", json={"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 2}]}
        ).status_code
        == 201
    )
    deadline = time.monotonic() + 30  # a bound for a hung loop, not a timing assertion
    while client.get("/reservations/o-1").json()["status"] == "held" and time.monotonic() < deadline:
        time.sleep(0.05)
    assert client.get("/reservations/o-1").json()["status"] == "released"
    assert stock(client, "TENT-2P") == (5, 0)
    assert_problem(client.post("/reservations/o-1/commit"), 409, "reservation-conflict")


def _metric(client: TestClient[Any], name: str) -> float | None:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def test_reservations_past_their_expiry_show_in_the_metrics_until_swept(
    make_client: Callable[..., TestClient[Any]],
) -> None:
    # the sweeper waits an hour; the metric is sampled every 50 ms
    client = make_client(
        reservation_ttl_s=0.05, reservation_sweep_interval_s=3600, metrics_sample_interval_s=0.05
    )
    add_product(client, "TENT-2P", stock=5)
    assert _metric(client, "reservations_held_past_ttl") == 0
    assert (
        client.post(
            "/reservations", json={"order_id": "o-9", "lines": [{"sku": "TENT-2P", "quantity": 1}]}
        ).status_code
        == 201
    )
    deadline = time.monotonic() + 10
    while _metric(client, "reservations_held_past_ttl") != 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _metric(client, "reservations_held_past_ttl") == 1


def test_a_customer_reads_no_reservation_and_learns_not_whether_it_exists(shop: TestClient[Any]) -> None:
    """Regression (issue 18, defect 3): a customer read any reservation, and 404 told it which exist."""
    assert shop.post("/reservations", json=ORDER).status_code == 201
    for order_id in ("o-1", "o-missing"):
        answer = shop.get(f"/reservations/{order_id}", headers={"X-Caravan-Customer": "demo-2"})
        assert_problem(answer, 403, "forbidden")
    operator = {"X-Caravan-Customer": "ops", "X-Caravan-Scopes": "operator"}
    assert shop.get("/reservations/o-1", headers=operator).status_code == 200
