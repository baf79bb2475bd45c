"""The Payment aggregate: authorise, capture (once, at most the authorised amount), void, refund
(never above what was captured). Every operation that moves money returns a balanced
:class:`~svc_c.domain.ledger.Movement`; one idempotency key moves money at most once per payment.

Statuses::

    authorized ──capture──▶ captured ──refund──▶ partially_refunded ──refund──▶ refunded
        │                       └──────────refund (all)──────────────────────────▲
        └──void──▶ voided
    declined (the processor said no: no money moved, nothing further is allowed)
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum

from caravan_commons.money import Money
from svc_c.domain.errors import (
    CaptureExceedsAuthorized,
    CurrencyMismatch,
    InvalidAmount,
    InvalidTransition,
    KeyReused,
    RefundExceedsCaptured,
)
from svc_c.domain.ledger import Account, Movement, MovementKind, transfer
from svc_c.domain.processor import Decision


class PaymentStatus(StrEnum):
    AUTHORIZED = "authorized"
    CAPTURED = "captured"
    PARTIALLY_REFUNDED = "partially_refunded"
    REFUNDED = "refunded"
    VOIDED = "voided"
    DECLINED = "declined"


#: Length limits of identifiers (the tables size their columns to them).
MAX_ORDER_ID = 100
MAX_KEY = 255


def new_id() -> str:
    return str(uuid.uuid4())


def _check_key(key: str) -> None:
    if not isinstance(key, str) or not 1 <= len(key) <= MAX_KEY:
        raise InvalidAmount(f"an idempotency key is 1 to {MAX_KEY} characters")


def _positive(amount: Money, currency: str, what: str) -> None:
    if not isinstance(amount, Money):
        raise InvalidAmount(f"the {what} amount must be Money, not {type(amount).__name__}")
    if amount.currency != currency:
        raise CurrencyMismatch(f"the {what} amount is in {amount.currency}; the payment is in {currency}")
    if not amount.is_positive:
        raise InvalidAmount(f"the {what} amount must be positive, got {amount}")


@dataclass(eq=False)
class Payment:
    id: str
    order_id: str
    amount: Money  # the amount asked for (authorised when approved)
    status: PaymentStatus
    captured: Money
    refunded: Money
    authorize_key: str
    processor_reference: str = ""
    decline_reason: str | None = None
    movements: list[Movement] = field(default_factory=list)
    version: int = 0  # bumped by the repository on every save (optimistic concurrency)
    #: a digest of the authorising request (its card included, which is not kept): the same key
    #: with another request is refused ("" for payments stored before it was kept)
    request_digest: str = ""

    # ------------------------------------------------------------------------- construction

    @classmethod
    def authorize(
        cls,
        *,
        order_id: str,
        amount: Money,
        decision: Decision,
        key: str,
        payment_id: str | None = None,
        make_id: Callable[[], str] = new_id,
        request_digest: str = "",
    ) -> Payment:
        """A payment from the processor's decision: authorised (a hold is booked) or declined."""
        if not isinstance(order_id, str) or not 1 <= len(order_id) <= MAX_ORDER_ID:
            raise InvalidAmount(f"a payment needs an order id of 1 to {MAX_ORDER_ID} characters")
        _check_key(key)
        _positive(amount, amount.currency if isinstance(amount, Money) else "", "authorisation")
        zero = Money.zero(amount.currency)
        payment = cls(
            id=payment_id or make_id(),
            order_id=order_id,
            amount=amount,
            status=PaymentStatus.AUTHORIZED if decision.approved else PaymentStatus.DECLINED,
            captured=zero,
            refunded=zero,
            authorize_key=key,
            processor_reference=decision.reference,
            decline_reason=None if decision.approved else decision.outcome.value,
            request_digest=request_digest,
        )
        if decision.approved:
            payment._move(
                MovementKind.AUTHORIZE,
                amount,
                key,
                transfer(Account.CARD_HOLDS, Account.AUTHORIZATIONS, amount),
                make_id,
            )
        return payment

    # ------------------------------------------------------------------------- queries

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def refundable(self) -> Money:
        return self.captured - self.refunded

    @property
    def held(self) -> Money:
        """What the authorisation still holds on the card (released by capture or void)."""
        return self.amount if self.status is PaymentStatus.AUTHORIZED else Money.zero(self.currency)

    def replayed(self, key: str, kind: MovementKind, amount: Money) -> Movement | None:
        """The movement this key already made, if the request is the same; KeyReused if not."""
        for movement in self.movements:
            if movement.key == key:
                if movement.same_request(kind, amount):
                    return movement
                raise KeyReused(
                    f"key {key!r} was used for {movement.kind} {movement.amount} on payment {self.id}, "
                    f"not {kind} {amount}"
                )
        return None

    # ------------------------------------------------------------------------- commands

    def capture(self, amount: Money, key: str, make_id: Callable[[], str] = new_id) -> Movement:
        """Capture ``amount`` (≤ authorised) once; the rest of the hold is released."""
        _positive(amount, self.currency, "capture")
        if (seen := self.replayed(key, MovementKind.CAPTURE, amount)) is not None:
            return seen
        if self.status is not PaymentStatus.AUTHORIZED:
            raise InvalidTransition(
                f"payment {self.id} is {self.status}; only an authorized payment is captured"
            )
        if amount > self.amount:
            raise CaptureExceedsAuthorized(f"capture of {amount} exceeds the authorised {self.amount}")
        entries = (
            *transfer(Account.AUTHORIZATIONS, Account.CARD_HOLDS, self.amount),
            *transfer(Account.PROCESSOR_RECEIVABLE, Account.MERCHANT_REVENUE, amount),
        )
        movement = self._move(MovementKind.CAPTURE, amount, key, entries, make_id)
        self.captured = amount
        self.status = PaymentStatus.CAPTURED
        return movement

    def void(self, key: str, make_id: Callable[[], str] = new_id) -> Movement:
        """Release the whole hold of an authorised, not yet captured payment."""
        if (seen := self.replayed(key, MovementKind.VOID, self.amount)) is not None:
            return seen
        if self.status is not PaymentStatus.AUTHORIZED:
            raise InvalidTransition(
                f"payment {self.id} is {self.status}; only an authorized payment is voided"
            )
        entries = transfer(Account.AUTHORIZATIONS, Account.CARD_HOLDS, self.amount)
        movement = self._move(MovementKind.VOID, self.amount, key, entries, make_id)
        self.status = PaymentStatus.VOIDED
        return movement

    def refund(self, amount: Money, key: str, make_id: Callable[[], str] = new_id) -> Movement:
        """Refund ``amount``; the refunds of a payment never exceed what was captured."""
        _positive(amount, self.currency, "refund")
        if (seen := self.replayed(key, MovementKind.REFUND, amount)) is not None:
            return seen
        if self.status not in (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED):
            raise InvalidTransition(
                f"payment {self.id} is {self.status}; only a captured payment is refunded"
            )
        if amount > self.refundable:
            raise RefundExceedsCaptured(
                f"refund of {amount} exceeds what is left to refund "
                f"({self.refundable} of {self.captured} captured)"
            )
        entries = transfer(Account.MERCHANT_REVENUE, Account.PROCESSOR_RECEIVABLE, amount)
        movement = self._move(MovementKind.REFUND, amount, key, entries, make_id)
        self.refunded = self.refunded + amount
        self.status = (
            PaymentStatus.REFUNDED if self.refunded == self.captured else PaymentStatus.PARTIALLY_REFUNDED
        )
        return movement

    def _move(
        self, kind: MovementKind, amount: Money, key: str, entries: tuple, make_id: Callable[[], str]
    ) -> Movement:
        _check_key(key)
        movement = Movement(
            id=make_id(), payment_id=self.id, kind=kind, amount=amount, key=key, entries=entries
        )
        self.movements.append(movement)
        return movement
