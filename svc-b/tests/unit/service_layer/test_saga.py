"""The order saga against fakes of the catalog and payments: happy path, every failure path
compensates, nothing moves twice, each step is noted started before its call, and each
transition is one write."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from fakes import FakeCatalog, FakePayments, FakeUnitOfWork, Store, unavailable

from caravan_commons.errors import ConflictError, NotFoundError
from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus, PaymentState, StockState
from svc_b.service_layer.ports import PaymentDeclined, UnknownProduct
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga
from svc_b.service_layer.unit_of_work import StepOutcome

NOW = datetime(2026, 11, 27, 6, 0, tzinfo=UTC)


@pytest.fixture
def store() -> Store:
    return Store()


@pytest.fixture
def catalog() -> FakeCatalog:
    return FakeCatalog(stock={"A": 5, "B": 1}, price_list={"A": Money(1250, "EUR"), "B": Money(99, "EUR")})


@pytest.fixture
def payments() -> FakePayments:
    return FakePayments(decline={"broke"})


@pytest.fixture
def saga(store: Store, catalog: FakeCatalog, payments: FakePayments) -> Saga:
    return Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=lambda: NOW)


def command(customer: str = "c-1", order_id: str = "o-1", **quantities: int) -> PlaceOrder:
    lines = [LineRequest(sku, qty) for sku, qty in (quantities or {"A": 2, "B": 1}).items()]
    return PlaceOrder(order_id, customer, lines)


async def test_happy_path_confirms_with_snapshotted_prices(
    saga: Saga, store: Store, catalog: FakeCatalog, payments: FakePayments
) -> None:
    order = await saga.place(command())
    assert order.status is OrderStatus.CONFIRMED
    assert order.total == Money(2 * 1250 + 99, "EUR")
    assert catalog.stock == {"A": 3, "B": 0}
    assert catalog.reservations["o-1"][1] == "committed"
    assert payments.states() == ["captured"]
    assert list(payments.by_key) == ["order-o-1-authorize"]
    catalog.price_list["A"] = Money(9999, "EUR")  # later price changes do not touch the order
    assert (await saga.order("o-1")).total == Money(2599, "EUR")  # type: ignore[union-attr]
    # one write per transition: each step's result and the next step's start together
    steps = [(s.step, s.outcome.value) for s in store.log]
    assert steps == [
        ("reserve_stock", "started"),  # with the new order
        ("authorize_payment", "started"),
        ("commit_stock", "started"),
        ("capture_payment", "started"),
        ("confirm", "done"),
    ]
    assert store.progress["o-1"].started == (
        "reserve_stock", "authorize_payment", "commit_stock", "capture_payment",
    )  # fmt: skip


async def test_each_step_is_persisted_before_the_upstream_call(
    saga: Saga, store: Store, catalog: FakeCatalog
) -> None:
    seen: list[tuple[str, str]] = []
    original = catalog.reserve

    async def spying_reserve(order_id, lines):  # type: ignore[no-untyped-def]
        stored = store.orders[order_id][0]
        seen.append((stored.status.value, store.log[-1].step + ":" + store.log[-1].outcome.value))
        await original(order_id, lines)

    catalog.reserve = spying_reserve  # type: ignore[method-assign]
    await saga.place(command())
    assert seen == [("pending", "reserve_stock:started")]


async def test_unknown_sku_creates_no_order(saga: Saga, store: Store) -> None:
    with pytest.raises(UnknownProduct):
        await saga.place(command(Z=1))
    assert store.orders == {}


async def test_out_of_stock_cancels_and_moves_nothing(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    order = await saga.place(command(B=2))
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "out_of_stock")
    assert catalog.stock == {"A": 5, "B": 1}
    assert payments.authorizations == {}


async def test_declined_card_releases_the_reservation(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    order = await saga.place(command(customer="broke"))
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert (order.stock, order.payment) == (StockState.RELEASED, PaymentState.NONE)
    assert catalog.stock == {"A": 5, "B": 1}
    assert payments.states() == []


async def test_payments_unreachable_cancels_and_releases(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    payments.faults.add("authorize", unavailable("payments"))
    order = await saga.place(command())
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert catalog.stock == {"A": 5, "B": 1}


async def test_lost_authorisation_answer_is_voided(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    # the authorisation happened, then the answer was lost: compensation must still void it
    payments.faults.add("authorize", unavailable("payments"), after_effect=True)
    order = await saga.place(command())
    assert order.status is OrderStatus.CANCELLED
    assert payments.states() == ["voided"]
    assert catalog.stock == {"A": 5, "B": 1}


async def test_declined_capture_voids_and_releases_committed_stock(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    payments.faults.add("capture", PaymentDeclined("authorisation expired"))
    order = await saga.place(command())
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert payments.states() == ["voided"]
    assert catalog.stock == {"A": 5, "B": 1}


async def test_unreachable_capture_waits_for_recovery(
    saga: Saga, store: Store, payments: FakePayments
) -> None:
    payments.faults.add("capture", unavailable("payments"))
    order = await saga.place(command())
    assert (order.status, order.stock, order.payment) == (
        OrderStatus.PAYMENT_AUTHORIZED,
        StockState.COMMITTED,
        PaymentState.AUTHORIZED,
    )
    assert store.log[-1].step == "capture_payment" and store.log[-1].outcome is StepOutcome.FAILED
    assert (await saga.advance("o-1")).status is OrderStatus.CONFIRMED
    assert payments.states() == ["captured"]


async def test_cancel_of_a_confirmed_order_refunds_and_restocks(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    await saga.place(command())
    with pytest.raises(NotFoundError):
        await saga.cancel("o-1", "someone-else")
    order = await saga.cancel("o-1", "c-1")
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "customer_cancelled")
    assert payments.states() == ["refunded"]
    assert catalog.stock == {"A": 5, "B": 1}
    with pytest.raises(ConflictError):
        await saga.cancel("o-1", "c-1")


async def test_compensation_with_payments_down_stays_cancelling_until_advanced(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    await saga.place(command())
    payments.faults.add("refund", unavailable("payments"))
    order = await saga.cancel("o-1", "c-1")
    assert order.status is OrderStatus.CANCELLING
    assert payments.states() == ["captured"]
    order = await saga.advance("o-1")
    assert order.status is OrderStatus.CANCELLED
    assert payments.states() == ["refunded"]
    assert catalog.stock == {"A": 5, "B": 1}


async def test_same_order_id_twice_is_a_conflict(saga: Saga, catalog: FakeCatalog) -> None:
    await saga.place(command())
    with pytest.raises(ConflictError):
        await saga.place(command())
    assert catalog.stock == {"A": 3, "B": 0}
