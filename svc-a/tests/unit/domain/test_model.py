"""Products and stock: validation and the stock invariants."""

from __future__ import annotations

import pytest

from caravan_commons.errors import ConflictError, ValidationError
from caravan_commons.money import Money
from svc_a.domain.errors import InvalidProduct, InvalidQuantity, InvalidSku, OutOfStock
from svc_a.domain.model import Product, Stock, validate_sku

EUR = "EUR"


@pytest.mark.parametrize("sku", ["TENT-2P", "MUG01", "AB", "A1-B2-C3-D4", "X" * 16])
def test_valid_skus(sku: str) -> None:
    assert validate_sku(sku) == sku


@pytest.mark.parametrize(
    "sku", ["", "a", "tent-2p", "TENT 2P", "-TENT", "TENT-", "TENT--2P", "A-B-C-D-E", "X" * 17, "É1", 12]
)
def test_invalid_skus_are_refused_with_a_validation_error(sku: object) -> None:
    with pytest.raises(InvalidSku) as info:
        validate_sku(sku)  # type: ignore[arg-type]
    assert isinstance(info.value, ValidationError)


def test_product_holds_money_and_can_change_everything_but_its_sku() -> None:
    product = Product(sku="TENT-2P", name="Tent", price=Money(12999, EUR), description="2 people")
    cheaper = product.changed(price=Money(9999, EUR), active=False)
    assert (cheaper.sku, cheaper.name, cheaper.price, cheaper.active) == (
        "TENT-2P",
        "Tent",
        Money(9999, EUR),
        False,
    )
    assert product.price == Money(12999, EUR)  # the original is unchanged


@pytest.mark.parametrize(
    "kwargs",
    [
        {"name": "  "},
        {"name": "x" * 201},
        {"description": "x" * 4001},
        {"price": Money(-1, EUR)},
        {"price": 12.5},
        {"active": "yes"},
    ],
)
def test_invalid_products_are_refused(kwargs: dict[str, object]) -> None:
    fields: dict[str, object] = {"sku": "MUG01", "name": "Mug", "price": Money(500, EUR)} | kwargs
    with pytest.raises(InvalidProduct):
        Product(**fields)  # type: ignore[arg-type]


def test_changed_validates_again() -> None:
    product = Product(sku="MUG01", name="Mug", price=Money(500, EUR))
    with pytest.raises(InvalidProduct):
        product.changed(name="")


def test_stock_hold_ship_unhold_keep_the_invariant() -> None:
    stock = Stock(sku="MUG01")
    stock.restock(5)
    stock.hold(3)
    assert (stock.on_hand, stock.reserved, stock.available) == (5, 3, 2)
    stock.ship(2)
    assert (stock.on_hand, stock.reserved, stock.available) == (3, 1, 2)
    stock.unhold(1)
    assert (stock.on_hand, stock.reserved, stock.available) == (3, 0, 3)
    assert stock.version == 4


def test_holding_more_than_available_is_out_of_stock_and_changes_nothing() -> None:
    stock = Stock(sku="MUG01", on_hand=2, reserved=1)
    with pytest.raises(OutOfStock) as info:
        stock.hold(2)
    assert isinstance(info.value, ConflictError)
    assert (stock.on_hand, stock.reserved, stock.version) == (2, 1, 0)


@pytest.mark.parametrize("on_hand,reserved", [(-1, 0), (1, 2), (0, -1)])
def test_stock_outside_the_invariant_cannot_be_built(on_hand: int, reserved: int) -> None:
    with pytest.raises(InvalidQuantity):
        Stock(sku="MUG01", on_hand=on_hand, reserved=reserved)


@pytest.mark.parametrize("quantity", [0, -3, True, 2.0, 10**10])
def test_quantities_must_be_positive_whole_numbers(quantity: object) -> None:
    stock = Stock(sku="MUG01", on_hand=5)
    for operation in (stock.restock, stock.hold):
        with pytest.raises(InvalidQuantity):
            operation(quantity)  # type: ignore[arg-type]
    assert (stock.on_hand, stock.reserved) == (5, 0)


def test_cannot_unhold_or_ship_more_than_reserved() -> None:
    stock = Stock(sku="MUG01", on_hand=5, reserved=1)
    with pytest.raises(InvalidQuantity):
        stock.unhold(2)
    with pytest.raises(InvalidQuantity):
        stock.ship(2)
    assert (stock.on_hand, stock.reserved) == (5, 1)
