"""Money: an integer amount of minor units (cents) in one ISO 4217 currency. Never a float.

Pure Python (standard library and caravan_commons.errors only), so every service's domain may use
it. Arithmetic across currencies is refused, not converted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Self

from caravan_commons.errors import ValidationError

#: ISO 4217 codes the system accepts, with their minor-unit exponent (cents per unit = 10**e).
CURRENCIES: dict[str, int] = {
    "AUD": 2, "BRL": 2, "CAD": 2, "CHF": 2, "CNY": 2, "CZK": 2, "DKK": 2, "EUR": 2, "GBP": 2,
    "HKD": 2, "HUF": 2, "INR": 2, "ISK": 0, "JPY": 0, "KRW": 0, "KWD": 3, "MXN": 2, "NOK": 2,
    "NZD": 2, "PLN": 2, "SEK": 2, "SGD": 2, "TRY": 2, "USD": 2, "ZAR": 2,
}  # fmt: skip


class CurrencyMismatch(ValidationError):
    slug = "currency-mismatch"
    title = "Currency mismatch"


def check_currency(code: str) -> str:
    if code not in CURRENCIES:
        raise ValidationError(f"unknown currency {code!r}: use an ISO 4217 code such as EUR or USD")
    return code


@dataclass(frozen=True, slots=True, order=False)
class Money:
    amount: int  # minor units, e.g. cents; may be negative (refunds, ledger credits)
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise ValidationError(f"a money amount is a whole number of minor units, not {self.amount!r}")
        check_currency(self.currency)

    @classmethod
    def zero(cls, currency: str) -> Self:
        return cls(0, currency)

    def _same(self, other: Money) -> None:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise CurrencyMismatch(f"cannot combine {self.currency} with {other.currency}")

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __mul__(self, factor: int) -> Money:
        if isinstance(factor, bool) or not isinstance(factor, int):
            raise TypeError("money is multiplied by whole numbers only (quantities)")
        return Money(self.amount * factor, self.currency)

    __rmul__ = __mul__

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def __gt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount > other.amount

    def __ge__(self, other: Money) -> bool:
        self._same(other)
        return self.amount >= other.amount

    @property
    def is_positive(self) -> bool:
        return self.amount > 0

    def __str__(self) -> str:
        exponent = CURRENCIES[self.currency]
        sign = "-" if self.amount < 0 else ""
        units, minor = divmod(abs(self.amount), 10**exponent)
        return f"{sign}{units}{'.' + str(minor).zfill(exponent) if exponent else ''} {self.currency}"


def total(amounts: list[Money], currency: str) -> Money:
    """The sum of ``amounts`` (all in ``currency``); zero for none."""
    result = Money.zero(currency)
    for amount in amounts:
        result = result + amount
    return result
