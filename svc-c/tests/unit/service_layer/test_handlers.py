"""Use cases against small in-memory fakes of the ports (no I/O)."""

from __future__ import annotations

import copy

import pytest

from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain import processor as proc
from svc_c.domain.errors import (
    InvalidTransition,
    KeyReused,
    PaymentNotFound,
    ProcessorError,
    RefundExceedsCaptured,
)
from svc_c.domain.ledger import Account, Entry, balances
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.domain.processor import SimulatedProcessor
from svc_c.service_layer import handlers
from svc_c.service_layer.commands import Authorize, Capture, Refund, Void
from svc_c.service_layer.ports import AbstractLedgerRepository, AbstractPaymentRepository, AbstractUnitOfWork


class FakePayments(AbstractPaymentRepository):
    def __init__(self, store: dict[str, Payment]) -> None:
        self.store = store

    async def add(self, payment: Payment) -> None:
        if any(p.authorize_key == payment.authorize_key for p in self.store.values()):
            raise ConflictError("duplicate authorisation key")
        self.store[payment.id] = copy.deepcopy(payment)

    async def get(self, payment_id: str) -> Payment:
        if payment_id not in self.store:
            raise PaymentNotFound(payment_id)
        return copy.deepcopy(self.store[payment_id])

    async def get_by_authorize_key(self, key: str) -> Payment | None:
        found = [p for p in self.store.values() if p.authorize_key == key]
        return copy.deepcopy(found[0]) if found else None

    async def save(self, payment: Payment) -> None:
        if self.store[payment.id].version != payment.version:
            raise ConflictError("stale")
        payment.version += 1
        self.store[payment.id] = copy.deepcopy(payment)


class FakeLedger(AbstractLedgerRepository):
    def __init__(self, store: dict[str, Payment]) -> None:
        self.store = store

    def _entries(self) -> list[Entry]:
        return [e for p in self.store.values() for m in p.movements for e in m.entries]

    async def balances(self) -> dict[tuple[Account, str], Money]:
        return balances(self._entries())

    async def entries_for(self, payment_id: str) -> list[Entry]:
        return [e for m in self.store[payment_id].movements for e in m.entries]

    async def totals_by_currency(self) -> dict[str, int]:
        totals: dict[str, int] = {}
        for e in self._entries():
            totals[e.amount.currency] = totals.get(e.amount.currency, 0) + e.amount.amount
        return totals


class FakeUnitOfWork(AbstractUnitOfWork):
    """Changes are staged on a copy and become visible only on commit."""

    def __init__(self) -> None:
        self.committed: dict[str, Payment] = {}
        self.commits = 0

    async def __aenter__(self) -> FakeUnitOfWork:
        self._staged = copy.deepcopy(self.committed)
        self.payments = FakePayments(self._staged)
        self.ledger = FakeLedger(self._staged)
        return self

    async def commit(self) -> None:
        self.committed = self._staged
        self.commits += 1

    async def rollback(self) -> None:
        self._staged = {}


class CountingProcessor(SimulatedProcessor):
    def __init__(self) -> None:
        super().__init__(slow_delay=0)
        self.calls = 0

    async def authorize(self, token: str, amount: Money, **kwargs: object) -> proc.Decision:  # type: ignore[override]
        self.calls += 1
        return await super().authorize(token, amount, **kwargs)  # type: ignore[arg-type]


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


async def test_authorise_capture_refund_round_trip_keeps_the_ledger_balanced() -> None:
    uow, processor = FakeUnitOfWork(), CountingProcessor()
    payment = await handlers.authorize(Authorize("o1", eur(1000), proc.APPROVE, "a1"), uow, processor)
    await handlers.capture(Capture(payment.id, eur(900), "c1"), uow)
    final = await handlers.refund(Refund(payment.id, eur(400), "r1"), uow)
    assert final.status is PaymentStatus.PARTIALLY_REFUNDED
    async with uow:
        assert all(total == 0 for total in (await uow.ledger.totals_by_currency()).values())
    assert (await handlers.ledger_balances(uow))[(Account.PROCESSOR_RECEIVABLE, "EUR")] == eur(500)


async def test_an_authorisation_replayed_with_its_key_asks_nobody_and_moves_nothing() -> None:
    uow, processor = FakeUnitOfWork(), CountingProcessor()
    cmd = Authorize("o1", eur(1000), proc.APPROVE, "same-key")
    first = await handlers.authorize(cmd, uow, processor)
    again = await handlers.authorize(cmd, uow, processor)
    assert again.id == first.id
    assert processor.calls == 1
    assert len(uow.committed) == 1
    with pytest.raises(KeyReused):
        await handlers.authorize(Authorize("o1", eur(999), proc.APPROVE, "same-key"), uow, processor)


async def test_replayed_captures_and_refunds_do_not_commit_again() -> None:
    uow = FakeUnitOfWork()
    payment = await handlers.authorize(Authorize("o", eur(1000), proc.APPROVE, "a"), uow, CountingProcessor())
    await handlers.capture(Capture(payment.id, eur(1000), "c"), uow)
    await handlers.refund(Refund(payment.id, eur(1000), "r"), uow)
    commits = uow.commits
    await handlers.capture(Capture(payment.id, eur(1000), "c"), uow)
    final = await handlers.refund(Refund(payment.id, eur(1000), "r"), uow)
    assert uow.commits == commits
    assert final.refunded == eur(1000)
    with pytest.raises(InvalidTransition):  # fully refunded: nothing is left to refund
        await handlers.refund(Refund(payment.id, eur(1), "r2"), uow)


async def test_a_refund_above_what_is_left_is_refused_and_stores_nothing() -> None:
    uow = FakeUnitOfWork()
    payment = await handlers.authorize(Authorize("o", eur(1000), proc.APPROVE, "a"), uow, CountingProcessor())
    await handlers.capture(Capture(payment.id, eur(800), "c"), uow)
    await handlers.refund(Refund(payment.id, eur(500), "r1"), uow)
    with pytest.raises(RefundExceedsCaptured):
        await handlers.refund(Refund(payment.id, eur(301), "r2"), uow)
    assert uow.committed[payment.id].refunded == eur(500)


async def test_declined_and_failed_authorisations() -> None:
    uow = FakeUnitOfWork()
    declined = await handlers.authorize(Authorize("o", eur(10), proc.DECLINE, "d"), uow, CountingProcessor())
    assert declined.status is PaymentStatus.DECLINED and declined.movements == []
    with pytest.raises(ProcessorError):
        await handlers.authorize(Authorize("o", eur(10), proc.ERROR, "e"), uow, CountingProcessor())
    assert [p.authorize_key for p in uow.committed.values()] == ["d"]  # the error stored nothing


async def test_void_and_unknown_payment() -> None:
    uow = FakeUnitOfWork()
    payment = await handlers.authorize(Authorize("o", eur(10), proc.APPROVE, "a"), uow, CountingProcessor())
    assert (await handlers.void(Void(payment.id, "v"), uow)).status is PaymentStatus.VOIDED
    with pytest.raises(PaymentNotFound):
        await handlers.capture(Capture("nope", eur(1), "c"), uow)


async def test_a_lost_race_on_the_authorisation_key_returns_the_winner() -> None:
    uow = FakeUnitOfWork()
    cmd = Authorize("o", eur(10), proc.APPROVE, "race")

    class Racing(CountingProcessor):
        async def authorize(self, token: str, amount: Money, **kwargs: object) -> proc.Decision:  # type: ignore[override]
            # a twin request with the same key commits while this one waits for the processor
            if self.calls == 0:
                self.calls += 1
                await handlers.authorize(cmd, uow, CountingProcessor())
            return await super().authorize(token, amount, **kwargs)

    result = await handlers.authorize(cmd, uow, Racing())
    assert len(uow.committed) == 1
    assert result.id == next(iter(uow.committed))
