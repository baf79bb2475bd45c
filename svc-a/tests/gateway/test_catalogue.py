"""The catalogue through the gateway: customers read it, only operators change it."""

from __future__ import annotations

import httpx

from caravan_commons.testing import RuntimeAccess
from svc_a.domain.model import GATE_SKU_PREFIX

from .conftest import DEMO_SKUS, fresh_sku, is_problem


def test_a_customer_sees_the_demo_catalogue(access: RuntimeAccess, http: httpx.Client) -> None:
    headers = access.key_header(access.customer_key)
    response = http.get(access.api("svc-a", "/products"), params={"sku": DEMO_SKUS}, headers=headers)
    assert response.status_code == 200, response.text
    page = response.json()
    assert [item["sku"] for item in page["items"]] == DEMO_SKUS and page["next_cursor"] is None
    assert all(item["active"] and item["price"]["currency"] == "EUR" for item in page["items"])
    first = http.get(access.api("svc-a", "/products"), params={"limit": 3}, headers=headers)
    assert first.status_code == 200 and len(first.json()["items"]) == 3
    stock = http.get(access.api("svc-a", "/stock/TENT-2P"), headers=headers)
    assert stock.status_code == 200 and stock.json()["available"] > 0


def test_only_an_operator_adds_or_changes_products(access: RuntimeAccess, http: httpx.Client) -> None:
    sku = fresh_sku()
    body = {"sku": sku, "name": "Gate probe", "price": {"amount": 100, "currency": "EUR"}, "initial_stock": 5}
    url = access.api("svc-a", "/products")
    customer = access.key_header(access.customer_key)
    operator = access.key_header(access.operator_key)
    assert is_problem(http.post(url, json=body, headers=customer), 403)
    assert is_problem(http.get(f"{url}/{sku}", headers=customer), 404)
    created = http.post(url, json=body, headers=operator)
    assert created.status_code == 201, created.text
    assert is_problem(http.post(url, json=body, headers=operator), 409)
    assert http.get(f"{url}/{sku}", headers=customer).json()["name"] == "Gate probe"
    change = {"name": "Changed by a customer"}
    assert is_problem(http.patch(f"{url}/{sku}", json=change, headers=customer), 403)
    changed = http.patch(f"{url}/{sku}", json={"active": False}, headers=operator)
    assert changed.status_code == 200 and changed.json()["active"] is False
    restock = access.api("svc-a", f"/stock/{sku}/restock")
    assert is_problem(http.post(restock, json={"quantity": 1}, headers=customer), 403)
    assert http.post(restock, json={"quantity": 1}, headers=operator).json()["on_hand"] == 6


def test_the_gates_products_stay_out_of_listings(access: RuntimeAccess, http: httpx.Client) -> None:
    sku = fresh_sku()
    body = {"sku": sku, "name": "Gate probe", "price": {"amount": 100, "currency": "EUR"}}
    url = access.api("svc-a", "/products")
    assert http.post(url, json=body, headers=access.key_header(access.operator_key)).status_code == 201
    for key in (access.customer_key, access.operator_key):
        listed, cursor = [], None
        while True:
            params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
            page = http.get(url, params=params, headers=access.key_header(key)).json()
            listed += [item["sku"] for item in page["items"]]
            if not (cursor := page["next_cursor"]):
                break
        assert set(DEMO_SKUS) <= set(listed) and sku not in listed
        assert not [s for s in listed if s.startswith(GATE_SKU_PREFIX)]
    named = http.get(url, params={"sku": sku}, headers=access.key_header(access.customer_key)).json()
    assert [item["sku"] for item in named["items"]] == [sku]
