"""Reservations: through the gateway they are read-only (only svc-b may reserve, commit or release:
security groups) and read by operators only (a customer gets 403 before any look-up, so it learns
not even whether a reservation exists); a reserve / commit / release round trip signed as svc-b at
a discovered svc-a instance, read back through the gateway, gives every unit back."""

from __future__ import annotations

import httpx
import pytest

from caravan_commons.testing import RuntimeAccess

from .conftest import fresh_order, fresh_sku, is_problem


@pytest.fixture
def probe_sku(access: RuntimeAccess, http: httpx.Client) -> str:
    """A fresh product with 10 units, so that the stock arithmetic below is exact."""
    sku = fresh_sku()
    body = {
        "sku": sku,
        "name": "Round trip",
        "price": {"amount": 250, "currency": "EUR"},
        "initial_stock": 10,
    }
    created = http.post(
        access.api("svc-a", "/products"), json=body, headers=access.key_header(access.operator_key)
    )
    assert created.status_code == 201, created.text
    return sku


def stock(access: RuntimeAccess, http: httpx.Client, sku: str) -> dict[str, int]:
    response = http.get(access.api("svc-a", f"/stock/{sku}"), headers=access.key_header(access.customer_key))
    assert response.status_code == 200, response.text
    return response.json()


def test_the_gateway_cannot_reserve_commit_or_release(access: RuntimeAccess, http: httpx.Client) -> None:
    order = fresh_order()
    for key in (access.customer_key, access.operator_key):
        headers = access.key_header(key)
        body = {"order_id": order, "lines": [{"sku": "TENT-2P", "quantity": 1}]}
        assert is_problem(http.post(access.api("svc-a", "/reservations"), json=body, headers=headers), 403)
        for action in ("commit", "release"):
            url = access.api("svc-a", f"/reservations/{order}/{action}")
            assert is_problem(http.post(url, headers=headers), 403)
    url = access.api("svc-a", f"/reservations/{order}")
    assert is_problem(http.get(url, headers=access.key_header(access.customer_key)), 403)
    assert is_problem(http.get(url, headers=access.key_header(access.operator_key)), 404)  # none held


def test_a_direct_call_without_identity_is_refused(access: RuntimeAccess, http: httpx.Client) -> None:
    base = access.instance_url("svc-a")
    body = {"order_id": fresh_order(), "lines": [{"sku": "TENT-2P", "quantity": 1}]}
    assert is_problem(http.post(f"{base}/reservations", json=body), 401)


@pytest.mark.parametrize("settle", ["release", "commit-then-release"])
def test_a_reservation_round_trip_as_svc_b(
    access: RuntimeAccess, http: httpx.Client, probe_sku: str, settle: str
) -> None:
    base = access.instance_url("svc-a")
    order = fresh_order()
    before = stock(access, http, probe_sku)
    assert before == {"sku": probe_sku, "on_hand": 10, "reserved": 0, "available": 10}

    def as_svc_b(
        method: str, path: str, json: object = None, headers: dict[str, str] | None = None
    ) -> httpx.Response:
        signed = {**access.signed_as("svc-b", "svc-a", method, path), **(headers or {})}
        return http.request(method, f"{base}{path}", json=json, headers=signed)

    body = {"order_id": order, "lines": [{"sku": probe_sku, "quantity": 3}]}
    key = {"Idempotency-Key": f'"{order}-reserve"'}
    held = as_svc_b("POST", "/reservations", json=body, headers=key)
    assert held.status_code == 201, held.text
    assert held.json()["status"] == "held"
    replay = as_svc_b("POST", "/reservations", json=body, headers=key)
    assert replay.status_code == 201 and replay.headers.get("idempotent-replayed") == "true"
    assert stock(access, http, probe_sku)["available"] == 7

    read = http.get(
        access.api("svc-a", f"/reservations/{order}"), headers=access.key_header(access.operator_key)
    )
    assert read.status_code == 200 and read.json()["status"] == "held"
    mine = http.get(
        access.api("svc-a", f"/reservations/{order}"), headers=access.key_header(access.customer_key)
    )
    assert is_problem(mine, 403)

    if settle == "commit-then-release":
        committed = as_svc_b("POST", f"/reservations/{order}/commit")
        assert committed.status_code == 200 and committed.json()["status"] == "committed"
        assert stock(access, http, probe_sku) == {
            "sku": probe_sku,
            "on_hand": 7,
            "reserved": 0,
            "available": 7,
        }
    for _ in range(2):  # idempotent
        released = as_svc_b("POST", f"/reservations/{order}/release")
        assert released.status_code == 200 and released.json()["status"] == "released"
    assert stock(access, http, probe_sku) == before
    read = http.get(
        access.api("svc-a", f"/reservations/{order}"), headers=access.key_header(access.operator_key)
    )
    assert read.json()["status"] == "released"
