"""svc-b's API in-process (Litestar's test client, the whole commons stack) on a migrated SQLite
file. The upstream ports are the saga's in-memory fakes (tests/fakes.py): the HTTP clients have
their own tests (test_clients.py) and the real cross-service proof is tests/gateway."""

from __future__ import annotations

import shutil
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fakes import DOWN, FakeCatalog, FakePayments, unavailable
from litestar.testing import TestClient

import caravan_commons
from caravan_commons.idempotency import once
from caravan_commons.money import Money
from svc_b.bootstrap import Wiring, build_app
from svc_b.config import Settings
from svc_b.domain.model import Order, OrderLine
from svc_b.infrastructure.db.migrate import migrate
from svc_b.service_layer.placing import key_scope, order_id_for
from svc_b.service_layer.unit_of_work import SagaProgress, StepOutcome

OTHER = {"X-Caravan-Customer": f"other-{uuid.uuid4()}"}


@dataclass
class Api:
    client: TestClient[Any]
    catalog: FakeCatalog
    payments: FakePayments
    wiring: Wiring
    customer: str

    @property
    def me(self) -> dict[str, str]:
        return {"X-Caravan-Customer": self.customer}

    def place(
        self,
        lines: list[dict[str, Any]] | None = None,
        *,
        token: str = "tok_approve",
        key: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> Any:
        body = {"lines": lines or [{"sku": "TENT-2P", "quantity": 2}], "payment": {"card_token": token}}
        return self.client.post(
            "/orders",
            json=body,
            headers={**self.me, "Idempotency-Key": key or str(uuid.uuid4()), **(headers or {})},
        )


@pytest.fixture(scope="module")
def migrated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("svc-b-api") / "template.sqlite3"
    migrate(f"sqlite:///{path}")
    return path


@pytest.fixture
def database_url(migrated: Path, tmp_path: Path) -> str:
    """A fresh migrated database per test (a copy of one migrated file): the recovery loop's
    start-up run finds no order of another test."""
    shutil.copy(migrated, tmp_path / "db.sqlite3")
    return f"sqlite:///{tmp_path / 'db.sqlite3'}"


@pytest.fixture
def api(database_url: str) -> Iterator[Api]:
    # the sweeper runs at start-up, then when a test asks (sweep_once): its periodic runs stay out of the way
    # an upstream that stays down is given up on after 0.3 s (the saga's retry deadline)
    settings = Settings(
        trace_exporter="none",
        database_url=database_url,
        sweep_interval_s=3600,
        saga_retry_deadline_s=0.3,
    )
    app = build_app(settings, environ={"CARAVAN_DISCOVERY_BACKEND": "static"})
    wiring: Wiring = app.state.wiring
    catalog = FakeCatalog(
        stock={"TENT-2P": 10, "LAMP": 1},
        price_list={"TENT-2P": Money(12_900, "EUR"), "LAMP": Money(1_500, "EUR")},
    )
    payments = FakePayments(decline={"tok_decline"})
    assert wiring.saga is not None
    wiring.saga.catalog, wiring.saga.payments = catalog, payments
    with TestClient(app=app) as client:
        yield Api(client, catalog, payments, wiring, f"customer-{uuid.uuid4()}")


def assert_problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


# ------------------------------------------------------------------------------ placing


def test_an_order_is_placed_confirmed_and_readable_by_its_customer(api: Api) -> None:
    response = api.place([{"sku": "TENT-2P", "quantity": 2}, {"sku": "LAMP", "quantity": 1}])
    assert response.status_code == 201, response.text
    order = response.json()
    assert order["status"] == "confirmed"
    assert (order["stock"], order["payment"], order["cancel_reason"]) == ("committed", "captured", None)
    assert order["total"] == {"amount": 2 * 12_900 + 1_500, "currency": "EUR"}
    assert order["lines"][0] == {
        "sku": "TENT-2P",
        "quantity": 2,
        "unit_price": {"amount": 12_900, "currency": "EUR"},
        "subtotal": {"amount": 25_800, "currency": "EUR"},
    }
    assert response.headers["location"] == f"orders/{order['id']}"
    assert api.catalog.stock == {"TENT-2P": 8, "LAMP": 0}
    assert api.payments.states() == ["captured"]
    assert api.payments.tokens == {f"order-{order['id']}-authorize": "tok_approve"}

    mine = api.client.get(f"/orders/{order['id']}", headers=api.me)
    assert mine.status_code == 200
    assert mine.json() == order


def test_a_replay_answers_the_same_order_and_places_nothing(api: Api) -> None:
    first = api.place(key="k-replay")
    again = api.place(key="k-replay")
    assert again.status_code == 201
    assert again.json() == first.json()
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    assert api.catalog.stock["TENT-2P"] == 8  # reserved once
    assert len(api.payments.authorizations) == 1


def test_a_quoted_key_is_the_same_key(api: Api) -> None:
    first = api.place(key="k-quoted")
    again = api.place(key='"k-quoted"')
    assert again.json()["id"] == first.json()["id"]


def test_keys_belong_to_their_customer(api: Api) -> None:
    mine = api.place(key="shared-key")
    theirs = api.place(key="shared-key", headers=OTHER)
    assert theirs.status_code == 201
    assert theirs.json()["id"] != mine.json()["id"]


def test_the_same_key_with_another_payload_is_422(api: Api) -> None:
    api.place(key="k-other")
    assert_problem(api.place([{"sku": "LAMP", "quantity": 1}], key="k-other"), 422)
    assert_problem(api.place(token="tok_other", key="k-other"), 422)


def test_a_key_in_flight_is_409(api: Api) -> None:
    with once("k-busy", scope=key_scope(api.customer)):
        assert_problem(api.place(key="k-busy"), 409)
    assert api.catalog.stock["TENT-2P"] == 10


def test_without_an_idempotency_key_it_is_400(api: Api) -> None:
    response = api.client.post(
        "/orders",
        json={"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": "tok_approve"}},
        headers=api.me,
    )
    body = assert_problem(response, 400)
    assert "Idempotency-Key" in str(body)
    assert api.catalog.stock["TENT-2P"] == 10


def test_without_a_customer_it_is_401(api: Api) -> None:
    response = api.client.post(
        "/orders",
        json={"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": "tok_approve"}},
        headers={"Idempotency-Key": "k"},
    )
    assert_problem(response, 401)
    assert_problem(api.client.get("/orders"), 401)
    assert_problem(api.client.get(f"/orders/{uuid.uuid4()}"), 401)
    assert_problem(api.client.post(f"/orders/{uuid.uuid4()}/cancel"), 401)


def test_a_declined_card_cancels_the_order_and_releases_the_stock(api: Api) -> None:
    response = api.place(token="tok_decline")
    assert response.status_code == 201
    order = response.json()
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "payment_declined")
    assert (order["stock"], order["payment"]) == ("released", "none")
    assert api.catalog.stock["TENT-2P"] == 10
    assert api.catalog.reservations[order["id"]][1] == "released"


def test_out_of_stock_cancels_the_order(api: Api) -> None:
    order = api.place([{"sku": "LAMP", "quantity": 2}]).json()
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "out_of_stock")
    assert api.payments.authorizations == {}


def test_an_unknown_product_is_404_and_places_nothing(api: Api) -> None:
    assert_problem(api.place([{"sku": "NOPE-1", "quantity": 1}], key="k-unknown"), 404, "unknown-product")
    assert api.client.get("/orders", headers=api.me).json()["items"] == []


def test_an_unreachable_catalog_before_pricing_is_503_and_the_key_can_be_retried(api: Api) -> None:
    api.catalog.faults.add("prices", unavailable("svc-a"))
    assert_problem(api.place(key="k-retry"), 503, "upstream-unavailable")
    assert api.client.get("/orders", headers=api.me).json()["items"] == []
    retried = api.place(key="k-retry")
    assert retried.status_code == 201
    assert retried.json()["status"] == "confirmed"


def test_an_unreachable_catalog_while_reserving_cancels_the_order(api: Api) -> None:
    api.catalog.faults.add("reserve", unavailable("svc-a"), times=DOWN)
    order = api.place().json()
    assert (order["status"], order["cancel_reason"]) == ("cancelled", "upstream_unavailable")


async def test_an_order_left_half_way_is_finished_by_the_sweeper_and_then_replayed(api: Api) -> None:
    api.payments.faults.add("capture", unavailable("svc-c"), times=DOWN)
    first = api.place(key="k-half")
    assert first.status_code == 202  # still moving: the sweeper finishes it
    assert first.json()["status"] == "payment_authorized"
    assert "idempotent-replayed" not in api.place(key="k-half").headers  # still moving: current state
    api.payments.faults.clear()  # svc-c is back
    runner = api.wiring.runner
    assert runner is not None
    report = await runner.sweep_once(now=datetime.now(UTC) + timedelta(seconds=10))  # once it is due
    await runner.idle()
    assert report.claimed == [first.json()["id"]]
    assert runner.finished == {first.json()["id"]: "confirmed"}
    polled = api.client.get(f"/orders/{first.json()['id']}", headers=api.me).json()
    assert polled["status"] == "confirmed"
    final = api.place(key="k-half")
    assert final.json() == polled
    assert api.place(key="k-half").headers["idempotent-replayed"] == "true"
    assert api.payments.states() == ["captured"]


@pytest.mark.parametrize(
    "body",
    [
        {"lines": [], "payment": {"card_token": "tok_approve"}},
        {"lines": [{"sku": "TENT-2P", "quantity": 0}], "payment": {"card_token": "tok_approve"}},
        {"lines": [{"sku": "TENT-2P", "quantity": 10_001}], "payment": {"card_token": "tok_approve"}},
        {"lines": [{"sku": "tent", "quantity": 1}], "payment": {"card_token": "tok_approve"}},
        {"lines": [{"sku": "TENT-2P", "quantity": "1"}], "payment": {"card_token": "tok_approve"}},
        {"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": ""}},
        {"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": "tok approve"}},
        {"lines": [{"sku": "TENT-2P", "quantity": 1}]},
        {"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": "t"}, "extra": 1},
        {"lines": [{"sku": "TENT-2P", "quantity": 1, "price": 1}], "payment": {"card_token": "t"}},
        {"lines": [{"sku": f"SKU-{i}", "quantity": 1} for i in range(101)], "payment": {"card_token": "t"}},
        [],
    ],
)
def test_bad_bodies_are_400_problems(api: Api, body: Any) -> None:
    response = api.client.post("/orders", json=body, headers={**api.me, "Idempotency-Key": str(uuid.uuid4())})
    assert_problem(response, 400)
    assert api.catalog.stock["TENT-2P"] == 10


def test_a_sku_twice_is_a_400_problem(api: Api) -> None:
    response = api.place([{"sku": "TENT-2P", "quantity": 1}, {"sku": "TENT-2P", "quantity": 1}])
    assert_problem(response, 400, "invalid-order")
    assert api.catalog.stock["TENT-2P"] == 10


def test_malformed_json_and_bad_keys_are_400_problems(api: Api) -> None:
    headers = {**api.me, "Idempotency-Key": "k", "Content-Type": "application/json"}
    assert_problem(api.client.post("/orders", content=b"{not json", headers=headers), 400)
    for bad in ("", '""', "a b", "x" * 300):
        response = api.client.post(
            "/orders",
            json={"lines": [{"sku": "TENT-2P", "quantity": 1}], "payment": {"card_token": "tok_approve"}},
            headers={**api.me, "Idempotency-Key": bad},
        )
        assert_problem(response, 400)


# ------------------------------------------------------------------------------- reading


def test_another_customers_order_is_404(api: Api) -> None:
    order = api.place().json()
    OTHER = {"X-Caravan-Customer": f"other-{uuid.uuid4()}"}
    assert_problem(api.client.get(f"/orders/{order['id']}", headers=OTHER), 404)
    assert_problem(api.client.post(f"/orders/{order['id']}/cancel", headers=OTHER), 404)
    assert api.client.get("/orders", headers=OTHER).json()["items"] == []
    assert_problem(api.client.get("/orders/not-an-order", headers=api.me), 404)


def test_the_list_is_newest_first_and_paginated_by_cursor(api: Api) -> None:
    customer = {"X-Caravan-Customer": f"pager-{uuid.uuid4()}"}
    placed = [api.place(headers=customer).json()["id"] for _ in range(5)]
    seen: list[str] = []
    cursor: str | None = None
    pages = 0
    while True:
        params: dict[str, Any] = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        page = api.client.get("/orders", params=params, headers=customer)
        assert page.status_code == 200, page.text
        body = page.json()
        seen += [item["id"] for item in body["items"]]
        pages += 1
        cursor = body["next_cursor"]
        if cursor is None:
            break
    assert seen == list(reversed(placed))
    assert pages == 3


@pytest.mark.parametrize("query", ["limit=0", "limit=101", "limit=x", "cursor=abc", "cursor=12.not-an-id"])
def test_bad_list_parameters_are_400_problems(api: Api, query: str) -> None:
    assert_problem(api.client.get(f"/orders?{query}", headers=api.me), 400)


# ------------------------------------------------------------------------------ cancelling


def test_cancelling_a_confirmed_order_refunds_and_releases(api: Api) -> None:
    order = api.place().json()
    response = api.client.post(f"/orders/{order['id']}/cancel", headers=api.me)
    assert response.status_code == 200, response.text
    cancelled = response.json()
    assert (cancelled["status"], cancelled["cancel_reason"]) == ("cancelled", "customer_cancelled")
    assert (cancelled["stock"], cancelled["payment"]) == ("released", "refunded")
    assert api.catalog.stock["TENT-2P"] == 10
    assert api.payments.states() == ["refunded"]
    again = api.client.post(f"/orders/{order['id']}/cancel", headers=api.me)
    assert again.status_code == 200
    assert again.json() == cancelled
    assert api.payments.states() == ["refunded"]


def test_an_order_still_moving_cannot_be_cancelled(api: Api) -> None:
    api.payments.faults.add("capture", unavailable("svc-c"), times=DOWN)
    order = api.place().json()
    assert_problem(api.client.post(f"/orders/{order['id']}/cancel", headers=api.me), 409)


# ------------------------------------------------------------------------------ the service


def test_liveness_readiness_and_info(api: Api) -> None:
    assert api.client.get("/health/live").json()["service"] == "svc-b"
    ready = api.client.get("/health/ready")
    assert ready.status_code == 200
    assert ready.json()["checks"] == {"database": "ok"}
    assert api.client.get("/info").json() == {
        "service": "svc-b",
        "version": Settings().service_version,
        "commons": caravan_commons.__version__,
    }


def test_an_unknown_path_is_a_problem_document(api: Api) -> None:
    assert_problem(api.client.get("/nothing-here"), 404)


def test_readiness_fails_while_migrations_are_pending(tmp_path: Path) -> None:
    settings = Settings(trace_exporter="none", database_url=f"sqlite:///{tmp_path / 'empty.sqlite3'}")
    app = build_app(settings, environ={"CARAVAN_DISCOVERY_BACKEND": "static"})
    with TestClient(app=app) as client:
        assert_problem(client.get("/health/ready"), 503)


async def test_a_repeat_of_a_key_whose_order_another_instance_drives_answers_it_as_it_stands(
    api: Api,
) -> None:
    """Another instance placed the order with this key and drives it right now (holds its lease)."""
    assert api.wiring.desk is not None and api.wiring.saga is not None
    secret = api.wiring.desk.id_secret

    async def store(key: str, lease_until: datetime) -> None:
        order_id = order_id_for(api.customer, key, secret)
        progress = SagaProgress("reserve_stock", StepOutcome.STARTED, ("reserve_stock",))
        progress.lease_owner, progress.next_attempt_at = "elsewhere", lease_until
        async with api.wiring.saga.uow() as uow:
            uow.orders.add(
                Order.place(
                    order_id,
                    api.customer,
                    [OrderLine("TENT-2P", 2, Money(12_900, "EUR"))],
                    card_token="tok_approve",
                    placed_at=datetime.now(UTC),
                ),
                datetime.now(UTC),
                progress,
            )
            await uow.commit()

    await store("k-elsewhere", datetime.now(UTC) + timedelta(seconds=30))
    answer = api.place(key="k-elsewhere")
    assert (answer.status_code, answer.json()["status"]) == (202, "pending")  # as it stands
    assert answer.headers["location"] == f"orders/{answer.json()['id']}"


# ------------------------------------------------------------------------------ metrics


def _samples(api: Api) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = api.client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_metrics_count_compensations_by_reason_and_show_unfinished_orders_and_circuits(api: Api) -> None:
    unavailable_reason = ("saga_compensations_total", frozenset({("reason", "upstream_unavailable")}))
    before = _samples(api)
    deadline = (
        time.monotonic() + 10
    )  # the gauges are sampled in the background: the first round may still run
    while ("orders_not_terminal", frozenset()) not in before and time.monotonic() < deadline:
        time.sleep(0.05)
        before = _samples(api)
    assert before[unavailable_reason] >= 0  # every reason exists from the start
    assert ("orders_not_terminal", frozenset()) in before
    assert ("orders_not_terminal_oldest_age_seconds", frozenset()) in before
    assert before[("client_circuit_open", frozenset({("upstream", "svc-a")}))] == 0
    assert ("client_circuit_opens_total", frozenset({("upstream", "svc-c")})) in before
    api.catalog.faults.add("reserve", unavailable("svc-a"), times=DOWN)
    assert api.place().json()["cancel_reason"] == "upstream_unavailable"
    assert _samples(api)[unavailable_reason] == before[unavailable_reason] + 1


# ------------------------------------------------------------------------------ 201 / 202 and Prefer


def test_an_order_that_finishes_within_the_wait_is_201_else_202_with_its_location(api: Api) -> None:
    api.payments.delay = 0.4  # svc-c answers slowly
    accepted = api.place(key="k-slow", headers={"Prefer": "wait=0"})
    assert accepted.status_code == 202, accepted.text
    assert accepted.headers["preference-applied"] == "wait=0"
    assert accepted.headers["retry-after"] == "1"
    order = accepted.json()
    assert order["status"] in ("pending", "stock_reserved", "payment_authorized")
    assert accepted.headers["location"] == f"orders/{order['id']}"
    # the runner goes on without the request: poll the Location
    for _ in range(100):
        polled = api.client.get(f"/orders/{order['id']}", headers=api.me).json()
        if polled["status"] == "confirmed":
            break
        time.sleep(0.05)
    assert polled["status"] == "confirmed"
    replay = api.place(key="k-slow")
    assert (replay.status_code, replay.headers["idempotent-replayed"]) == (201, "true")
    assert api.payments.states() == ["captured"]


def test_prefer_wait_lets_the_client_wait_longer_and_respond_async_not_at_all(api: Api) -> None:
    api.payments.delay = 0.3
    waited = api.place(headers={"Prefer": "wait=10"})
    assert (waited.status_code, waited.json()["status"]) == (201, "confirmed")
    assert waited.headers["preference-applied"] == "wait=10"
    assert "prefer" in waited.headers["vary"].lower()
    not_waited = api.place(headers={"Prefer": "respond-async"})
    assert not_waited.status_code == 202
    assert not_waited.headers["preference-applied"] == "respond-async"
    capped = api.place(headers={"Prefer": "wait=999999"})
    assert capped.headers["preference-applied"] == "wait=60"  # at most place_wait_max_s


def test_a_malformed_or_unknown_preference_is_ignored(api: Api) -> None:
    for prefer in ("wait=soon", "wait=-1", "handling=strict", "return=minimal"):
        answer = api.place(headers={"Prefer": prefer})
        assert answer.status_code == 201, (prefer, answer.text)
        assert "preference-applied" not in answer.headers


def test_its_circuits_stay_open_for_the_configured_cooldown(database_url: str) -> None:
    """CARAVAN_CIRCUIT_COOLDOWN_S reaches both upstreams' breakers (commons' default is 5 s)."""
    settings = Settings(
        trace_exporter="none", database_url=database_url, sweep_interval_s=3600, circuit_cooldown_s=0.7
    )
    app = build_app(settings, environ={"CARAVAN_DISCOVERY_BACKEND": "static"})
    wiring: Wiring = app.state.wiring
    with TestClient(app=app):
        assert wiring.catalog_client.circuit("svc-a").cooldown == 0.7
        assert wiring.payments_client.circuit("svc-c").cooldown == 0.7
    assert Settings().circuit_cooldown_s == 1.0
