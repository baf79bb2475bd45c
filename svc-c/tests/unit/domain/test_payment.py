"""The Payment aggregate: transitions, limits, idempotent replays (example-based)."""

from __future__ import annotations

import itertools

import pytest

from caravan_commons.money import Money
from svc_c.domain.errors import (
    CaptureExceedsAuthorized,
    CurrencyMismatch,
    InvalidAmount,
    InvalidTransition,
    KeyReused,
    RefundExceedsCaptured,
)
from svc_c.domain.ledger import Account, Ledger, MovementKind
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.domain.processor import Decision, Outcome

APPROVED = Decision(Outcome.APPROVED, "sim_ref")


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def authorized(cents: int = 1000) -> Payment:
    counter = itertools.count()
    return Payment.authorize(
        order_id="order-1",
        amount=eur(cents),
        decision=APPROVED,
        key="k-auth",
        make_id=lambda: f"id-{next(counter)}",
    )


def test_an_approved_authorisation_books_a_balanced_hold() -> None:
    payment = authorized(1000)
    assert payment.status is PaymentStatus.AUTHORIZED
    assert payment.held == eur(1000)
    ledger = Ledger(payment.movements)
    assert ledger.is_balanced()
    assert ledger.balance(Account.CARD_HOLDS, "EUR") == eur(1000)
    assert ledger.balance(Account.AUTHORIZATIONS, "EUR") == eur(-1000)


@pytest.mark.parametrize("outcome", [Outcome.DECLINED, Outcome.INSUFFICIENT_FUNDS])
def test_a_declined_authorisation_moves_no_money_and_allows_nothing(outcome: Outcome) -> None:
    payment = Payment.authorize(order_id="o", amount=eur(500), decision=Decision(outcome, "r"), key="k")
    assert payment.status is PaymentStatus.DECLINED
    assert payment.decline_reason == outcome.value
    assert payment.movements == []
    with pytest.raises(InvalidTransition):
        payment.capture(eur(500), "k2")
    with pytest.raises(InvalidTransition):
        payment.void("k3")


def test_capture_books_revenue_and_releases_the_whole_hold() -> None:
    payment = authorized(1000)
    movement = payment.capture(eur(700), "k-cap")
    assert movement.kind is MovementKind.CAPTURE
    assert payment.status is PaymentStatus.CAPTURED
    assert payment.captured == eur(700)
    ledger = Ledger(payment.movements)
    assert ledger.is_balanced()
    assert ledger.balance(Account.CARD_HOLDS, "EUR") == eur(0)
    assert ledger.balance(Account.PROCESSOR_RECEIVABLE, "EUR") == eur(700)
    assert ledger.balance(Account.MERCHANT_REVENUE, "EUR") == eur(-700)


def test_capture_at_most_the_authorised_amount_and_only_once() -> None:
    payment = authorized(1000)
    with pytest.raises(CaptureExceedsAuthorized):
        payment.capture(eur(1001), "k1")
    payment.capture(eur(1000), "k2")
    with pytest.raises(InvalidTransition):
        payment.capture(eur(1), "k3")
    assert len(payment.movements) == 2


@pytest.mark.parametrize(
    ("amount", "error"),
    [(eur(0), InvalidAmount), (eur(-5), InvalidAmount), (Money(100, "USD"), CurrencyMismatch)],
)
def test_zero_negative_or_foreign_amounts_are_refused(amount: Money, error: type[Exception]) -> None:
    payment = authorized(1000)
    with pytest.raises(error):
        payment.capture(amount, "k")
    payment.capture(eur(1000), "k-cap")
    with pytest.raises(error):
        payment.refund(amount, "k-ref")
    assert payment.refunded == eur(0)
    assert CurrencyMismatch.status == 422


def test_authorising_a_non_positive_amount_is_refused() -> None:
    with pytest.raises(InvalidAmount):
        Payment.authorize(order_id="o", amount=eur(0), decision=APPROVED, key="k")


def test_refunds_never_exceed_what_was_captured() -> None:
    payment = authorized(1000)
    payment.capture(eur(600), "cap")
    payment.refund(eur(200), "r1")
    assert payment.status is PaymentStatus.PARTIALLY_REFUNDED
    with pytest.raises(RefundExceedsCaptured):
        payment.refund(eur(401), "r2")
    payment.refund(eur(400), "r3")
    assert payment.status is PaymentStatus.REFUNDED
    with pytest.raises(InvalidTransition):
        payment.refund(eur(1), "r4")
    ledger = Ledger(payment.movements)
    assert ledger.balance(Account.PROCESSOR_RECEIVABLE, "EUR") == eur(0)
    assert ledger.is_balanced()


def test_void_releases_the_hold_and_ends_the_payment() -> None:
    payment = authorized(1000)
    payment.void("v")
    assert payment.status is PaymentStatus.VOIDED
    assert Ledger(payment.movements).balance(Account.CARD_HOLDS, "EUR") == eur(0)
    with pytest.raises(InvalidTransition):
        payment.capture(eur(10), "c")
    with pytest.raises(InvalidTransition):
        payment.refund(eur(10), "r")


def test_a_captured_payment_cannot_be_voided() -> None:
    payment = authorized(1000)
    payment.capture(eur(1000), "c")
    with pytest.raises(InvalidTransition):
        payment.void("v")


def test_replaying_a_key_returns_the_same_movement_and_moves_nothing() -> None:
    payment = authorized(1000)
    first = payment.capture(eur(1000), "cap")
    payment.refund(eur(300), "ref")
    assert payment.capture(eur(1000), "cap") is first  # replayed after the status moved on
    again = payment.refund(eur(300), "ref")
    assert again.key == "ref"
    assert payment.refunded == eur(300)
    assert len(payment.movements) == 3


def test_a_key_reused_for_another_operation_is_refused() -> None:
    payment = authorized(1000)
    payment.capture(eur(1000), "same")
    with pytest.raises(KeyReused):
        payment.refund(eur(10), "same")
    with pytest.raises(KeyReused):
        payment.capture(eur(999), "same")


@pytest.mark.parametrize(("order_id", "key"), [("", "k"), ("o" * 101, "k"), ("o", ""), ("o", "k" * 256)])
def test_identifiers_outside_their_limits_are_refused(order_id: str, key: str) -> None:
    with pytest.raises(InvalidAmount):
        Payment.authorize(order_id=order_id, amount=eur(100), decision=APPROVED, key=key)


def test_a_movement_key_outside_its_limits_is_refused() -> None:
    payment = authorized(1000)
    with pytest.raises(InvalidAmount):
        payment.capture(eur(100), "")
    with pytest.raises(InvalidAmount):
        payment.void("v" * 256)
    assert payment.status is PaymentStatus.AUTHORIZED
