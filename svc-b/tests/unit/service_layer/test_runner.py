"""The runner and its sweeper: a crash at any point of the saga leaves an order whose lease runs
out, and a sweep (of this instance or another) resumes or compensates it, with no stock or money
moved twice; live leases are left alone, renewed while their runner drives the order; an order
that must wait is due when its time comes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes import DOWN, Crash, FakeCatalog, FakePayments, FakeTime, FakeUnitOfWork, Store, unavailable

from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus
from svc_b.service_layer.ports import PaymentDeclined
from svc_b.service_layer.runner import OrderRunner
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PLACED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
LEASE = timedelta(seconds=3)
CRASH_POINTS = [
    (method, after) for method in ("reserve", "authorize", "commit", "capture") for after in (False, True)
]


def world() -> tuple[Store, FakeCatalog, FakePayments]:
    return (
        Store(),
        FakeCatalog(stock={"A": 5}, price_list={"A": Money(700, "EUR")}),
        FakePayments(decline={"broke"}),
    )


def saga_at(store: Store, catalog: FakeCatalog, payments: FakePayments, now: datetime) -> Saga:
    return Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=lambda: now, lease=LEASE)


async def crash_while_placing(
    method: str, after: bool, customer: str = "c-1"
) -> tuple[Store, FakeCatalog, FakePayments]:
    store, catalog, payments = world()
    fakes = catalog.faults if method in ("reserve", "commit", "release") else payments.faults
    fakes.add(method, Crash(), after_effect=after)
    with pytest.raises(Crash):
        await saga_at(store, catalog, payments, PLACED).place(
            PlaceOrder("o-1", customer, [LineRequest("A", 2)])
        )
    return store, catalog, payments


async def sweep(store: Store, catalog: FakeCatalog, payments: FakePayments, now: datetime) -> OrderRunner:
    """A fresh runner (another instance, or this one restarted) sweeps once and drives what it
    claimed to its end."""
    runner = OrderRunner(saga_at(store, catalog, payments, now))
    await runner.sweep_once()
    await runner.idle()
    return runner


@pytest.mark.parametrize(("method", "after"), CRASH_POINTS)
async def test_an_order_whose_runner_crashed_is_resumed_once_its_lease_runs_out(
    method: str, after: bool
) -> None:
    store, catalog, payments = await crash_while_placing(method, after)
    assert store.orders["o-1"][0].status not in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED)
    assert (await sweep(store, catalog, payments, PLACED + LEASE / 2)).finished == {}  # still held
    runner = await sweep(store, catalog, payments, PLACED + LEASE)
    assert runner.finished == {"o-1": "confirmed"}
    assert catalog.stock == {"A": 3}  # reserved once
    assert payments.states() == ["captured"]  # authorised and captured once
    assert store.progress["o-1"].lease_owner is None and store.progress["o-1"].next_attempt_at is None


@pytest.mark.parametrize(("method", "after"), [p for p in CRASH_POINTS if p[0] in ("reserve", "authorize")])
async def test_an_old_unpaid_order_is_abandoned_and_compensated(method: str, after: bool) -> None:
    store, catalog, payments = await crash_while_placing(method, after)
    runner = await sweep(store, catalog, payments, PLACED + timedelta(hours=2))
    assert runner.finished == {"o-1": "cancelled"}
    assert store.orders["o-1"][0].cancel_reason == "abandoned"
    assert catalog.stock == {"A": 5}
    assert set(payments.states()) <= {"voided"}


@pytest.mark.parametrize("method", ["void", "release"])
async def test_a_crash_during_compensation_is_finished_by_a_sweep(method: str) -> None:
    store, catalog, payments = world()
    (payments.faults if method == "void" else catalog.faults).add(method, Crash(), after_effect=True)
    payments.faults.add("capture", PaymentDeclined("expired"))
    with pytest.raises(Crash):
        await saga_at(store, catalog, payments, PLACED).place(PlaceOrder("o-1", "c-1", [LineRequest("A", 2)]))
    assert store.orders["o-1"][0].status is OrderStatus.CANCELLING
    runner = await sweep(store, catalog, payments, PLACED + timedelta(minutes=1))
    assert runner.finished == {"o-1": "cancelled"}
    assert catalog.stock == {"A": 5}
    assert payments.states() == ["voided"]


async def test_an_order_left_waiting_is_due_when_its_time_comes() -> None:
    store, catalog, payments = world()
    time = FakeTime(PLACED)
    saga = Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=time.now, sleep=time.sleep)
    payments.faults.add("capture", unavailable("payments"), times=DOWN)
    order = await saga.place(PlaceOrder("o-1", "c-1", [LineRequest("A", 2)]))
    assert order.status is OrderStatus.PAYMENT_AUTHORIZED  # past its deadline: left waiting
    waiting = store.progress["o-1"]
    assert waiting.lease_owner is None and waiting.next_attempt_at is not None
    payments.faults.clear()
    early = await sweep(store, catalog, payments, waiting.next_attempt_at - timedelta(seconds=0.1))
    assert early.finished == {}
    assert (await sweep(store, catalog, payments, waiting.next_attempt_at)).finished == {"o-1": "confirmed"}
    assert payments.states() == ["captured"]


async def test_the_runner_renews_the_leases_of_the_orders_it_drives() -> None:
    store, catalog, payments = world()
    time = FakeTime(PLACED)
    saga = Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=time.now, lease=LEASE)
    runner = OrderRunner(saga)
    order, progress = await saga.start(PlaceOrder("o-1", "c-1", [LineRequest("A", 2)]))
    assert (store.progress["o-1"].lease_owner, store.progress["o-1"].next_attempt_at) == (
        saga.owner,
        PLACED + LEASE,
    )
    task = runner.drive(order, progress)
    time.current = PLACED + timedelta(seconds=2)
    report = await runner.sweep_once()  # before the task ran a step: its lease is extended
    assert report.renewed == 1 and report.claimed == []
    assert store.progress["o-1"].next_attempt_at == time.current + LEASE
    assert (await task).status is OrderStatus.CONFIRMED
    other = OrderRunner(saga_at(store, catalog, payments, time.current + timedelta(hours=1)))
    assert (await other.sweep_once()).claimed == []  # a final order is never due
