"""API wire types: constraints reject bad input; conversions to and from the domain round-trip."""

from __future__ import annotations

from datetime import UTC, datetime

import msgspec
import pytest

from caravan_commons.money import Money
from caravan_commons.schemas import decoder_for, encode
from svc_a.api.schemas import ProductCreate, ProductOut, ProductPatch, ReservationCreate, ReservationOut
from svc_a.domain.model import Product
from svc_a.domain.reservation import Line, Reservation

TENT = {"sku": "TENT-2P", "name": "Tent", "price": {"amount": 12999, "currency": "EUR"}}


def test_a_product_round_trips() -> None:
    created = decoder_for(ProductCreate).decode(encode(TENT))
    product = created.to_domain()
    assert product == Product(sku="TENT-2P", name="Tent", price=Money(12999, "EUR"))
    out = msgspec.json.decode(encode(ProductOut.of(product)))
    assert out == {**TENT, "description": "", "active": True}


@pytest.mark.parametrize(
    "body",
    [
        {**TENT, "sku": "tent"},
        {**TENT, "name": ""},
        {**TENT, "price": {"amount": -1, "currency": "EUR"}},
        {**TENT, "price": {"amount": 1.5, "currency": "EUR"}},
        {**TENT, "price": {"amount": 1, "currency": "eur"}},
        {**TENT, "price": {"amount": 1, "currency": "ZZZ"}},
        {**TENT, "name": "   "},
        {**TENT, "name": "Te\u0000nt"},
        {**TENT, "description": "\u0000"},
        {**TENT, "colour": "green"},
        {**TENT, "initial_stock": -1},
    ],
)
def test_bad_product_bodies_are_refused(body: dict[str, object]) -> None:
    with pytest.raises(msgspec.ValidationError):
        decoder_for(ProductCreate).decode(encode(body))


def test_a_patch_changes_only_what_it_names() -> None:
    product = Product(sku="TENT-2P", name="Tent", price=Money(12999, "EUR"))
    patch = decoder_for(ProductPatch).decode(b'{"active": false}')
    assert patch.apply(product) == product.changed(active=False)


def test_reservation_bodies() -> None:
    body = decoder_for(ReservationCreate).decode(
        b'{"order_id": "o-1", "lines": [{"sku": "MUG01", "quantity": 2}]}'
    )
    assert body.domain_lines() == [Line("MUG01", 2)]
    for bad in (
        b'{"order_id": "o-1", "lines": []}',
        b'{"order_id": "o-1", "lines": [{"sku": "MUG01", "quantity": 0}]}',
    ):
        with pytest.raises(msgspec.ValidationError):
            decoder_for(ReservationCreate).decode(bad)
    reservation = Reservation("o-1", (Line("MUG01", 2),), datetime(2026, 1, 1, tzinfo=UTC))
    out = msgspec.json.decode(encode(ReservationOut.of(reservation)))
    assert out["status"] == "held" and out["lines"] == [{"sku": "MUG01", "quantity": 2}]
