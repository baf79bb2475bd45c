"""Wire types of svc-b's API (msgspec Structs on the commons base) and their mapping from the domain.

Amounts are ``{"amount": <minor units>, "currency": "EUR"}``, never floats. Constraints live in
the types (so the OpenAPI document states them and a bad body is a 400 before any use case runs);
SKUs follow the catalog's pattern, so a malformed one is refused here instead of upstream.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from msgspec import Meta

from caravan_commons.schemas import MoneyOut, WireStruct
from svc_b.domain.model import MAX_LINES, MAX_QUANTITY, Order

#: The catalog's (svc-a's) SKU format, e.g. ``TENT-2P``.
SKU_PATTERN = r"^[A-Z0-9]{2,16}(?:-[A-Z0-9]{1,16}){0,3}$"
#: Card tokens as the payments service (svc-c) accepts them, e.g. ``tok_approve``.
CARD_TOKEN_PATTERN = r"^[A-Za-z0-9_.:-]{1,64}$"
#: Order ids are UUIDs (derived from the customer and the Idempotency-Key).
ORDER_ID_PATTERN = r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$"
MAX_PAGE = 100

Sku = Annotated[str, Meta(pattern=SKU_PATTERN, max_length=64, description="catalog SKU, e.g. TENT-2P")]
Quantity = Annotated[int, Meta(ge=1, le=MAX_QUANTITY)]
CardToken = Annotated[
    str, Meta(pattern=CARD_TOKEN_PATTERN, description="payment card token, e.g. tok_approve")
]


class LineIn(WireStruct):
    sku: Sku
    quantity: Quantity


class PaymentIn(WireStruct):
    card_token: CardToken


class PlaceOrderIn(WireStruct):
    lines: Annotated[list[LineIn], Meta(min_length=1, max_length=MAX_LINES)]
    payment: PaymentIn


class LineOut(WireStruct):
    sku: str
    quantity: int
    unit_price: MoneyOut
    subtotal: MoneyOut


class OrderOut(WireStruct):
    """An order as its customer sees it. ``status`` is final when ``confirmed`` or ``cancelled``;
    any other status is still moving (poll ``GET /orders/{id}``)."""

    id: str
    status: str
    lines: list[LineOut]
    total: MoneyOut
    stock: str
    payment: str
    cancel_reason: str | None = None
    placed_at: datetime | None = None

    @classmethod
    def of(cls, order: Order) -> OrderOut:
        return cls(
            id=order.id,
            status=order.status.value,
            lines=[
                LineOut(
                    sku=line.sku,
                    quantity=line.quantity,
                    unit_price=MoneyOut.of(line.unit_price),
                    subtotal=MoneyOut.of(line.subtotal),
                )
                for line in order.lines
            ],
            total=MoneyOut.of(order.total),
            stock=order.stock.value,
            payment=order.payment.value,
            cancel_reason=order.cancel_reason,
            placed_at=order.placed_at,
        )


class OrderPage(WireStruct):
    items: list[OrderOut]
    next_cursor: str | None = None
