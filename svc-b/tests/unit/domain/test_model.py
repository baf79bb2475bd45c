"""The Order aggregate: lines, exact totals, the happy path, failures and cancellation."""

from __future__ import annotations

import pytest

from caravan_commons.errors import ConflictError, ValidationError
from caravan_commons.money import Money
from svc_b.domain import events
from svc_b.domain.errors import IllegalTransition, InvalidOrder
from svc_b.domain.model import CancelReason, Order, OrderLine, OrderStatus, PaymentState, StockState


def line(sku: str = "SKU-1", quantity: int = 1, cents: int = 1000, currency: str = "EUR") -> OrderLine:
    return OrderLine(sku, quantity, Money(cents, currency))


def placed() -> Order:
    return Order.place("o-1", "c-1", [line("A", 2, 1999), line("B", 3, 1)])


def confirmed() -> Order:
    order = placed()
    order.reserve_stock()
    order.authorize_payment("auth-1")
    order.commit_stock()
    order.capture_payment()
    order.confirm()
    return order


def test_total_is_the_exact_sum_of_subtotals() -> None:
    order = placed()
    assert order.total == Money(2 * 1999 + 3, "EUR")
    assert order.events == [events.OrderPlaced("o-1", "c-1", Money(4001, "EUR"))]


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        ([], "at least one line"),
        ([line("A"), line("A")], "one line only"),
        ([line("A", currency="EUR"), line("B", currency="USD")], "one currency"),
    ],
)
def test_invalid_orders_are_refused(lines: list[OrderLine], message: str) -> None:
    with pytest.raises(InvalidOrder, match=message):
        Order.place("o-1", "c-1", lines)


@pytest.mark.parametrize("quantity", [0, -1, 10_001, True])
def test_quantity_must_be_a_positive_whole_number(quantity: int) -> None:
    with pytest.raises(InvalidOrder, match="quantity"):
        line(quantity=quantity)


@pytest.mark.parametrize("sku", ["", "   ", "x" * 65])
def test_sku_must_be_named(sku: str) -> None:
    with pytest.raises(InvalidOrder, match="SKU"):
        line(sku=sku)


def test_negative_price_is_refused() -> None:
    with pytest.raises(InvalidOrder, match="negative"):
        line(cents=-1)


def test_domain_errors_map_to_the_commons_hierarchy() -> None:
    assert issubclass(InvalidOrder, ValidationError)
    assert issubclass(IllegalTransition, ConflictError)


def test_happy_path_reaches_confirmed_with_one_event_per_transition() -> None:
    order = confirmed()
    assert (order.status, order.stock, order.payment) == (
        OrderStatus.CONFIRMED,
        StockState.COMMITTED,
        PaymentState.CAPTURED,
    )
    assert [type(e) for e in order.events] == [
        events.OrderPlaced,
        events.StockReserved,
        events.PaymentAuthorized,
        events.StockCommitted,
        events.PaymentCaptured,
        events.OrderConfirmed,
    ]


def test_steps_out_of_order_raise() -> None:
    order = placed()
    with pytest.raises(IllegalTransition, match="cannot authorise payment while pending"):
        order.authorize_payment("auth-1")
    order.reserve_stock()
    with pytest.raises(IllegalTransition):
        order.reserve_stock()
    order.authorize_payment("auth-1")
    with pytest.raises(IllegalTransition, match="capture"):
        order.capture_payment()  # stock must be committed first
    with pytest.raises(IllegalTransition, match="confirm"):
        order.confirm()
    with pytest.raises(IllegalTransition, match="cancel"):
        order.cancel()  # only a confirmed order is cancelled by the customer


def test_failure_after_authorisation_compensates_to_cancelled() -> None:
    order = placed()
    order.reserve_stock()
    order.authorize_payment("auth-1")
    order.fail(CancelReason.UPSTREAM_UNAVAILABLE)
    with pytest.raises(IllegalTransition, match="complete the cancellation"):
        order.complete_cancellation()  # still holds stock and an authorisation
    with pytest.raises(IllegalTransition, match="refund"):
        order.refund_payment()  # nothing was captured
    order.void_payment()
    order.release_stock()
    order.complete_cancellation()
    assert order.status is OrderStatus.CANCELLED
    assert order.cancel_reason == "upstream_unavailable"
    assert (order.stock, order.payment) == (StockState.RELEASED, PaymentState.VOIDED)
    assert order.events[-1] == events.OrderCancelled("o-1", "upstream_unavailable")


def test_failure_while_pending_cancels_without_compensation() -> None:
    order = placed()
    order.fail(CancelReason.OUT_OF_STOCK)
    order.complete_cancellation()
    assert (order.status, order.stock, order.payment) == (
        OrderStatus.CANCELLED,
        StockState.NONE,
        PaymentState.NONE,
    )


def test_cancel_of_a_confirmed_order_refunds_and_releases() -> None:
    order = confirmed()
    with pytest.raises(IllegalTransition):
        order.fail(CancelReason.PAYMENT_DECLINED)  # a confirmed order does not fail
    order.cancel()
    assert order.cancel_reason == "customer_cancelled"
    with pytest.raises(IllegalTransition, match="void"):
        order.void_payment()  # captured money is refunded, not voided
    order.refund_payment()
    order.release_stock()
    order.complete_cancellation()
    assert (order.status, order.stock, order.payment) == (
        OrderStatus.CANCELLED,
        StockState.RELEASED,
        PaymentState.REFUNDED,
    )
    with pytest.raises(IllegalTransition):
        order.cancel()  # cancelled is final


def test_the_card_token_is_kept_only_until_the_payment_is_authorised() -> None:
    """Regression (issue 18, defect 9): the card token stayed with the order after authorisation."""
    order = Order.place("o-1", "c-1", [line()], card_token="tok_approve")
    order.reserve_stock()
    assert order.card_token == "tok_approve"  # recovery may still need it to authorise
    order.authorize_payment("auth-1")
    assert order.card_token is None
    declined = Order.place("o-2", "c-1", [line()], card_token="tok_decline")
    declined.fail(CancelReason.PAYMENT_DECLINED)
    declined.complete_cancellation()
    assert declined.card_token is None
