"""Piccolo repositories of svc-c: rows in, domain objects out (never rows).

They run inside the unit of work's transaction (piccolo picks it up from the engine's current
transaction), so a payment's new state, its movements and their entries commit together.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain.errors import PaymentNotFound
from svc_c.domain.ledger import Account, Entry, Movement, MovementKind, balances
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.infrastructure.db.tables import LedgerEntryRow, LedgerMovementRow, PaymentRow
from svc_c.service_layer.ports import AbstractLedgerRepository, AbstractPaymentRepository


def is_unique_violation(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc}".lower()
    return "unique" in text or "duplicate" in text


def movement_key(payment_id: str, key: str) -> str:
    return f"{payment_id}\x1f{key}"


class PiccoloPaymentRepository(AbstractPaymentRepository):
    def __init__(self) -> None:
        self._persisted: dict[str, set[str]] = {}  # payment id -> ids of its stored movements

    async def add(self, payment: Payment) -> None:
        try:
            await PaymentRow.insert(
                PaymentRow(
                    id=payment.id,
                    order_id=payment.order_id,
                    currency=payment.currency,
                    amount=payment.amount.amount,
                    captured=payment.captured.amount,
                    refunded=payment.refunded.amount,
                    status=payment.status.value,
                    authorize_key=payment.authorize_key,
                    processor_reference=payment.processor_reference,
                    decline_reason=payment.decline_reason,
                    version=payment.version,
                )
            )
        except Exception as exc:
            if is_unique_violation(exc):
                raise ConflictError(
                    f"a payment with id {payment.id} or authorisation key {payment.authorize_key!r} exists"
                ) from exc
            raise
        self._persisted[payment.id] = set()
        await self._write_new_movements(payment)

    async def get(self, payment_id: str) -> Payment:
        rows = await PaymentRow.select().where(PaymentRow.id == payment_id)
        if not rows:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return await self._load(rows[0])

    async def get_by_authorize_key(self, key: str) -> Payment | None:
        rows = await PaymentRow.select().where(PaymentRow.authorize_key == key)
        return await self._load(rows[0]) if rows else None

    async def save(self, payment: Payment) -> None:
        updated = (
            await PaymentRow.update(
                {
                    PaymentRow.status: payment.status.value,
                    PaymentRow.captured: payment.captured.amount,
                    PaymentRow.refunded: payment.refunded.amount,
                    PaymentRow.version: payment.version + 1,
                }
            )
            .where((PaymentRow.id == payment.id) & (PaymentRow.version == payment.version))
            .returning(PaymentRow.id)
        )
        if not updated:
            raise ConflictError(f"payment {payment.id} was changed concurrently; read it again and retry")
        payment.version += 1
        await self._write_new_movements(payment)

    # ----------------------------------------------------------------------------- internals

    async def _load(self, row: dict[str, Any]) -> Payment:
        currency = row["currency"]
        movement_rows = (
            await LedgerMovementRow.select()
            .where(LedgerMovementRow.payment_id == row["id"])
            .order_by(LedgerMovementRow.position)
        )
        entry_rows = (
            await LedgerEntryRow.select()
            .where(LedgerEntryRow.payment_id == row["id"])
            .order_by(LedgerEntryRow.movement_id, LedgerEntryRow.position)
        )
        entries: dict[str, list[Entry]] = defaultdict(list)
        for e in entry_rows:
            entries[e["movement_id"]].append(Entry(Account(e["account"]), Money(e["amount"], e["currency"])))
        movements = [
            Movement(
                id=m["id"],
                payment_id=m["payment_id"],
                kind=MovementKind(m["kind"]),
                amount=Money(m["amount"], m["currency"]),
                key=m["idempotency_key"],
                entries=tuple(entries[m["id"]]),
            )
            for m in movement_rows
        ]
        payment = Payment(
            id=row["id"],
            order_id=row["order_id"],
            amount=Money(row["amount"], currency),
            status=PaymentStatus(row["status"]),
            captured=Money(row["captured"], currency),
            refunded=Money(row["refunded"], currency),
            authorize_key=row["authorize_key"],
            processor_reference=row["processor_reference"],
            decline_reason=row["decline_reason"],
            movements=movements,
            version=row["version"],
        )
        self._persisted[payment.id] = {m.id for m in movements}
        return payment

    async def _write_new_movements(self, payment: Payment) -> None:
        stored = self._persisted.setdefault(payment.id, set())
        for position, movement in enumerate(payment.movements):
            if movement.id in stored:
                continue
            try:
                await LedgerMovementRow.insert(
                    LedgerMovementRow(
                        id=movement.id,
                        payment_id=payment.id,
                        position=position,
                        kind=movement.kind.value,
                        amount=movement.amount.amount,
                        currency=movement.amount.currency,
                        idempotency_key=movement.key,
                        movement_key=movement_key(payment.id, movement.key),
                    )
                )
            except Exception as exc:
                if is_unique_violation(exc):
                    raise ConflictError(
                        f"key {movement.key!r} already moved money on payment {payment.id}"
                    ) from exc
                raise
            await self._write_entries(payment.id, movement)
            stored.add(movement.id)

    async def _write_entries(self, payment_id: str, movement: Movement) -> None:
        await LedgerEntryRow.insert(
            *(
                LedgerEntryRow(
                    movement_id=movement.id,
                    payment_id=payment_id,
                    position=position,
                    account=entry.account.value,
                    currency=entry.amount.currency,
                    amount=entry.amount.amount,
                )
                for position, entry in enumerate(movement.entries)
            )
        )


class PiccoloLedgerRepository(AbstractLedgerRepository):
    async def _entries(self, *where: Any) -> list[Entry]:
        query = LedgerEntryRow.select(LedgerEntryRow.account, LedgerEntryRow.currency, LedgerEntryRow.amount)
        for clause in where:
            query = query.where(clause)
        rows = await query.order_by(LedgerEntryRow.id)
        return [Entry(Account(r["account"]), Money(r["amount"], r["currency"])) for r in rows]

    async def balances(self) -> dict[tuple[Account, str], Money]:
        return balances(await self._entries())

    async def entries_for(self, payment_id: str) -> list[Entry]:
        return await self._entries(LedgerEntryRow.payment_id == payment_id)

    async def totals_by_currency(self) -> dict[str, int]:
        rows = await LedgerEntryRow.raw(
            "SELECT currency, SUM(amount) AS total FROM ledger_entries GROUP BY currency"
        )
        return {r["currency"]: int(r["total"]) for r in rows}
