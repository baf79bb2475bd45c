"""Repositories over the piccolo tables. They return domain objects, never rows."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from caravan_commons.money import Money
from svc_b.domain.model import TERMINAL, Order, OrderLine, OrderStatus, PaymentState, StockState
from svc_b.infrastructure.db.tables import OrderLineRow, OrderRow
from svc_b.service_layer.unit_of_work import AbstractOrderRepository, SagaProgress, StepOutcome


def order_values(order: Order, progress: SagaProgress, now: datetime) -> dict[Any, Any]:
    return {
        OrderRow.status: order.status.value,
        OrderRow.stock: order.stock.value,
        OrderRow.payment: order.payment.value,
        OrderRow.authorization_id: order.authorization_id,
        OrderRow.cancel_reason: order.cancel_reason,
        OrderRow.card_token: order.card_token,
        OrderRow.updated_at: now,
        **progress_values(progress),
    }


def progress_values(progress: SagaProgress) -> dict[Any, Any]:
    return {
        OrderRow.step: progress.step,
        OrderRow.step_outcome: progress.outcome.value,
        OrderRow.steps_started: ",".join(progress.started),
        OrderRow.step_detail: progress.detail,
        OrderRow.next_attempt_at: progress.next_attempt_at,
        OrderRow.lease_owner: progress.lease_owner,
    }


def to_progress(row: dict[str, Any]) -> SagaProgress:
    started = row.get("steps_started") or ""
    return SagaProgress(
        step=row.get("step") or "",
        outcome=StepOutcome(row.get("step_outcome") or "done"),
        started=tuple(started.split(",")) if started else (),
        detail=row.get("step_detail") or "",
        next_attempt_at=row.get("next_attempt_at"),
        lease_owner=row.get("lease_owner"),
    )


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
        card_digest=row.get("card_digest"),
        placed_at=row["created_at"],
        version=row["version"],
    )


#: The sweeper's claim: one statement. On Postgres the due orders are picked ``FOR UPDATE SKIP
#: LOCKED`` (rows another worker is claiming right now are skipped, not waited for); SQLite has
#: one writer at a time, so its plain conditional UPDATE is atomic already. ``{{}}`` are piccolo's
#: placeholders: owner, lease expiry, now, limit.
CLAIM_DUE = """
UPDATE svc_b_orders
SET lease_owner = {{}}, next_attempt_at = {{}}, version = version + 1
WHERE id IN (
    SELECT id FROM svc_b_orders
    WHERE status NOT IN ({terminal}) AND (next_attempt_at IS NULL OR next_attempt_at <= {{}})
    ORDER BY next_attempt_at NULLS FIRST
    LIMIT {{}}
    {lock}
)
RETURNING id
"""


class PiccoloOrderRepository(AbstractOrderRepository):
    """The orders on piccolo's tables (writes are collected by the port, made at commit)."""

    async def _load(self, rows: list[dict[str, Any]]) -> list[Order]:
        if not rows:
            return []
        ids = [row["id"] for row in rows]
        lines = await OrderLineRow.select().where(OrderLineRow.order_id.is_in(ids))
        by_order: dict[str, list[dict[str, Any]]] = {i: [] for i in ids}
        for line in lines:
            by_order[line["order_id"]].append(line)
        return [to_domain(row, by_order[row["id"]]) for row in rows]

    async def load(self, order_id: str) -> tuple[Order, SagaProgress] | None:
        rows = await OrderRow.select().where(OrderRow.id == order_id)
        if not rows:  # one statement when there is no such order (the usual case when placing)
            return None
        return (await self._load(rows))[0], to_progress(rows[0])

    async def unfinished(self, limit: int = 100) -> list[tuple[Order, datetime]]:
        rows = (
            await OrderRow.select()
            .where(OrderRow.status.not_in([s.value for s in TERMINAL]))
            .order_by(OrderRow.created_at)
            .limit(limit)
        )
        orders = await self._load(rows)
        return [(order, row["created_at"]) for order, row in zip(orders, rows, strict=True)]

    async def claim_due(self, owner: str, *, now: datetime, until: datetime, limit: int) -> list[str]:
        postgres = OrderRow._meta.db.engine_type == "postgres"
        rows = await OrderRow.raw(
            CLAIM_DUE.format(
                terminal=", ".join(f"'{status.value}'" for status in TERMINAL),
                lock="FOR UPDATE SKIP LOCKED" if postgres else "",
            ),
            owner,
            until,
            now,
            limit,
        )
        return [row["id"] for row in rows]

    async def renew(self, owner: str, order_ids: Sequence[str], *, until: datetime) -> int:
        if not order_ids:
            return 0
        renewed = (
            await OrderRow.update({OrderRow.next_attempt_at: until})
            .where((OrderRow.lease_owner == owner) & OrderRow.id.is_in(list(order_ids)))
            .returning(OrderRow.id)
        )
        return len(renewed)

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
