"""Wire types of svc-a's API (msgspec Structs on the commons base) and their domain conversions.

Constraints mirror the domain's (sku pattern, quantity range, text lengths) so the OpenAPI document
states them and msgspec rejects bad input before it reaches a use case; the domain checks again.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Literal

import msgspec

from caravan_commons.money import CURRENCIES, Money
from caravan_commons.schemas import WireStruct
from svc_a.domain.model import (
    DESCRIPTION_MAX_LENGTH,
    MAX_QUANTITY,
    NAME_MAX_LENGTH,
    SKU_MAX_LENGTH,
    SKU_PATTERN,
    Product,
    Stock,
)
from svc_a.domain.reservation import MAX_LINES, ORDER_ID_PATTERN, Line, Reservation

Sku = Annotated[str, msgspec.Meta(pattern=f"^{SKU_PATTERN.pattern}$", max_length=SKU_MAX_LENGTH)]
OrderId = Annotated[str, msgspec.Meta(pattern=f"^{ORDER_ID_PATTERN.pattern}$", max_length=100)]
Quantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_QUANTITY)]
#: One reservation line holds at most this many units, so that the lines of one request, added up
#: per sku, never exceed what one stock row may hold.
MAX_LINE_QUANTITY = MAX_QUANTITY // MAX_LINES
LineQuantity = Annotated[int, msgspec.Meta(ge=1, le=MAX_LINE_QUANTITY)]
#: Text with a non-blank character and no NUL (which Postgres text columns refuse).
Name = Annotated[
    str, msgspec.Meta(min_length=1, max_length=NAME_MAX_LENGTH, pattern=r"^\s*[^\s\x00][^\x00]*$")
]
Description = Annotated[str, msgspec.Meta(max_length=DESCRIPTION_MAX_LENGTH, pattern=r"^[^\x00]*$")]
#: The ISO 4217 codes the system accepts (caravan_commons.money.CURRENCIES), as an enum.
if TYPE_CHECKING:
    Currency = str
else:
    Currency = Literal[tuple(sorted(CURRENCIES))]
#: Page sizes of listings.
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
#: How many skus one listing may name (``?sku=A&sku=B``): an order's lines, at most.
MAX_SKU_FILTER = MAX_LINES


class MoneyWire(WireStruct):
    amount: Annotated[int, msgspec.Meta(ge=0, le=10**15, description="minor units, e.g. cents")]
    currency: Currency

    def to_domain(self) -> Money:
        return Money(self.amount, self.currency)

    @classmethod
    def of(cls, money: Money) -> MoneyWire:
        return cls(amount=money.amount, currency=money.currency)


class ProductOut(WireStruct):
    sku: str
    name: str
    description: str
    price: MoneyWire
    active: bool

    @classmethod
    def of(cls, product: Product) -> ProductOut:
        return cls(
            sku=product.sku,
            name=product.name,
            description=product.description,
            price=MoneyWire.of(product.price),
            active=product.active,
        )


class ProductCreate(WireStruct):
    sku: Sku
    name: Name
    price: MoneyWire
    description: Description = ""
    active: bool = True
    initial_stock: Annotated[int, msgspec.Meta(ge=0, le=MAX_QUANTITY)] = 0

    def to_domain(self) -> Product:
        return Product(
            sku=self.sku,
            name=self.name,
            description=self.description,
            price=self.price.to_domain(),
            active=self.active,
        )


class ProductPatch(WireStruct):
    name: Name | msgspec.UnsetType = msgspec.UNSET
    description: Description | msgspec.UnsetType = msgspec.UNSET
    price: MoneyWire | msgspec.UnsetType = msgspec.UNSET
    active: bool | msgspec.UnsetType = msgspec.UNSET

    def apply(self, product: Product) -> Product:
        return product.changed(
            name=None if self.name is msgspec.UNSET else self.name,
            description=None if self.description is msgspec.UNSET else self.description,
            price=None if self.price is msgspec.UNSET else self.price.to_domain(),
            active=None if self.active is msgspec.UNSET else self.active,
        )


class ProductPage(WireStruct):
    """One page of products by sku; pass ``next_cursor`` back as ``cursor`` for the next page
    (``null`` on the last page)."""

    items: list[ProductOut]
    next_cursor: str | None = None


class RestockIn(WireStruct):
    quantity: Quantity


class StockOut(WireStruct):
    sku: str
    on_hand: int
    reserved: int
    available: int

    @classmethod
    def of(cls, stock: Stock) -> StockOut:
        return cls(sku=stock.sku, on_hand=stock.on_hand, reserved=stock.reserved, available=stock.available)


class LineWire(WireStruct):
    sku: Sku
    quantity: LineQuantity


class ReservationCreate(WireStruct):
    """Lines naming the same sku are added together (the reservation has one line per sku)."""

    order_id: OrderId
    lines: Annotated[list[LineWire], msgspec.Meta(min_length=1, max_length=MAX_LINES)]

    def domain_lines(self) -> list[Line]:
        merged: dict[str, int] = {}
        for line in self.lines:
            merged[line.sku] = merged.get(line.sku, 0) + line.quantity
        return [Line(sku, quantity) for sku, quantity in merged.items()]


ReservationStatus = Literal["held", "committed", "released"]


class LineOut(WireStruct):
    sku: str
    quantity: int


class ReservationOut(WireStruct):
    """``expires_at``: when a *held* reservation is released by the sweeper (RFC 3339, UTC)."""

    order_id: str
    status: ReservationStatus
    lines: list[LineOut]
    expires_at: datetime

    @classmethod
    def of(cls, reservation: Reservation) -> ReservationOut:
        return cls(
            order_id=reservation.order_id,
            status=reservation.status.value,
            lines=[LineOut(sku=line.sku, quantity=line.quantity) for line in reservation.lines],
            expires_at=reservation.expires_at,
        )
