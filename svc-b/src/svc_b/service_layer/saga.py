"""The order saga: place an order across the catalog and payments, compensating any failure.

Every step is recorded as ``started`` in the saga log (same transaction as the order) before the
upstream call, and its result (``done``/``failed``, with the order's new state) after it; so a
crash between two writes leaves an order that :mod:`svc_b.service_layer.recovery` can resume or
compensate. All upstream calls are idempotent per order, so repeating one after a crash is safe.

Outcome policy: a definite refusal (out of stock, declined) or an unreachable upstream while
reserving or authorising fails the order and compensates at once. An unreachable upstream while
committing stock or capturing payment leaves the order as it is (those steps are idempotent and
the order is already paid for): recovery retries them later.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from caravan_commons.errors import DeadlineExceededError, NotFoundError, UpstreamUnavailableError
from svc_b import metrics
from svc_b.domain.model import CancelReason, Order, OrderLine, OrderStatus, PaymentState, StockState
from svc_b.service_layer.ports import (
    CatalogPort,
    NothingAuthorized,
    OutOfStock,
    PaymentDeclined,
    PaymentsPort,
    ReservationLost,
    StockRequest,
    payment_key,
)
from svc_b.service_layer.unit_of_work import AbstractUnitOfWork, StepOutcome

UNAVAILABLE = (UpstreamUnavailableError, DeadlineExceededError)
UowFactory = Callable[[], AbstractUnitOfWork]


@dataclass(frozen=True, slots=True)
class LineRequest:
    sku: str
    quantity: int


@dataclass(frozen=True, slots=True)
class PlaceOrder:
    order_id: str
    customer_id: str
    lines: Sequence[LineRequest]
    card_token: str = ""


@dataclass(slots=True)
class Saga:
    """The saga's collaborators: a unit-of-work factory and the two upstream ports."""

    uow: UowFactory
    catalog: CatalogPort
    payments: PaymentsPort
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    # ---------------------------------------------------------------------- commands

    async def place(self, command: PlaceOrder) -> Order:
        """Snapshot prices, persist the pending order, then run it to confirmed or cancelled."""
        prices = await self.catalog.prices([line.sku for line in command.lines])
        lines = [OrderLine(line.sku, line.quantity, prices[line.sku]) for line in command.lines]
        now = self.clock()
        order = Order.place(
            command.order_id, command.customer_id, lines, card_token=command.card_token, placed_at=now
        )
        async with self.uow() as uow:
            uow.orders.add(order, now)
            uow.saga.record(order.id, "place", StepOutcome.DONE, str(order.total.amount))
            await uow.commit()
        return await self.advance(order.id)

    async def cancel(self, order_id: str, customer_id: str) -> Order:
        """The customer cancels a confirmed order: refund, release, cancelled."""
        async with self.uow() as uow:
            order = await uow.orders.get(order_id)
            if order is None or order.customer_id != customer_id:
                raise NotFoundError(f"no order {order_id}")
            order.cancel()
            uow.saga.record(order.id, "cancel", StepOutcome.DONE)
            await uow.commit()
        return await self.advance(order_id)

    async def abandon(self, order_id: str) -> Order:
        """Give up on an unfinished order (recovery, too old to resume) and compensate it."""
        async with self.uow() as uow:
            order = await self._get(uow, order_id)
            if order.status in (OrderStatus.PENDING, OrderStatus.STOCK_RESERVED):
                order.fail(CancelReason.ABANDONED)
                uow.saga.record(order.id, "abandon", StepOutcome.DONE)
                await uow.commit()
        return await self.advance(order_id)

    async def order(self, order_id: str) -> Order | None:
        """The order as stored now, or None."""
        async with self.uow() as uow:
            return await uow.orders.get(order_id)

    async def calling_upstream(self, order_id: str) -> bool:
        """Whether the order's last recorded step is a call still without an answer (a worker is
        calling svc-a or svc-c for it right now — or died doing so)."""
        async with self.uow() as uow:
            steps = await uow.saga.steps(order_id)
        return bool(steps) and steps[-1].outcome is StepOutcome.STARTED

    async def orders_of(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        """One page of the customer's orders, newest first."""
        async with self.uow() as uow:
            return await uow.orders.page_for_customer(customer_id, limit=limit, after=after)

    # ------------------------------------------------------------------------ engine

    async def advance(self, order_id: str) -> Order:
        """Run the order's next steps until it is final or must wait for recovery."""
        while True:
            async with self.uow() as uow:
                order = await self._get(uow, order_id)
            if order.is_terminal:
                return order
            if order.status is OrderStatus.CANCELLING:
                if not await self._compensate(order):
                    return await self._reload(order_id)
                continue
            if not await self._forward(order):
                return await self._reload(order_id)

    async def _forward(self, order: Order) -> bool:
        """One forward step; False when the order must wait (an upstream is unreachable)."""
        if order.status is OrderStatus.PENDING:
            requests = [StockRequest(line.sku, line.quantity) for line in order.lines]
            return await self._step(
                order.id,
                "reserve_stock",
                lambda: self.catalog.reserve(order.id, requests),
                lambda o, _: o.reserve_stock(),
                refusals={OutOfStock: CancelReason.OUT_OF_STOCK},
                fail_when_unavailable=True,
            )
        if order.status is OrderStatus.STOCK_RESERVED:
            key = payment_key(order.id, "authorize")
            return await self._step(
                order.id,
                "authorize_payment",
                lambda: self.payments.authorize(
                    key, order.id, order.customer_id, order.total, order.card_token or ""
                ),
                lambda o, auth: o.authorize_payment(str(auth)),
                refusals={PaymentDeclined: CancelReason.PAYMENT_DECLINED},
                fail_when_unavailable=True,
            )
        auth = order.authorization_id or ""
        if order.stock is StockState.RESERVED:
            return await self._step(
                order.id,
                "commit_stock",
                lambda: self.catalog.commit(order.id),
                lambda o, _: o.commit_stock(),
                refusals={ReservationLost: CancelReason.OUT_OF_STOCK},
            )
        if order.payment is PaymentState.AUTHORIZED:
            key = payment_key(order.id, "capture")
            return await self._step(
                order.id,
                "capture_payment",
                lambda: self.payments.capture(key, auth, order.total),
                lambda o, _: o.capture_payment(),
                refusals={PaymentDeclined: CancelReason.PAYMENT_DECLINED},
            )
        async with self.uow() as uow:
            current = await self._get(uow, order.id)
            current.confirm()
            uow.saga.record(order.id, "confirm", StepOutcome.DONE)
            await uow.commit()
        return True

    async def _step(
        self,
        order_id: str,
        name: str,
        call: Callable[[], Awaitable[object]],
        apply: Callable[[Order, object], None],
        *,
        refusals: dict[type[Exception], CancelReason] | None = None,
        fail_when_unavailable: bool = False,
    ) -> bool:
        async with self.uow() as uow:
            await self._get(uow, order_id)  # the commit bumps its version: one worker per step
            uow.saga.record(order_id, name, StepOutcome.STARTED)
            await uow.commit()
        try:
            result = await call()
        except UNAVAILABLE as exc:
            if fail_when_unavailable:
                await self._fail(order_id, name, CancelReason.UPSTREAM_UNAVAILABLE, exc)
                return True
            await self._note(order_id, name, StepOutcome.FAILED, f"{type(exc).__name__}: {exc}")
            return False
        except tuple(refusals or ()) as exc:
            await self._fail(order_id, name, (refusals or {})[type(exc)], exc)
            return True
        async with self.uow() as uow:
            order = await self._get(uow, order_id)
            apply(order, result)
            uow.saga.record(order_id, name, StepOutcome.DONE)
            await uow.commit()
        return True

    async def _fail(self, order_id: str, step: str, reason: CancelReason, exc: Exception) -> None:
        async with self.uow() as uow:
            order = await self._get(uow, order_id)
            order.fail(reason)
            uow.saga.record(order_id, step, StepOutcome.FAILED, f"{type(exc).__name__}: {exc}")
            await uow.commit()

    async def _note(self, order_id: str, step: str, outcome: StepOutcome, detail: str = "") -> None:
        async with self.uow() as uow:
            await self._get(uow, order_id)
            uow.saga.record(order_id, step, outcome, detail)
            await uow.commit()

    # ------------------------------------------------------------------ compensation

    async def _compensate(self, order: Order) -> bool:
        """Undo what the order holds (or may hold: a started step whose answer was lost);
        False when an upstream is unreachable (the order stays cancelling for recovery)."""
        async with self.uow() as uow:
            started = {s.step for s in await uow.saga.steps(order.id)}
        try:
            if order.payment is PaymentState.CAPTURED:
                await self._undo(
                    order.id,
                    "refund_payment",
                    lambda key, auth: self.payments.refund(key, auth, order.total),
                    Order.refund_payment,
                )
            elif order.payment is PaymentState.AUTHORIZED:
                await self._undo(order.id, "void_payment", self.payments.void, Order.void_payment)
            elif order.payment is PaymentState.NONE and "authorize_payment" in started:
                await self._void_lost_authorization(order)
            if order.holds_stock or (order.stock is StockState.NONE and "reserve_stock" in started):
                await self._undo(
                    order.id,
                    "release_stock",
                    lambda _key, _auth: self.catalog.release(order.id),
                    Order.release_stock if order.holds_stock else None,
                )
        except UNAVAILABLE:
            return False
        async with self.uow() as uow:
            current = await self._get(uow, order.id)
            current.complete_cancellation()
            uow.saga.record(order.id, "cancelled", StepOutcome.DONE, current.cancel_reason or "")
            await uow.commit()
        metrics.COMPENSATIONS.inc(current.cancel_reason or "unknown")
        return True

    async def _undo(
        self,
        order_id: str,
        name: str,
        call: Callable[[str, str], Awaitable[None]],
        apply: Callable[[Order], None] | None,
    ) -> None:
        async with self.uow() as uow:
            order = await self._get(uow, order_id)
            uow.saga.record(order_id, name, StepOutcome.STARTED)
            await uow.commit()
        try:
            await call(payment_key(order_id, name.removesuffix("_payment")), order.authorization_id or "")
        except UNAVAILABLE as exc:
            await self._note(order_id, name, StepOutcome.FAILED, f"{type(exc).__name__}: {exc}")
            raise
        async with self.uow() as uow:
            order = await self._get(uow, order_id)
            if apply is not None:
                apply(order)
            uow.saga.record(order_id, name, StepOutcome.DONE)
            await uow.commit()

    async def _void_lost_authorization(self, order: Order) -> None:
        """The authorise call started but its answer was lost: repeat it with the same key to
        learn the outcome, and void the authorisation if there is one."""
        key = payment_key(order.id, "authorize")
        try:
            auth = await self.payments.authorize(
                key, order.id, order.customer_id, order.total, order.card_token or ""
            )
        except (PaymentDeclined, NothingAuthorized):
            return
        await self.payments.void(payment_key(order.id, "void"), auth)
        await self._note(order.id, "void_payment", StepOutcome.DONE, f"lost authorisation {auth}")

    # ------------------------------------------------------------------------ helpers

    @staticmethod
    async def _get(uow: AbstractUnitOfWork, order_id: str) -> Order:
        order = await uow.orders.get(order_id)
        if order is None:
            raise NotFoundError(f"no order {order_id}")
        return order

    async def _reload(self, order_id: str) -> Order:
        async with self.uow() as uow:
            return await self._get(uow, order_id)
