"""The order repository and unit of work on a real database."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_b.domain.model import CancelReason, Order, OrderLine, OrderStatus, PaymentState, StockState
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow
from svc_b.infrastructure.db.unit_of_work import PiccoloUnitOfWork
from svc_b.service_layer.unit_of_work import SagaProgress, StepOutcome

T0 = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)
IdMaker = Callable[..., str]


def make_order(order_id: str, customer: str = "c-1") -> Order:
    return Order.place(
        order_id,
        customer,
        [
            OrderLine("A", 3, Money(10**15 + 7, "KWD")),  # beyond 32 bits: BigInt, exact
            OrderLine("B-ü", 1, Money(1, "KWD")),
        ],
    )


async def save(db: Database, order: Order, at: datetime = T0) -> None:
    progress = SagaProgress()
    progress.note("reserve_stock", StepOutcome.STARTED)
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.add(order, at, progress)
        await uow.commit()


async def load(db: Database, order_id: str) -> tuple[Order, SagaProgress]:
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.orders.load(order_id)
    assert loaded is not None
    return loaded


async def test_round_trip_returns_a_domain_order(db: Database, new_id: IdMaker) -> None:
    order = make_order(new_id())
    await save(db, order)
    loaded, progress = await load(db, order.id)
    assert isinstance(loaded, Order)
    assert loaded.lines == order.lines
    assert loaded.total == Money(3 * (10**15 + 7) + 1, "KWD")
    assert (loaded.status, loaded.stock, loaded.payment, loaded.version) == (
        OrderStatus.PENDING,
        StockState.NONE,
        PaymentState.NONE,
        1,
    )
    assert progress == SagaProgress("reserve_stock", StepOutcome.STARTED, ("reserve_stock",))


async def test_missing_order_is_none(db: Database) -> None:
    async with PiccoloUnitOfWork(db) as uow:
        assert await uow.orders.get("no-such-order") is None
        assert await uow.orders.load("no-such-order") is None


async def test_nothing_is_written_without_commit(db: Database, new_id: IdMaker) -> None:
    order = make_order(new_id())
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.add(order, T0, SagaProgress())
    assert await OrderRow.count().where(OrderRow.id == order.id) == 0


async def test_a_transition_is_one_compare_and_set_of_state_and_progress(
    db: Database, new_id: IdMaker
) -> None:
    order = make_order(new_id())
    await save(db, order)
    loaded, progress = await load(db, order.id)
    loaded.reserve_stock()
    loaded.authorize_payment("auth-9")
    loaded.fail(CancelReason.UPSTREAM_UNAVAILABLE)
    progress.note("authorize_payment", StepOutcome.FAILED, "boom")
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.save(loaded, progress)
        await uow.commit()
    assert loaded.version == 2  # bumped in memory: the next write needs no re-read
    again, stored = await load(db, order.id)
    assert (again.status, again.stock, again.payment, again.authorization_id, again.cancel_reason) == (
        OrderStatus.CANCELLING,
        StockState.RESERVED,
        PaymentState.AUTHORIZED,
        "auth-9",
        "upstream_unavailable",
    )
    assert again.version == 2
    assert stored == SagaProgress("authorize_payment", StepOutcome.FAILED, ("reserve_stock",), "boom")
    loaded.void_payment()
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.save(loaded, progress)  # held in memory since: no read in between
        await uow.commit()
    assert (await load(db, order.id))[0].version == 3


async def test_a_failing_commit_writes_nothing(db: Database, new_id: IdMaker) -> None:
    existing = make_order(new_id())
    await save(db, existing)
    fresh = make_order(new_id())
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.orders.load(existing.id)
        assert loaded is not None
        loaded[0].reserve_stock()
        uow.orders.save(*loaded)
        uow.orders.add(fresh, T0, SagaProgress())
        uow.orders.add(make_order(existing.id), T0, SagaProgress())  # duplicate id: all fails
        with pytest.raises(ConflictError, match="exists already"):
            await uow.commit()
    assert await OrderRow.count().where(OrderRow.id == fresh.id) == 0
    assert await OrderLineRow.count().where(OrderLineRow.order_id == fresh.id) == 0
    unchanged, _ = await load(db, existing.id)
    assert unchanged.status is OrderStatus.PENDING and unchanged.version == 1


async def test_stale_write_is_refused(db: Database, new_id: IdMaker) -> None:
    order = make_order(new_id())
    await save(db, order)
    a, progress_a = await load(db, order.id)
    b, progress_b = await load(db, order.id)
    a.reserve_stock()
    b.fail(CancelReason.ABANDONED)
    async with PiccoloUnitOfWork(db) as first, PiccoloUnitOfWork(db) as second:
        first.orders.save(a, progress_a)
        await first.commit()
        second.orders.save(b, progress_b)
        with pytest.raises(ConflictError, match="changed by someone else"):
            await second.commit()
    assert b.version == 1  # a refused write leaves the order in memory at the version it read
    final, _ = await load(db, order.id)
    assert final.status is OrderStatus.STOCK_RESERVED


async def test_concurrent_writers_exactly_one_wins(db: Database, new_id: IdMaker) -> None:
    order = make_order(new_id())
    await save(db, order)
    ready = asyncio.Barrier(6)

    async def worker(n: int) -> bool:
        loaded, progress = await load(db, order.id)
        loaded.reserve_stock()
        progress.note(f"worker-{n}", StepOutcome.DONE)
        await ready.wait()  # all have read version 1 before anyone writes
        async with PiccoloUnitOfWork(db) as uow:
            uow.orders.save(loaded, progress)
            try:
                await uow.commit()
            except ConflictError:
                return False
            return True

    results = await asyncio.gather(*(worker(n) for n in range(6)))
    assert sorted(results) == [False] * 5 + [True]
    final, progress = await load(db, order.id)
    assert final.version == 2 and progress.step.startswith("worker-")


async def test_unfinished_and_customer_listing(db: Database, new_id: IdMaker) -> None:
    customer = new_id("cust")
    ids = [new_id() for _ in range(3)]
    for i, order_id in enumerate(ids):
        await save(db, make_order(order_id, customer), T0 + timedelta(minutes=i))
    done, progress = await load(db, ids[0])
    done.fail(CancelReason.OUT_OF_STOCK)
    done.complete_cancellation()
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.save(done, progress)
        await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        unfinished = {o.id: at for o, at in await uow.orders.unfinished(limit=10_000)}
        page1 = await uow.orders.list_for_customer(customer, limit=2, offset=0)
        page2 = await uow.orders.list_for_customer(customer, limit=2, offset=2)
    assert ids[0] not in unfinished
    assert unfinished[ids[1]] == T0 + timedelta(minutes=1)
    assert [o.id for o in page1 + page2] == [ids[2], ids[1], ids[0]]


async def test_card_token_and_placing_time_round_trip(db: Database, new_id: IdMaker) -> None:
    order = Order.place(new_id(), "c-1", [OrderLine("A", 1, Money(5, "EUR"))], card_token="tok_approve")
    await save(db, order, T0 + timedelta(microseconds=123))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.orders.get(order.id)
    assert loaded is not None
    assert loaded.card_token == "tok_approve"
    assert loaded.placed_at == T0 + timedelta(microseconds=123)


async def test_pages_of_a_customer_are_newest_first_and_resume_after_a_cursor(
    db: Database, new_id: IdMaker
) -> None:
    customer = new_id("pager")
    ids = sorted(new_id() for _ in range(5))
    # two orders share a placing time: the id breaks the tie
    times = [
        T0,
        T0 + timedelta(seconds=1),
        T0 + timedelta(seconds=1),
        T0 + timedelta(microseconds=2_000_001),
        T0 + timedelta(days=1),
    ]
    for order_id, at in zip(ids, times, strict=True):
        await save(db, make_order(order_id, customer), at)
    await save(db, make_order(new_id(), "someone-else"), T0 + timedelta(seconds=1))
    expected = [o for _, o in sorted(zip(times, ids, strict=True), reverse=True)]
    seen: list[str] = []
    after = None
    async with PiccoloUnitOfWork(db) as uow:
        while True:
            page = await uow.orders.page_for_customer(customer, limit=2, after=after)
            if not page:
                break
            seen += [o.id for o in page]
            last = page[-1]
            assert last.placed_at is not None
            after = (last.placed_at, last.id)
    assert seen == expected


async def test_an_authorised_order_is_stored_without_its_card_token(db: Database, new_id: IdMaker) -> None:
    """Regression (issue 18, defect 9): svc-b kept the card token after authorisation."""
    order = Order.place(new_id(), "c-1", [OrderLine("A", 1, Money(5, "EUR"))], card_token="tok_approve")
    await save(db, order, T0)
    loaded, progress = await load(db, order.id)
    loaded.reserve_stock()
    loaded.authorize_payment("auth-1")
    progress.note("authorize_payment", StepOutcome.DONE)
    async with PiccoloUnitOfWork(db) as uow:
        uow.orders.save(loaded, progress)  # issue 15's port: writes are collected, made at commit
        await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        stored = await uow.orders.get(order.id)
    assert stored is not None and stored.card_token is None
