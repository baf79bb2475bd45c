"""Repositories and the unit of work against a real database: domain objects in, domain objects out."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from caravan_commons.db import Database
from caravan_commons.money import Money
from svc_a.domain.errors import (
    ConcurrentUpdate,
    DuplicateProduct,
    OutOfStock,
    ProductInactive,
    ReservationConflict,
    ReservationNotFound,
    UnknownSku,
)
from svc_a.domain.model import Product, Stock
from svc_a.domain.reservation import Line, Status
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork
from svc_a.service_layer import handlers

from .conftest import Runner

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)
TENT = Product(sku="TENT-2P", name="Tent", price=Money(12999, "EUR"), description="Two people")
MUG = Product(sku="MUG01", name="Mug", price=Money(500, "EUR"), active=False)
MUG_ON_SALE = MUG.changed(active=True)
OFF_SALE = Product(sku="OLD-1", name="Old", price=Money(100, "EUR"), active=False)


def clock_at(moment: datetime):
    return lambda: moment


async def stock_of(db: Database, sku: str) -> Stock | None:
    async with PiccoloUnitOfWork(db) as uow:
        return await uow.stocks.get(sku)


def test_products_round_trip_as_domain_objects(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=3)
        await handlers.add_product(MUG, PiccoloUnitOfWork(db))
        assert await handlers.get_product("TENT-2P", PiccoloUnitOfWork(db)) == TENT
        with pytest.raises(DuplicateProduct):
            await handlers.add_product(TENT, PiccoloUnitOfWork(db))
        async with PiccoloUnitOfWork(db) as uow:
            await uow.products.update(MUG.changed(price=Money(450, "EUR"), active=True))
            await uow.commit()
        async with PiccoloUnitOfWork(db) as uow:
            assert (await uow.products.get("MUG01")) == MUG.changed(price=Money(450, "EUR"), active=True)
            assert [p.sku for p in await uow.products.list(limit=1)] == ["MUG01"]
            assert [p.sku for p in await uow.products.list(after="MUG01")] == ["TENT-2P"]
            assert [p.sku for p in await uow.products.list(skus=["TENT-2P", "NOPE1"])] == ["TENT-2P"]
            assert [p.sku for p in await uow.products.list(active=True)] == ["MUG01", "TENT-2P"]
            assert await uow.products.list(skus=[]) == []
            assert await uow.products.get("NOPE1") is None
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=3)
        with pytest.raises(UnknownSku):
            await handlers.get_product("NOPE1", PiccoloUnitOfWork(db))

    run(scenario)


def test_list_filters_by_active(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db))
        await handlers.add_product(MUG, PiccoloUnitOfWork(db))
        async with PiccoloUnitOfWork(db) as uow:
            assert [p.sku for p in await uow.products.list(active=True)] == ["TENT-2P"]
            assert [p.sku for p in await uow.products.list(active=False)] == ["MUG01"]

    run(scenario)


def test_list_leaves_out_a_hidden_prefix(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db))
        await handlers.add_product(replace(TENT, sku="GATE-0A1B"), PiccoloUnitOfWork(db))
        async with PiccoloUnitOfWork(db) as uow:
            assert [p.sku for p in await uow.products.list(hidden_prefix="GATE-")] == ["TENT-2P"]
            assert [p.sku for p in await uow.products.list()] == ["GATE-0A1B", "TENT-2P"]

    run(scenario)


def test_unit_of_work_rolls_back_unless_committed(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        async with PiccoloUnitOfWork(db) as uow:
            await uow.products.add(TENT)
        async with PiccoloUnitOfWork(db) as uow:
            assert await uow.products.get("TENT-2P") is None
        with pytest.raises(RuntimeError):
            async with PiccoloUnitOfWork(db) as uow:
                await uow.products.add(TENT)
                raise RuntimeError("boom")
        async with PiccoloUnitOfWork(db) as uow:
            assert await uow.products.get("TENT-2P") is None

    run(scenario)


def test_restock_adds_units_and_unknown_skus_are_refused(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=1)
        stock = await handlers.restock("TENT-2P", 4, PiccoloUnitOfWork(db))
        assert (stock.on_hand, stock.reserved) == (5, 0)
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=5)
        with pytest.raises(UnknownSku):
            await handlers.restock("NOPE1", 1, PiccoloUnitOfWork(db))

    run(scenario)


def test_reserve_commit_release_persist_and_are_idempotent(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=5)
        await handlers.add_product(MUG_ON_SALE, PiccoloUnitOfWork(db), initial_stock=2)
        lines = [Line("TENT-2P", 2), Line("MUG01", 1)]
        clock = clock_at(NOW)
        first, created = await handlers.reserve("o-1", lines, PiccoloUnitOfWork(db), clock=clock)
        assert created and first.status is Status.HELD and first.expires_at == NOW + handlers.DEFAULT_TTL
        again, created = await handlers.reserve(
            "o-1", list(reversed(lines)), PiccoloUnitOfWork(db), clock=clock
        )
        assert not created and again == first
        with pytest.raises(ReservationConflict):
            await handlers.reserve("o-1", [Line("TENT-2P", 1)], PiccoloUnitOfWork(db), clock=clock)
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=5, reserved=2)
        assert await handlers.get_reservation("o-1", PiccoloUnitOfWork(db)) == first

        committed = await handlers.commit_reservation("o-1", PiccoloUnitOfWork(db), clock=clock)
        assert committed.status is Status.COMMITTED
        await handlers.commit_reservation("o-1", PiccoloUnitOfWork(db), clock=clock)  # idempotent
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=3, reserved=0)
        assert await stock_of(db, "MUG01") == Stock("MUG01", on_hand=1, reserved=0)

        await handlers.reserve("o-2", [Line("TENT-2P", 3)], PiccoloUnitOfWork(db), clock=clock)
        for _ in range(2):  # idempotent
            released = await handlers.release_reservation("o-2", PiccoloUnitOfWork(db), clock=clock)
            assert released.status is Status.RELEASED
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=3, reserved=0)

        for _ in range(2):  # a committed order cancelled: its units come back to the shelf, once
            undone = await handlers.release_reservation("o-1", PiccoloUnitOfWork(db), clock=clock)
            assert undone.status is Status.RELEASED
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=5, reserved=0)
        assert await stock_of(db, "MUG01") == Stock("MUG01", on_hand=2, reserved=0)
        with pytest.raises(ReservationConflict):
            await handlers.commit_reservation("o-1", PiccoloUnitOfWork(db), clock=clock)
        with pytest.raises(ReservationNotFound):
            await handlers.commit_reservation("o-9", PiccoloUnitOfWork(db), clock=clock)

    run(scenario)


def test_reserve_is_all_or_nothing_in_the_database(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=5)
        await handlers.add_product(MUG_ON_SALE, PiccoloUnitOfWork(db), initial_stock=1)
        await handlers.add_product(OFF_SALE, PiccoloUnitOfWork(db), initial_stock=9)
        with pytest.raises(ProductInactive):
            await handlers.reserve("o-1", [Line("TENT-2P", 2), Line("OLD-1", 1)], PiccoloUnitOfWork(db))
        with pytest.raises(OutOfStock):
            await handlers.reserve("o-1", [Line("TENT-2P", 2), Line("MUG01", 2)], PiccoloUnitOfWork(db))
        with pytest.raises(UnknownSku):
            await handlers.reserve("o-1", [Line("TENT-2P", 2), Line("NOPE1", 1)], PiccoloUnitOfWork(db))
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=5)
        assert await stock_of(db, "MUG01") == Stock("MUG01", on_hand=1)
        with pytest.raises(ReservationNotFound):
            await handlers.get_reservation("o-1", PiccoloUnitOfWork(db))

    run(scenario)


def test_sweeper_releases_expired_held_reservations_only(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=5)
        ttl = timedelta(minutes=5)
        await handlers.reserve(
            "old", [Line("TENT-2P", 1)], PiccoloUnitOfWork(db), ttl=ttl, clock=clock_at(NOW)
        )
        await handlers.reserve(
            "done", [Line("TENT-2P", 1)], PiccoloUnitOfWork(db), ttl=ttl, clock=clock_at(NOW)
        )
        await handlers.commit_reservation("done", PiccoloUnitOfWork(db), clock=clock_at(NOW))
        later = NOW + timedelta(minutes=3)
        await handlers.reserve(
            "new", [Line("TENT-2P", 2)], PiccoloUnitOfWork(db), ttl=ttl, clock=clock_at(later)
        )
        assert await handlers.sweep_expired(lambda: PiccoloUnitOfWork(db), clock=clock_at(NOW + ttl)) == 1
        statuses = {
            order: (await handlers.get_reservation(order, PiccoloUnitOfWork(db))).status
            for order in ("old", "done", "new")
        }
        assert statuses == {"old": Status.RELEASED, "done": Status.COMMITTED, "new": Status.HELD}
        assert await stock_of(db, "TENT-2P") == Stock("TENT-2P", on_hand=4, reserved=2)
        assert await handlers.sweep_expired(lambda: PiccoloUnitOfWork(db), clock=clock_at(NOW + ttl)) == 0
        with pytest.raises(ReservationConflict):  # past expiry: cannot commit any more
            await handlers.commit_reservation("new", PiccoloUnitOfWork(db), clock=clock_at(later + 2 * ttl))

    run(scenario)


def test_a_stale_stock_write_is_refused(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(TENT, PiccoloUnitOfWork(db), initial_stock=5)
        async with PiccoloUnitOfWork(db) as uow:
            stock = await uow.stocks.get("TENT-2P")
            assert stock is not None
            from svc_a.infrastructure.db.tables import StockRow

            await StockRow.update({StockRow.version: StockRow.version + 1}).where(StockRow.sku == "TENT-2P")
            stock.hold(1)
            with pytest.raises(ConcurrentUpdate):
                await uow.stocks.save(stock)

    run(scenario)
