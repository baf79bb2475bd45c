"""The HTTP clients of svc-a and svc-c against fakes of their documented contracts served over
real loopback sockets (tests/upstream_fakes.py): requests as the contracts state them, every
answer mapped to the saga's errors, and the saga itself run over HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from fakes import FakeUnitOfWork, Store
from upstream_fakes import FakeCatalogService, FakePaymentsService, serving

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery import StaticResolver
from caravan_commons.errors import DeadlineExceededError, UpstreamUnavailableError
from caravan_commons.idempotency import header_value
from caravan_commons.money import Money
from caravan_commons.testing import free_port
from svc_b.domain.model import OrderStatus
from svc_b.infrastructure.clients import HttpCatalog, HttpPayments, payments_client_config, reservation_body
from svc_b.service_layer.ports import (
    NothingAuthorized,
    OutOfStock,
    PaymentDeclined,
    ReservationLost,
    StockRequest,
    UnknownProduct,
    step_key,
)
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

EUR = "EUR"


@dataclass
class Setup:
    catalog_service: FakeCatalogService
    payments_service: FakePaymentsService
    client: ServiceClient
    catalog: HttpCatalog
    payments: HttpPayments


def signer(service: str, method: str, path: str) -> dict[str, str]:
    return {"X-Test-Caller": f"svc-b→{service}"}


@pytest.fixture
async def setup() -> AsyncIterator[Setup]:
    catalog_service = FakeCatalogService(
        products={
            "TENT-2P": {"price": {"amount": 12_900, "currency": EUR}},
            "LAMP": {"price": {"amount": 1_500, "currency": EUR}},
            "OLD-1": {"price": {"amount": 100, "currency": EUR}, "active": False},
        },
        stock={"TENT-2P": 5, "LAMP": 1, "OLD-1": 0},
    )
    payments_service = FakePaymentsService()
    async with serving(catalog_service, payments_service):
        resolver = StaticResolver({"svc-a": [catalog_service.url], "svc-c": [payments_service.url]})
        config = ClientConfig(default_timeout=2.0, backoff_base=0.01)
        payments_config = payments_client_config(config)  # as bootstrap configures it
        async with (
            ServiceClient(resolver, config, headers_provider=signer) as client,
            ServiceClient(resolver, payments_config, headers_provider=signer) as payments_client,
        ):
            yield Setup(
                catalog_service, payments_service, client, HttpCatalog(client), HttpPayments(payments_client)
            )


# ------------------------------------------------------------------------------ catalog


async def test_prices_come_from_one_products_query_signed_as_svc_b(setup: Setup) -> None:
    prices = await setup.catalog.prices(["TENT-2P", "LAMP", "TENT-2P"])
    assert prices == {"TENT-2P": Money(12_900, EUR), "LAMP": Money(1_500, EUR)}
    [request] = setup.catalog_service.requests
    assert (request.method, request.path, request.query) == (
        "GET",
        "/products",
        [("sku", "TENT-2P"), ("sku", "LAMP"), ("limit", "2")],
    )
    assert request.headers["X-Test-Caller"] == "svc-b→svc-a"


async def test_more_than_a_hundred_skus_are_asked_in_batches(setup: Setup) -> None:
    skus = [f"SKU-{i}" for i in range(150)]
    setup.catalog_service.products.update({s: {"price": {"amount": 1, "currency": EUR}} for s in skus})
    assert len(await setup.catalog.prices(skus)) == 150
    assert [len(r.query) for r in setup.catalog_service.requests] == [101, 51]  # the skus and a limit


@pytest.mark.parametrize("skus", [["NOPE-1"], ["TENT-2P", "NOPE-1"], ["OLD-1"]])
async def test_unknown_or_inactive_products_are_unknown(setup: Setup, skus: list[str]) -> None:
    with pytest.raises(UnknownProduct):
        await setup.catalog.prices(skus)


async def test_reserving_sends_the_order_and_maps_refusals(setup: Setup) -> None:
    await setup.catalog.reserve("o-1", [StockRequest("TENT-2P", 2)])
    sent = setup.catalog_service.requests[-1]
    assert sent.body == {"order_id": "o-1", "lines": [{"sku": "TENT-2P", "quantity": 2}]}
    # what the contract test checks against svc-a's document, and the step's one key scheme
    assert sent.body == reservation_body("o-1", [StockRequest("TENT-2P", 2)])
    assert sent.headers["Idempotency-Key"] == header_value(step_key("o-1", "reserve"))
    assert setup.catalog_service.stock["TENT-2P"] == 3
    await setup.catalog.reserve("o-1", [StockRequest("TENT-2P", 2)])  # idempotent per order
    assert setup.catalog_service.stock["TENT-2P"] == 3
    with pytest.raises(OutOfStock) as out:
        await setup.catalog.reserve("o-2", [StockRequest("LAMP", 2)])
    assert out.value.extensions["reason"] == "out-of-stock"
    with pytest.raises(OutOfStock):  # the product vanished after pricing: it cannot be supplied
        await setup.catalog.reserve("o-3", [StockRequest("GONE-1", 1)])


async def test_commit_and_release_are_idempotent_and_release_without_reservation_is_a_no_op(
    setup: Setup,
) -> None:
    await setup.catalog.reserve("o-1", [StockRequest("TENT-2P", 2)])
    await setup.catalog.commit("o-1")
    await setup.catalog.commit("o-1")
    await setup.catalog.release("o-1")
    await setup.catalog.release("o-1")
    assert setup.catalog_service.stock["TENT-2P"] == 5
    await setup.catalog.release("never-reserved")
    with pytest.raises(ReservationLost):
        await setup.catalog.commit("o-1")  # released: it can no longer be sold
    paths = [r.path for r in setup.catalog_service.requests]
    assert "/reservations/o-1/commit" in paths and "/reservations/o-1/release" in paths
    assert all(r.headers.get("Idempotency-Key") for r in setup.catalog_service.requests if r.method == "POST")


# ------------------------------------------------------------------------------ payments


async def test_authorize_sends_the_contract_body_with_the_key_and_returns_the_payment_id(
    setup: Setup,
) -> None:
    auth = await setup.payments.authorize(
        "order-o-1-authorize", "o-1", "alice", Money(2_500, EUR), "tok_approve"
    )
    assert auth == "pay-0"
    [request] = setup.payments_service.requests
    assert request.body == {
        "order_id": "o-1",
        "amount": {"amount": 2_500, "currency": EUR},
        "card_token": "tok_approve",
    }
    assert request.headers["Idempotency-Key"] == '"order-o-1-authorize"'
    assert request.headers["X-Test-Caller"] == "svc-b→svc-c"
    again = await setup.payments.authorize(
        "order-o-1-authorize", "o-1", "alice", Money(2_500, EUR), "tok_approve"
    )
    assert again == auth


async def test_a_declined_card_and_an_unknown_token_are_declines(setup: Setup) -> None:
    with pytest.raises(PaymentDeclined) as declined:
        await setup.payments.authorize("k1", "o-1", "alice", Money(100, EUR), "tok_decline")
    assert declined.value.extensions["reason"] == "card_declined"
    with pytest.raises(PaymentDeclined) as unknown:
        await setup.payments.authorize("k2", "o-2", "alice", Money(100, EUR), "tok_nobody_knows")
    assert unknown.value.extensions["reason"] == "unknown-card-token"


async def test_a_processor_error_is_nothing_authorized_and_does_not_open_the_circuit(setup: Setup) -> None:
    for attempt in range(8):  # more than the circuit's failure threshold
        with pytest.raises(NothingAuthorized):
            await setup.payments.authorize(f"k{attempt}", "o-1", "alice", Money(100, EUR), "tok_error")
    assert len(setup.payments_service.requests) == 8  # a definite answer: not retried
    assert await setup.payments.authorize("k-ok", "o-2", "alice", Money(100, EUR), "tok_approve")


async def test_other_5xx_of_payments_are_retried(setup: Setup) -> None:
    setup.payments_service.fail_with = [503, 500]
    assert await setup.payments.authorize("k", "o-1", "alice", Money(100, EUR), "tok_approve")
    assert len(setup.payments_service.requests) == 3


async def test_capture_void_and_refund_send_amounts_and_keys(setup: Setup) -> None:
    first = await setup.payments.authorize("k1", "o-1", "alice", Money(700, EUR), "tok_approve")
    await setup.payments.capture("order-o-1-capture", first, Money(700, EUR))
    await setup.payments.capture("order-o-1-capture", first, Money(700, EUR))
    await setup.payments.refund("order-o-1-refund", first, Money(700, EUR))
    second = await setup.payments.authorize("k2", "o-2", "alice", Money(300, EUR), "tok_approve")
    await setup.payments.void("order-o-2-void", second)
    moves = [(r.path, r.body, r.headers["Idempotency-Key"]) for r in setup.payments_service.requests[1:]]
    assert moves == [
        (f"/payments/{first}/capture", {"amount": {"amount": 700, "currency": EUR}}, '"order-o-1-capture"'),
        (f"/payments/{first}/capture", {"amount": {"amount": 700, "currency": EUR}}, '"order-o-1-capture"'),
        (f"/payments/{first}/refund", {"amount": {"amount": 700, "currency": EUR}}, '"order-o-1-refund"'),
        ("/payments/authorize", moves[3][1], '"k2"'),
        (f"/payments/{second}/void", None, '"order-o-2-void"'),
    ]
    with pytest.raises(PaymentDeclined):  # a voided authorisation cannot be captured
        await setup.payments.capture("order-o-2-capture", second, Money(300, EUR))


# ---------------------------------------------------------------------- unreachable upstreams


async def test_a_5xx_that_outlasts_the_retries_is_unavailable(setup: Setup) -> None:
    setup.catalog_service.fail_with = [500, 500, 500]
    with pytest.raises(UpstreamUnavailableError):
        await setup.catalog.prices(["TENT-2P"])
    setup.catalog_service.fail_with = [503]
    assert await setup.catalog.prices(["LAMP"]) == {"LAMP": Money(1_500, EUR)}  # a retry got through


async def test_an_unforeseen_4xx_is_unavailable_not_a_crash(setup: Setup) -> None:
    setup.catalog_service.fail_with = [403]
    with pytest.raises(UpstreamUnavailableError):
        await setup.catalog.reserve("o-1", [StockRequest("TENT-2P", 1)])
    setup.payments_service.fail_with = [409]  # the same key still in flight at svc-c
    with pytest.raises(UpstreamUnavailableError):
        await setup.payments.authorize("k", "o-1", "alice", Money(1, EUR), "tok_approve")


async def test_a_closed_port_is_unavailable() -> None:
    resolver = StaticResolver({"svc-a": [f"http://127.0.0.1:{free_port()}"]})
    async with ServiceClient(resolver, ClientConfig(default_timeout=2.0, backoff_base=0.01)) as client:
        with pytest.raises(UpstreamUnavailableError):
            await HttpCatalog(client).prices(["TENT-2P"])


async def test_a_slow_upstream_passes_the_deadline(setup: Setup) -> None:
    setup.payments_service.delay = 1.0
    slow = HttpPayments(setup.client, timeout=0.2)
    with pytest.raises(DeadlineExceededError):
        await slow.authorize("k", "o-1", "alice", Money(1, EUR), "tok_approve")


# ------------------------------------------------------------------------------ the saga over HTTP


async def test_the_saga_over_http_confirms_and_a_declined_card_gives_the_stock_back(setup: Setup) -> None:
    store = Store()
    saga = Saga(lambda: FakeUnitOfWork(store), setup.catalog, setup.payments)
    ok = await saga.place(PlaceOrder("o-ok", "alice", [LineRequest("TENT-2P", 2)], card_token="tok_approve"))
    assert ok.status is OrderStatus.CONFIRMED
    assert setup.catalog_service.reservations["o-ok"]["status"] == "committed"
    assert setup.payments_service.payments[ok.authorization_id or ""]["status"] == "captured"
    declined = await saga.place(
        PlaceOrder("o-no", "alice", [LineRequest("TENT-2P", 2)], card_token="tok_decline")
    )
    assert (declined.status, declined.cancel_reason) == (OrderStatus.CANCELLED, "payment_declined")
    assert setup.catalog_service.reservations["o-no"]["status"] == "released"
    assert setup.catalog_service.stock["TENT-2P"] == 3  # only the confirmed order's two are gone


async def test_the_saga_over_http_cancels_a_processor_error_and_releases(setup: Setup) -> None:
    store = Store()
    saga = Saga(lambda: FakeUnitOfWork(store), setup.catalog, setup.payments)
    order = await saga.place(PlaceOrder("o-err", "alice", [LineRequest("LAMP", 1)], card_token="tok_error"))
    assert (order.status, order.cancel_reason) == (OrderStatus.CANCELLED, "upstream_unavailable")
    assert setup.catalog_service.reservations["o-err"]["status"] == "released"
    assert setup.catalog_service.stock["LAMP"] == 1
