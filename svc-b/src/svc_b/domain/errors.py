"""Domain errors of Orders: subclasses of the commons hierarchy, so one problem+json mapping fits."""

from __future__ import annotations

from caravan_commons.errors import ConflictError, ValidationError


class InvalidOrder(ValidationError):
    """The order's content breaks a rule (no lines, a bad quantity, mixed currencies, ...)."""

    slug = "invalid-order"
    title = "Invalid order"


class IllegalTransition(ConflictError):
    """The order's current state does not allow this step."""

    slug = "illegal-order-transition"
    title = "Illegal order transition"
