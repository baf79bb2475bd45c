"""The order saga against fakes of the catalog and payments: happy path, every failure path
compensates, nothing moves twice, each step is noted started before its call, and each
transition is one write."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from fakes import DOWN, FakeCatalog, FakePayments, FakeTime, FakeUnitOfWork, Store, unavailable

from caravan_commons.deadline import Deadline, use_deadline
from caravan_commons.errors import ConflictError, NotFoundError, UpstreamUnavailableError
from caravan_commons.money import Money
from svc_b.domain.model import OrderStatus, PaymentState, StockState
from svc_b.service_layer.ports import NothingAuthorized, PaymentDeclined, UnknownProduct
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
def time() -> FakeTime:
    return FakeTime(NOW)


@pytest.fixture
def saga(store: Store, catalog: FakeCatalog, payments: FakePayments, time: FakeTime) -> Saga:
    return Saga(lambda: FakeUnitOfWork(store), catalog, payments, clock=time.now, sleep=time.sleep)


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
    assert (await saga.order("o-1")).total == Money(2599, "EUR")
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

    async def spying_reserve(order_id, lines):
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


async def test_payments_unreachable_past_the_deadline_cancels_and_releases(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments, time: FakeTime
) -> None:
    payments.faults.add("authorize", unavailable("payments"), times=DOWN)
    order = await saga.place(command())
    # retried with backoff until the order's deadline, never past it; then compensated: the stock
    # goes back at once, whether an authorisation whose answer was lost needs voiding can only be
    # learnt once payments answers again
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLING, "upstream_unavailable")
    assert (order.stock, catalog.stock) == (StockState.RELEASED, {"A": 5, "B": 1})
    assert len(time.slept) > 10
    # the forward call until the deadline, the compensation's at most undo_for more
    assert NOW + saga.retry.deadline - timedelta(seconds=saga.retry.cap) <= time.now()
    assert time.now() <= NOW + saga.retry.deadline + saga.retry.undo_window
    payments.faults.clear()
    order = await saga.advance("o-1")
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert payments.states() == ["voided"]  # the repeat (same key) authorised: voided at once


@pytest.mark.parametrize("method", ["reserve", "authorize", "commit", "capture"])
async def test_a_transient_failure_is_retried_with_the_same_key_and_the_order_confirms(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments, time: FakeTime, method: str
) -> None:
    faults = catalog.faults if method in ("reserve", "commit") else payments.faults
    faults.add(method, unavailable(method), times=3)
    order = await saga.place(command())
    assert order.status is OrderStatus.CONFIRMED
    assert len(time.slept) == 3  # three retries, each after a backoff
    assert catalog.stock == {"A": 3, "B": 0}
    assert payments.states() == ["captured"]  # authorised and captured once
    assert list(payments.by_key) == ["order-o-1-authorize"]


async def test_retries_back_off_with_full_jitter_and_honour_retry_after(
    saga: Saga, payments: FakePayments, time: FakeTime
) -> None:
    payments.faults.add("authorize", unavailable("payments"), times=6)
    payments.faults.add("capture", UpstreamUnavailableError("circuit open", retry_after=4.5))
    order = await saga.place(command())
    assert order.status is OrderStatus.CONFIRMED
    *backoffs, circuit = time.slept
    ceilings = [min(saga.retry.cap, saga.retry.base * 2**n) for n in range(6)]
    assert all(0 <= delay <= ceiling for delay, ceiling in zip(backoffs, ceilings, strict=True))
    assert circuit == 4.5


async def test_a_definite_refusal_compensates_at_once(
    saga: Saga, catalog: FakeCatalog, time: FakeTime
) -> None:
    order = await saga.place(command(customer="broke"))
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    catalog.stock["B"] = 0
    order = await saga.place(command(order_id="o-2"))
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "out_of_stock")
    assert time.slept == []


async def test_nothing_authorized_is_definite_and_not_retried(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments, time: FakeTime
) -> None:
    payments.faults.add("authorize", NothingAuthorized("processor error"))
    order = await saga.place(command())
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert time.slept == [] and catalog.stock == {"A": 5, "B": 1}


async def test_a_lost_authorisation_answer_is_learnt_by_the_retry(saga: Saga, payments: FakePayments) -> None:
    # the authorisation happened, then the answer was lost: the retry (same key) learns it
    payments.faults.add("authorize", unavailable("payments"), after_effect=True)
    order = await saga.place(command())
    assert order.status is OrderStatus.CONFIRMED
    assert payments.states() == ["captured"]


async def test_a_lost_authorisation_answer_past_the_deadline_is_voided(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments
) -> None:
    # every answer lost until the deadline: the order is cancelled, and compensation must still
    # void the authorisation it never heard of (once payments answers again)
    payments.faults.add("authorize", unavailable("payments"), after_effect=True, times=DOWN)
    order = await saga.place(command())
    assert order.status is OrderStatus.CANCELLING  # compensation could not learn the outcome yet
    payments.faults.clear()
    order = await saga.advance("o-1")
    assert order.status is OrderStatus.CANCELLED
    assert payments.states() == ["voided"]
    assert catalog.stock == {"A": 5, "B": 1}


async def test_a_request_out_of_time_leaves_the_order_to_recovery(
    saga: Saga, catalog: FakeCatalog, payments: FakePayments, store: Store
) -> None:
    payments.faults.add("authorize", unavailable("payments"), times=DOWN)
    with use_deadline(Deadline.after(0.0)):  # the request placing it has no time left to wait
        order = await saga.place(command())
    assert order.status is OrderStatus.STOCK_RESERVED  # neither cancelled nor compensated
    assert store.log[-1].outcome is StepOutcome.FAILED and "request" in store.log[-1].detail
    payments.faults.clear()
    assert (await saga.advance("o-1")).status is OrderStatus.CONFIRMED


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
    payments.faults.add("capture", unavailable("payments"), times=DOWN)
    order = await saga.place(command())
    assert (order.status, order.stock, order.payment) == (
        OrderStatus.PAYMENT_AUTHORIZED,
        StockState.COMMITTED,
        PaymentState.AUTHORIZED,
    )
    assert store.log[-1].step == "capture_payment" and store.log[-1].outcome is StepOutcome.FAILED
    payments.faults.clear()
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
    payments.faults.add("refund", unavailable("payments"), times=DOWN)
    order = await saga.cancel("o-1", "c-1")
    assert order.status is OrderStatus.CANCELLING
    assert payments.states() == ["captured"]
    payments.faults.clear()
    order = await saga.advance("o-1")
    assert order.status is OrderStatus.CANCELLED
    assert payments.states() == ["refunded"]
    assert catalog.stock == {"A": 5, "B": 1}


async def test_same_order_id_twice_is_a_conflict(saga: Saga, catalog: FakeCatalog) -> None:
    await saga.place(command())
    with pytest.raises(ConflictError):
        await saga.place(command())
    assert catalog.stock == {"A": 3, "B": 0}
