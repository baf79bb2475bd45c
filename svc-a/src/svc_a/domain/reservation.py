"""Reservations: units of stock held for one order until it commits, releases, or expires."""

from __future__ import annotations

import enum
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from caravan_commons.errors import ValidationError
from svc_a.domain.errors import InvalidQuantity, ReservationConflict
from svc_a.domain.model import validate_quantity, validate_sku

ORDER_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:-]{0,99}")
MAX_LINES = 100


class Status(enum.StrEnum):
    HELD = "held"
    COMMITTED = "committed"
    RELEASED = "released"


def validate_order_id(order_id: str) -> str:
    if not isinstance(order_id, str) or not ORDER_ID_PATTERN.fullmatch(order_id):
        raise ValidationError(
            f"order id {order_id!r} is not valid: 1–100 letters, digits, '_', '.', ':' or '-'"
        )
    return order_id


@dataclass(frozen=True, slots=True, order=True)
class Line:
    sku: str
    quantity: int

    def __post_init__(self) -> None:
        validate_sku(self.sku)
        validate_quantity(self.quantity)


def normalise_lines(lines: Iterable[Line]) -> tuple[Line, ...]:
    """Lines sorted by sku; empty, oversized or repeated-sku requests are refused."""
    result = tuple(sorted(lines))
    if not result:
        raise InvalidQuantity("a reservation needs at least one line")
    if len(result) > MAX_LINES:
        raise InvalidQuantity(f"a reservation has at most {MAX_LINES} lines, got {len(result)}")
    skus = [line.sku for line in result]
    if len(set(skus)) != len(skus):
        raise InvalidQuantity("each sku may appear on one line only")
    return result


@dataclass(slots=True)
class Reservation:
    order_id: str
    lines: tuple[Line, ...]
    expires_at: datetime
    status: Status = Status.HELD

    def __post_init__(self) -> None:
        validate_order_id(self.order_id)
        self.lines = normalise_lines(self.lines)
        if self.expires_at.tzinfo is None:
            raise ValueError("expires_at must be timezone-aware")

    def is_expired(self, now: datetime) -> bool:
        return self.status is Status.HELD and now >= self.expires_at

    def mark_committed(self) -> bool:
        """Held → committed; True when that changed anything (committed again is a no-op)."""
        if self.status is Status.COMMITTED:
            return False
        if self.status is Status.RELEASED:
            raise ReservationConflict(f"reservation {self.order_id} was released and cannot be committed")
        self.status = Status.COMMITTED
        return True

    def mark_released(self) -> bool:
        """Held or committed → released; True when that changed anything (released again is a no-op).

        Releasing a committed reservation undoes the sale (a cancelled, refunded order): the caller
        puts the shipped units back on the shelf (see :func:`svc_a.domain.inventory.release`).
        """
        if self.status is Status.RELEASED:
            return False
        self.status = Status.RELEASED
        return True
