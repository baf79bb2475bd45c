"""Commands of svc-c's use cases: plain immutable values, built by the API from validated input."""

from __future__ import annotations

from dataclasses import dataclass

from caravan_commons.money import Money


@dataclass(frozen=True, slots=True)
class Authorize:
    order_id: str
    amount: Money
    card_token: str
    key: str  # idempotency key: the same key returns the same payment


@dataclass(frozen=True, slots=True)
class Capture:
    payment_id: str
    amount: Money
    key: str


@dataclass(frozen=True, slots=True)
class Void:
    payment_id: str
    key: str


@dataclass(frozen=True, slots=True)
class Refund:
    payment_id: str
    amount: Money
    key: str
