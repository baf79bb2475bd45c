"""Double-entry movements: balanced or refused; balances derive from entries."""

from __future__ import annotations

import pytest

from caravan_commons.money import Money
from svc_c.domain.errors import KeyReused, UnbalancedMovement
from svc_c.domain.ledger import Account, Entry, Ledger, Movement, MovementKind, transfer


def movement(mid: str, key: str, entries: tuple[Entry, ...], amount: Money | None = None) -> Movement:
    return Movement(
        id=mid,
        payment_id="p",
        kind=MovementKind.CAPTURE,
        amount=amount or Money(100, "EUR"),
        key=key,
        entries=entries,
    )


def test_an_unbalanced_movement_cannot_exist() -> None:
    with pytest.raises(UnbalancedMovement, match="off by 1"):
        movement(
            "m",
            "k",
            (Entry(Account.CARD_HOLDS, Money(100, "EUR")), Entry(Account.AUTHORIZATIONS, Money(-99, "EUR"))),
        )
    with pytest.raises(UnbalancedMovement):
        movement("m", "k", ())


def test_balance_is_per_currency() -> None:
    # 100 EUR against -100 USD sums to zero numerically but not per currency
    with pytest.raises(UnbalancedMovement):
        movement(
            "m",
            "k",
            (Entry(Account.CARD_HOLDS, Money(100, "EUR")), Entry(Account.AUTHORIZATIONS, Money(-100, "USD"))),
        )


def test_balances_derive_from_entries() -> None:
    ledger = Ledger()
    ledger.post(
        movement(
            "m1", "k1", transfer(Account.PROCESSOR_RECEIVABLE, Account.MERCHANT_REVENUE, Money(700, "EUR"))
        )
    )
    ledger.post(
        movement(
            "m2",
            "k2",
            transfer(Account.PROCESSOR_RECEIVABLE, Account.MERCHANT_REVENUE, Money(5, "USD")),
            Money(5, "USD"),
        )
    )
    assert ledger.balances() == {
        (Account.MERCHANT_REVENUE, "EUR"): Money(-700, "EUR"),
        (Account.MERCHANT_REVENUE, "USD"): Money(-5, "USD"),
        (Account.PROCESSOR_RECEIVABLE, "EUR"): Money(700, "EUR"),
        (Account.PROCESSOR_RECEIVABLE, "USD"): Money(5, "USD"),
    }
    assert ledger.balance(Account.CARD_HOLDS, "EUR") == Money(0, "EUR")
    assert ledger.is_balanced()


def test_posting_the_same_key_twice_records_it_once() -> None:
    ledger = Ledger()
    entries = transfer(Account.PROCESSOR_RECEIVABLE, Account.MERCHANT_REVENUE, Money(100, "EUR"))
    assert ledger.post(movement("m1", "k", entries)) is True
    assert ledger.post(movement("m2", "k", entries)) is False
    assert len(ledger.movements) == 1
    with pytest.raises(KeyReused):
        ledger.post(
            movement(
                "m3",
                "k",
                transfer(Account.CARD_HOLDS, Account.AUTHORIZATIONS, Money(1, "EUR")),
                Money(1, "EUR"),
            )
        )
