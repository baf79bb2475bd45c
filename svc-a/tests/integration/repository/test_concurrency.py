"""Two (or more) concurrent reservations for the last unit: exactly one succeeds, on every database.

Each contender has its own unit of work, so its own connection and transaction; they run
concurrently on one event loop (Postgres: row locks; SQLite: BEGIN IMMEDIATE serialises writers).
"""

from __future__ import annotations

import asyncio

import pytest

from caravan_commons.db import Database
from caravan_commons.money import Money
from svc_a.domain.errors import OutOfStock
from svc_a.domain.model import Product, Stock
from svc_a.domain.reservation import Line, Status
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork
from svc_a.service_layer import handlers

from .conftest import Runner

LAMP = Product(sku="LAMP-1", name="Lamp", price=Money(2500, "EUR"))


@pytest.mark.parametrize("contenders", [2, 5])
def test_exactly_one_reservation_gets_the_last_unit(run: Runner, contenders: int) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(LAMP, PiccoloUnitOfWork(db), initial_stock=1)
        for round_ in range(5):
            results = await asyncio.gather(
                *(
                    handlers.reserve(f"r{round_}-o{n}", [Line("LAMP-1", 1)], PiccoloUnitOfWork(db))
                    for n in range(contenders)
                ),
                return_exceptions=True,
            )
            won = [r for r in results if isinstance(r, tuple)]
            lost = [r for r in results if isinstance(r, OutOfStock)]
            assert len(won) == 1 and len(lost) == contenders - 1, results
            async with PiccoloUnitOfWork(db) as uow:
                assert await uow.stocks.get("LAMP-1") == Stock(
                    "LAMP-1", on_hand=round_ + 1, reserved=round_ + 1
                )
                held = [await uow.reservations.get(f"r{round_}-o{n}") for n in range(contenders)]
            assert [r.status for r in held if r is not None] == [Status.HELD]
            await handlers.restock("LAMP-1", 1, PiccoloUnitOfWork(db))  # one more unit for the next round

    run(scenario)


def test_concurrent_commit_and_release_of_one_reservation_settle_it_once(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(LAMP, PiccoloUnitOfWork(db), initial_stock=3)
        await handlers.reserve("o-1", [Line("LAMP-1", 2)], PiccoloUnitOfWork(db))
        results = await asyncio.gather(
            handlers.commit_reservation("o-1", PiccoloUnitOfWork(db)),
            handlers.release_reservation("o-1", PiccoloUnitOfWork(db)),
            handlers.commit_reservation("o-1", PiccoloUnitOfWork(db)),
            return_exceptions=True,
        )
        settled = await handlers.get_reservation("o-1", PiccoloUnitOfWork(db))
        async with PiccoloUnitOfWork(db) as uow:
            stock = await uow.stocks.get("LAMP-1")
        # whatever the order, the release wins in the end (a committed reservation released gives
        # its units back; a released one cannot be committed), and no unit is lost or doubled
        assert settled.status is Status.RELEASED, results
        assert stock == Stock("LAMP-1", on_hand=3), results

    run(scenario)


def test_concurrent_identical_reservations_for_one_order_hold_once(run: Runner) -> None:
    async def scenario(db: Database) -> None:
        await handlers.add_product(LAMP, PiccoloUnitOfWork(db), initial_stock=3)
        results = await asyncio.gather(
            *(handlers.reserve("o-1", [Line("LAMP-1", 1)], PiccoloUnitOfWork(db)) for _ in range(3)),
            return_exceptions=True,
        )
        assert all(isinstance(r, tuple) for r in results), results
        assert sum(created for _, created in results) == 1  # type: ignore[misc]
        async with PiccoloUnitOfWork(db) as uow:
            assert await uow.stocks.get("LAMP-1") == Stock("LAMP-1", on_hand=3, reserved=1)

    run(scenario)


def test_reads_do_not_wait_for_a_writer(run: Runner) -> None:
    """GET requests use a read-only unit of work: while a writer holds its transaction open,
    products and stock are still read (SQLite: a reader connection, not the write lock;
    Postgres: no row lock)."""

    async def scenario(db: Database) -> None:
        sku = f"READ-{id(db) % 10_000}"
        await handlers.add_product(
            Product(sku=sku, name="Read", price=Money(100, "EUR")), PiccoloUnitOfWork(db), initial_stock=3
        )
        writing = asyncio.Event()

        async def read() -> tuple[Stock, Product]:  # another request: a task of its own
            await writing.wait()
            reader = PiccoloUnitOfWork(db, read_only=True)
            return await handlers.get_stock(sku, reader), await handlers.get_product(sku, reader)

        request = asyncio.create_task(read())  # created outside the writer's transaction
        async with PiccoloUnitOfWork(db) as writer:
            await writer.stocks.get(sku)  # Postgres: FOR UPDATE on the row; SQLite: the writer
            writing.set()
            stock, product = await asyncio.wait_for(request, 5)
            await writer.rollback()
        assert stock.available == 3 and product.sku == sku

    run(scenario)
