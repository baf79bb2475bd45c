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
    #: a digest of the whole request (the API's fingerprint): the same key with another card is
    #: refused too, though the card token is not kept
    request_digest: str = ""


# Capture, void and refund take an optional key. Without one, capture and void are idempotent by
# state (a payment already captured for that amount, or already voided, is answered as it is) and
# every refund is a new one.


@dataclass(frozen=True, slots=True)
class Capture:
    payment_id: str
    amount: Money
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Void:
    payment_id: str
    key: str | None = None


@dataclass(frozen=True, slots=True)
class Refund:
    payment_id: str
    amount: Money
    key: str | None = None
