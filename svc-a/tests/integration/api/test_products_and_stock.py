"""/products and /stock in-process: happy paths, every bad input a 4xx problem, the operator guard."""

from __future__ import annotations

from typing import Any

import pytest
from litestar.testing import TestClient

from .conftest import OPERATOR, add_product, assert_problem

TENT = {"sku": "TENT-2P", "name": "Tent", "price": {"amount": 12999, "currency": "EUR"}}


def test_a_product_is_created_read_and_changed(client: TestClient[Any]) -> None:
    created = client.post("/products", json={**TENT, "initial_stock": 3}, headers=OPERATOR)
    assert created.status_code == 201
    assert created.json() == {**TENT, "description": "", "active": True}
    assert client.get("/products/TENT-2P").json() == created.json()
    assert client.get("/stock/TENT-2P").json() == {
        "sku": "TENT-2P",
        "on_hand": 3,
        "reserved": 0,
        "available": 3,
    }
    changed = client.patch(
        "/products/TENT-2P",
        json={"price": {"amount": 9999, "currency": "EUR"}, "active": False},
        headers=OPERATOR,
    )
    assert changed.status_code == 200
    assert changed.json() == {
        **TENT,
        "price": {"amount": 9999, "currency": "EUR"},
        "description": "",
        "active": False,
    }
    assert client.patch("/products/TENT-2P", json={}, headers=OPERATOR).json() == changed.json()
    assert client.get("/products/TENT-2P").json() == changed.json()


def test_a_duplicate_sku_is_a_conflict(client: TestClient[Any]) -> None:
    add_product(client, "TENT-2P")
    response = client.post("/products", json=TENT, headers=OPERATOR)
    assert_problem(response, 409, "duplicate-product")


def test_unknown_skus_are_not_found(client: TestClient[Any]) -> None:
    assert_problem(client.get("/products/NOPE1"), 404, "unknown-sku")
    assert_problem(
        client.patch("/products/NOPE1", json={"active": False}, headers=OPERATOR), 404, "unknown-sku"
    )
    assert_problem(client.get("/stock/NOPE1"), 404, "unknown-sku")
    assert_problem(
        client.post("/stock/NOPE1/restock", json={"quantity": 1}, headers=OPERATOR), 404, "unknown-sku"
    )


@pytest.mark.parametrize(
    "method,path,body",
    [
        ("POST", "/products", TENT),
        ("PATCH", "/products/TENT-2P", {"active": False}),
        ("POST", "/stock/TENT-2P/restock", {"quantity": 1}),
    ],
)
@pytest.mark.parametrize("scopes", [None, "", "customer reader"])
def test_changes_need_the_operator_scope(
    client: TestClient[Any], method: str, path: str, body: dict[str, Any], scopes: str | None
) -> None:
    add_product(client, "TENT-2P", stock=1)
    headers = {"X-Caravan-Customer": "demo"} | ({} if scopes is None else {"X-Caravan-Scopes": scopes})
    assert_problem(client.request(method, path, json=body, headers=headers), 403, "forbidden")
    assert client.get("/stock/TENT-2P").json()["on_hand"] == 1
    assert client.get("/products/TENT-2P").json()["active"] is True


def test_listing_pages_through_the_catalogue_by_cursor(client: TestClient[Any]) -> None:
    skus = [f"SKU-{n:02d}" for n in range(7)]
    for sku in reversed(skus):
        add_product(client, sku, active=sku != "SKU-03")
    seen, cursor, pages = [], None, 0
    while True:
        params: dict[str, Any] = {"limit": 3} | ({} if cursor is None else {"cursor": cursor})
        page = client.get("/products", params=params).json()
        seen += [item["sku"] for item in page["items"]]
        pages += 1
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == skus and pages == 3
    active = client.get("/products", params={"active": "false"}).json()
    assert [item["sku"] for item in active["items"]] == ["SKU-03"] and active["next_cursor"] is None
    default = client.get("/products").json()
    assert len(default["items"]) == 7 and default["next_cursor"] is None


def test_listing_by_skus_returns_just_those(client: TestClient[Any]) -> None:
    for sku in ("AA", "BB", "CC"):
        add_product(client, sku)
    page = client.get("/products?sku=CC&sku=AA&sku=ZZ").json()
    assert [item["sku"] for item in page["items"]] == ["AA", "CC"]
    assert page["items"][0]["price"] == {"amount": 1000, "currency": "EUR"}
    hundred = "&".join(f"sku=S{n:03d}" for n in range(100))
    assert client.get(f"/products?{hundred}").json() == {"items": [], "next_cursor": None}


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=101",
        "limit=ten",
        "cursor=not%20a%20sku",
        "sku=lower",
        "active=maybe",
        "&".join(f"sku=S{n:03d}" for n in range(101)),
    ],
)
def test_bad_listing_queries_are_400(client: TestClient[Any], query: str) -> None:
    assert_problem(client.get(f"/products?{query}"), 400, "validation-error")


@pytest.mark.parametrize(
    "body",
    [
        {**TENT, "sku": "tent"},
        {**TENT, "name": ""},
        {**TENT, "name": "   "},
        {**TENT, "price": {"amount": -1, "currency": "EUR"}},
        {**TENT, "price": {"amount": 1.5, "currency": "EUR"}},
        {**TENT, "price": {"amount": "100", "currency": "EUR"}},
        {**TENT, "price": {"amount": 1, "currency": "XXX"}},
        {**TENT, "price": {"amount": 1, "currency": "eur"}},
        {**TENT, "active": 0},
        {**TENT, "colour": "green"},
        {**TENT, "initial_stock": -1},
        {"sku": "TENT-2P", "name": "Tent"},
        [TENT],
    ],
)
def test_bad_product_bodies_are_400(client: TestClient[Any], body: Any) -> None:
    assert_problem(client.post("/products", json=body, headers=OPERATOR), 400, "validation-error")
    assert_problem(client.get("/products/TENT-2P"), 404)


def test_malformed_json_is_400(client: TestClient[Any]) -> None:
    add_product(client, "TENT-2P")
    for path, method in (
        ("/products", "POST"),
        ("/products/TENT-2P", "PATCH"),
        ("/stock/TENT-2P/restock", "POST"),
    ):
        response = client.request(
            method, path, content=b'{"sku": ', headers={**OPERATOR, "content-type": "application/json"}
        )
        assert_problem(response, 400, "validation-error")


def test_a_whole_number_written_with_a_zero_fraction_is_a_whole_number(client: TestClient[Any]) -> None:
    response = client.post(
        "/products", json={**TENT, "price": {"amount": 12999.0, "currency": "EUR"}}, headers=OPERATOR
    )
    assert response.status_code == 201 and response.json()["price"]["amount"] == 12999


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"price": {"amount": -5, "currency": "EUR"}},
        {"sku": "OTHER"},
        {"active": None},
        {"active": "no"},
    ],
)
def test_bad_patches_are_400_and_change_nothing(client: TestClient[Any], body: dict[str, Any]) -> None:
    before = add_product(client, "TENT-2P")
    assert_problem(client.patch("/products/TENT-2P", json=body, headers=OPERATOR), 400, "validation-error")
    assert client.get("/products/TENT-2P").json() == before


def test_restock_adds_units(client: TestClient[Any]) -> None:
    add_product(client, "TENT-2P", stock=2)
    response = client.post("/stock/TENT-2P/restock", json={"quantity": 5}, headers=OPERATOR)
    assert response.status_code == 200
    assert response.json() == {"sku": "TENT-2P", "on_hand": 7, "reserved": 0, "available": 7}


@pytest.mark.parametrize("quantity", [0, -1, 1.5, "3", None, 10**9 + 1])
def test_bad_restock_quantities_are_400(client: TestClient[Any], quantity: Any) -> None:
    add_product(client, "TENT-2P", stock=2)
    response = client.post("/stock/TENT-2P/restock", json={"quantity": quantity}, headers=OPERATOR)
    assert_problem(response, 400, "validation-error")
    assert client.get("/stock/TENT-2P").json()["on_hand"] == 2


def test_a_restock_past_the_stock_limit_is_a_conflict(client: TestClient[Any]) -> None:
    add_product(client, "TENT-2P", stock=10**9)
    response = client.post("/stock/TENT-2P/restock", json={"quantity": 1}, headers=OPERATOR)
    assert_problem(response, 409, "stock-limit-reached")
    assert client.get("/stock/TENT-2P").json()["on_hand"] == 10**9


@pytest.mark.parametrize("path", ["/products/bad%20sku", "/stock/lower", "/products/" + "A" * 65])
def test_malformed_skus_in_paths_are_400(client: TestClient[Any], path: str) -> None:
    assert_problem(client.get(path), 400, "validation-error")
