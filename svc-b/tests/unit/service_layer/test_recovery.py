"""Recovery: a crash at any point of the saga leaves an order that recovery resumes or
compensates, with no stock or money moved twice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes import Crash, FakeCatalog, FakePayments, FakeUnitOfWork, Store

from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus
from svc_b.service_layer.ports import PaymentDeclined
from svc_b.service_layer.recovery import recover
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PLACED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
CRASH_POINTS = [
    (method, after) for method in ("reserve", "authorize", "commit", "capture") for after in (False, True)
]


def world() -> tuple[Store, FakeCatalog, FakePayments]:
    return (
        Store(),
        FakeCatalog(stock={"A": 5}, price_list={"A": Money(700, "EUR")}),
        FakePayments(decline={"broke"}),
    )


async def crash_while_placing(
    method: str, after: bool, customer: str = "c-1"
) -> tuple[Store, FakeCatalog, FakePayments]:
    store, catalog, payments = world()
    fakes = catalog.faults if method in ("reserve", "commit", "release") else payments.faults
    fakes.add(method, Crash(), after_effect=after)
    saga = Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=lambda: PLACED)
    with pytest.raises(Crash):
        await saga.place(PlaceOrder("o-1", customer, [LineRequest("A", 2)]))
    return store, catalog, payments


@pytest.mark.parametrize(("method", "after"), CRASH_POINTS)
async def test_recovery_resumes_a_recent_order_to_confirmed(method: str, after: bool) -> None:
    store, catalog, payments = await crash_while_placing(method, after)
    assert store.orders["o-1"][0].status not in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED)
    restarted = Saga(lambda: FakeUnitOfWork(store), catalog, payments)
    report = await recover(restarted, now=PLACED + timedelta(minutes=1))
    assert report.finished == {"o-1": "confirmed"}
    assert catalog.stock == {"A": 3}  # reserved once
    assert payments.states() == ["captured"]  # authorised and captured once


@pytest.mark.parametrize(("method", "after"), [p for p in CRASH_POINTS if p[0] in ("reserve", "authorize")])
async def test_recovery_compensates_an_old_unpaid_order(method: str, after: bool) -> None:
    store, catalog, payments = await crash_while_placing(method, after)
    restarted = Saga(lambda: FakeUnitOfWork(store), catalog, payments)
    report = await recover(restarted, now=PLACED + timedelta(hours=2))
    assert report.finished == {"o-1": "cancelled"}
    assert store.orders["o-1"][0].cancel_reason == "abandoned"
    assert catalog.stock == {"A": 5}
    assert set(payments.states()) <= {"voided"}


async def test_recovery_leaves_young_orders_alone() -> None:
    store, catalog, payments = await crash_while_placing("reserve", False)
    restarted = Saga(lambda: FakeUnitOfWork(store), catalog, payments)
    report = await recover(restarted, now=PLACED + timedelta(seconds=5))
    assert report.finished == {}
    assert store.orders["o-1"][0].status is OrderStatus.PENDING


@pytest.mark.parametrize("method", ["void", "release"])
async def test_crash_during_compensation_is_finished_by_recovery(method: str) -> None:
    store, catalog, payments = world()
    (payments.faults if method == "void" else catalog.faults).add(method, Crash(), after_effect=True)
    saga = Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=lambda: PLACED)
    payments.faults.add("capture", PaymentDeclined("expired"))
    with pytest.raises(Crash):
        await saga.place(PlaceOrder("o-1", "c-1", [LineRequest("A", 2)]))
    assert store.orders["o-1"][0].status is OrderStatus.CANCELLING
    report = await recover(
        Saga(lambda: FakeUnitOfWork(store), catalog, payments), now=PLACED + timedelta(minutes=1)
    )
    assert report.finished == {"o-1": "cancelled"}
    assert catalog.stock == {"A": 5}
    assert payments.states() == ["voided"]
