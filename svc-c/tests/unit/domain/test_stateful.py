"""Hypothesis stateful tests over any sequence of authorise / capture / void / refund / replay:

- the ledger always balances (per currency) and every payment's receivable equals captured − refunded;
- no sequence refunds more than was captured, or captures more than was authorised;
- replaying an operation with the same idempotency key never moves money twice.
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, consumes, invariant, multiple, rule

from caravan_commons.errors import ClientError
from caravan_commons.money import Money
from svc_c.domain.ledger import Account, Ledger, MovementKind, balances
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.domain.processor import Decision, Outcome

CURRENCIES = st.sampled_from(["EUR", "USD", "JPY"])
CENTS = st.integers(min_value=-5, max_value=3000)  # includes zero and negatives: refused, never applied
KEYS = st.sampled_from([f"key-{n}" for n in range(6)])  # a small pool, so keys collide and get reused


@dataclass(frozen=True)
class Done:
    payment: Payment
    kind: MovementKind
    amount: Money
    key: str


class PaymentsMachine(RuleBasedStateMachine):
    payments = Bundle("payments")
    done = Bundle("done")

    def __init__(self) -> None:
        super().__init__()
        self.ledger = Ledger()
        self.all: list[Payment] = []

    def _post(self, payment: Payment, before: int) -> None:
        new = payment.movements[before:]
        assert len(new) <= 1
        for movement in new:
            assert self.ledger.post(movement) is True

    @rule(
        target=payments,
        cents=st.integers(min_value=1, max_value=3000),
        currency=CURRENCIES,
        outcome=st.sampled_from(list(Outcome)),
        key=KEYS,
    )
    def authorize(self, cents: int, currency: str, outcome: Outcome, key: str) -> Payment:
        payment = Payment.authorize(
            order_id="order", amount=Money(cents, currency), decision=Decision(outcome, "ref"), key=key
        )
        self._post(payment, 0)
        self.all.append(payment)
        return payment

    def _attempt(self, payment: Payment, kind: MovementKind, cents: int, key: str) -> list[Done]:
        amount = Money(cents, payment.currency)
        before = len(payment.movements)
        snapshot = (payment.status, payment.captured, payment.refunded)
        ledger_size = len(self.ledger.movements)
        try:
            if kind is MovementKind.CAPTURE:
                movement = payment.capture(amount, key)
            elif kind is MovementKind.REFUND:
                movement = payment.refund(amount, key)
            else:
                movement = payment.void(key)
        except ClientError:
            # refused: nothing changed, nothing moved
            assert (payment.status, payment.captured, payment.refunded) == snapshot
            assert len(payment.movements) == before
            assert len(self.ledger.movements) == ledger_size
            return []
        self._post(payment, before)
        return [Done(payment, kind, movement.amount, key)]

    @rule(target=done, payment=payments, cents=CENTS, key=KEYS)
    def capture(self, payment: Payment, cents: int, key: str) -> object:
        return self._multiple(self._attempt(payment, MovementKind.CAPTURE, cents, key))

    @rule(target=done, payment=payments, cents=CENTS, key=KEYS)
    def refund(self, payment: Payment, cents: int, key: str) -> object:
        return self._multiple(self._attempt(payment, MovementKind.REFUND, cents, key))

    @rule(target=done, payment=payments, key=KEYS)
    def void(self, payment: Payment, key: str) -> object:
        return self._multiple(self._attempt(payment, MovementKind.VOID, 0, key))

    @staticmethod
    def _multiple(results: list[Done]) -> object:
        return multiple(*results)

    @rule(previous=done)
    def replay(self, previous: Done) -> None:
        payment = previous.payment
        state = (payment.status, payment.captured, payment.refunded, len(payment.movements))
        ledger_entries = len(self.ledger.entries())
        if previous.kind is MovementKind.CAPTURE:
            movement = payment.capture(previous.amount, previous.key)
        elif previous.kind is MovementKind.REFUND:
            movement = payment.refund(previous.amount, previous.key)
        else:
            movement = payment.void(previous.key)
        assert movement.key == previous.key and movement.amount == previous.amount
        assert self.ledger.post(movement) is False  # the ledger already holds it
        assert (payment.status, payment.captured, payment.refunded, len(payment.movements)) == state
        assert len(self.ledger.entries()) == ledger_entries

    @rule(previous=consumes(done), cents=st.integers(min_value=1, max_value=3000))
    def reuse_key_for_another_amount(self, previous: Done, cents: int) -> None:
        payment = previous.payment
        if previous.kind is MovementKind.VOID or cents == previous.amount.amount:
            return
        size = len(self.ledger.movements)
        try:
            payment.refund(Money(cents, payment.currency), previous.key)
        except ClientError:
            pass
        else:
            raise AssertionError("a key reused for a different amount moved money")
        assert len(self.ledger.movements) == size

    @invariant()
    def ledger_balances(self) -> None:
        assert self.ledger.is_balanced()

    @invariant()
    def limits_hold_for_every_payment(self) -> None:
        for payment in self.all:
            zero = Money.zero(payment.currency)
            assert zero <= payment.refunded <= payment.captured <= payment.amount
            mine = balances(e for m in self.ledger.movements if m.payment_id == payment.id for e in m.entries)
            receivable = mine.get((Account.PROCESSOR_RECEIVABLE, payment.currency), zero)
            holds = mine.get((Account.CARD_HOLDS, payment.currency), zero)
            assert receivable == payment.captured - payment.refunded
            assert holds == payment.held
            refunds = [m.amount for m in payment.movements if m.kind is MovementKind.REFUND]
            assert sum(r.amount for r in refunds) == payment.refunded.amount
            assert len({m.key for m in payment.movements}) == len(payment.movements)
            captures = [m for m in payment.movements if m.kind is MovementKind.CAPTURE]
            assert len(captures) <= 1
            if payment.status is PaymentStatus.DECLINED:
                assert payment.movements == []


TestPayments = PaymentsMachine.TestCase
TestPayments.settings = settings(
    max_examples=150, stateful_step_count=40, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)
