"""Fakes of the saga's ports: an in-memory unit of work and upstreams that keep books (so a test
can see that no stock or money moved twice) and fail on demand, including a simulated crash."""

from __future__ import annotations

import asyncio
import copy
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from caravan_commons.errors import ConflictError, UpstreamUnavailableError
from caravan_commons.money import Money
from svc_b.domain.model import TERMINAL, Order
from svc_b.service_layer.ports import (
    CatalogPort,
    OutOfStock,
    PaymentDeclined,
    PaymentsPort,
    StockRequest,
    UnknownProduct,
)
from svc_b.service_layer.unit_of_work import (
    AbstractOrderRepository,
    AbstractUnitOfWork,
    SagaProgress,
    StepOutcome,
)


class Crash(BaseException):
    """The process died here (not an Exception: nothing in the saga catches it)."""


@dataclass
class Fault:
    method: str
    error: BaseException
    after_effect: bool = False  # the upstream did the work, then the answer was lost
    times: int = 1


#: ``times`` of a fault that lasts past any order's retry deadline (the upstream stays down)
DOWN = 10**6


class Faults:
    def __init__(self) -> None:
        self.pending: list[Fault] = []

    def clear(self) -> None:
        """The upstream is back: no more scripted failures."""
        self.pending.clear()

    def add(self, method: str, error: BaseException, *, after_effect: bool = False, times: int = 1) -> None:
        self.pending.append(Fault(method, error, after_effect, times))

    def check(self, method: str, after_effect: bool) -> None:
        for fault in self.pending:
            if fault.method == method and fault.after_effect == after_effect and fault.times > 0:
                fault.times -= 1
                raise fault.error


# ------------------------------------------------------------------------------ upstreams


@dataclass
class FakeCatalog(CatalogPort):
    stock: dict[str, int]
    price_list: dict[str, Money]
    reservations: dict[str, tuple[list[StockRequest], str]] = field(default_factory=dict)
    faults: Faults = field(default_factory=Faults)

    async def prices(self, skus: Sequence[str]) -> Mapping[str, Money]:
        self.faults.check("prices", False)
        missing = [s for s in skus if s not in self.price_list]
        if missing:
            raise UnknownProduct(f"unknown SKU {missing[0]}")
        return {s: self.price_list[s] for s in skus}

    async def reserve(self, order_id: str, lines: Sequence[StockRequest]) -> None:
        self.faults.check("reserve", False)
        if order_id not in self.reservations:
            if any(self.stock.get(line.sku, 0) < line.quantity for line in lines):
                raise OutOfStock(f"order {order_id}: not enough stock")
            for line in lines:
                self.stock[line.sku] -= line.quantity
            self.reservations[order_id] = (list(lines), "reserved")
        self.faults.check("reserve", True)

    async def commit(self, order_id: str) -> None:
        self.faults.check("commit", False)
        lines, state = self.reservations[order_id]
        if state == "released":
            raise ConflictError("reservation released")
        self.reservations[order_id] = (lines, "committed")
        self.faults.check("commit", True)

    async def release(self, order_id: str) -> None:
        self.faults.check("release", False)
        if order_id in self.reservations:
            lines, state = self.reservations[order_id]
            if state != "released":
                for line in lines:
                    self.stock[line.sku] += line.quantity
                self.reservations[order_id] = (lines, "released")
        self.faults.check("release", True)


@dataclass
class FakePayments(PaymentsPort):
    decline: set[str] = field(default_factory=set)  # customer ids whose cards are declined
    by_key: dict[str, str | None] = field(default_factory=dict)  # authorize key → auth id (None: declined)
    authorizations: dict[str, tuple[Money, str]] = field(default_factory=dict)  # id → (amount, state)
    calls: list[str] = field(default_factory=list)
    tokens: dict[str, str] = field(default_factory=dict)  # authorize key → card token sent
    faults: Faults = field(default_factory=Faults)
    delay: float = 0.0  # seconds every authorisation takes
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    async def authorize(
        self, idempotency_key: str, order_id: str, customer_id: str, amount: Money, card_token: str
    ) -> str:
        self.faults.check("authorize", False)
        if self.delay:
            await asyncio.sleep(self.delay)
        self.tokens[idempotency_key] = card_token
        if idempotency_key not in self.by_key:
            if customer_id in self.decline or card_token in self.decline:
                self.by_key[idempotency_key] = None
            else:
                auth = f"auth-{next(self._ids)}"
                self.authorizations[auth] = (amount, "authorized")
                self.by_key[idempotency_key] = auth
        self.faults.check("authorize", True)
        result = self.by_key[idempotency_key]
        if result is None:
            raise PaymentDeclined("card declined")
        return result

    def _move(self, auth: str, source: str, target: str) -> None:
        amount, state = self.authorizations[auth]
        if state == target:
            return  # idempotent repeat
        if state != source:
            raise ConflictError(f"{auth} is {state}, cannot become {target}")
        self.authorizations[auth] = (amount, target)

    async def capture(self, idempotency_key: str, authorization_id: str, amount: Money) -> None:
        self.faults.check("capture", False)
        self._move(authorization_id, "authorized", "captured")
        self.faults.check("capture", True)

    async def void(self, idempotency_key: str, authorization_id: str) -> None:
        self.faults.check("void", False)
        self._move(authorization_id, "authorized", "voided")
        self.faults.check("void", True)

    async def refund(self, idempotency_key: str, authorization_id: str, amount: Money) -> None:
        self.faults.check("refund", False)
        self._move(authorization_id, "captured", "refunded")
        self.faults.check("refund", True)

    def states(self) -> list[str]:
        return [state for _, state in self.authorizations.values()]


# ------------------------------------------------------------------------- unit of work


@dataclass(frozen=True, slots=True)
class Written:
    """One write of an order's progress (the fake keeps the history; the database keeps the last)."""

    order_id: str
    step: str
    outcome: StepOutcome
    detail: str = ""


@dataclass
class Store:
    orders: dict[str, tuple[Order, datetime]] = field(default_factory=dict)
    progress: dict[str, SagaProgress] = field(default_factory=dict)
    log: list[Written] = field(default_factory=list)


class FakeOrders(AbstractOrderRepository):
    def __init__(self, store: Store) -> None:
        super().__init__()
        self.store = store

    async def load(self, order_id: str) -> tuple[Order, SagaProgress] | None:
        if order_id not in self.store.orders:
            return None
        order = copy.deepcopy(self.store.orders[order_id][0])
        order.events = []
        return order, copy.deepcopy(self.store.progress.get(order_id, SagaProgress()))

    async def unfinished(self, limit: int = 100) -> list[tuple[Order, datetime]]:
        rows = [(copy.deepcopy(o), at) for o, at in self.store.orders.values() if o.status not in TERMINAL]
        return sorted(rows, key=lambda row: row[1])[:limit]

    async def claim_due(self, owner: str, *, now: datetime, until: datetime, limit: int) -> list[str]:
        claimed: list[str] = []
        for order_id, (order, _) in sorted(self.store.orders.items(), key=lambda item: item[1][1]):
            progress = self.store.progress.setdefault(order_id, SagaProgress())
            due = progress.next_attempt_at is None or progress.next_attempt_at <= now
            if order.status in TERMINAL or not due or len(claimed) >= limit:
                continue
            progress.lease_owner, progress.next_attempt_at = owner, until
            order.version += 1
            claimed.append(order_id)
        return claimed

    async def renew(self, owner: str, order_ids: Sequence[str], *, until: datetime) -> int:
        renewed = 0
        for order_id in order_ids:
            progress = self.store.progress.get(order_id)
            if progress is not None and progress.lease_owner == owner:
                progress.next_attempt_at = until
                renewed += 1
        return renewed

    async def list_for_customer(self, customer_id: str, *, limit: int, offset: int) -> list[Order]:
        mine = [copy.deepcopy(o) for o, _ in self.store.orders.values() if o.customer_id == customer_id]
        return mine[offset : offset + limit]

    async def page_for_customer(
        self, customer_id: str, *, limit: int, after: tuple[datetime, str] | None = None
    ) -> list[Order]:
        mine = sorted(
            (
                (at, o.id, copy.deepcopy(o))
                for o, at in self.store.orders.values()
                if o.customer_id == customer_id
            ),
            key=lambda row: (row[0], row[1]),
            reverse=True,
        )
        if after is not None:
            mine = [row for row in mine if (row[0], row[1]) < after]
        return [order for _, _, order in mine[:limit]]


class FakeUnitOfWork(AbstractUnitOfWork):
    def __init__(self, store: Store) -> None:
        self.store = store
        self.orders = FakeOrders(store)
        self.commits = 0

    async def commit(self) -> None:
        for order_id, (order, _) in self.orders.saved.items():
            stored, _ = self.store.orders[order_id]
            if stored.version != order.version:
                raise ConflictError(f"order {order_id} changed meanwhile")
        for order_id, (order, at, progress) in self.orders.added.items():
            if order_id in self.store.orders:
                raise ConflictError(f"order {order_id} exists")
            saved = copy.deepcopy(order)
            saved.version = 1
            self.store.orders[order_id] = (saved, at)
            self._note(order_id, progress)
        for order_id, (order, progress) in self.orders.saved.items():
            order.version += 1
            self.store.orders[order_id] = (copy.deepcopy(order), self.store.orders[order_id][1])
            self._note(order_id, progress)
        self.commits += 1
        await self.rollback()

    def _note(self, order_id: str, progress: SagaProgress) -> None:
        self.store.progress[order_id] = copy.deepcopy(progress)
        self.store.log.append(Written(order_id, progress.step, progress.outcome, progress.detail))

    async def rollback(self) -> None:
        self.orders.forget()


def unavailable(what: str = "upstream") -> UpstreamUnavailableError:
    return UpstreamUnavailableError(f"{what} unreachable")


class FakeTime:
    """A clock that moves only when the saga sleeps (its retry backoff): retries take no real time,
    and a test sees every delay the saga waited."""

    def __init__(self, start: datetime) -> None:
        self.current = start
        self.slept: list[float] = []

    def now(self) -> datetime:
        return self.current

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.current += timedelta(seconds=seconds)
