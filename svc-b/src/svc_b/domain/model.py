"""The Order aggregate and its state machine. Plain classes, no I/O.

Status: pending → stock_reserved → payment_authorized → confirmed. Any failure before confirmed,
and a customer's cancel of a confirmed order, move to ``cancelling`` with a reason; compensation
(release the stock; void an authorisation or refund a capture) then ends in ``cancelled``.
Besides the status the order tracks what it holds upstream (``stock``, ``payment``), so the
compensation knows what to undo. Every transition appends one event to ``events``.
"""

from __future__ import annotations

import enum
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from caravan_commons.money import Money
from svc_b.domain import events
from svc_b.domain.errors import IllegalTransition, InvalidOrder

MAX_QUANTITY = 10_000
MAX_LINES = 100


class OrderStatus(enum.StrEnum):
    PENDING = "pending"
    STOCK_RESERVED = "stock_reserved"
    PAYMENT_AUTHORIZED = "payment_authorized"
    CONFIRMED = "confirmed"
    CANCELLING = "cancelling"
    CANCELLED = "cancelled"


class StockState(enum.StrEnum):
    NONE = "none"
    RESERVED = "reserved"
    COMMITTED = "committed"
    RELEASED = "released"


class PaymentState(enum.StrEnum):
    NONE = "none"
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    VOIDED = "voided"
    REFUNDED = "refunded"


class CancelReason(enum.StrEnum):
    OUT_OF_STOCK = "out_of_stock"
    PAYMENT_DECLINED = "payment_declined"
    UPSTREAM_UNAVAILABLE = "upstream_unavailable"
    ABANDONED = "abandoned"
    CUSTOMER_CANCELLED = "customer_cancelled"


TERMINAL = frozenset({OrderStatus.CONFIRMED, OrderStatus.CANCELLED})
IN_FLIGHT = frozenset({OrderStatus.PENDING, OrderStatus.STOCK_RESERVED, OrderStatus.PAYMENT_AUTHORIZED})


@dataclass(frozen=True, slots=True)
class OrderLine:
    sku: str
    quantity: int
    unit_price: Money

    def __post_init__(self) -> None:
        if not isinstance(self.sku, str) or not self.sku.strip() or len(self.sku) > 64:
            raise InvalidOrder(f"a line needs a SKU of 1–64 characters, got {self.sku!r}")
        if isinstance(self.quantity, bool) or not isinstance(self.quantity, int):
            raise InvalidOrder(f"quantity of {self.sku} must be a whole number")
        if not 1 <= self.quantity <= MAX_QUANTITY:
            raise InvalidOrder(f"quantity of {self.sku} must be between 1 and {MAX_QUANTITY}")
        if self.unit_price.amount < 0:
            raise InvalidOrder(f"unit price of {self.sku} is negative")

    @property
    def subtotal(self) -> Money:
        return self.unit_price * self.quantity


def order_total(lines: Sequence[OrderLine]) -> Money:
    """The exact sum of the lines' subtotals (integer minor units; one currency)."""
    if not lines:
        raise InvalidOrder("an order needs at least one line")
    total = Money.zero(lines[0].unit_price.currency)
    for line in lines:
        if line.unit_price.currency != total.currency:
            raise InvalidOrder(
                f"all lines must be in one currency: {line.sku} is in {line.unit_price.currency}, "
                f"not {total.currency}"
            )
        total = total + line.subtotal
    return total


class Order:
    """An order and the upstream resources it holds; methods are the only way to change it."""

    def __init__(
        self,
        order_id: str,
        customer_id: str,
        lines: Sequence[OrderLine],
        *,
        status: OrderStatus = OrderStatus.PENDING,
        stock: StockState = StockState.NONE,
        payment: PaymentState = PaymentState.NONE,
        authorization_id: str | None = None,
        cancel_reason: str | None = None,
        card_token: str | None = None,
        card_digest: str | None = None,
        placed_at: datetime | None = None,
        version: int = 0,
    ) -> None:
        if not order_id or not customer_id:
            raise InvalidOrder("an order needs an id and a customer id")
        if len(lines) > MAX_LINES:
            raise InvalidOrder(f"an order has at most {MAX_LINES} lines")
        skus = [line.sku for line in lines]
        if len(set(skus)) != len(skus):
            raise InvalidOrder("each SKU appears on one line only")
        self.id = order_id
        self.customer_id = customer_id
        self.lines: tuple[OrderLine, ...] = tuple(lines)
        self.total = order_total(self.lines)
        self.status = status
        self.stock = stock
        self.payment = payment
        self.authorization_id = authorization_id
        self.cancel_reason = cancel_reason
        #: the payment method, kept only until the payment is authorised (recovery may still need it)
        self.card_token = card_token
        #: a keyed digest of the card token it was placed with, kept for good: a repeat of the
        #: order's Idempotency-Key with another card is told apart after the token is dropped
        self.card_digest = card_digest
        self.placed_at = placed_at
        self.version = version  # optimistic concurrency: the stored version this object was read at
        self.events: list[events.Event] = []

    @classmethod
    def place(
        cls,
        order_id: str,
        customer_id: str,
        lines: Sequence[OrderLine],
        *,
        card_token: str | None = None,
        card_digest: str | None = None,
        placed_at: datetime | None = None,
    ) -> Order:
        order = cls(
            order_id, customer_id, lines, card_token=card_token, card_digest=card_digest, placed_at=placed_at
        )
        order.events.append(events.OrderPlaced(order_id, customer_id, order.total))
        return order

    def __repr__(self) -> str:
        return (
            f"Order({self.id!r}, {self.status.value}, stock={self.stock.value}, payment={self.payment.value})"
        )

    # ------------------------------------------------------------------------ helpers

    def _require(self, allowed: bool, action: str) -> None:
        if not allowed:
            raise IllegalTransition(
                f"order {self.id}: cannot {action} while {self.status.value} "
                f"(stock {self.stock.value}, payment {self.payment.value})"
            )

    @property
    def is_terminal(self) -> bool:
        return self.status in TERMINAL

    @property
    def holds_stock(self) -> bool:
        return self.stock in (StockState.RESERVED, StockState.COMMITTED)

    @property
    def holds_payment(self) -> bool:
        return self.payment in (PaymentState.AUTHORIZED, PaymentState.CAPTURED)

    # ---------------------------------------------------------------- forward path

    def reserve_stock(self) -> None:
        self._require(self.status is OrderStatus.PENDING, "reserve stock")
        self.status, self.stock = OrderStatus.STOCK_RESERVED, StockState.RESERVED
        self.events.append(events.StockReserved(self.id))

    def authorize_payment(self, authorization_id: str) -> None:
        self._require(self.status is OrderStatus.STOCK_RESERVED, "authorise payment")
        if not authorization_id:
            raise InvalidOrder("an authorisation needs an id")
        self.status, self.payment = OrderStatus.PAYMENT_AUTHORIZED, PaymentState.AUTHORIZED
        self.authorization_id = authorization_id
        self.card_token = None  # authorised: the card token is not needed any more
        self.events.append(events.PaymentAuthorized(self.id, authorization_id))

    def commit_stock(self) -> None:
        self._require(
            self.status is OrderStatus.PAYMENT_AUTHORIZED and self.stock is StockState.RESERVED,
            "commit stock",
        )
        self.stock = StockState.COMMITTED
        self.events.append(events.StockCommitted(self.id))

    def capture_payment(self) -> None:
        self._require(
            self.status is OrderStatus.PAYMENT_AUTHORIZED
            and self.stock is StockState.COMMITTED
            and self.payment is PaymentState.AUTHORIZED,
            "capture payment",
        )
        self.payment = PaymentState.CAPTURED
        self.events.append(events.PaymentCaptured(self.id, self.authorization_id or ""))

    def confirm(self) -> None:
        self._require(
            self.status is OrderStatus.PAYMENT_AUTHORIZED
            and self.stock is StockState.COMMITTED
            and self.payment is PaymentState.CAPTURED,
            "confirm",
        )
        self.status = OrderStatus.CONFIRMED
        self.events.append(events.OrderConfirmed(self.id))

    # ------------------------------------------------------------ cancellation path

    def fail(self, reason: CancelReason | str) -> None:
        """A step of placing failed: start compensating (only before the order is confirmed)."""
        self._require(self.status in IN_FLIGHT, "fail")
        self._start_cancelling(str(reason))

    def cancel(self) -> None:
        """The customer cancels a confirmed order: refund and release, then cancelled."""
        self._require(self.status is OrderStatus.CONFIRMED, "cancel")
        self._start_cancelling(CancelReason.CUSTOMER_CANCELLED.value)

    def _start_cancelling(self, reason: str) -> None:
        if not reason:
            raise InvalidOrder("a cancellation needs a reason")
        self.status, self.cancel_reason = OrderStatus.CANCELLING, reason
        self.events.append(events.CancellationStarted(self.id, reason))

    def release_stock(self) -> None:
        self._require(self.status is OrderStatus.CANCELLING and self.holds_stock, "release stock")
        self.stock = StockState.RELEASED
        self.events.append(events.StockReleased(self.id))

    def void_payment(self) -> None:
        self._require(
            self.status is OrderStatus.CANCELLING and self.payment is PaymentState.AUTHORIZED, "void payment"
        )
        self.payment = PaymentState.VOIDED
        self.events.append(events.PaymentVoided(self.id, self.authorization_id or ""))

    def refund_payment(self) -> None:
        self._require(
            self.status is OrderStatus.CANCELLING and self.payment is PaymentState.CAPTURED, "refund payment"
        )
        self.payment = PaymentState.REFUNDED
        self.events.append(events.PaymentRefunded(self.id, self.authorization_id or ""))

    def complete_cancellation(self) -> None:
        self._require(
            self.status is OrderStatus.CANCELLING and not self.holds_stock and not self.holds_payment,
            "complete the cancellation",
        )
        self.status = OrderStatus.CANCELLED
        self.card_token = None
        self.events.append(events.OrderCancelled(self.id, self.cancel_reason or ""))
