"""Catalog's domain errors: subclasses of the commons hierarchy, so one problem+json mapping fits."""

from __future__ import annotations

from caravan_commons.errors import ConflictError, NotFoundError, ValidationError


class InvalidSku(ValidationError):
    slug = "invalid-sku"
    title = "Invalid SKU"


class InvalidQuantity(ValidationError):
    slug = "invalid-quantity"
    title = "Invalid quantity"


class InvalidProduct(ValidationError):
    slug = "invalid-product"
    title = "Invalid product"


class UnknownSku(NotFoundError):
    slug = "unknown-sku"
    title = "Unknown SKU"


class ReservationNotFound(NotFoundError):
    slug = "reservation-not-found"
    title = "Reservation not found"


class OutOfStock(ConflictError):
    """Not enough available stock for at least one line; nothing was reserved."""

    slug = "out-of-stock"
    title = "Out of stock"


class StockLimitReached(ConflictError):
    """A restock would lift a stock row past the most units it may hold; nothing changed."""

    slug = "stock-limit-reached"
    title = "Stock limit reached"


class ProductInactive(ConflictError):
    """A line names a product that is not on sale (``active`` false); nothing was reserved."""

    slug = "product-inactive"
    title = "Product not on sale"


class ReservationConflict(ConflictError):
    """The order already has a reservation with other lines, or its state forbids the transition."""

    slug = "reservation-conflict"
    title = "Reservation conflict"


class DuplicateProduct(ConflictError):
    slug = "duplicate-product"
    title = "Product already exists"


class ConcurrentUpdate(ConflictError):
    """Someone else changed the same stock row first; retry."""

    slug = "concurrent-update"
    title = "Concurrent update"
