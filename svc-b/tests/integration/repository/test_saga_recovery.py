"""The saga and crash recovery on the real repositories (real database), with fakes of the
catalog and payments upstreams: nothing stays stuck, no stock or money moves twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fakes import Crash, FakeCatalog, FakePayments

from caravan_commons.db import Database
from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow
from svc_b.infrastructure.db.unit_of_work import PiccoloUnitOfWork
from svc_b.service_layer.recovery import recover
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PLACED = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
IdMaker = Callable[..., str]


@pytest.fixture(autouse=True)
async def empty_tables(db: Database) -> None:
    """Recovery scans every unfinished order: start from empty tables (the database is shared)."""
    for table in (OrderLineRow, OrderRow):
        await table.delete(force=True)


def upstreams() -> tuple[FakeCatalog, FakePayments]:
    return FakeCatalog(stock={"A": 5}, price_list={"A": Money(700, "EUR")}), FakePayments(decline={"broke"})


def saga_on(db: Database, catalog: FakeCatalog, payments: FakePayments) -> Saga:
    return Saga(lambda: PiccoloUnitOfWork(db, clock=lambda: PLACED), catalog, payments, clock=lambda: PLACED)


async def status_of(db: Database, order_id: str) -> OrderStatus:
    async with PiccoloUnitOfWork(db) as uow:
        order = await uow.orders.get(order_id)
    assert order is not None
    return order.status


async def test_happy_path_and_declined_card(db: Database, new_id: IdMaker) -> None:
    catalog, payments = upstreams()
    saga = saga_on(db, catalog, payments)
    ok = await saga.place(PlaceOrder(new_id(), "c-1", [LineRequest("A", 2)]))
    declined = await saga.place(PlaceOrder(new_id(), "broke", [LineRequest("A", 1)]))
    assert ok.status is OrderStatus.CONFIRMED and ok.total == Money(1400, "EUR")
    assert (declined.status, declined.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert catalog.stock == {"A": 3}
    assert payments.states() == ["captured"]


@pytest.mark.parametrize("method", ["reserve", "authorize", "commit", "capture"])
@pytest.mark.parametrize("after", [False, True], ids=["before-effect", "after-effect"])
async def test_crash_then_recovery_confirms_once(
    db: Database, new_id: IdMaker, method: str, after: bool
) -> None:
    catalog, payments = upstreams()
    (catalog.faults if method in ("reserve", "commit") else payments.faults).add(
        method, Crash(), after_effect=after
    )
    order_id = new_id()
    with pytest.raises(Crash):
        await saga_on(db, catalog, payments).place(PlaceOrder(order_id, "c-1", [LineRequest("A", 2)]))
    assert await status_of(db, order_id) not in (OrderStatus.CONFIRMED, OrderStatus.CANCELLED)

    restarted = saga_on(db, catalog, payments)  # a new process: fresh saga, same database
    report = await recover(restarted, now=PLACED + timedelta(minutes=1))
    assert report.finished == {order_id: "confirmed"}
    assert catalog.stock == {"A": 3}
    assert payments.states() == ["captured"]


@pytest.mark.parametrize("method", ["reserve", "authorize"])
async def test_recovery_compensates_an_abandoned_order(db: Database, new_id: IdMaker, method: str) -> None:
    catalog, payments = upstreams()
    (catalog.faults if method == "reserve" else payments.faults).add(method, Crash(), after_effect=True)
    order_id = new_id()
    with pytest.raises(Crash):
        await saga_on(db, catalog, payments).place(PlaceOrder(order_id, "c-1", [LineRequest("A", 2)]))
    report = await recover(saga_on(db, catalog, payments), now=PLACED + timedelta(hours=1))
    assert report.finished == {order_id: "cancelled"}
    assert catalog.stock == {"A": 5}
    assert set(payments.states()) <= {"voided"}


async def test_two_recovery_workers_do_each_step_once(db: Database, new_id: IdMaker) -> None:
    catalog, payments = upstreams()
    payments.faults.add("authorize", Crash())
    order_id = new_id()
    with pytest.raises(Crash):
        await saga_on(db, catalog, payments).place(PlaceOrder(order_id, "c-1", [LineRequest("A", 2)]))
    now = PLACED + timedelta(minutes=1)
    reports = await asyncio.gather(
        recover(saga_on(db, catalog, payments), now=now),
        recover(saga_on(db, catalog, payments), now=now),
    )
    # Racing workers may each stop at a stale write (the version check), leaving the order part
    # way; the recovery loop runs again, as it does periodically, and the order completes. What
    # must never happen is a step done twice (checked below).
    if await status_of(db, order_id) is not OrderStatus.CONFIRMED:
        reports.append(await recover(saga_on(db, catalog, payments), now=now))
    assert await status_of(db, order_id) is OrderStatus.CONFIRMED
    assert any(r.finished.get(order_id) == "confirmed" for r in reports)
    assert catalog.stock == {"A": 3}
    assert payments.states() == ["captured"]
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.orders.load(order_id)
    assert loaded is not None and (loaded[1].step, loaded[1].outcome.value) == ("confirm", "done")
