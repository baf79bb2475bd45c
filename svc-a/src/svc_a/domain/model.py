"""Products and stock: plain classes, no I/O. Reservations are in :mod:`svc_a.domain.reservation`."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from caravan_commons.money import Money
from svc_a.domain.errors import InvalidProduct, InvalidQuantity, InvalidSku, OutOfStock, StockLimitReached

#: Upper-case letters and digits in 1–4 dash-separated groups, e.g. ``TENT-2P`` or ``MUG01``.
SKU_PATTERN = re.compile(r"[A-Z0-9]{2,16}(?:-[A-Z0-9]{1,16}){0,3}")
SKU_MAX_LENGTH = 64
#: The gate namespace: products the stage gates create to probe the running system (their skus
#: start with this). Listings leave them out; they are found only by naming their sku.
GATE_SKU_PREFIX = "GATE-"
NAME_MAX_LENGTH = 200
DESCRIPTION_MAX_LENGTH = 4000
#: The most units one stock row or one line may hold (fits a 32-bit column with room to spare).
MAX_QUANTITY = 1_000_000_000
#: The hard ceiling of ``on_hand`` (the 32-bit column): returned units may lift a row past
#: MAX_QUANTITY (units coming back are not refused), never past this.
ON_HAND_CEILING = 2**31 - 1


def validate_sku(sku: str) -> str:
    if not isinstance(sku, str) or len(sku) > SKU_MAX_LENGTH or not SKU_PATTERN.fullmatch(sku):
        raise InvalidSku(
            f"sku {sku!r} is not valid: upper-case letters and digits in up to 4 dash-separated "
            f"groups, e.g. TENT-2P, at most {SKU_MAX_LENGTH} characters"
        )
    return sku


def validate_quantity(quantity: int, *, what: str = "quantity") -> int:
    if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 < quantity <= MAX_QUANTITY:
        raise InvalidQuantity(f"{what} must be a whole number from 1 to {MAX_QUANTITY}, got {quantity!r}")
    return quantity


def _text(value: str, what: str, max_length: int, *, blank_ok: bool) -> str:
    if (
        not isinstance(value, str)
        or len(value) > max_length
        or "\x00" in value
        or (not blank_ok and not value.strip())
    ):
        limit = f"at most {max_length} characters, no NUL" + ("" if blank_ok else ", not blank")
        raise InvalidProduct(f"{what} must be text of {limit}")
    return value


@dataclass(frozen=True, slots=True)
class Product:
    """A catalogue entry. Prices are :class:`Money` (minor units), never floats, and never negative."""

    sku: str
    name: str
    price: Money
    description: str = ""
    active: bool = True

    def __post_init__(self) -> None:
        validate_sku(self.sku)
        _text(self.name, "name", NAME_MAX_LENGTH, blank_ok=False)
        _text(self.description, "description", DESCRIPTION_MAX_LENGTH, blank_ok=True)
        if not isinstance(self.price, Money) or self.price.amount < 0:
            raise InvalidProduct(f"price must be a non-negative Money amount, got {self.price!r}")
        if not isinstance(self.active, bool):
            raise InvalidProduct("active must be true or false")

    def changed(
        self,
        *,
        name: str | None = None,
        description: str | None = None,
        price: Money | None = None,
        active: bool | None = None,
    ) -> Product:
        """A copy with the given fields replaced (validated again); the sku never changes."""
        changes: dict[str, object] = {
            "name": name,
            "description": description,
            "price": price,
            "active": active,
        }
        return replace(self, **{k: v for k, v in changes.items() if v is not None})  # type: ignore[arg-type]


@dataclass(slots=True)
class Stock:
    """Units of one sku: ``on_hand`` in the warehouse, ``reserved`` of them held for orders.

    Invariant: ``0 <= reserved <= on_hand``; ``available = on_hand - reserved``. ``version`` counts
    changes so a repository can refuse a stale write.
    """

    sku: str
    on_hand: int = 0
    reserved: int = 0
    version: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        validate_sku(self.sku)
        self._check()

    def _check(self) -> None:
        for name in ("on_hand", "reserved"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise InvalidQuantity(f"{name} must be a whole number, got {value!r}")
        if not 0 <= self.reserved <= self.on_hand:
            raise InvalidQuantity(
                f"stock of {self.sku}: need 0 <= reserved <= on_hand, got reserved={self.reserved}, "
                f"on_hand={self.on_hand}"
            )

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved

    def can_hold(self, quantity: int) -> bool:
        return quantity <= self.available

    def restock(self, quantity: int) -> None:
        validate_quantity(quantity)
        if self.on_hand + quantity > MAX_QUANTITY:
            raise StockLimitReached(
                f"stock of {self.sku} would exceed {MAX_QUANTITY} units (on hand: {self.on_hand})",
                sku=self.sku,
            )
        self.on_hand += quantity
        self.version += 1

    def hold(self, quantity: int) -> None:
        validate_quantity(quantity)
        if not self.can_hold(quantity):
            raise OutOfStock(f"{self.sku}: {quantity} requested, {self.available} available", sku=self.sku)
        self.reserved += quantity
        self.version += 1

    def unhold(self, quantity: int) -> None:
        """Give back ``quantity`` held units (a released reservation)."""
        validate_quantity(quantity)
        if quantity > self.reserved:
            raise InvalidQuantity(f"{self.sku}: cannot release {quantity}, only {self.reserved} reserved")
        self.reserved -= quantity
        self.version += 1

    def ship(self, quantity: int) -> None:
        """Held units leave the warehouse (a committed reservation): on_hand and reserved drop."""
        validate_quantity(quantity)
        if quantity > self.reserved:
            raise InvalidQuantity(f"{self.sku}: cannot commit {quantity}, only {self.reserved} reserved")
        self.reserved -= quantity
        self.on_hand -= quantity
        self.version += 1

    def can_take_back(self, quantity: int) -> bool:
        return self.on_hand + quantity <= ON_HAND_CEILING

    def take_back(self, quantity: int) -> None:
        """Shipped units come back to the shelf (a committed reservation released): on_hand rises."""
        validate_quantity(quantity)
        if not self.can_take_back(quantity):
            raise InvalidQuantity(f"stock of {self.sku} would exceed {ON_HAND_CEILING} units")
        self.on_hand += quantity
        self.version += 1
