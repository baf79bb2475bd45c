"""Use cases of svc-c: plain functions ``(command, uow, ...)``. Each money movement and its ledger
entries commit in one unit of work; an idempotency key replays instead of moving money again."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Protocol

from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain.errors import KeyReused
from svc_c.domain.ledger import Account
from svc_c.domain.model import Payment, new_id
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
    return payment


async def authorize(
    cmd: Authorize,
    uow: AbstractUnitOfWork,
    processor: CardProcessor,
    *,
    timeout: float | None = None,
    make_id: Callable[[], str] = new_id,
) -> Payment:
    """Ask the processor, then store the payment (approved: with its hold; declined: without).

    The processor is asked outside the transaction, so no database lock waits on it. A replay with
    the same key returns the stored payment and asks nobody; two racing first requests with one
    key store one payment (the unique key), and the loser returns the winner's.
    """
    async with uow:
        existing = await uow.payments.get_by_authorize_key(cmd.key)
    if existing is not None:
        return _same_authorization(existing, cmd)
    payment_id = make_id()
    decision = await processor.authorize(cmd.card_token, cmd.amount, payment_id=payment_id, timeout=timeout)
    payment = Payment.authorize(
        order_id=cmd.order_id,
        amount=cmd.amount,
        decision=decision,
        key=cmd.key,
        payment_id=payment_id,
        make_id=make_id,
    )
    try:
        async with uow:
            await uow.payments.add(payment)
            await uow.commit()
    except ConflictError:
        async with uow:
            winner = await uow.payments.get_by_authorize_key(cmd.key)
        if winner is None:
            raise
        return _same_authorization(winner, cmd)
    return payment


async def _move(uow: AbstractUnitOfWork, payment_id: str, act: Callable[[Payment], object]) -> Payment:
    async with uow:
        payment = await uow.payments.get(payment_id)
        before = len(payment.movements)
        act(payment)
        if len(payment.movements) != before:  # a replay changes nothing and writes nothing
            await uow.payments.save(payment)
            await uow.commit()
    return payment


async def capture(cmd: Capture, uow: AbstractUnitOfWork) -> Payment:
    return await _move(uow, cmd.payment_id, lambda p: p.capture(cmd.amount, cmd.key))


async def void(cmd: Void, uow: AbstractUnitOfWork) -> Payment:
    return await _move(uow, cmd.payment_id, lambda p: p.void(cmd.key))


async def refund(cmd: Refund, uow: AbstractUnitOfWork) -> Payment:
    return await _move(uow, cmd.payment_id, lambda p: p.refund(cmd.amount, cmd.key))


async def ledger_balances(uow: AbstractUnitOfWork) -> dict[tuple[Account, str], Money]:
    async with uow:
        return await uow.ledger.balances()
