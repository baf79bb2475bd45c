"""The use cases against an in-memory fake unit of work (no I/O)."""

from __future__ import annotations

import asyncio
import copy
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest

from caravan_commons.errors import ClientError
from caravan_commons.money import Money
from svc_a.domain.errors import (
    DuplicateProduct,
    OutOfStock,
    ProductInactive,
    ReservationNotFound,
    UnknownSku,
)
from svc_a.domain.model import Product, Stock
from svc_a.domain.reservation import Line, Reservation, Status
from svc_a.service_layer import handlers
from svc_a.service_layer.ports import (
    AbstractProductRepository,
    AbstractReservationRepository,
    AbstractStockRepository,
    AbstractUnitOfWork,
    KeyClaim,
    Move,
)

NOW = datetime(2026, 11, 27, 12, 0, tzinfo=UTC)


class FakeProducts(AbstractProductRepository):
    def __init__(self, rows: dict[str, Product]) -> None:
        self.rows = rows

    async def add(self, product: Product) -> None:
        if product.sku in self.rows:
            raise DuplicateProduct(product.sku)
        self.rows[product.sku] = product

    async def get(self, sku: str) -> Product | None:
        return self.rows.get(sku)

    async def update(self, product: Product) -> None:
        self.rows[product.sku] = product

    async def list(
        self,
        *,
        after: str | None = None,
        limit: int = 50,
        active: bool | None = None,
        skus: Sequence[str] | None = None,
        hidden_prefix: str | None = None,
    ) -> list[Product]:
        found = [p for sku, p in sorted(self.rows.items()) if after is None or sku > after]
        found = [p for p in found if skus is None or p.sku in skus]
        found = [p for p in found if hidden_prefix is None or not p.sku.startswith(hidden_prefix)]
        return [p for p in found if active is None or p.active == active][:limit]


class FakeStocks(AbstractStockRepository):
    def __init__(self, rows: dict[str, Stock], inactive: set[str] | None = None) -> None:
        self.rows = rows
        self.inactive = inactive or set()

    async def add(self, stock: Stock) -> None:
        self.rows[stock.sku] = copy.copy(stock)

    async def get(self, sku: str) -> Stock | None:
        return copy.copy(self.rows.get(sku))

    async def get_for_update(self, skus: Sequence[str]) -> dict[str, Stock]:
        return {sku: copy.copy(self.rows[sku]) for sku in skus if sku in self.rows}

    async def save(self, stock: Stock) -> None:
        self.rows[stock.sku] = copy.copy(stock)

    async def move(self, lines: Sequence[Line], move: Move) -> list[str]:
        """The domain's own rules, line by line (the database does it in one statement)."""
        short = []
        for line in lines:
            stock = copy.copy(self.rows.get(line.sku))
            try:
                if stock is None or (move is Move.HOLD and line.sku in self.inactive):
                    raise LookupError(line.sku)
                getattr(stock, move.value)(line.quantity)
            except (LookupError, ClientError):
                short.append(line.sku)
                continue
            self.rows[line.sku] = stock
        return short


class FakeReservations(AbstractReservationRepository):
    def __init__(self, rows: dict[str, Reservation], keys: dict[str, tuple[str, str]]) -> None:
        self.rows = rows
        self.keys = keys  # order id -> (key id, fingerprint)

    async def add(self, reservation: Reservation) -> None:
        self.rows[reservation.order_id] = copy.copy(reservation)

    async def get(self, order_id: str) -> Reservation | None:
        return copy.copy(self.rows.get(order_id))

    async def save(self, reservation: Reservation) -> None:
        self.rows[reservation.order_id] = copy.copy(reservation)

    async def add_if_absent(self, reservation: Reservation, key: KeyClaim | None = None) -> bool:
        if reservation.order_id in self.rows or (key and any(k == key.key_id for k, _ in self.keys.values())):
            return False
        self.rows[reservation.order_id] = copy.copy(reservation)
        if key is not None:
            self.keys[reservation.order_id] = (key.key_id, key.fingerprint)
        return True

    async def by_key(self, key_id: str) -> tuple[Reservation, str] | None:
        for order_id, (kid, fingerprint) in self.keys.items():
            if kid == key_id:
                return copy.copy(self.rows[order_id]), fingerprint
        return None

    async def transition(
        self, order_id: str, was: Status, becomes: Status, *, live_at: datetime | None = None
    ) -> Reservation | None:
        found = self.rows.get(order_id)
        if found is None or found.status is not was or (live_at is not None and found.is_expired(live_at)):
            return None
        self.rows[order_id] = changed = copy.copy(found)
        changed.status = becomes
        return copy.copy(changed)

    async def expired(self, now: datetime, *, limit: int = 100) -> list[Reservation]:
        return [copy.copy(r) for r in self.rows.values() if r.is_expired(now)][:limit]


class FakeUnitOfWork(AbstractUnitOfWork):
    """Works on copies of the committed state; commit() publishes them, anything else drops them."""

    def __init__(self) -> None:
        self.state: tuple[dict, dict, dict, dict] = ({}, {}, {}, {})
        self.commits = 0

    async def __aenter__(self) -> FakeUnitOfWork:
        self._work = tuple(dict(part) for part in self.state)
        self.products = FakeProducts(self._work[0])
        inactive = {sku for sku, product in self._work[0].items() if not product.active}
        self.stocks = FakeStocks(self._work[1], inactive)
        self.reservations = FakeReservations(self._work[2], self._work[3])
        return self

    async def commit(self) -> None:
        self.state = self._work  # type: ignore[assignment]
        self.commits += 1

    async def rollback(self) -> None:
        pass


TENT = Product(sku="TENT-2P", name="Tent", price=Money(12999, "EUR"))


def run(coro):  # type: ignore[no-untyped-def]
    return asyncio.run(coro)


def test_add_product_creates_its_stock() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow, initial_stock=2))
    assert uow.state[1]["TENT-2P"] == Stock("TENT-2P", on_hand=2)
    assert run(handlers.get_product("TENT-2P", uow)) == TENT
    with pytest.raises(UnknownSku):
        run(handlers.get_product("NOPE1", uow))


def test_a_failed_reservation_commits_nothing() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow, initial_stock=1))
    commits = uow.commits
    with pytest.raises(OutOfStock):
        run(handlers.reserve("o-1", [Line("TENT-2P", 2)], uow))
    assert uow.commits == commits and uow.state[2] == {}


def test_an_idempotent_repeat_commits_nothing() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow, initial_stock=2))
    first, created = run(handlers.reserve("o-1", [Line("TENT-2P", 1)], uow, clock=lambda: NOW))
    commits = uow.commits
    again, created_again = run(handlers.reserve("o-1", [Line("TENT-2P", 1)], uow, clock=lambda: NOW))
    assert created and not created_again and again == first and uow.commits == commits


def test_sweeper_releases_what_is_due() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow, initial_stock=2))
    run(handlers.reserve("o-1", [Line("TENT-2P", 2)], uow, ttl=timedelta(minutes=1), clock=lambda: NOW))
    assert run(handlers.sweep_expired(lambda: uow, clock=lambda: NOW + timedelta(minutes=1))) == 1
    assert uow.state[2]["o-1"].status is Status.RELEASED
    assert uow.state[1]["TENT-2P"] == Stock("TENT-2P", on_hand=2)


def test_settling_an_unknown_order_is_not_found() -> None:
    with pytest.raises(ReservationNotFound):
        run(handlers.release_reservation("o-404", FakeUnitOfWork()))


def test_listing_pages_by_sku_with_filters() -> None:
    uow = FakeUnitOfWork()
    for sku in ("AA", "BB", "CC", "DD"):
        run(handlers.add_product(Product(sku, "n", Money(1, "EUR")), uow))
    run(handlers.change_product("BB", lambda p: p.changed(active=False), uow))
    page, cursor = run(handlers.list_products(uow, limit=2))
    assert [p.sku for p in page] == ["AA", "BB"] and cursor == "BB"
    page, cursor = run(handlers.list_products(uow, limit=2, after=cursor))
    assert [p.sku for p in page] == ["CC", "DD"] and cursor is None
    page, _ = run(handlers.list_products(uow, active=True, skus=["DD", "BB", "AA", "ZZ"]))
    assert [p.sku for p in page] == ["AA", "DD"]


def test_the_gate_namespace_is_listed_only_by_name() -> None:
    uow = FakeUnitOfWork()
    for sku in ("AA", "GATE-1F2E", "ZZ"):
        run(handlers.add_product(Product(sku, "n", Money(1, "EUR")), uow))
    page, cursor = run(handlers.list_products(uow, limit=2))
    assert [p.sku for p in page] == ["AA", "ZZ"] and cursor is None
    page, _ = run(handlers.list_products(uow, skus=["GATE-1F2E", "AA"]))
    assert [p.sku for p in page] == ["AA", "GATE-1F2E"]
    assert run(handlers.get_product("GATE-1F2E", uow)).sku == "GATE-1F2E"


def test_changing_a_product_keeps_its_sku_and_commits_only_a_change() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow))
    commits = uow.commits
    assert run(handlers.change_product("TENT-2P", lambda p: p, uow)) == TENT
    assert uow.commits == commits
    cheaper = run(handlers.change_product("TENT-2P", lambda p: p.changed(price=Money(9999, "EUR")), uow))
    assert uow.state[0]["TENT-2P"] == cheaper and uow.commits == commits + 1
    with pytest.raises(UnknownSku):
        run(handlers.change_product("NOPE1", lambda p: p, uow))


def test_an_inactive_product_is_not_reserved() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT.changed(active=False), uow, initial_stock=2))
    with pytest.raises(ProductInactive):
        run(handlers.reserve("o-1", [Line("TENT-2P", 1)], uow))
    assert uow.state[1]["TENT-2P"] == Stock("TENT-2P", on_hand=2) and uow.state[2] == {}


def test_cancelling_a_committed_reservation_returns_its_units() -> None:
    uow = FakeUnitOfWork()
    run(handlers.add_product(TENT, uow, initial_stock=3))
    run(handlers.reserve("o-1", [Line("TENT-2P", 2)], uow, clock=lambda: NOW))
    run(handlers.commit_reservation("o-1", uow, clock=lambda: NOW))
    assert run(handlers.get_stock("TENT-2P", uow)) == Stock("TENT-2P", on_hand=1)
    for _ in range(2):
        assert run(handlers.release_reservation("o-1", uow, clock=lambda: NOW)).status is Status.RELEASED
    assert run(handlers.get_stock("TENT-2P", uow)) == Stock("TENT-2P", on_hand=3)
