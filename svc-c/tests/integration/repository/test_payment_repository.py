"""Repositories and the unit of work on real databases: domain objects in and out, money movement
and ledger entries committed together or not at all, concurrent operations settled."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain.errors import PaymentNotFound
from svc_c.domain.ledger import Account, Ledger, Movement, MovementKind
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.domain.processor import Decision, Outcome
from svc_c.infrastructure.db.tables import LedgerEntryRow, LedgerMovementRow, PaymentRow
from svc_c.infrastructure.repository import PiccoloPaymentRepository
from svc_c.infrastructure.unit_of_work import PiccoloUnitOfWork


def eur(cents: int) -> Money:
    return Money(cents, "EUR")


def new_payment(cents: int = 1000, outcome: Outcome = Outcome.APPROVED, currency: str = "EUR") -> Payment:
    return Payment.authorize(
        order_id=f"order-{uuid.uuid4()}",
        amount=Money(cents, currency),
        decision=Decision(outcome, "sim_ref"),
        key=f"auth-{uuid.uuid4()}",
    )


async def stored(db: Database, payment: Payment) -> Payment:
    async with PiccoloUnitOfWork(db) as uow:
        await uow.payments.add(payment)
        await uow.commit()
    return payment


async def test_a_payment_round_trips_as_a_domain_object(db: Database) -> None:
    payment = await stored(db, new_payment(1234))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        by_key = await uow.payments.get_by_authorize_key(payment.authorize_key)
    assert isinstance(loaded, Payment)
    assert (loaded.id, loaded.order_id, loaded.amount, loaded.status) == (
        payment.id,
        payment.order_id,
        eur(1234),
        PaymentStatus.AUTHORIZED,
    )
    assert loaded.movements == payment.movements  # the hold, with its balanced entries
    assert all(isinstance(m, Movement) for m in loaded.movements)
    assert by_key is not None and by_key.id == payment.id


async def test_a_declined_payment_is_stored_without_ledger_entries(db: Database) -> None:
    payment = await stored(db, new_payment(500, Outcome.INSUFFICIENT_FUNDS))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        entries = await uow.ledger.entries_for(payment.id)
    assert loaded.status is PaymentStatus.DECLINED
    assert loaded.decline_reason == "insufficient_funds"
    assert loaded.movements == [] and entries == []


async def test_unknown_payments_are_not_found(db: Database) -> None:
    async with PiccoloUnitOfWork(db) as uow:
        with pytest.raises(PaymentNotFound):
            await uow.payments.get(str(uuid.uuid4()))
        assert await uow.payments.get_by_authorize_key("no-such-key") is None


async def test_capture_and_refunds_keep_the_stored_ledger_balanced(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        loaded.capture(eur(800), "cap")
        await uow.payments.save(loaded)
        await uow.commit()
    for key, cents in (("r1", 300), ("r2", 500)):
        async with PiccoloUnitOfWork(db) as uow:
            loaded = await uow.payments.get(payment.id)
            loaded.refund(eur(cents), key)
            await uow.payments.save(loaded)
            await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        final = await uow.payments.get(payment.id)
        entries = await uow.ledger.entries_for(payment.id)
        totals = await uow.ledger.totals_by_currency()
        balances = await uow.ledger.balances()
    assert final.status is PaymentStatus.REFUNDED
    assert (final.captured, final.refunded, final.version) == (eur(800), eur(800), 3)
    assert [m.kind for m in final.movements] == [
        MovementKind.AUTHORIZE,
        MovementKind.CAPTURE,
        MovementKind.REFUND,
        MovementKind.REFUND,
    ]
    mine = Ledger(final.movements)
    assert entries == mine.entries()
    assert mine.balance(Account.PROCESSOR_RECEIVABLE, "EUR") == eur(0)
    assert all(total == 0 for total in totals.values())  # the whole stored ledger balances
    assert sum(m.amount for (_, currency), m in balances.items() if currency == "EUR") == 0


async def test_the_unit_of_work_rolls_back_unless_committed(db: Database) -> None:
    payment = new_payment()
    async with PiccoloUnitOfWork(db) as uow:
        await uow.payments.add(payment)
    async with PiccoloUnitOfWork(db) as uow:
        assert await uow.payments.get_by_authorize_key(payment.authorize_key) is None
        assert await uow.ledger.entries_for(payment.id) == []


async def test_an_error_inside_the_unit_of_work_rolls_back(db: Database) -> None:
    payment = new_payment()
    with pytest.raises(RuntimeError, match="boom"):
        async with PiccoloUnitOfWork(db) as uow:
            await uow.payments.add(payment)
            raise RuntimeError("boom")
    assert await PaymentRow.count().where(PaymentRow.id == payment.id) == 0


class FailingHalfway(PiccoloPaymentRepository):
    """Writes the first entry of a movement, then fails — a crash in the middle of the movement."""

    async def _write_entries(self, payment_id: str, movement: Movement) -> None:
        first = movement.entries[0]
        await LedgerEntryRow.insert(
            LedgerEntryRow(
                movement_id=movement.id,
                payment_id=payment_id,
                position=0,
                account=first.account.value,
                currency=first.amount.currency,
                amount=first.amount.amount,
            )
        )
        raise OSError("disk full (simulated) after the first entry")


async def test_a_failure_mid_movement_leaves_neither_the_movement_nor_its_entries(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    with pytest.raises(OSError, match="simulated"):
        async with PiccoloUnitOfWork(db) as uow:
            uow.payments = FailingHalfway()
            loaded = await uow.payments.get(payment.id)
            loaded.capture(eur(1000), "cap")
            await uow.payments.save(loaded)  # payment row updated, movement row written, then the crash
            await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        after = await uow.payments.get(payment.id)
        entries = await uow.ledger.entries_for(payment.id)
    assert (after.status, after.captured, after.version) == (PaymentStatus.AUTHORIZED, eur(0), 0)
    assert [m.kind for m in after.movements] == [MovementKind.AUTHORIZE]
    assert len(entries) == 2  # the authorisation's pair only
    assert await LedgerMovementRow.count().where(LedgerMovementRow.payment_id == payment.id) == 1


async def test_a_second_authorisation_with_the_same_key_is_a_conflict(db: Database) -> None:
    first = await stored(db, new_payment())
    twin = new_payment()
    twin.authorize_key = first.authorize_key
    with pytest.raises(ConflictError):
        async with PiccoloUnitOfWork(db) as uow:
            await uow.payments.add(twin)
            await uow.commit()
    assert await PaymentRow.count().where(PaymentRow.id == twin.id) == 0


async def test_a_stale_copy_cannot_overwrite_a_newer_state(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    async with PiccoloUnitOfWork(db) as uow:
        stale = await uow.payments.get(payment.id)
    async with PiccoloUnitOfWork(db) as uow:
        fresh = await uow.payments.get(payment.id)
        fresh.void("void")
        await uow.payments.save(fresh)
        await uow.commit()
    stale.capture(eur(1000), "cap")
    with pytest.raises(ConflictError, match="concurrently"):
        async with PiccoloUnitOfWork(db) as uow:
            await uow.payments.save(stale)
            await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        after = await uow.payments.get(payment.id)
    assert after.status is PaymentStatus.VOIDED
    assert [m.kind for m in after.movements] == [MovementKind.AUTHORIZE, MovementKind.VOID]


async def _capture(db: Database, payment_id: str, key: str, start: asyncio.Event) -> str:
    await start.wait()
    try:
        async with PiccoloUnitOfWork(db) as uow:
            payment = await uow.payments.get(payment_id)
            await asyncio.sleep(0.01)  # let the other capture read the same state
            payment.capture(eur(1000), key)
            await uow.payments.save(payment)
            await uow.commit()
    except ConflictError as exc:  # InvalidTransition is a ConflictError too
        return f"refused: {type(exc).__name__}"
    return "captured"


async def test_two_concurrent_captures_exactly_one_moves_money(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    start = asyncio.Event()
    tasks = [asyncio.create_task(_capture(db, payment.id, key, start)) for key in ("cap-a", "cap-b")]
    start.set()
    results = await asyncio.gather(*tasks)
    assert sorted(results)[0] == "captured" and results.count("captured") == 1, results
    async with PiccoloUnitOfWork(db) as uow:
        after = await uow.payments.get(payment.id)
        totals = await uow.ledger.totals_by_currency()
    assert after.status is PaymentStatus.CAPTURED and after.captured == eur(1000)
    assert [m.kind for m in after.movements] == [MovementKind.AUTHORIZE, MovementKind.CAPTURE]
    assert all(total == 0 for total in totals.values())


async def _refund(db: Database, payment_id: str, key: str, cents: int, start: asyncio.Event) -> str:
    await start.wait()
    try:
        async with PiccoloUnitOfWork(db) as uow:
            payment = await uow.payments.get(payment_id)
            await asyncio.sleep(0.01)
            payment.refund(eur(cents), key)
            await uow.payments.save(payment)
            await uow.commit()
    except ConflictError:
        return "refused"
    return "refunded"


async def test_concurrent_refunds_never_exceed_the_captured_amount(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        loaded.capture(eur(1000), "cap")
        await uow.payments.save(loaded)
        await uow.commit()
    start = asyncio.Event()
    # 3 × 400 > 1000: at most two can succeed, whatever the interleaving
    tasks = [asyncio.create_task(_refund(db, payment.id, f"r{n}", 400, start)) for n in range(3)]
    start.set()
    results = await asyncio.gather(*tasks)
    async with PiccoloUnitOfWork(db) as uow:
        after = await uow.payments.get(payment.id)
    refunds = [m for m in after.movements if m.kind is MovementKind.REFUND]
    assert 1 <= results.count("refunded") <= 2, results
    assert len(refunds) == results.count("refunded")
    assert after.refunded == eur(400 * len(refunds)) <= after.captured
    assert (
        Ledger(after.movements).balance(Account.PROCESSOR_RECEIVABLE, "EUR")
        == after.captured - after.refunded
    )


async def test_replaying_a_key_against_the_database_moves_no_money(db: Database) -> None:
    payment = await stored(db, new_payment(1000))
    for _ in range(2):
        async with PiccoloUnitOfWork(db) as uow:
            loaded = await uow.payments.get(payment.id)
            loaded.capture(eur(600), "cap-once")
            await uow.payments.save(loaded)
            await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        after = await uow.payments.get(payment.id)
        entries = await uow.ledger.entries_for(payment.id)
    assert [m.kind for m in after.movements] == [MovementKind.AUTHORIZE, MovementKind.CAPTURE]
    assert len(entries) == 2 + 4


async def test_the_database_refuses_a_second_movement_with_the_same_key(db: Database) -> None:
    """Even a buggy caller that bypasses the aggregate cannot move money twice with one key."""
    payment = await stored(db, new_payment(1000))
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        loaded.capture(eur(600), "k")
        await uow.payments.save(loaded)
        await uow.commit()
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
        forged = Movement(
            id=str(uuid.uuid4()),
            payment_id=payment.id,
            kind=MovementKind.REFUND,
            amount=eur(100),
            key="k",
            entries=loaded.movements[1].entries[2:],
        )
        loaded.movements.append(forged)
        with pytest.raises(ConflictError, match="already moved money"):
            await uow.payments.save(loaded)


async def test_identifiers_at_their_limits_fit_the_columns(db: Database) -> None:
    payment = Payment.authorize(
        order_id="o" * 100,
        amount=eur(100),
        decision=Decision(Outcome.APPROVED, "sim_ref"),
        key=f"{uuid.uuid4()}".ljust(255, "k"),
    )
    payment.capture(eur(100), "c" * 255)
    await stored(db, payment)
    async with PiccoloUnitOfWork(db) as uow:
        loaded = await uow.payments.get(payment.id)
    assert loaded.order_id == "o" * 100
    assert [m.key for m in loaded.movements] == [payment.authorize_key, "c" * 255]
