"""The domain service over stock and reservations: reserve, commit, release, expire.

Releasing a committed reservation puts its units back on the shelf (an order cancelled after
payment); every other transition is as the reservation's status machine says.

Functions take the reservation (if any) and the :class:`Stock` of every sku involved, change them
in place, and never do I/O; the service layer loads and saves them in one unit of work.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime, timedelta

from svc_a.domain.errors import OutOfStock, ProductInactive, ReservationConflict, UnknownSku
from svc_a.domain.model import Stock
from svc_a.domain.reservation import Line, Reservation, Status, normalise_lines


def _stocks_for(lines: Iterable[Line], stocks: Mapping[str, Stock]) -> list[tuple[Line, Stock]]:
    pairs = []
    for line in lines:
        stock = stocks.get(line.sku)
        if stock is None:
            raise UnknownSku(f"no stock for sku {line.sku}", sku=line.sku)
        pairs.append((line, stock))
    return pairs


def reserve(
    existing: Reservation | None,
    order_id: str,
    lines: Iterable[Line],
    stocks: Mapping[str, Stock],
    *,
    now: datetime,
    ttl: timedelta,
    inactive: Collection[str] = (),
) -> tuple[Reservation, bool]:
    """Hold every line for ``order_id`` or nothing; ``(reservation, created)``.

    Idempotent per order id: the same lines again return the existing reservation unchanged
    (whatever its status); other lines raise :class:`ReservationConflict`. A line that cannot be
    held raises :class:`OutOfStock` (or :class:`UnknownSku`, or :class:`ProductInactive` for a sku
    in ``inactive``) before any stock changes.
    """
    wanted = normalise_lines(lines)
    if existing is not None:
        if existing.order_id != order_id:
            raise ValueError("existing reservation belongs to another order")
        if existing.lines != wanted:
            raise ReservationConflict(
                f"order {order_id} already has a reservation with other lines", order_id=order_id
            )
        return existing, False
    if ttl <= timedelta(0):
        raise ValueError("a reservation's time to live must be positive")
    pairs = _stocks_for(wanted, stocks)
    off_sale = [line.sku for line in wanted if line.sku in inactive]
    if off_sale:
        raise ProductInactive(f"not on sale: {', '.join(off_sale)}", skus=off_sale)
    short = [
        f"{line.sku} ({line.quantity} > {stock.available})"
        for line, stock in pairs
        if not stock.can_hold(line.quantity)
    ]
    if short:
        raise OutOfStock(f"not enough stock: {', '.join(short)}", skus=[s.split(" ")[0] for s in short])
    for line, stock in pairs:
        stock.hold(line.quantity)
    return new_reservation(order_id, wanted, now=now, ttl=ttl), True


def new_reservation(order_id: str, lines: Iterable[Line], *, now: datetime, ttl: timedelta) -> Reservation:
    """A held reservation of ``lines`` for ``order_id`` expiring ``ttl`` after ``now`` (whole
    milliseconds, as stored); its stock is held by :func:`reserve` or by the repository."""
    if ttl <= timedelta(0):
        raise ValueError("a reservation's time to live must be positive")
    expires_at = now + ttl
    expires_at = expires_at.replace(microsecond=expires_at.microsecond // 1000 * 1000)  # stored in ms
    return Reservation(order_id=order_id, lines=normalise_lines(lines), expires_at=expires_at)


def release(reservation: Reservation, stocks: Mapping[str, Stock]) -> bool:
    """Give the units back; True if anything changed (a released reservation is a no-op).

    A held reservation's units are unheld (``reserved`` drops); a committed one's were shipped, so
    they come back to the shelf (``on_hand`` rises) — the cancellation of a paid order.
    """
    was = reservation.status
    pairs = _stocks_for(reservation.lines, stocks) if was is not Status.RELEASED else []
    if was is Status.COMMITTED:
        full = [line.sku for line, stock in pairs if not stock.can_take_back(line.quantity)]
        if full:
            raise ReservationConflict(f"stock of {', '.join(full)} cannot take the units back", skus=full)
    if not reservation.mark_released():
        return False
    for line, stock in pairs:
        if was is Status.HELD:
            stock.unhold(line.quantity)
        else:
            stock.take_back(line.quantity)
    return True


def commit(reservation: Reservation, stocks: Mapping[str, Stock], *, now: datetime) -> bool:
    """The held units are sold: on_hand and reserved drop. True if anything changed.

    A held reservation past its expiry cannot be committed (the sweeper will release it).
    """
    if reservation.is_expired(now):
        raise ReservationConflict(
            f"reservation {reservation.order_id} expired at {reservation.expires_at.isoformat()}"
        )
    pairs = _stocks_for(reservation.lines, stocks) if reservation.status is Status.HELD else []
    if not reservation.mark_committed():
        return False
    for line, stock in pairs:
        stock.ship(line.quantity)
    return True


def expire(reservation: Reservation, stocks: Mapping[str, Stock], *, now: datetime) -> bool:
    """The sweeper's step: release ``reservation`` if it is held past its expiry."""
    if not reservation.is_expired(now):
        return False
    return release(reservation, stocks)
