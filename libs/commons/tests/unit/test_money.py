"""Money: exact minor units, one currency at a time."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from caravan_commons.errors import ValidationError
from caravan_commons.money import CURRENCIES, CurrencyMismatch, Money, total

amounts = st.integers(min_value=-(10**15), max_value=10**15)
currencies = st.sampled_from(sorted(CURRENCIES))


@given(st.lists(amounts, max_size=20), currencies)
def test_totals_are_exact(values, currency):
    assert total([Money(v, currency) for v in values], currency) == Money(sum(values), currency)


@given(amounts, amounts, st.integers(min_value=0, max_value=1000), currencies)
def test_arithmetic_is_integer_arithmetic(a, b, n, currency):
    x, y = Money(a, currency), Money(b, currency)
    assert (x + y).amount == a + b
    assert (x - y).amount == a - b
    assert (x * n).amount == a * n == (n * x).amount
    assert (x < y) == (a < b)


def test_currencies_never_mix():
    with pytest.raises(CurrencyMismatch, match="EUR with USD"):
        Money(100, "EUR") + Money(100, "USD")
    with pytest.raises(CurrencyMismatch):
        assert Money(1, "EUR") < Money(2, "GBP")


@pytest.mark.parametrize("amount", [1.5, "100", True, None])
def test_amounts_are_whole_minor_units(amount):
    with pytest.raises(ValidationError):
        Money(amount, "EUR")


@pytest.mark.parametrize("currency", ["eur", "EURO", "XXX", ""])
def test_unknown_currencies_are_refused(currency):
    with pytest.raises(ValidationError, match="unknown currency"):
        Money(1, currency)


def test_display_uses_the_currency_exponent():
    assert str(Money(12345, "EUR")) == "123.45 EUR"
    assert str(Money(-5, "USD")) == "-0.05 USD"
    assert str(Money(500, "JPY")) == "500 JPY"
    assert str(Money(1234, "KWD")) == "1.234 KWD"
