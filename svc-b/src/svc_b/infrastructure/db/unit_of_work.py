"""The piccolo unit of work: nothing is written until ``commit()``, which writes new orders, changed
orders (optimistic version check) and saga steps in ONE transaction; otherwise it rolls back."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from piccolo.engine.sqlite import SQLiteEngine, TransactionType

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError
from svc_b.infrastructure.db.repository import PiccoloOrderRepository, PiccoloSagaLog, order_values
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow, SagaStepRow
from svc_b.service_layer.unit_of_work import AbstractUnitOfWork

try:  # the postgres extra
    from asyncpg.exceptions import UniqueViolationError
except ImportError:  # pragma: no cover - asyncpg is a declared dependency
    UniqueViolationError = sqlite3.IntegrityError


def write_transaction(database: Database) -> Any:
    """A transaction that will write: on SQLite it takes the write lock first (``BEGIN IMMEDIATE``),
    so concurrent writers wait for each other (busy timeout) instead of failing mid-way."""
    engine = database.engine
    if isinstance(engine, SQLiteEngine):
        return engine.transaction(transaction_type=TransactionType.immediate)
    return engine.transaction()


class PiccoloUnitOfWork(AbstractUnitOfWork):
    orders: PiccoloOrderRepository
    saga: PiccoloSagaLog

    def __init__(self, database: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.database = database
        self.clock = clock
        self.orders = PiccoloOrderRepository()
        self.saga = PiccoloSagaLog()

    def _transaction(self) -> Any:
        return write_transaction(self.database)

    async def commit(self) -> None:
        now = self.clock()
        try:
            async with self._transaction():
                await self._write(now)
        except (sqlite3.IntegrityError, UniqueViolationError) as exc:
            raise ConflictError(f"an order with this id exists already ({type(exc).__name__})") from exc
        finally:
            await self.rollback()

    async def _write(self, now: datetime) -> None:
        for order, created_at in self.orders.added.values():
            await OrderRow.insert(
                OrderRow(
                    id=order.id,
                    customer_id=order.customer_id,
                    currency=order.total.currency,
                    total_amount=order.total.amount,
                    status=order.status.value,
                    stock=order.stock.value,
                    payment=order.payment.value,
                    authorization_id=order.authorization_id,
                    cancel_reason=order.cancel_reason,
                    card_token=order.card_token,
                    version=1,
                    created_at=created_at,
                    updated_at=now,
                )
            )
            await OrderLineRow.insert(
                *[
                    OrderLineRow(
                        order_id=order.id,
                        position=i,
                        sku=line.sku,
                        quantity=line.quantity,
                        unit_amount=line.unit_price.amount,
                        currency=line.unit_price.currency,
                    )
                    for i, line in enumerate(order.lines)
                ]
            )
        for order in self.orders.seen.values():
            updated = (
                await OrderRow.update({**order_values(order, now), OrderRow.version: order.version + 1})
                .where((OrderRow.id == order.id) & (OrderRow.version == order.version))
                .returning(OrderRow.id)
            )
            if not updated:
                raise ConflictError(f"order {order.id} was changed by someone else; retry")
        for order_id, step, outcome, detail in self.saga.new:
            last = (
                await SagaStepRow.select(SagaStepRow.seq)
                .where(SagaStepRow.order_id == order_id)
                .order_by(SagaStepRow.seq, ascending=False)
                .first()
            )
            await SagaStepRow.insert(
                SagaStepRow(
                    order_id=order_id,
                    seq=(last["seq"] if last else 0) + 1,
                    step=step,
                    outcome=outcome.value,
                    detail=detail,
                    recorded_at=now,
                )
            )

    async def rollback(self) -> None:
        self.orders.added.clear()
        self.orders.seen.clear()
        self.saga.new.clear()
