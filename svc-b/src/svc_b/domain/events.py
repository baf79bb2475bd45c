"""Domain events: one per transition of an order, recorded in the order's ``events`` list."""

from __future__ import annotations

from dataclasses import dataclass

from caravan_commons.money import Money


@dataclass(frozen=True, slots=True)
class Event:
    order_id: str


@dataclass(frozen=True, slots=True)
class OrderPlaced(Event):
    customer_id: str
    total: Money


@dataclass(frozen=True, slots=True)
class StockReserved(Event):
    pass


@dataclass(frozen=True, slots=True)
class PaymentAuthorized(Event):
    authorization_id: str


@dataclass(frozen=True, slots=True)
class StockCommitted(Event):
    pass


@dataclass(frozen=True, slots=True)
class PaymentCaptured(Event):
    authorization_id: str


@dataclass(frozen=True, slots=True)
class OrderConfirmed(Event):
    pass


@dataclass(frozen=True, slots=True)
class CancellationStarted(Event):
    reason: str


@dataclass(frozen=True, slots=True)
class StockReleased(Event):
    pass


@dataclass(frozen=True, slots=True)
class PaymentVoided(Event):
    authorization_id: str


@dataclass(frozen=True, slots=True)
class PaymentRefunded(Event):
    authorization_id: str


@dataclass(frozen=True, slots=True)
class OrderCancelled(Event):
    reason: str
