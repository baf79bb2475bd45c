"""Reserve / commit / release / expire: all-or-nothing, idempotent per order id."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from caravan_commons.errors import ValidationError
from svc_a.domain import inventory
from svc_a.domain.errors import (
    InvalidQuantity,
    OutOfStock,
    ProductInactive,
    ReservationConflict,
    UnknownSku,
)
from svc_a.domain.model import ON_HAND_CEILING, Stock
from svc_a.domain.reservation import Line, Reservation, Status, validate_order_id

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)


@pytest.fixture
def stocks() -> dict[str, Stock]:
    return {"MUG01": Stock("MUG01", on_hand=5), "TENT-2P": Stock("TENT-2P", on_hand=1)}


def reserve(
    stocks: dict[str, Stock], lines: list[Line], existing: Reservation | None = None, order: str = "o-1"
):
    return inventory.reserve(existing, order, lines, stocks, now=NOW, ttl=TTL)


def test_reserve_holds_every_line(stocks: dict[str, Stock]) -> None:
    reservation, created = reserve(stocks, [Line("TENT-2P", 1), Line("MUG01", 2)])
    assert created and reservation.status is Status.HELD
    assert reservation.lines == (Line("MUG01", 2), Line("TENT-2P", 1))  # sorted by sku
    assert reservation.expires_at == NOW + TTL
    assert (stocks["MUG01"].reserved, stocks["TENT-2P"].reserved) == (2, 1)


def test_reserve_is_all_or_nothing(stocks: dict[str, Stock]) -> None:
    with pytest.raises(OutOfStock) as info:
        reserve(stocks, [Line("MUG01", 2), Line("TENT-2P", 2)])
    assert "TENT-2P" in str(info.value)
    assert (stocks["MUG01"].reserved, stocks["TENT-2P"].reserved) == (0, 0)


def test_unknown_sku_reserves_nothing(stocks: dict[str, Stock]) -> None:
    with pytest.raises(UnknownSku):
        reserve(stocks, [Line("MUG01", 1), Line("NOPE1", 1)])
    assert stocks["MUG01"].reserved == 0


def test_same_lines_again_return_the_same_reservation(stocks: dict[str, Stock]) -> None:
    first, _ = reserve(stocks, [Line("MUG01", 2)])
    again, created = reserve(stocks, [Line("MUG01", 2)], existing=first)
    assert again is first and not created
    assert stocks["MUG01"].reserved == 2  # not held twice


def test_same_lines_after_release_return_the_released_reservation(stocks: dict[str, Stock]) -> None:
    first, _ = reserve(stocks, [Line("MUG01", 2)])
    inventory.release(first, stocks)
    again, created = reserve(stocks, [Line("MUG01", 2)], existing=first)
    assert again.status is Status.RELEASED and not created
    assert stocks["MUG01"].reserved == 0


def test_other_lines_for_the_same_order_conflict(stocks: dict[str, Stock]) -> None:
    first, _ = reserve(stocks, [Line("MUG01", 2)])
    with pytest.raises(ReservationConflict):
        reserve(stocks, [Line("MUG01", 3)], existing=first)
    assert stocks["MUG01"].reserved == 2


@pytest.mark.parametrize("lines", [[], [Line("MUG01", 1), Line("MUG01", 2)], [Line("MUG01", 1)] * 101])
def test_bad_line_sets_are_refused(stocks: dict[str, Stock], lines: list[Line]) -> None:
    with pytest.raises(InvalidQuantity):
        reserve(stocks, lines)


@pytest.mark.parametrize("quantity", [0, -1])
def test_line_quantities_are_positive(quantity: int) -> None:
    with pytest.raises(InvalidQuantity):
        Line("MUG01", quantity)


@pytest.mark.parametrize("order_id", ["", " x", "a" * 101, "o/1", None])
def test_order_ids_are_validated(order_id: object) -> None:
    with pytest.raises(ValidationError):
        validate_order_id(order_id)  # type: ignore[arg-type]


def test_commit_ships_and_is_idempotent(stocks: dict[str, Stock]) -> None:
    reservation, _ = reserve(stocks, [Line("MUG01", 2)])
    assert inventory.commit(reservation, stocks, now=NOW)
    assert not inventory.commit(reservation, stocks, now=NOW)
    assert (stocks["MUG01"].on_hand, stocks["MUG01"].reserved) == (3, 0)


def test_releasing_a_committed_reservation_puts_its_units_back_on_the_shelf(
    stocks: dict[str, Stock],
) -> None:
    reservation, _ = reserve(stocks, [Line("MUG01", 2), Line("TENT-2P", 1)])
    inventory.commit(reservation, stocks, now=NOW)
    assert inventory.release(reservation, stocks)
    assert reservation.status is Status.RELEASED
    assert stocks["MUG01"] == Stock("MUG01", on_hand=5) and stocks["TENT-2P"] == Stock("TENT-2P", on_hand=1)
    assert not inventory.release(reservation, stocks)  # idempotent: nothing comes back twice
    assert stocks["MUG01"] == Stock("MUG01", on_hand=5)
    with pytest.raises(ReservationConflict):
        inventory.commit(reservation, stocks, now=NOW)


def test_units_coming_back_never_overflow_the_stock_column() -> None:
    stocks = {"MUG01": Stock("MUG01", on_hand=2)}
    reservation, _ = inventory.reserve(None, "o-1", [Line("MUG01", 2)], stocks, now=NOW, ttl=TTL)
    inventory.commit(reservation, stocks, now=NOW)
    stocks["MUG01"].on_hand = ON_HAND_CEILING - 1
    with pytest.raises(ReservationConflict):
        inventory.release(reservation, stocks)
    assert reservation.status is Status.COMMITTED and stocks["MUG01"].on_hand == ON_HAND_CEILING - 1


def test_inactive_products_cannot_be_reserved_but_existing_reservations_stand(
    stocks: dict[str, Stock],
) -> None:
    with pytest.raises(ProductInactive):
        inventory.reserve(None, "o-1", [Line("MUG01", 1)], stocks, now=NOW, ttl=TTL, inactive={"MUG01"})
    assert stocks["MUG01"].reserved == 0
    first, _ = reserve(stocks, [Line("MUG01", 1)])
    again, created = inventory.reserve(
        first, "o-1", [Line("MUG01", 1)], stocks, now=NOW, ttl=TTL, inactive={"MUG01"}
    )
    assert again is first and not created


def test_release_gives_back_and_is_idempotent(stocks: dict[str, Stock]) -> None:
    reservation, _ = reserve(stocks, [Line("MUG01", 2)])
    assert inventory.release(reservation, stocks)
    assert not inventory.release(reservation, stocks)
    assert (stocks["MUG01"].on_hand, stocks["MUG01"].reserved) == (5, 0)
    with pytest.raises(ReservationConflict):
        inventory.commit(reservation, stocks, now=NOW)


def test_expired_reservations_are_released_by_the_sweeper_and_cannot_commit(stocks: dict[str, Stock]) -> None:
    reservation, _ = reserve(stocks, [Line("MUG01", 2)])
    assert not inventory.expire(reservation, stocks, now=NOW + TTL - timedelta(seconds=1))
    with pytest.raises(ReservationConflict):
        inventory.commit(reservation, stocks, now=NOW + TTL)
    assert inventory.expire(reservation, stocks, now=NOW + TTL)
    assert reservation.status is Status.RELEASED and stocks["MUG01"].reserved == 0
    assert not inventory.expire(reservation, stocks, now=NOW + 2 * TTL)


def test_committed_reservations_never_expire(stocks: dict[str, Stock]) -> None:
    reservation, _ = reserve(stocks, [Line("MUG01", 2)])
    inventory.commit(reservation, stocks, now=NOW)
    assert not inventory.expire(reservation, stocks, now=NOW + 10 * TTL)
    assert reservation.status is Status.COMMITTED
