"""Piccolo repositories of svc-c: rows in, domain objects out (never rows).

They run inside the unit of work's transaction (piccolo picks it up from the engine's current
transaction), so a payment's new state, its movements and their entries commit together.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, datetime
from typing import Any

from caravan_commons.errors import ConflictError
from caravan_commons.money import Money
from svc_c.domain.errors import PaymentNotFound
from svc_c.domain.ledger import Account, Entry, Movement, MovementKind, balances
from svc_c.domain.model import Payment, PaymentStatus
from svc_c.infrastructure.db.tables import LedgerEntryRow, LedgerMovementRow, PaymentRow
from svc_c.service_layer.ports import AbstractLedgerRepository, AbstractPaymentRepository

#: A payment, its movements and their entries in one statement (``{condition}`` on ``p``).
_LOAD = (
    "SELECT p.id, p.order_id, p.currency, p.amount, p.captured, p.refunded, p.status, p.authorize_key, "
    "p.processor_reference, p.decline_reason, p.version, p.request_digest, "
    "m.id AS m_id, m.position AS m_position, m.kind AS m_kind, m.amount AS m_amount, "
    "m.currency AS m_currency, m.idempotency_key AS m_key, "
    "e.position AS e_position, e.account AS e_account, e.currency AS e_currency, e.amount AS e_amount "
    "FROM payments p LEFT JOIN ledger_movements m ON m.payment_id = p.id "
    "LEFT JOIN ledger_entries e ON e.movement_id = m.id WHERE {condition}"
)


def movement_key(payment_id: str, key: str) -> str:
    return f"{payment_id}\x1f{key}"


class PiccoloPaymentRepository(AbstractPaymentRepository):
    def __init__(self) -> None:
        self._persisted: dict[str, set[str]] = {}  # payment id -> ids of its stored movements

    async def add(self, payment: Payment) -> None:
        """``INSERT … ON CONFLICT DO NOTHING``: a payment whose id or key exists is a
        :class:`ConflictError` without aborting the transaction (Postgres)."""
        inserted = await PaymentRow.raw(
            "INSERT INTO payments (id, order_id, currency, amount, captured, refunded, status, "
            "authorize_key, processor_reference, decline_reason, version, request_digest, created_at) "
            "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}, {}) "
            "ON CONFLICT DO NOTHING RETURNING id",
            payment.id,
            payment.order_id,
            payment.currency,
            payment.amount.amount,
            payment.captured.amount,
            payment.refunded.amount,
            payment.status.value,
            payment.authorize_key,
            payment.processor_reference,
            payment.decline_reason,
            payment.version,
            payment.request_digest or None,
            datetime.now(UTC),
        )
        if not inserted:
            raise ConflictError(
                f"a payment with id {payment.id} or authorisation key {payment.authorize_key!r} exists"
            )
        self._persisted[payment.id] = set()
        await self._write_new_movements(payment)

    async def get(self, payment_id: str) -> Payment:
        payment = await self._load_where("p.id = {}", payment_id)
        if payment is None:
            raise PaymentNotFound(f"no payment {payment_id!r}")
        return payment

    async def get_by_authorize_key(self, key: str) -> Payment | None:
        return await self._load_where("p.authorize_key = {}", key)

    async def save(self, payment: Payment) -> None:
        updated = await PaymentRow.raw(
            "UPDATE payments SET status = {}, captured = {}, refunded = {}, version = {} "
            "WHERE id = {} AND version = {} RETURNING id",
            payment.status.value,
            payment.captured.amount,
            payment.refunded.amount,
            payment.version + 1,
            payment.id,
            payment.version,
        )
        if not updated:
            raise ConflictError(f"payment {payment.id} was changed concurrently; read it again and retry")
        payment.version += 1
        await self._write_new_movements(payment)

    # ----------------------------------------------------------------------------- internals

    async def _load_where(self, condition: str, value: str) -> Payment | None:
        """The payment with its movements and their entries: one statement (two outer joins)."""
        rows = await PaymentRow.raw(_LOAD.format(condition=condition), value)
        if not rows:
            return None
        row = rows[0]
        currency = row["currency"]
        movements: dict[str, dict[str, Any]] = {}
        entries: dict[str, list[tuple[int, Entry]]] = defaultdict(list)
        for r in rows:
            if r["m_id"] is None:
                continue
            movements.setdefault(r["m_id"], r)
            if r["e_account"] is not None:
                entry = Entry(Account(r["e_account"]), Money(r["e_amount"], r["e_currency"]))
                entries[r["m_id"]].append((r["e_position"], entry))
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
            movements=[
                Movement(
                    id=m["m_id"],
                    payment_id=row["id"],
                    kind=MovementKind(m["m_kind"]),
                    amount=Money(m["m_amount"], m["m_currency"]),
                    key=m["m_key"],
                    entries=tuple(entry for _, entry in sorted(entries[m["m_id"]], key=lambda pe: pe[0])),
                )
                for m in sorted(movements.values(), key=lambda m: m["m_position"])
            ],
            version=row["version"],
            request_digest=row["request_digest"] or "",
        )
        self._persisted[payment.id] = {m.id for m in payment.movements}
        return payment

    async def _write_new_movements(self, payment: Payment) -> None:
        """Each new movement: its row (``ON CONFLICT DO NOTHING``: a key that already moved money
        on this payment is a :class:`ConflictError`, without aborting a Postgres transaction),
        then its entries in one statement. Raw statements: piccolo's object inserts cost more CPU
        than the statements themselves (bench/e2e_orders.py)."""
        stored = self._persisted.setdefault(payment.id, set())
        for position, movement in enumerate(payment.movements):
            if movement.id in stored:
                continue
            inserted = await LedgerMovementRow.raw(
                "INSERT INTO ledger_movements (id, payment_id, position, kind, amount, currency, "
                "idempotency_key, movement_key, created_at) VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {}) "
                "ON CONFLICT DO NOTHING RETURNING id",
                movement.id,
                payment.id,
                position,
                movement.kind.value,
                movement.amount.amount,
                movement.amount.currency,
                movement.key,
                movement_key(payment.id, movement.key),
                datetime.now(UTC),
            )
            if not inserted:
                raise ConflictError(f"key {movement.key!r} already moved money on payment {payment.id}")
            await self._write_entries(payment.id, movement)
            stored.add(movement.id)

    async def _write_entries(self, payment_id: str, movement: Movement) -> None:
        if not movement.entries:
            return
        values: list[Any] = []
        for position, entry in enumerate(movement.entries):
            values += [movement.id, payment_id, position, entry.account.value, entry.amount.currency,
                       entry.amount.amount]  # fmt: skip
        rows = ", ".join(["({}, {}, {}, {}, {}, {})"] * len(movement.entries))
        await LedgerEntryRow.raw(
            "INSERT INTO ledger_entries (movement_id, payment_id, position, account, currency, amount) "
            f"VALUES {rows}",
            *values,
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
