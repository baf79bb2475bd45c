"""Retry before compensating, over real HTTP: the saga with svc-b's HTTP clients against fakes of
svc-a's and svc-c's contracts on loopback sockets (tests/upstream_fakes.py; not the services).

- upstreams that fail transiently (5xx, a 409 "still in flight" asking to wait, a refused
  connection while the service is not yet listening) and then answer: the order confirms, each
  call repeated with the same Idempotency-Key, stock reserved and money captured once;
- a definite refusal (declined card, out of stock): compensated at once, no retry;
- an upstream that stays down past the order's deadline: cancelled ``upstream_unavailable`` and
  compensated.

The saga's sleeps are recorded (and really slept), so a test sees what it waited for without
timing anything.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import timedelta

from fakes import FakeUnitOfWork, Store
from upstream_fakes import FakeCatalogService, FakePaymentsService, serving

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery import StaticResolver
from caravan_commons.testing import free_port
from svc_b.domain.model import OrderStatus, StockState
from svc_b.infrastructure.clients import HttpCatalog, HttpPayments, payments_client_config
from svc_b.service_layer.retrying import RetryPolicy
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

EUR = "EUR"


@dataclass
class Sleeps:
    delays: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        await asyncio.sleep(seconds)


@dataclass
class World:
    catalog_service: FakeCatalogService
    payments_service: FakePaymentsService
    store: Store
    sleeps: Sleeps
    saga: Saga


def order(order_id: str, card: str = "tok_approve", quantity: int = 1) -> PlaceOrder:
    return PlaceOrder(order_id, "alice", [LineRequest("TENT-2P", quantity)], card_token=card)


@asynccontextmanager
async def world(*, deadline: float = 20.0, payments_listening: bool = True) -> AsyncIterator[World]:
    """The saga over HTTP; with ``payments_listening=False`` payments' port refuses connections
    until the test serves it (``serving(world.payments_service)``)."""
    catalog_service = FakeCatalogService(
        products={"TENT-2P": {"price": {"amount": 12_900, "currency": EUR}}}, stock={"TENT-2P": 5}
    )
    payments_service = FakePaymentsService(port=free_port())
    serve = (catalog_service, payments_service) if payments_listening else (catalog_service,)
    async with serving(*serve):
        resolver = StaticResolver({"svc-a": [catalog_service.url], "svc-c": [payments_service.url]})
        # a short circuit cooldown (as an open circuit's retry_after) keeps the test short
        config = ClientConfig(default_timeout=2.0, backoff_base=0.01, backoff_cap=0.05, circuit_cooldown=0.3)
        async with (
            ServiceClient(resolver, config) as client,
            ServiceClient(resolver, payments_client_config(config)) as payments_client,
        ):
            store, sleeps = Store(), Sleeps()
            saga = Saga(
                lambda: FakeUnitOfWork(store),
                HttpCatalog(client),
                HttpPayments(payments_client),
                retry=RetryPolicy(
                    deadline=timedelta(seconds=deadline), undo_for=timedelta(seconds=1), base=0.02, cap=0.2
                ),
                sleep=sleeps,
            )
            yield World(catalog_service, payments_service, store, sleeps, saga)


def keys(service: FakeCatalogService | FakePaymentsService, ending: str) -> set[str | None]:
    return {r.headers.get("Idempotency-Key") for r in service.requests if r.path.endswith(ending)}


async def test_5xx_answers_are_retried_with_the_same_key_and_the_order_confirms() -> None:
    async with world() as w:
        # more failures than one call's own attempts (3): only the saga's retries get through
        w.catalog_service.fail_with, w.catalog_service.fail_only = [503] * 4, "/reservations"
        w.payments_service.fail_with = [500] * 4
        placed = await w.saga.place(order("o-5xx"))
    assert placed.status is OrderStatus.CONFIRMED
    assert len(w.sleeps.delays) >= 2
    assert keys(w.catalog_service, "/reservations") == {'"order-o-5xx-reserve"'}
    assert keys(w.payments_service, "/authorize") == {'"order-o-5xx-authorize"'}
    assert w.catalog_service.stock == {"TENT-2P": 4}  # reserved once
    assert [p["status"] for p in w.payments_service.payments.values()] == ["captured"]  # paid once


async def test_a_409_in_flight_waits_what_the_upstream_asks_then_confirms() -> None:
    async with world() as w:
        w.payments_service.fail_with = [409]  # the same key still being processed at svc-c
        w.payments_service.retry_after = 0.3
        placed = await w.saga.place(order("o-409"))
    assert placed.status is OrderStatus.CONFIRMED
    assert w.sleeps.delays and w.sleeps.delays[0] >= 0.3  # Retry-After honoured
    assert [p["status"] for p in w.payments_service.payments.values()] == ["captured"]


async def test_a_refused_connection_is_retried_until_the_service_listens() -> None:
    async with world(payments_listening=False) as w:
        started = asyncio.Event()

        async def payments_comes_back() -> None:
            while len(w.sleeps.delays) < 3:  # the saga met refused connections a few times
                await asyncio.sleep(0.01)
            async with serving(w.payments_service):
                started.set()
                await asyncio.sleep(5)

        back = asyncio.create_task(payments_comes_back())
        try:
            placed = await w.saga.place(order("o-refused"))
        finally:
            back.cancel()
    assert started.is_set()
    assert placed.status is OrderStatus.CONFIRMED
    assert w.catalog_service.reservations["o-refused"]["status"] == "committed"


async def test_definite_refusals_compensate_at_once() -> None:
    async with world() as w:
        declined = await w.saga.place(order("o-declined", card="tok_decline"))
        short = await w.saga.place(order("o-short", quantity=99))
    assert (declined.status, declined.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert (short.status, short.cancel_reason) == (OrderStatus.CANCELLED, "out_of_stock")
    assert w.sleeps.delays == []  # no retry
    assert w.catalog_service.reservations["o-declined"]["status"] == "released"
    assert w.catalog_service.stock == {"TENT-2P": 5}


async def test_an_upstream_down_past_the_deadline_compensates_upstream_unavailable() -> None:
    async with world(deadline=1.0) as w:
        w.catalog_service.down.add("/reservations")  # svc-a refuses to reserve (503) throughout
        placed = await w.saga.place(order("o-down"))
    assert (placed.status, placed.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert placed.stock is StockState.NONE or placed.stock is StockState.RELEASED
    assert len(w.sleeps.delays) >= 2  # retried until the deadline, then compensated
    assert w.catalog_service.stock == {"TENT-2P": 5}
    assert w.payments_service.requests == []  # never got as far as paying


async def test_payments_down_past_the_deadline_gives_the_stock_back_and_finishes_when_it_returns() -> None:
    async with world(deadline=1.0) as w:
        w.payments_service.down.add("/authorize")
        placed = await w.saga.place(order("o-pay-down"))
        # cancelled for upstream_unavailable; the stock is back at once, while whether a lost
        # authorisation needs voiding waits for payments to answer
        assert (placed.status, placed.cancel_reason) == (OrderStatus.CANCELLING, "upstream_unavailable")
        assert w.catalog_service.stock == {"TENT-2P": 5}
        w.payments_service.down.clear()
        finished = await w.saga.advance("o-pay-down")
    assert (finished.status, finished.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert {p["status"] for p in w.payments_service.payments.values()} <= {"voided"}
