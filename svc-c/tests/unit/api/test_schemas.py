"""Wire types: constraints refuse bad bodies; domain objects map to the documented shapes."""

from __future__ import annotations

from typing import get_args

import msgspec
import pytest

from caravan_commons.money import CURRENCIES, Money
from caravan_commons.schemas import decoder_for, encode
from svc_c.api.schemas import AuthorizeRequest, BalancesOut, CurrencyCode, PaymentOut, RefundRequest, Status
from svc_c.domain.ledger import Ledger
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.domain.processor import Decision, Outcome


def test_an_authorise_request_decodes_into_money() -> None:
    body = b'{"order_id": "o-1", "amount": {"amount": 1250, "currency": "EUR"}, "card_token": "tok_approve"}'
    request = decoder_for(AuthorizeRequest).decode(body)
    assert request.amount.to_money() == Money(1250, "EUR")


@pytest.mark.parametrize(
    "body",
    [
        b'{"amount": {"amount": 0, "currency": "EUR"}}',
        b'{"amount": {"amount": -5, "currency": "EUR"}}',
        b'{"amount": {"amount": 1.5, "currency": "EUR"}}',
        b'{"amount": {"amount": 5, "currency": "eur"}}',
        b'{"amount": {"amount": 5, "currency": "XXX"}}',
        b'{"amount": {"amount": 5, "currency": "EUR"}, "extra": 1}',
        b'{"amount": {"amount": 10000000000000000, "currency": "EUR"}}',
    ],
)
def test_bad_amounts_are_refused_by_the_types(body: bytes) -> None:
    with pytest.raises(msgspec.ValidationError):
        decoder_for(RefundRequest).decode(body)


def test_a_payment_and_the_balances_encode() -> None:
    payment = Payment.authorize(
        order_id="o", amount=Money(900, "EUR"), decision=Decision(Outcome.APPROVED, "ref"), key="k"
    )
    payment.capture(Money(900, "EUR"), "c")
    out = msgspec.json.decode(encode(PaymentOut.of(payment)))
    assert out["status"] == "captured"
    assert out["captured"] == {"amount": 900, "currency": "EUR"}
    assert [m["kind"] for m in out["movements"]] == ["authorize", "capture"]
    balances = BalancesOut.of(Ledger(payment.movements).balances())
    assert balances.balanced is True
    assert {b.account for b in balances.balances} >= {"processor_receivable", "merchant_revenue"}


def test_the_wire_enums_mirror_the_domain_and_commons() -> None:
    assert set(get_args(CurrencyCode)) == set(CURRENCIES)
    assert set(get_args(Status)) == {status.value for status in PaymentStatus}
