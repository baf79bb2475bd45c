"""The saga, its runner and the sweeper on the real repositories (real database), with fakes of the
catalog and payments upstreams: an order whose runner crashed is resumed once its lease runs out,
two runners on one database share the due orders without doing a step twice, a stale holder's
write is refused; nothing stays stuck, no stock or money moves twice."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from fakes import Crash, FakeCatalog, FakePayments

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow
from svc_b.infrastructure.db.unit_of_work import PiccoloUnitOfWork
from svc_b.service_layer.runner import OrderRunner
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


LEASE = timedelta(seconds=3)


def saga_on(
    db: Database, catalog: FakeCatalog, payments: FakePayments, now: datetime = PLACED, owner: str = "a"
) -> Saga:
    return Saga(
        lambda: PiccoloUnitOfWork(db, clock=lambda: now),
        catalog,
        payments,
        clock=lambda: now,
        owner=owner,
        lease=LEASE,
    )


def runner_on(
    db: Database, catalog: FakeCatalog, payments: FakePayments, now: datetime, owner: str
) -> OrderRunner:
    """A runner of another svc-b instance (or of this one restarted), its clock at ``now``."""
    return OrderRunner(saga_on(db, catalog, payments, now, owner))


async def sweep(runner: OrderRunner) -> list[str]:
    claimed = (await runner.sweep_once()).claimed
    await runner.idle()
    return claimed


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
async def test_an_order_whose_runner_crashed_is_resumed_once_its_lease_runs_out(
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

    assert await sweep(runner_on(db, catalog, payments, PLACED + LEASE / 2, "b")) == []  # still held
    restarted = runner_on(db, catalog, payments, PLACED + LEASE, "b")
    assert await sweep(restarted) == [order_id]
    assert restarted.finished == {order_id: "confirmed"}
    assert catalog.stock == {"A": 3}
    assert payments.states() == ["captured"]


@pytest.mark.parametrize("method", ["reserve", "authorize"])
async def test_an_abandoned_order_is_compensated(db: Database, new_id: IdMaker, method: str) -> None:
    catalog, payments = upstreams()
    (catalog.faults if method == "reserve" else payments.faults).add(method, Crash(), after_effect=True)
    order_id = new_id()
    with pytest.raises(Crash):
        await saga_on(db, catalog, payments).place(PlaceOrder(order_id, "c-1", [LineRequest("A", 2)]))
    runner = runner_on(db, catalog, payments, PLACED + timedelta(hours=1), "b")
    assert await sweep(runner) == [order_id]
    assert runner.finished == {order_id: "cancelled"}
    assert catalog.stock == {"A": 5}
    assert set(payments.states()) <= {"voided"}


async def test_two_runners_on_one_database_share_the_due_orders_and_do_each_step_once(
    db: Database, new_id: IdMaker
) -> None:
    catalog = FakeCatalog(stock={"A": 100}, price_list={"A": Money(700, "EUR")})
    payments = FakePayments()
    crashed = []
    for step in ("reserve", "authorize", "commit", "capture") * 3:
        (catalog.faults if step in ("reserve", "commit") else payments.faults).add(step, Crash())
        crashed.append(new_id())
        with pytest.raises(Crash):
            await saga_on(db, catalog, payments).place(PlaceOrder(crashed[-1], "c-1", [LineRequest("A", 1)]))
    now = PLACED + LEASE
    first, second = runner_on(db, catalog, payments, now, "b"), runner_on(db, catalog, payments, now, "c")
    first.batch = second.batch = 8  # neither takes everything in one claim
    claims = await asyncio.gather(sweep(first), sweep(second), sweep(first), sweep(second))
    claimed = [order_id for claim in claims for order_id in claim]
    assert sorted(claimed) == sorted(crashed)  # every order claimed, none twice
    for order_id in crashed:
        assert await status_of(db, order_id) is OrderStatus.CONFIRMED
    assert catalog.stock == {"A": 100 - len(crashed)}  # reserved once each
    assert len(payments.by_key) == len(crashed)  # authorised once each
    assert payments.states() == ["captured"] * len(crashed)  # captured once each
    assert not first.failed and not second.failed


async def test_a_holder_whose_lease_ran_out_cannot_write_after_another_runner_claimed(
    db: Database, new_id: IdMaker
) -> None:
    catalog, payments = upstreams()
    slow = saga_on(db, catalog, payments, PLACED, "slow")
    order, progress = await slow.start(PlaceOrder(new_id(), "c-1", [LineRequest("A", 2)]))
    # the slow runner stalls past its lease; another instance claims the order and finishes it
    other = runner_on(db, catalog, payments, PLACED + LEASE, "b")
    assert await sweep(other) == [order.id]
    assert other.finished == {order.id: "confirmed"}
    with pytest.raises(ConflictError):  # the stale holder's first write is refused
        await slow.run(order, progress)
    assert catalog.stock == {"A": 3}
    assert payments.states() == ["captured"]
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.orders.load(order.id)
    assert loaded is not None
    assert (loaded[1].step, loaded[1].lease_owner, loaded[1].next_attempt_at) == ("confirm", None, None)
