"""The piccolo unit of work: nothing is written until ``commit()``; a saga transition is one
compare-and-set statement on the order's row, a new order one transaction (order and lines)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from piccolo.columns import Column
from piccolo.table import Table

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError
from svc_b.domain.model import Order
from svc_b.infrastructure.db.repository import PiccoloOrderRepository, order_values
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow
from svc_b.service_layer.unit_of_work import AbstractUnitOfWork, SagaProgress

try:  # the postgres extra
    from asyncpg.exceptions import UniqueViolationError
except ImportError:  # pragma: no cover - asyncpg is a declared dependency
    UniqueViolationError = sqlite3.IntegrityError


class PiccoloUnitOfWork(AbstractUnitOfWork):
    orders: PiccoloOrderRepository

    def __init__(self, database: Database, clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.database = database
        self.clock = clock
        self.orders = PiccoloOrderRepository()

    async def commit(self) -> None:
        """New orders: one transaction (the order and its lines). A saved order alone — every saga
        transition — is ONE statement that commits on its own: a compare-and-set on its version."""
        now = self.clock()
        try:
            if self.orders.added or len(self.orders.saved) > 1:
                async with self.database.write_transaction():
                    await self._insert(now)
                    for order, progress in self.orders.saved.values():
                        await self._compare_and_set(order, progress, now)
            else:
                for order, progress in self.orders.saved.values():
                    await self._compare_and_set(order, progress, now)
        except (sqlite3.IntegrityError, UniqueViolationError) as exc:
            raise ConflictError(f"an order with this id exists already ({type(exc).__name__})") from exc
        else:
            for order, _ in self.orders.saved.values():
                order.version += 1
        finally:
            await self.rollback()

    async def _insert(self, now: datetime) -> None:
        for order, created_at, progress in self.orders.added.values():
            row = {
                OrderRow.id: order.id,
                OrderRow.customer_id: order.customer_id,
                OrderRow.currency: order.total.currency,
                OrderRow.total_amount: order.total.amount,
                OrderRow.card_digest: order.card_digest,
                OrderRow.version: 1,
                OrderRow.created_at: created_at,
                **order_values(order, progress, now),
            }
            await _insert_rows(OrderRow, [row])
            await _insert_rows(
                OrderLineRow,
                [
                    {
                        OrderLineRow.order_id: order.id,
                        OrderLineRow.position: i,
                        OrderLineRow.sku: line.sku,
                        OrderLineRow.quantity: line.quantity,
                        OrderLineRow.unit_amount: line.unit_price.amount,
                        OrderLineRow.currency: line.unit_price.currency,
                    }
                    for i, line in enumerate(order.lines)
                ],
            )

    @staticmethod
    async def _compare_and_set(order: Order, progress: SagaProgress, now: datetime) -> None:
        values = order_values(order, progress, now)
        assignments = ", ".join(f"{_name(column)} = {{}}" for column in values)
        updated = await OrderRow.raw(
            f"UPDATE {OrderRow._meta.tablename} SET {assignments}, version = {{}} "
            "WHERE id = {} AND version = {} RETURNING id",
            *values.values(),
            order.version + 1,
            order.id,
            order.version,
        )
        if not updated:
            raise ConflictError(f"order {order.id} was changed by someone else; retry")

    async def rollback(self) -> None:
        self.orders.forget()


# Raw statements on the hot path: piccolo's object inserts and updates spent more CPU building the
# query than the database spent running it (bench/e2e_orders.py, CPU ms per order).


def _name(column: Column) -> str:
    return column._meta.db_column_name


async def _insert_rows(table: type[Table], rows: list[dict[Column, Any]]) -> None:
    """One ``INSERT`` of ``rows`` (each the same columns, in the same order)."""
    if not rows:
        return
    columns = ", ".join(_name(column) for column in rows[0])
    placeholders = ", ".join(["(" + ", ".join(["{}"] * len(rows[0])) + ")"] * len(rows))
    await table.raw(
        f"INSERT INTO {table._meta.tablename} ({columns}) VALUES {placeholders}",
        *(value for row in rows for value in row.values()),
    )
