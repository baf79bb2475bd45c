"""Hypothesis: random sequences of transitions never reach an illegal state; totals stay exact."""

from __future__ import annotations

from collections.abc import Callable

from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from caravan_commons.money import Money
from svc_b.domain.errors import IllegalTransition
from svc_b.domain.model import (
    CancelReason,
    Order,
    OrderLine,
    OrderStatus,
    PaymentState,
    StockState,
)

CURRENCIES = ["EUR", "JPY", "KWD"]

lines_strategy = st.sampled_from(CURRENCIES).flatmap(
    lambda currency: st.lists(
        st.builds(
            OrderLine,
            sku=st.text("ABCDEFGHIJ-0123456789", min_size=1, max_size=12),
            quantity=st.integers(1, 10_000),
            unit_price=st.builds(Money, st.integers(0, 10**12), st.just(currency)),
        ),
        min_size=1,
        max_size=20,
        unique_by=lambda line: line.sku,
    )
)


@given(lines_strategy)
def test_total_is_exact_integer_sum(lines: list[OrderLine]) -> None:
    order = Order.place("o", "c", lines)
    assert order.total == Money(
        sum(line.quantity * line.unit_price.amount for line in lines), order.total.currency
    )
    assert isinstance(order.total.amount, int)


HELD_STOCK = (StockState.RESERVED, StockState.COMMITTED)
HELD_PAYMENT = (PaymentState.AUTHORIZED, PaymentState.CAPTURED)


def _legal_while_cancelling(status: OrderStatus, stock: StockState, payment: PaymentState) -> bool:
    # money was captured only after stock was committed (so it is committed or, later, released)
    if payment in (PaymentState.CAPTURED, PaymentState.REFUNDED) and stock in (
        StockState.NONE,
        StockState.RESERVED,
    ):
        return False
    # a cancelled order holds nothing
    return not (status is OrderStatus.CANCELLED and (stock in HELD_STOCK or payment in HELD_PAYMENT))


# (status, stock, payment) combinations an order may ever be in
LEGAL = {
    (OrderStatus.PENDING, StockState.NONE, PaymentState.NONE),
    (OrderStatus.STOCK_RESERVED, StockState.RESERVED, PaymentState.NONE),
    (OrderStatus.PAYMENT_AUTHORIZED, StockState.RESERVED, PaymentState.AUTHORIZED),
    (OrderStatus.PAYMENT_AUTHORIZED, StockState.COMMITTED, PaymentState.AUTHORIZED),
    (OrderStatus.PAYMENT_AUTHORIZED, StockState.COMMITTED, PaymentState.CAPTURED),
    (OrderStatus.CONFIRMED, StockState.COMMITTED, PaymentState.CAPTURED),
} | {
    (status, stock, payment)
    for status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED)
    for stock in StockState
    for payment in PaymentState
    if _legal_while_cancelling(status, stock, payment)
}

ACTIONS: dict[str, Callable[[Order], None]] = {
    "reserve_stock": Order.reserve_stock,
    "authorize_payment": lambda o: o.authorize_payment("auth-1"),
    "commit_stock": Order.commit_stock,
    "capture_payment": Order.capture_payment,
    "confirm": Order.confirm,
    "fail_out_of_stock": lambda o: o.fail(CancelReason.OUT_OF_STOCK),
    "fail_declined": lambda o: o.fail(CancelReason.PAYMENT_DECLINED),
    "cancel": Order.cancel,
    "release_stock": Order.release_stock,
    "void_payment": Order.void_payment,
    "refund_payment": Order.refund_payment,
    "complete_cancellation": Order.complete_cancellation,
}


class OrderMachine(RuleBasedStateMachine):
    """Fires any transition at any time; illegal ones must raise and change nothing."""

    def __init__(self) -> None:
        super().__init__()
        self.order = Order.place("o-1", "c-1", [OrderLine("A", 3, Money(333, "EUR"))])
        self.applied = 1  # OrderPlaced
        self.history: list[OrderStatus] = [self.order.status]

    def snapshot(self) -> tuple[object, ...]:
        o = self.order
        return (o.status, o.stock, o.payment, o.authorization_id, o.cancel_reason, len(o.events))

    @rule(action=st.sampled_from(sorted(ACTIONS)))
    def fire(self, action: str) -> None:
        before = self.snapshot()
        try:
            ACTIONS[action](self.order)
        except IllegalTransition:
            assert self.snapshot() == before, f"{action} raised but changed the order"
            return
        self.applied += 1
        self.history.append(self.order.status)

    @precondition(lambda self: self.order.status is OrderStatus.CANCELLING)
    @rule()
    def compensate_everything(self) -> None:
        o = self.order
        if o.payment is PaymentState.AUTHORIZED:
            o.void_payment()
            self.applied += 1
        if o.payment is PaymentState.CAPTURED:
            o.refund_payment()
            self.applied += 1
        if o.holds_stock:
            o.release_stock()
            self.applied += 1
        o.complete_cancellation()
        self.applied += 1
        self.history.append(o.status)

    @invariant()
    def state_is_legal(self) -> None:
        o = self.order
        assert (o.status, o.stock, o.payment) in LEGAL, repr(o)
        assert (o.cancel_reason is not None) == (o.status in (OrderStatus.CANCELLING, OrderStatus.CANCELLED))
        assert (o.authorization_id is not None) == (o.payment is not PaymentState.NONE)

    @invariant()
    def one_event_per_transition(self) -> None:
        assert len(self.order.events) == self.applied

    @invariant()
    def total_is_exact(self) -> None:
        assert self.order.total == Money(999, "EUR")

    @invariant()
    def terminal_states_are_final(self) -> None:
        if OrderStatus.CANCELLED in self.history:
            assert self.history[-1] is OrderStatus.CANCELLED


TestOrderMachine = OrderMachine.TestCase
TestOrderMachine.settings = settings(max_examples=300, stateful_step_count=30, deadline=None)
