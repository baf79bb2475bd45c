"""The payment endpoints in-process: authorise, capture, void, refund, read; the ledger balances."""

from __future__ import annotations

import pytest
from api_support import (
    OPERATOR,
    assert_problem,
    authorize,
    authorized,
    balance,
    balances,
    eur,
    new_key,
)
from litestar import Litestar
from litestar.testing import TestClient

from svc_c.domain.processor import TEST_TOKENS


def test_authorise_holds_the_amount_and_reads_back(client: TestClient[Litestar]) -> None:
    response = authorize(client, 1250, order_id="order-1")
    assert response.status_code == 201
    payment = response.json()
    assert payment["order_id"] == "order-1"
    assert payment["status"] == "authorized"
    assert payment["amount"] == eur(1250)
    assert payment["captured"] == eur(0) and payment["refunded"] == eur(0)
    assert payment["decline_reason"] is None
    assert payment["processor_reference"].startswith("sim_")
    assert [m["kind"] for m in payment["movements"]] == ["authorize"]
    assert client.get(f"/payments/{payment['id']}", headers=OPERATOR).json() == payment
    assert balance(client, "card_holds") == 1250
    assert balances(client)["balanced"] is True


@pytest.mark.parametrize(
    ("token", "reason"), [("tok_decline", "declined"), ("tok_insufficient_funds", "insufficient_funds")]
)
def test_a_declined_card_is_a_recorded_payment_not_an_error(
    client: TestClient[Litestar], token: str, reason: str
) -> None:
    response = authorize(client, 700, token)
    assert response.status_code == 201
    payment = response.json()
    assert payment["status"] == "declined"
    assert payment["decline_reason"] == reason
    assert payment["movements"] == []
    assert client.get(f"/payments/{payment['id']}", headers=OPERATOR).json()["status"] == "declined"
    assert_problem(
        client.post(f"/payments/{payment['id']}/capture", json={"amount": eur(700)}),
        409,
        "invalid-payment-transition",
    )
    assert balances(client) == {"balances": [], "balanced": True}


def test_capture_then_refunds_down_to_zero(client: TestClient[Litestar]) -> None:
    payment = authorized(client, 1000)
    pid = payment["id"]
    captured = client.post(
        f"/payments/{pid}/capture", json={"amount": eur(800)}, headers={"Idempotency-Key": new_key()}
    )
    assert captured.status_code == 200
    assert captured.json()["status"] == "captured"
    assert captured.json()["captured"] == eur(800)
    assert balance(client, "card_holds") == 0  # the whole hold is released
    assert balance(client, "processor_receivable") == 800

    partial = client.post(
        f"/payments/{pid}/refund", json={"amount": eur(300)}, headers={"Idempotency-Key": new_key()}
    )
    assert partial.status_code == 200
    assert partial.json()["status"] == "partially_refunded"
    assert partial.json()["refunded"] == eur(300)
    rest = client.post(f"/payments/{pid}/refund", json={"amount": eur(500)})
    assert rest.status_code == 200
    assert rest.json()["status"] == "refunded"
    assert rest.json()["refunded"] == eur(800)

    final = client.get(f"/payments/{pid}", headers=OPERATOR).json()
    assert [m["kind"] for m in final["movements"]] == ["authorize", "capture", "refund", "refund"]
    assert balance(client, "processor_receivable") == 0
    assert balance(client, "merchant_revenue") == 0
    assert balances(client)["balanced"] is True


def test_capture_more_than_authorised_is_a_409(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    assert_problem(
        client.post(f"/payments/{pid}/capture", json={"amount": eur(1001)}), 409, "capture-exceeds-authorized"
    )
    assert client.get(f"/payments/{pid}", headers=OPERATOR).json()["status"] == "authorized"


def test_capture_happens_once(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    first = client.post(f"/payments/{pid}/capture", json={"amount": eur(600)})
    assert first.status_code == 200
    # the same capture again without a key: idempotent by state, nothing moves
    again = client.post(f"/payments/{pid}/capture", json={"amount": eur(600)})
    assert again.status_code == 200
    assert again.json() == first.json()
    # another amount: the payment is captured already
    assert_problem(
        client.post(f"/payments/{pid}/capture", json={"amount": eur(500)}), 409, "invalid-payment-transition"
    )
    # another key for a captured payment: also a second capture
    assert_problem(
        client.post(
            f"/payments/{pid}/capture", json={"amount": eur(600)}, headers={"Idempotency-Key": new_key()}
        ),
        409,
        "invalid-payment-transition",
    )
    assert balance(client, "processor_receivable") == 600


def test_void_releases_the_hold_and_repeats_harmlessly(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 900)["id"]
    voided = client.post(f"/payments/{pid}/void")
    assert voided.status_code == 200
    assert voided.json()["status"] == "voided"
    again = client.post(f"/payments/{pid}/void")
    assert again.status_code == 200
    assert again.json() == voided.json()
    assert balance(client, "card_holds") == 0
    assert_problem(
        client.post(f"/payments/{pid}/capture", json={"amount": eur(900)}), 409, "invalid-payment-transition"
    )
    assert_problem(
        client.post(f"/payments/{pid}/refund", json={"amount": eur(1)}), 409, "invalid-payment-transition"
    )


def test_a_captured_payment_cannot_be_voided(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 900)["id"]
    client.post(f"/payments/{pid}/capture", json={"amount": eur(900)})
    assert_problem(client.post(f"/payments/{pid}/void"), 409, "invalid-payment-transition")


def test_refunds_never_exceed_the_captured_amount(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    assert_problem(
        client.post(f"/payments/{pid}/refund", json={"amount": eur(1)}), 409, "invalid-payment-transition"
    )
    client.post(f"/payments/{pid}/capture", json={"amount": eur(400)})
    assert_problem(
        client.post(f"/payments/{pid}/refund", json={"amount": eur(401)}), 409, "refund-exceeds-captured"
    )
    assert client.post(f"/payments/{pid}/refund", json={"amount": eur(400)}).status_code == 200
    assert_problem(
        client.post(f"/payments/{pid}/refund", json={"amount": eur(1)}), 409, "invalid-payment-transition"
    )
    assert balance(client, "processor_receivable") == 0


def test_refunds_without_a_key_are_each_a_new_refund(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    client.post(f"/payments/{pid}/capture", json={"amount": eur(1000)})
    for _ in range(2):
        assert client.post(f"/payments/{pid}/refund", json={"amount": eur(100)}).status_code == 200
    assert client.get(f"/payments/{pid}", headers=OPERATOR).json()["refunded"] == eur(200)


def test_a_processor_error_is_a_502_and_records_nothing(client: TestClient[Litestar]) -> None:
    key = new_key()
    document = assert_problem(authorize(client, 500, "tok_error", key=key), 502, "processor-error")
    assert "correlation_id" in document
    assert balances(client) == {"balances": [], "balanced": True}
    # nothing was stored under the key: the retry asks the processor again (and fails again)
    assert_problem(authorize(client, 500, "tok_error", key=key), 502, "processor-error")


def test_an_unknown_card_token_is_a_422_naming_the_test_tokens(client: TestClient[Litestar]) -> None:
    document = assert_problem(authorize(client, 500, "4111111111111111"), 422, "unknown-card-token")
    assert all(token in document["detail"] for token in TEST_TOKENS)


def test_the_slow_token_answers_after_its_delay(client: TestClient[Litestar]) -> None:
    response = authorize(client, 500, "tok_slow")  # the app's slow delay is 0.05 s
    assert response.status_code == 201
    assert response.json()["status"] == "authorized"


def test_the_slow_token_past_the_callers_deadline_is_a_504(make_app: object) -> None:
    app = make_app(processor_slow_delay_s=30.0)  # type: ignore[operator]
    with TestClient(app=app) as client:
        key = new_key()
        response = authorize(client, 500, "tok_slow", key=key, headers={"X-Request-Timeout-Ms": "100"})
        assert_problem(response, 504)
        assert balances(client) == {"balances": [], "balanced": True}


def test_a_payment_is_read_by_operators_and_services_only(client: TestClient[Litestar]) -> None:
    pid = authorized(client)["id"]
    assert_problem(client.get(f"/payments/{pid}"), 403, "forbidden")
    assert_problem(client.get(f"/payments/{pid}", headers={"X-Caravan-Customer": "demo"}), 403, "forbidden")
    assert client.get(f"/payments/{pid}", headers=OPERATOR).status_code == 200


def test_balances_are_for_operators_only(client: TestClient[Litestar]) -> None:
    assert_problem(client.get("/ledger/balances"), 403, "forbidden")
    assert_problem(client.get("/ledger/balances", headers={"X-Caravan-Customer": "demo"}), 403, "forbidden")
    assert client.get("/ledger/balances", headers=OPERATOR).status_code == 200


def test_balances_list_every_account_per_currency(client: TestClient[Litestar]) -> None:
    pid = authorized(client, 1000)["id"]
    client.post(f"/payments/{pid}/capture", json={"amount": eur(1000)})
    authorize(client, 300)  # a second payment, still held
    listed = {
        (b["account"], b["balance"]["currency"]): b["balance"]["amount"] for b in balances(client)["balances"]
    }
    assert listed == {
        ("authorizations", "EUR"): -300,
        ("card_holds", "EUR"): 300,
        ("merchant_revenue", "EUR"): -1000,
        ("processor_receivable", "EUR"): 1000,
    }


def test_an_integral_json_number_is_an_integer_amount(client: TestClient[Litestar]) -> None:
    body = (
        b'{"order_id": "o-f", "amount": {"amount": 1250.0, "currency": "EUR"}, "card_token": "tok_approve"}'
    )
    response = client.post(
        "/payments/authorize",
        content=body,
        headers={"Idempotency-Key": new_key(), "Content-Type": "application/json"},
    )
    assert response.status_code == 201  # JSON Schema counts 1250.0 as an integer; 12.5 is refused
    assert response.json()["amount"] == eur(1250)
