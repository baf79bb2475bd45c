"""Repositories over the piccolo tables. They return domain objects, never rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from caravan_commons.money import Money
from svc_b.domain.model import TERMINAL, Order, OrderLine, OrderStatus, PaymentState, StockState
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow, SagaStepRow
from svc_b.service_layer.unit_of_work import AbstractOrderRepository, AbstractSagaLog, SagaStep, StepOutcome


def order_values(order: Order, now: datetime) -> dict[Any, Any]:
    return {
        OrderRow.status: order.status.value,
        OrderRow.stock: order.stock.value,
        OrderRow.payment: order.payment.value,
        OrderRow.authorization_id: order.authorization_id,
        OrderRow.cancel_reason: order.cancel_reason,
        OrderRow.card_token: order.card_token,
        OrderRow.updated_at: now,
    }


def to_domain(row: dict[str, Any], lines: Sequence[dict[str, Any]]) -> Order:
    return Order(
        row["id"],
        row["customer_id"],
        [
            OrderLine(line["sku"], line["quantity"], Money(line["unit_amount"], line["currency"]))
            for line in sorted(lines, key=lambda line: line["position"])
        ],
        status=OrderStatus(row["status"]),
        stock=StockState(row["stock"]),
        payment=PaymentState(row["payment"]),
        authorization_id=row["authorization_id"],
        cancel_reason=row["cancel_reason"],
        card_token=row.get("card_token"),
        placed_at=row["created_at"],
        version=row["version"],
    )


class PiccoloOrderRepository(AbstractOrderRepository):
    """Reads immediately; writes are collected and done by the unit of work's ``commit``."""

    def __init__(self) -> None:
        self.added: dict[str, tuple[Order, datetime]] = {}
        self.seen: dict[str, Order] = {}

    def add(self, order: Order, created_at: datetime) -> None:
        self.added[order.id] = (order, created_at)

    async def _load(self, rows: list[dict[str, Any]]) -> list[Order]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        lines = await OrderLineRow.select().where(OrderLineRow.order_id.is_in(ids))
        by_order: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for line in lines:
            by_order[line["order_id"]].append(line)
        return [to_domain(row, by_order[row["id"]]) for row in rows]

    async def get(self, order_id: str) -> Order | None:
        rows = await OrderRow.select().where(OrderRow.id == order_id)
        orders = await self._load(rows)
        if not orders:
            return None
        self.seen[order_id] = orders[0]
        return orders[0]

    async def unfinished(self, limit: int = 100) -> list[tuple[Order, datetime]]:
        rows = (
            await OrderRow.select()
            .where(OrderRow.status.not_in([s.value for s in TERMINAL]))
            .order_by(OrderRow.created_at)
            .limit(limit)
        )
        orders = await self._load(rows)
        return [(order, row["created_at"]) for order, row in zip(orders, rows, strict=True)]

    async def list_for_customer(self, customer_id: str, *, limit: int, offset: int) -> list[Order]:
        rows = (
            await OrderRow.select()
            .where(OrderRow.customer_id == customer_id)
            .order_by(OrderRow.created_at, ascending=False)
            .order_by(OrderRow.id)
            .limit(limit)
            .offset(offset)
        )
        return await self._load(rows)

    async def page_for_customer(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        query = OrderRow.select().where(OrderRow.customer_id == customer_id)
        if after is not None:
            placed, order_id = after
            query = query.where(
                (OrderRow.created_at < placed) | ((OrderRow.created_at == placed) & (OrderRow.id < order_id))
            )
        rows = (
            await query.order_by(OrderRow.created_at, ascending=False)
            .order_by(OrderRow.id, ascending=False)
            .limit(limit)
        )
        return await self._load(rows)


class PiccoloSagaLog(AbstractSagaLog):
    def __init__(self) -> None:
        self.new: list[tuple[str, str, StepOutcome, str]] = []

    def record(self, order_id: str, step: str, outcome: StepOutcome, detail: str = "") -> None:
        self.new.append((order_id, step, outcome, detail[:2000]))

    async def steps(self, order_id: str) -> list[SagaStep]:
        rows = await SagaStepRow.select().where(SagaStepRow.order_id == order_id).order_by(SagaStepRow.seq)
        return [
            SagaStep(row["order_id"], row["seq"], row["step"], StepOutcome(row["outcome"]), row["detail"])
            for row in rows
        ]
