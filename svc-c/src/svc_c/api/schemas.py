"""Wire types of svc-c's API (msgspec Structs on the commons base) and their mapping from the domain.

Amounts travel as ``{"amount": <minor units>, "currency": "EUR"}`` (never floats). Constraints
live in the types, so malformed bodies are refused before a use case runs; what the types cannot
say (a currency other than the payment's, refund above captured) the domain refuses with a 4xx error.
"""

from __future__ import annotations

from typing import Annotated, Literal

from msgspec import Meta

from caravan_commons.money import Money
from caravan_commons.schemas import MoneyOut, WireStruct
from svc_c.domain.ledger import Account, Movement
from svc_c.domain.model import MAX_ORDER_ID, Payment

#: A payment's status on the wire (the values of PaymentStatus; a unit test keeps them equal).
Status = Literal["authorized", "captured", "partially_refunded", "refunded", "voided", "declined"]

#: A positive amount in minor units, below what a signed 64-bit column holds comfortably.
MinorUnits = Annotated[int, Meta(gt=0, le=10**15, description="amount in minor units (cents)")]
#: The ISO 4217 codes the system accepts (caravan_commons.money.CURRENCIES; a unit test keeps them
#: equal), an enum in the schema, so a code the system does not know is refused by the types.
CurrencyCode = Literal[
    "AUD", "BRL", "CAD", "CHF", "CNY", "CZK", "DKK", "EUR", "GBP", "HKD", "HUF", "INR", "ISK",
    "JPY", "KRW", "KWD", "MXN", "NOK", "NZD", "PLN", "SEK", "SGD", "TRY", "USD", "ZAR",
]  # fmt: skip
Currency = Annotated[CurrencyCode, Meta(description="ISO 4217 code the system accepts, e.g. EUR")]
CardToken = Annotated[
    str,
    Meta(
        min_length=1,
        max_length=64,
        description=(
            "a card token of the simulated processor: tok_approve, tok_decline, tok_insufficient_funds, "
            "tok_slow (answers after a delay), tok_error (processor failure, 502); others are refused (422)"
        ),
        examples=["tok_approve"],
    ),
]


class Amount(WireStruct):
    amount: MinorUnits
    currency: Currency

    def to_money(self) -> Money:
        return Money(self.amount, self.currency)


class AuthorizeRequest(WireStruct):
    order_id: Annotated[str, Meta(min_length=1, max_length=MAX_ORDER_ID)]
    amount: Amount
    card_token: CardToken


class CaptureRequest(WireStruct):
    amount: Amount


class RefundRequest(WireStruct):
    amount: Amount


class MovementOut(WireStruct):
    id: str
    kind: str
    amount: MoneyOut

    @classmethod
    def of(cls, movement: Movement) -> MovementOut:
        return cls(id=movement.id, kind=movement.kind.value, amount=MoneyOut.of(movement.amount))


class PaymentOut(WireStruct):
    id: str
    order_id: str
    status: Status
    amount: MoneyOut
    captured: MoneyOut
    refunded: MoneyOut
    processor_reference: str
    decline_reason: str | None = None
    movements: list[MovementOut] = []

    @classmethod
    def of(cls, payment: Payment) -> PaymentOut:
        return cls(
            id=payment.id,
            order_id=payment.order_id,
            status=payment.status.value,
            amount=MoneyOut.of(payment.amount),
            captured=MoneyOut.of(payment.captured),
            refunded=MoneyOut.of(payment.refunded),
            processor_reference=payment.processor_reference,
            decline_reason=payment.decline_reason,
            movements=[MovementOut.of(m) for m in payment.movements],
        )


class BalanceOut(WireStruct):
    account: str
    balance: MoneyOut


class BalancesOut(WireStruct):
    balances: list[BalanceOut]
    balanced: bool  # every currency sums to zero

    @classmethod
    def of(cls, balances: dict[tuple[Account, str], Money]) -> BalancesOut:
        sums: dict[str, int] = {}
        for (_, currency), money in balances.items():
            sums[currency] = sums.get(currency, 0) + money.amount
        return cls(
            balances=[BalanceOut(account=a.value, balance=MoneyOut.of(m)) for (a, _), m in balances.items()],
            balanced=all(total == 0 for total in sums.values()),
        )
