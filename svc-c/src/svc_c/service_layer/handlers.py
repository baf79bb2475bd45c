"""Use cases of svc-c: plain functions ``(command, uow, ...)``. Each money movement and its ledger
entries commit in one unit of work; an idempotency key replays instead of moving money again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol

from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain.errors import KeyReused
from svc_c.domain.ledger import Account
from svc_c.domain.model import Payment, PaymentStatus, new_id
from svc_c.domain.processor import Decision
from svc_c.service_layer.commands import Authorize, Capture, Refund, Void
from svc_c.service_layer.ports import AbstractUnitOfWork


class CardProcessor(Protocol):
    def authorize(
        self, token: str, amount: Money, *, payment_id: str, timeout: float | None = None
    ) -> Awaitable[Decision]: ...


def _same_authorization(payment: Payment, cmd: Authorize) -> Payment:
    if payment.order_id != cmd.order_id or payment.amount != cmd.amount:
        raise KeyReused(f"key {cmd.key!r} already authorised {payment.amount} for order {payment.order_id}")
    if payment.request_digest and cmd.request_digest and payment.request_digest != cmd.request_digest:
        raise KeyReused(f"key {cmd.key!r} was already used with a different request; use a new key")
    return payment


@dataclass(frozen=True, slots=True)
class Outcome:
    """A use case's answer: the payment, and whether it replays what an earlier request with the
    same idempotency key did (nothing moved this time)."""

    payment: Payment
    replayed: bool = False


async def decide_authorization(
    cmd: Authorize,
    uow: AbstractUnitOfWork,
    processor: CardProcessor,
    *,
    timeout: float | None = None,
    make_id: Callable[[], str] = new_id,
) -> Outcome:
    """The payment this key already created (checked against ``cmd``: a replay), or a new one
    built from the processor's decision and not stored yet. No transaction is held while the
    processor answers."""
    async with uow:
        existing = await uow.payments.get_by_authorize_key(cmd.key)
    if existing is not None:
        return Outcome(_same_authorization(existing, cmd), replayed=True)
    payment_id = make_id()
    decision = await processor.authorize(cmd.card_token, cmd.amount, payment_id=payment_id, timeout=timeout)
    payment = Payment.authorize(
        order_id=cmd.order_id,
        amount=cmd.amount,
        decision=decision,
        key=cmd.key,
        payment_id=payment_id,
        make_id=make_id,
        request_digest=cmd.request_digest,
    )
    return Outcome(payment)


async def authorize_keyed(
    cmd: Authorize,
    uow: AbstractUnitOfWork,
    processor: CardProcessor,
    *,
    timeout: float | None = None,
    make_id: Callable[[], str] = new_id,
) -> Outcome:
    """Ask the processor, then store the payment (approved: with its hold; declined: without).

    The payment's row is its key's record (the unique authorisation key): one look-up of the key,
    the processor asked outside any transaction, then the payment, its movement and entries
    inserted in one transaction. A replay with the same key returns the stored payment and asks
    nobody; two racing first requests with one key store one payment, and the loser returns the
    winner's."""
    decided = await decide_authorization(cmd, uow, processor, timeout=timeout, make_id=make_id)
    if decided.replayed:
        return decided
    try:
        async with uow:
            await uow.payments.add(decided.payment)
            await uow.commit()
    except ConflictError:
        async with uow:
            winner = await uow.payments.get_by_authorize_key(cmd.key)
        if winner is None:
            raise
        return Outcome(_same_authorization(winner, cmd), replayed=True)
    return decided


async def authorize(
    cmd: Authorize, uow: AbstractUnitOfWork, processor: CardProcessor, **options: Any
) -> Payment:
    """:func:`authorize_keyed`'s payment (``options``: its ``timeout`` and ``make_id``)."""
    return (await authorize_keyed(cmd, uow, processor, **options)).payment


Act = Callable[[Payment], object]

_CAPTURED = (PaymentStatus.CAPTURED, PaymentStatus.PARTIALLY_REFUNDED, PaymentStatus.REFUNDED)


def _capture_act(cmd: Capture) -> Act:
    def act(payment: Payment) -> object:
        if cmd.key is not None:
            return payment.capture(cmd.amount, cmd.key)
        if payment.status in _CAPTURED and payment.captured == cmd.amount:
            return None  # already captured for this amount: answered as it is
        return payment.capture(cmd.amount, new_id())

    return act


def _void_act(cmd: Void) -> Act:
    def act(payment: Payment) -> object:
        if cmd.key is not None:
            return payment.void(cmd.key)
        if payment.status is PaymentStatus.VOIDED:
            return None  # already voided: answered as it is
        return payment.void(new_id())

    return act


def _refund_act(cmd: Refund) -> Act:
    return lambda payment: payment.refund(cmd.amount, cmd.key if cmd.key is not None else new_id())


async def _act(uow: AbstractUnitOfWork, payment_id: str, act: Act) -> tuple[Payment, bool]:
    """Inside an open unit of work: load, act, save when money moved; (payment, whether it moved)."""
    payment = await uow.payments.get(payment_id)
    before = len(payment.movements)
    act(payment)
    moved = len(payment.movements) != before  # a replay changes nothing and writes nothing
    if moved:
        await uow.payments.save(payment)
    return payment, moved


async def _move(uow: AbstractUnitOfWork, payment_id: str, act: Act, *, keyed: bool) -> Outcome:
    """One transaction: the payment read (one statement), the domain's decision, and when money
    moves the payment's compare-and-set update, the movement and its entries. With a key, a
    request that moves nothing replays what the key did (the movement row is the key's record:
    unique per payment and key)."""
    async with uow:
        payment, moved = await _act(uow, payment_id, act)
        if moved:
            await uow.commit()
    return Outcome(payment, replayed=keyed and not moved)


async def capture_keyed(cmd: Capture, uow: AbstractUnitOfWork) -> Outcome:
    return await _move(uow, cmd.payment_id, _capture_act(cmd), keyed=cmd.key is not None)


async def void_keyed(cmd: Void, uow: AbstractUnitOfWork) -> Outcome:
    return await _move(uow, cmd.payment_id, _void_act(cmd), keyed=cmd.key is not None)


async def refund_keyed(cmd: Refund, uow: AbstractUnitOfWork) -> Outcome:
    return await _move(uow, cmd.payment_id, _refund_act(cmd), keyed=cmd.key is not None)


async def capture(cmd: Capture, uow: AbstractUnitOfWork) -> Payment:
    return (await capture_keyed(cmd, uow)).payment


async def void(cmd: Void, uow: AbstractUnitOfWork) -> Payment:
    return (await void_keyed(cmd, uow)).payment


async def refund(cmd: Refund, uow: AbstractUnitOfWork) -> Payment:
    return (await refund_keyed(cmd, uow)).payment


async def get_payment(payment_id: str, uow: AbstractUnitOfWork) -> Payment:
    async with uow:
        return await uow.payments.get(payment_id)


async def ledger_balances(uow: AbstractUnitOfWork) -> dict[tuple[Account, str], Money]:
    async with uow:
        return await uow.ledger.balances()
