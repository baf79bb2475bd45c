"""Hypothesis stateful test: no sequence of reserve / release / commit / restock / expire breaks the
stock invariants, or creates or destroys stock (units leave only through commits, and come back
only by releasing a committed reservation, once)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from svc_a.domain import inventory
from svc_a.domain.errors import OutOfStock, ReservationConflict
from svc_a.domain.model import Stock
from svc_a.domain.reservation import Line, Reservation, Status

SKUS = ["MUG01", "TENT-2P", "LAMP-X"]
ORDERS = [f"o-{n}" for n in range(6)]
TTL = timedelta(minutes=10)

line_sets = st.lists(
    st.tuples(st.sampled_from(SKUS), st.integers(min_value=1, max_value=6)),
    min_size=1,
    max_size=3,
    unique_by=lambda pair: pair[0],
).map(lambda pairs: [Line(sku, quantity) for sku, quantity in pairs])


class Warehouse(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.now = datetime(2026, 1, 1, tzinfo=UTC)
        self.stocks = {sku: Stock(sku) for sku in SKUS}
        self.reservations: dict[str, Reservation] = {}
        self.restocked: Counter[str] = Counter()  # units that came in
        self.shipped: Counter[str] = Counter()  # units that left through commits
        self.returned: Counter[str] = Counter()  # units back from released committed reservations

    @rule(sku=st.sampled_from(SKUS), quantity=st.integers(min_value=1, max_value=8))
    def restock(self, sku: str, quantity: int) -> None:
        self.stocks[sku].restock(quantity)
        self.restocked[sku] += quantity

    @rule(order=st.sampled_from(ORDERS), lines=line_sets)
    def reserve(self, order: str, lines: list[Line]) -> None:
        existing = self.reservations.get(order)
        before = {sku: (s.on_hand, s.reserved) for sku, s in self.stocks.items()}
        try:
            reservation, created = inventory.reserve(
                existing, order, lines, self.stocks, now=self.now, ttl=TTL
            )
        except OutOfStock:
            assert existing is None
            assert any(self.stocks[line.sku].available < line.quantity for line in lines)
            assert before == {sku: (s.on_hand, s.reserved) for sku, s in self.stocks.items()}
            return
        except ReservationConflict:
            assert existing is not None and existing.lines != tuple(sorted(lines))
            assert before == {sku: (s.on_hand, s.reserved) for sku, s in self.stocks.items()}
            return
        if existing is not None:
            assert reservation is existing and not created
            assert before == {sku: (s.on_hand, s.reserved) for sku, s in self.stocks.items()}
        else:
            assert created and reservation.status is Status.HELD
            for line in lines:
                assert self.stocks[line.sku].reserved == before[line.sku][1] + line.quantity
        self.reservations[order] = reservation

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        reservation = self.reservations[data.draw(st.sampled_from(sorted(self.reservations)))]
        status = reservation.status
        changed = inventory.release(reservation, self.stocks)
        assert changed == (status is not Status.RELEASED)
        assert reservation.status is Status.RELEASED
        if status is Status.COMMITTED:
            for line in reservation.lines:
                self.returned[line.sku] += line.quantity

    @precondition(lambda self: self.reservations)
    @rule(data=st.data())
    def commit(self, data: st.DataObject) -> None:
        reservation = self.reservations[data.draw(st.sampled_from(sorted(self.reservations)))]
        status, expired = reservation.status, reservation.is_expired(self.now)
        try:
            changed = inventory.commit(reservation, self.stocks, now=self.now)
        except ReservationConflict:
            assert status is Status.RELEASED or expired
            return
        assert changed == (status is Status.HELD)
        if changed:
            for line in reservation.lines:
                self.shipped[line.sku] += line.quantity

    @rule(minutes=st.integers(min_value=1, max_value=15))
    def time_passes_and_the_sweeper_runs(self, minutes: int) -> None:
        self.now += timedelta(minutes=minutes)
        for reservation in self.reservations.values():
            was_due = reservation.is_expired(self.now)
            assert inventory.expire(reservation, self.stocks, now=self.now) == was_due
        assert not any(r.is_expired(self.now) for r in self.reservations.values())

    @invariant()
    def stock_invariants_hold(self) -> None:
        for stock in self.stocks.values():
            assert 0 <= stock.reserved <= stock.on_hand
            assert stock.available == stock.on_hand - stock.reserved

    @invariant()
    def reserved_is_exactly_what_held_reservations_hold(self) -> None:
        held: Counter[str] = Counter()
        for reservation in self.reservations.values():
            if reservation.status is Status.HELD:
                for line in reservation.lines:
                    held[line.sku] += line.quantity
        assert {sku: s.reserved for sku, s in self.stocks.items()} == {sku: held[sku] for sku in SKUS}

    @invariant()
    def no_stock_is_created_or_destroyed(self) -> None:
        for sku, stock in self.stocks.items():
            assert stock.on_hand == self.restocked[sku] - self.shipped[sku] + self.returned[sku]

    @invariant()
    def units_come_back_at_most_once_per_commit(self) -> None:
        for sku in SKUS:
            assert 0 <= self.returned[sku] <= self.shipped[sku]


Warehouse.TestCase.settings = settings(max_examples=300, stateful_step_count=40, deadline=None)
TestWarehouse = Warehouse.TestCase
