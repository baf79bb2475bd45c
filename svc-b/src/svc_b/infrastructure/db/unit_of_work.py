"""The piccolo unit of work: nothing is written until ``commit()``; a saga transition is one
compare-and-set statement on the order's row, a new order one transaction (order and lines)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime

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
                    card_digest=order.card_digest,
                    version=1,
                    created_at=created_at,
                    updated_at=now,
                    step=progress.step,
                    step_outcome=progress.outcome.value,
                    steps_started=",".join(progress.started),
                    step_detail=progress.detail,
                    next_attempt_at=progress.next_attempt_at,
                    lease_owner=progress.lease_owner,
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

    @staticmethod
    async def _compare_and_set(order: Order, progress: SagaProgress, now: datetime) -> None:
        updated = (
            await OrderRow.update({**order_values(order, progress, now), OrderRow.version: order.version + 1})
            .where((OrderRow.id == order.id) & (OrderRow.version == order.version))
            .returning(OrderRow.id)
        )
        if not updated:
            raise ConflictError(f"order {order.id} was changed by someone else; retry")

    async def rollback(self) -> None:
        self.orders.forget()
