"""The order saga: place an order across the catalog and payments, compensating any failure.

The order is kept in memory from placing to its end, and every transition is ONE write: a
compare-and-set on the order's version that stores its new state together with the saga's
progress (:class:`SagaProgress`) — "step k done, step k+1 started". A crash therefore leaves the
order at a step noted ``started`` before its call, which the runner's sweeper
(:mod:`svc_b.service_layer.runner`) resumes or compensates once the order's lease runs out; all
upstream calls are idempotent per order, so repeating one is safe. Two workers never both write a
step: whoever resumes an order claims it (a version bump), the other's write fails
(``ConflictError``).

Outcome policy: a definite refusal (out of stock, declined, nothing authorised) fails the order
and compensates at once. A transient or unknown outcome (unreachable, 5xx, open circuit, 409 in
flight, timeout) is retried — the same call with the same key, full-jitter backoff honouring
``retry_after`` — until the order's deadline (:mod:`svc_b.service_layer.retrying`); only then does
an order still reserving or authorising fail (``upstream_unavailable``) and compensate. An order
past its deadline while committing stock, capturing payment or compensating is left as it is
(those steps are idempotent and the order is already paid for or cancelling): recovery retries
them later. So is an order whose request has no time left to wait for the next retry
(:class:`Postponed`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TypeVar

from caravan_commons.deadline import current_deadline
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
    step_key,
)
from svc_b.service_layer.retrying import RetryPolicy
from svc_b.service_layer.unit_of_work import AbstractUnitOfWork, SagaProgress, StepOutcome

UNAVAILABLE = (UpstreamUnavailableError, DeadlineExceededError)
UowFactory = Callable[[], AbstractUnitOfWork]
STARTED, DONE, FAILED = StepOutcome.STARTED, StepOutcome.DONE, StepOutcome.FAILED
T = TypeVar("T")


class Postponed(Exception):
    """The request running the saga has no time left to wait for the next retry: the order is
    left as it is (nothing compensated) for recovery to go on with."""


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
    #: a keyed digest of ``card_token`` (the API's), stored with the order for good
    card_digest: str | None = None


def next_step(order: Order) -> str:
    """The step the order's state calls for next."""
    if order.status is OrderStatus.CANCELLING:
        return "compensate"
    if order.status is OrderStatus.PENDING:
        return "reserve_stock"
    if order.status is OrderStatus.STOCK_RESERVED:
        return "authorize_payment"
    if order.stock is StockState.RESERVED:
        return "commit_stock"
    if order.payment is PaymentState.AUTHORIZED:
        return "capture_payment"
    return "confirm"


def _failure(exc: Exception) -> str:
    return f"{type(exc).__name__}: {exc}"


@dataclass(slots=True)
class Saga:
    """The saga's collaborators: a unit-of-work factory and the two upstream ports."""

    uow: UowFactory
    catalog: CatalogPort
    payments: PaymentsPort
    clock: Callable[[], datetime] = lambda: datetime.now(UTC)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    #: who holds the lease of the orders this saga runs (a runner's id), and for how long a write
    #: holds it (the runner renews it while it drives the order)
    owner: str = field(default_factory=lambda: uuid.uuid4().hex)
    lease: timedelta = timedelta(seconds=3)
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep

    # ---------------------------------------------------------------------- commands

    async def place(self, command: PlaceOrder) -> Order:
        """Snapshot prices, store the pending order (its first step noted started, in the same
        write), then run it to confirmed or cancelled."""
        return await self.run(*await self.start(command))

    async def start(self, command: PlaceOrder) -> tuple[Order, SagaProgress]:
        """Snapshot prices and store the pending order, its first step noted started and its
        lease held by this saga's ``owner`` (one write); run it with :meth:`run`."""
        prices = await self.catalog.prices([line.sku for line in command.lines])
        lines = [OrderLine(line.sku, line.quantity, prices[line.sku]) for line in command.lines]
        now = self.clock()
        order = Order.place(
            command.order_id,
            command.customer_id,
            lines,
            card_token=command.card_token,
            card_digest=command.card_digest,
            placed_at=now,
        )
        progress = SagaProgress()
        progress.note(next_step(order), STARTED)
        self._hold(order, progress)
        async with self.uow() as uow:
            uow.orders.add(order, now, progress)
            await uow.commit()
        order.version = 1
        return order, progress

    async def cancel(self, order_id: str, customer_id: str) -> Order:
        """The customer cancels a confirmed order: refund, release, cancelled."""
        return await self.run(*await self.begin_cancel(order_id, customer_id))

    async def begin_cancel(self, order_id: str, customer_id: str) -> tuple[Order, SagaProgress]:
        """Mark a confirmed order cancelling (one write, its lease held by this saga's owner);
        compensate it with :meth:`run`. ``IllegalTransition`` (409) for any other order."""
        loaded = await self.load(order_id)
        if loaded is None or loaded[0].customer_id != customer_id:
            raise NotFoundError(f"no order {order_id}")
        order, progress = loaded
        order.cancel()
        progress.note("cancel", DONE)
        await self._save(order, progress)
        return order, progress

    async def order(self, order_id: str) -> Order | None:
        """The order as stored now, or None."""
        async with self.uow() as uow:
            return await uow.orders.get(order_id)

    async def load(self, order_id: str) -> tuple[Order, SagaProgress] | None:
        """The order and its saga's progress as stored now, or None."""
        async with self.uow() as uow:
            return await uow.orders.load(order_id)

    async def orders_of(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        """One page of the customer's orders, newest first."""
        async with self.uow() as uow:
            return await uow.orders.page_for_customer(customer_id, limit=limit, after=after)

    # ------------------------------------------------------------------------ engine

    async def resume(self, order_id: str, *, now: datetime, resume_within: timedelta) -> Order:
        """Run an order a sweeper has just claimed (the claim bumped its version: a stale holder's
        next write fails). An unpaid order placed more than ``resume_within`` before ``now`` is
        abandoned and compensated instead."""
        order, progress = await self._load(order_id)
        if order.is_terminal:
            return order
        unpaid = order.status in (OrderStatus.PENDING, OrderStatus.STOCK_RESERVED)
        if unpaid and order.placed_at is not None and now - order.placed_at > resume_within:
            order.fail(CancelReason.ABANDONED)
            progress.note("abandon", DONE)
            await self._save(order, progress)
        return await self.run(order, progress)

    async def advance(self, order_id: str) -> Order:
        """Resume an order from the database: claim it (one compare-and-set noting its next step
        started — ``ConflictError`` when another worker got there first), then run it."""
        order, progress = await self._load(order_id)
        if order.is_terminal:
            return order
        progress.note(next_step(order), STARTED)
        await self._save(order, progress)
        return await self.run(order, progress)

    async def run(self, order: Order, progress: SagaProgress) -> Order:
        """Run an order held in memory (its next step already noted) until it is final or must
        wait for recovery."""
        while not order.is_terminal:
            if order.status is OrderStatus.CANCELLING:
                if not await self._compensate(order, progress):
                    break
            elif not await self._forward(order, progress):
                break
        return order

    async def _forward(self, order: Order, progress: SagaProgress) -> bool:
        """One forward step; False when the order must wait (an upstream is unreachable)."""
        step = next_step(order)
        if step == "reserve_stock":
            requests = [StockRequest(line.sku, line.quantity) for line in order.lines]
            return await self._step(
                order,
                progress,
                step,
                lambda: self.catalog.reserve(order.id, requests),
                lambda _: order.reserve_stock(),
                refusals={OutOfStock: CancelReason.OUT_OF_STOCK},
                fail_when_unavailable=True,
            )
        if step == "authorize_payment":
            key = step_key(order.id, "authorize")
            return await self._step(
                order,
                progress,
                step,
                lambda: self.payments.authorize(
                    key, order.id, order.customer_id, order.total, order.card_token or ""
                ),
                lambda auth: order.authorize_payment(str(auth)),
                refusals={PaymentDeclined: CancelReason.PAYMENT_DECLINED},
                fail_when_unavailable=True,
            )
        if step == "commit_stock":
            return await self._step(
                order,
                progress,
                step,
                lambda: self.catalog.commit(order.id),
                lambda _: order.commit_stock(),
                refusals={ReservationLost: CancelReason.OUT_OF_STOCK},
            )
        if step == "capture_payment":
            key = step_key(order.id, "capture")
            auth = order.authorization_id or ""
            return await self._step(
                order,
                progress,
                step,
                lambda: self.payments.capture(key, auth, order.total),
                lambda _: order.capture_payment(),
                refusals={PaymentDeclined: CancelReason.PAYMENT_DECLINED},
            )
        order.confirm()
        progress.note("confirm", DONE)
        await self._save(order, progress)
        return True

    async def _step(
        self,
        order: Order,
        progress: SagaProgress,
        name: str,
        call: Callable[[], Awaitable[object]],
        apply: Callable[[object], None],
        *,
        refusals: dict[type[Exception], CancelReason] | None = None,
        fail_when_unavailable: bool = False,
    ) -> bool:
        if not (progress.step == name and progress.calling):
            progress.note(name, STARTED)  # not noted with the previous write: note it first
            await self._save(order, progress)
        try:
            result = await self._attempt(order, name, call)
        except Postponed as exc:
            progress.note(name, FAILED, str(exc))
            await self._save(order, progress, wait=0.0)  # due at once for the sweeper
            return False
        except UNAVAILABLE as exc:  # still so at the order's deadline (or definite: NothingAuthorized)
            if fail_when_unavailable:
                order.fail(CancelReason.UPSTREAM_UNAVAILABLE)
            progress.note(name, FAILED, _failure(exc))
            await self._save(order, progress, wait=None if fail_when_unavailable else self.retry.cap)
            return fail_when_unavailable
        except tuple(refusals or ()) as exc:
            order.fail((refusals or {})[type(exc)])
            progress.note(name, FAILED, _failure(exc))
            await self._save(order, progress)
            return True
        apply(result)
        following = next_step(order)
        if following == "confirm":  # no call: confirmed in the same write
            order.confirm()
            progress.note("confirm", DONE)
        else:
            progress.note(following, STARTED)
        await self._save(order, progress)
        return True

    # ------------------------------------------------------------------ compensation

    async def _compensate(self, order: Order, progress: SagaProgress) -> bool:
        """Undo what the order holds (or may hold: a started step whose answer was lost) — the
        payment and the stock each on its own, so one upstream down does not hold back the other —,
        then write the cancelled order once; False when an upstream stays unreachable (what was
        undone is written, the order stays cancelling for recovery)."""
        failures = [
            failure
            for failure in (
                await self._undo_payment(order, progress),
                await self._undo_stock(order, progress),
            )
            if failure
        ]
        if failures:
            progress.note("compensate", FAILED, "; ".join(failures))
            await self._save(order, progress, wait=self.retry.cap)
            return False
        order.complete_cancellation()
        progress.note("cancelled", DONE, order.cancel_reason or "")
        await self._save(order, progress)
        metrics.COMPENSATIONS.inc(order.cancel_reason or "unknown")
        return True

    async def _undo_payment(self, order: Order, progress: SagaProgress) -> str:
        """Refund a capture, void an authorisation (also one whose answer was lost); '' when done,
        else why not."""
        auth = order.authorization_id or ""
        try:
            if order.payment is PaymentState.CAPTURED:
                key = step_key(order.id, "refund")
                await self._attempt(
                    order, "refund", lambda: self.payments.refund(key, auth, order.total), undo=True
                )
                order.refund_payment()
            elif order.payment is PaymentState.AUTHORIZED:
                key = step_key(order.id, "void")
                await self._attempt(order, "void", lambda: self.payments.void(key, auth), undo=True)
                order.void_payment()
            elif order.payment is PaymentState.NONE and "authorize_payment" in progress.started:
                await self._void_lost_authorization(order)
        except (*UNAVAILABLE, Postponed) as exc:
            return str(exc) if isinstance(exc, Postponed) else _failure(exc)
        return ""

    async def _undo_stock(self, order: Order, progress: SagaProgress) -> str:
        """Give back reserved or committed stock (also a reservation whose answer was lost); ''
        when done, else why not."""
        if not (
            order.holds_stock or (order.stock is StockState.NONE and "reserve_stock" in progress.started)
        ):
            return ""
        try:
            await self._attempt(order, "release", lambda: self.catalog.release(order.id), undo=True)
        except (*UNAVAILABLE, Postponed) as exc:
            return str(exc) if isinstance(exc, Postponed) else _failure(exc)
        if order.holds_stock:
            order.release_stock()
        return ""

    async def _void_lost_authorization(self, order: Order) -> None:
        """The authorise call started but its answer was lost: repeat it with the same key to
        learn the outcome, and void the authorisation if there is one."""
        key = step_key(order.id, "authorize")
        try:
            auth = await self._attempt(
                order,
                "authorize_payment",
                lambda: self.payments.authorize(
                    key, order.id, order.customer_id, order.total, order.card_token or ""
                ),
                undo=True,
            )
        except (PaymentDeclined, NothingAuthorized):
            return
        void_key = step_key(order.id, "void")
        await self._attempt(order, "void", lambda: self.payments.void(void_key, auth), undo=True)

    async def _attempt(
        self, order: Order, name: str, call: Callable[[], Awaitable[T]], *, undo: bool = False
    ) -> T:
        """``call`` until it answers or fails definitely. A transient or unknown failure is retried
        (the same call: its key is derived from the order and step) after a full-jitter backoff,
        at least the upstream's ``retry_after``; it is raised once the next retry would be past the
        order's deadline (an ``undo``: and ``undo_window`` from now), and :class:`Postponed` once it
        would be past the request's."""
        until = self.deadline_of(order)
        if undo:
            until = max(until, self.clock() + self.retry.undo_window)
        retries = 0
        while True:
            try:
                return await call()
            except NothingAuthorized:  # a definite answer: payments authorised nothing
                raise
            except UNAVAILABLE as exc:
                retries += 1
                delay = self.retry.delay(retries, exc)
                if self.clock() + timedelta(seconds=delay) >= until:
                    raise
                request = current_deadline()
                if request is not None and delay >= request.remaining():
                    raise Postponed(f"{_failure(exc)} (left for recovery: the request's deadline)") from exc
                metrics.SAGA_RETRIES.inc(name)
                await self.sleep(delay)

    def deadline_of(self, order: Order) -> datetime:
        """Until when the order's calls are retried before it is compensated."""
        return (order.placed_at or self.clock()) + self.retry.deadline

    # ------------------------------------------------------------------------ helpers

    def _hold(self, order: Order, progress: SagaProgress, wait: float | None = None) -> None:
        """The lease written with the order: a final order is nobody's and never due; one that
        must wait is nobody's, due in ``wait`` seconds; otherwise this saga's ``owner`` holds it
        for ``lease`` (a crash makes it due then; the runner renews it while it drives it)."""
        if order.is_terminal:
            progress.lease_owner = progress.next_attempt_at = None
        elif wait is not None:
            progress.lease_owner = None
            progress.next_attempt_at = self.clock() + timedelta(seconds=wait)
        else:
            progress.lease_owner = self.owner
            progress.next_attempt_at = self.clock() + self.lease

    async def _save(self, order: Order, progress: SagaProgress, *, wait: float | None = None) -> None:
        """One write: the order's state, progress and lease, if nobody changed it since (bumps
        its version in memory)."""
        self._hold(order, progress, wait)
        async with self.uow() as uow:
            uow.orders.save(order, progress)
            await uow.commit()

    async def _load(self, order_id: str) -> tuple[Order, SagaProgress]:
        loaded = await self.load(order_id)
        if loaded is None:
            raise NotFoundError(f"no order {order_id}")
        return loaded
