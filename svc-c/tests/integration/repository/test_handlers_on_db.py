"""The use cases on a real database: a round trip balances the stored ledger; racing requests with
one idempotency key store one payment and move its money once."""

from __future__ import annotations

import asyncio
import uuid

from caravan_commons.db import Database
from caravan_commons.money import Money
from svc_c.domain import processor as proc
from svc_c.domain.ledger import MovementKind
from svc_c.domain.model import PaymentStatus
from svc_c.domain.processor import SimulatedProcessor
from svc_c.infrastructure.db.tables import PaymentRow
from svc_c.infrastructure.unit_of_work import PiccoloUnitOfWork
from svc_c.service_layer import handlers
from svc_c.service_layer.commands import Authorize, Capture, Refund


def usd(cents: int) -> Money:
    return Money(cents, "USD")


async def test_authorise_capture_refund_round_trip(db: Database) -> None:
    key = f"auth-{uuid.uuid4()}"
    payment = await handlers.authorize(
        Authorize("order-rt", usd(2500), proc.APPROVE, key), PiccoloUnitOfWork(db), SimulatedProcessor()
    )
    await handlers.capture(Capture(payment.id, usd(2500), "cap"), PiccoloUnitOfWork(db))
    await handlers.refund(Refund(payment.id, usd(1000), "ref"), PiccoloUnitOfWork(db))
    again = await handlers.refund(Refund(payment.id, usd(1000), "ref"), PiccoloUnitOfWork(db))  # a replay
    assert again.status is PaymentStatus.PARTIALLY_REFUNDED and again.refunded == usd(1000)
    async with PiccoloUnitOfWork(db) as uow:
        totals = await uow.ledger.totals_by_currency()
        stored = await uow.payments.get(payment.id)
    assert all(total == 0 for total in totals.values())
    assert [m.kind for m in stored.movements].count(MovementKind.REFUND) == 1


async def test_racing_authorisations_with_one_key_store_one_payment(db: Database) -> None:
    key = f"auth-{uuid.uuid4()}"
    cmd = Authorize("order-race", usd(700), proc.SLOW, key)
    slow = SimulatedProcessor(slow_delay=0.05)  # both requests wait on the processor together
    results = await asyncio.gather(*(handlers.authorize(cmd, PiccoloUnitOfWork(db), slow) for _ in range(3)))
    assert len({p.id for p in results}) == 1
    assert await PaymentRow.count().where(PaymentRow.authorize_key == key) == 1
    async with PiccoloUnitOfWork(db) as uow:
        entries = await uow.ledger.entries_for(results[0].id)
    assert len(entries) == 2  # one hold
