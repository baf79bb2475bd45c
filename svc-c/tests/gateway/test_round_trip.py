"""svc-c through the running system (run by the stage gate "API working through the gateway").

Only svc-b moves money (security groups): through the gateway an authorisation is refused, so the
round trip is signed as svc-b and sent to a discovered svc-c instance directly; the payment is
then read back and the ledger checked through the gateway, as an operator. Every run uses fresh
order ids and keys, so the suite can run again and again on the same database.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from caravan_commons.testing import RuntimeAccess

TIMEOUT = 30.0


@pytest.fixture(scope="module")
def access() -> RuntimeAccess:
    return RuntimeAccess.from_env()


def eur(amount: int) -> dict[str, Any]:
    return {"amount": amount, "currency": "EUR"}


def as_svc_b(
    access: RuntimeAccess, key: str | None = None, path: str = "/payments/authorize"
) -> dict[str, str]:
    """svc-b's identity for one POST ``path`` (an assertion is bound to its request)."""
    headers = access.signed_as("svc-b", "svc-c", "POST", path)
    if key is not None:
        headers["Idempotency-Key"] = key
    return headers


def operator(access: RuntimeAccess) -> dict[str, str]:
    return access.key_header(access.operator_key)


def assert_problem(response: httpx.Response, status: int) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    return response.json()  # type: ignore[no-any-return]


def test_money_does_not_move_through_the_gateway(access: RuntimeAccess) -> None:
    body = {"order_id": f"gw-{uuid.uuid4()}", "amount": eur(100), "card_token": "tok_approve"}
    for key in (access.operator_key, access.customer_key):
        response = httpx.post(
            access.api("svc-c", "/payments/authorize"),
            json=body,
            headers={**access.key_header(key), "Idempotency-Key": str(uuid.uuid4())},
            timeout=TIMEOUT,
        )
        assert_problem(response, 403)


def test_authorise_capture_refund_round_trip(access: RuntimeAccess) -> None:
    svc_c = access.instance_url("svc-c")
    order_id = f"gw-{uuid.uuid4()}"
    with httpx.Client(base_url=svc_c, timeout=TIMEOUT) as direct:
        auth_key = f"{order_id}:authorize"
        body = {"order_id": order_id, "amount": eur(2500), "card_token": "tok_approve"}
        authorized = direct.post("/payments/authorize", json=body, headers=as_svc_b(access, auth_key))
        assert authorized.status_code == 201, authorized.text
        payment = authorized.json()
        assert payment["status"] == "authorized"
        pid = payment["id"]
        # a retry of the same authorisation replays it
        again = direct.post("/payments/authorize", json=body, headers=as_svc_b(access, auth_key))
        assert again.json()["id"] == pid
        assert again.headers.get("Idempotent-Replayed") == "true"

        captured = direct.post(
            f"/payments/{pid}/capture",
            json={"amount": eur(2000)},
            headers=as_svc_b(access, f"{order_id}:capture", f"/payments/{pid}/capture"),
        )
        assert captured.status_code == 200, captured.text
        assert captured.json()["status"] == "captured"
        refund = {"amount": eur(700)}
        refunded = direct.post(
            f"/payments/{pid}/refund",
            json=refund,
            headers=as_svc_b(access, f"{order_id}:refund", f"/payments/{pid}/refund"),
        )
        assert refunded.status_code == 200, refunded.text
        retried = direct.post(
            f"/payments/{pid}/refund",
            json=refund,
            headers=as_svc_b(access, f"{order_id}:refund", f"/payments/{pid}/refund"),
        )
        assert retried.json() == refunded.json()  # the retry moved nothing

    read = httpx.get(access.api("svc-c", f"/payments/{pid}"), headers=operator(access), timeout=TIMEOUT)
    assert read.status_code == 200, read.text
    seen = read.json()
    assert seen["status"] == "partially_refunded"
    assert seen["captured"] == eur(2000)
    assert seen["refunded"] == eur(700)
    assert [m["kind"] for m in seen["movements"]] == ["authorize", "capture", "refund"]

    ledger = httpx.get(access.api("svc-c", "/ledger/balances"), headers=operator(access), timeout=TIMEOUT)
    assert ledger.status_code == 200, ledger.text
    assert ledger.json()["balanced"] is True


def test_a_declined_card_is_recorded_not_an_error(access: RuntimeAccess) -> None:
    order_id = f"gw-{uuid.uuid4()}"
    body = {"order_id": order_id, "amount": eur(300), "card_token": "tok_insufficient_funds"}
    response = httpx.post(
        f"{access.instance_url('svc-c')}/payments/authorize",
        json=body,
        headers=as_svc_b(access, f"{order_id}:authorize"),
        timeout=TIMEOUT,
    )
    assert response.status_code == 201, response.text
    assert response.json()["status"] == "declined"
    assert response.json()["decline_reason"] == "insufficient_funds"


def test_customers_read_neither_payments_nor_the_ledger(access: RuntimeAccess) -> None:
    customer = access.key_header(access.customer_key)
    assert_problem(httpx.get(access.api("svc-c", "/ledger/balances"), headers=customer, timeout=TIMEOUT), 403)
    missing = httpx.get(access.api("svc-c", f"/payments/{uuid.uuid4()}"), headers=customer, timeout=TIMEOUT)
    assert_problem(missing, 403)
    assert_problem(
        httpx.get(
            access.api("svc-c", f"/payments/{uuid.uuid4()}"), headers=operator(access), timeout=TIMEOUT
        ),
        404,
    )


def test_a_direct_call_without_an_identity_is_refused(access: RuntimeAccess) -> None:
    response = httpx.get(f"{access.instance_url('svc-c')}/ledger/balances", timeout=TIMEOUT)
    assert_problem(response, 401)
