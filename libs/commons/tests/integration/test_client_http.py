"""ServiceClient against real aiohttp servers on 127.0.0.1: outcomes and request counts, no timings."""

from __future__ import annotations

import asyncio

import msgspec
import pytest
from aiohttp import web
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from upstream_server import (
    FakeClock,
    always,
    ok_json,
    problem,
    serve,
    slow_honouring_deadline,
    unused_port,
)

from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.deadline import DEADLINE_HEADER, Deadline, use_deadline
from caravan_commons.discovery import StaticResolver
from caravan_commons.errors import (
    ClientError,
    ConflictError,
    DeadlineExceededError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    UnprocessableError,
    UpstreamUnavailableError,
)
from caravan_commons.idempotency import require_key
from caravan_commons.resilience import CircuitState, RetryBudget

FAST = ClientConfig(backoff_base=0.001, backoff_cap=0.002, default_timeout=5.0)


def frozen_budget(*, ratio: float = 0.2, floor: int = 2) -> RetryBudget:
    # A clock that never moves: the per-second floor is granted once, so counts are exact.
    return RetryBudget(ratio=ratio, min_per_second=floor, clock=lambda: 0.0)


def client_for(urls: dict[str, list[str]], config: ClientConfig = FAST, **kwargs) -> ServiceClient:
    return ServiceClient(StaticResolver(urls), config, **kwargs)


class Echo(msgspec.Struct):
    path: str
    method: str


async def test_get_and_post_round_trip_decode_into_structs() -> None:
    async with serve(ok_json) as up, client_for({"svc-a": [up.url]}) as client:
        got = await client.get("svc-a", "/things/1")
        posted = await client.post("svc-a", "/things", json={"name": "x"})
    assert got.status == 200 and got.json(Echo) == Echo(path="/things/1", method="GET")
    assert posted.json(Echo).method == "POST"
    assert up.seen[1].body == b'{"name":"x"}'
    assert up.seen[1].headers["Content-Type"] == "application/json"


async def test_deadline_header_is_sent_and_bounded_by_the_timeout_and_the_current_deadline() -> None:
    async with serve(ok_json) as up, client_for({"svc-a": [up.url]}) as client:
        await client.get("svc-a", "/", timeout=2.0)
        with use_deadline(Deadline.after(0.5)):
            await client.get("svc-a", "/", timeout=30.0)
    first, second = (int(s.headers[DEADLINE_HEADER]) for s in up.seen)
    assert 0 < first <= 2000
    assert 0 < second <= 500


async def test_refused_connection_is_upstream_unavailable() -> None:
    async with client_for({"svc-a": [f"http://127.0.0.1:{unused_port()}"]}) as client:
        with pytest.raises(UpstreamUnavailableError) as info:
            await client.get("svc-a", "/")
    assert "cannot connect" in info.value.detail


async def test_unknown_service_is_upstream_unavailable() -> None:
    async with client_for({"svc-a": ["http://127.0.0.1:1"]}) as client:
        with pytest.raises(
            UpstreamUnavailableError, match="no healthy instance of 'svc-z': discovery lists none"
        ):
            await client.get("svc-z", "/")


async def test_refused_instance_is_skipped_even_for_post_without_key_because_nothing_was_sent() -> None:
    dead = f"http://127.0.0.1:{unused_port()}"
    async with serve(ok_json) as up, client_for({"svc-a": [dead, up.url]}) as client:
        results = [await client.post("svc-a", "/orders", json={"n": i}) for i in range(6)]
    assert [r.status for r in results] == [200] * 6
    assert up.count("POST") == 6  # each POST reached the live instance exactly once


async def test_round_robin_spreads_calls_over_instances() -> None:
    async with (
        serve(ok_json) as one,
        serve(ok_json) as two,
        client_for({"svc-a": [one.url, two.url]}) as client,
    ):
        for _ in range(10):
            await client.get("svc-a", "/")
    assert (one.count(), two.count()) == (5, 5)


async def test_slow_answer_hits_the_deadline_and_the_server_side_work_is_cancelled() -> None:
    async with serve(slow_honouring_deadline) as up, client_for({"svc-a": [up.url]}) as client:
        with pytest.raises(DeadlineExceededError):
            await client.get("svc-a", "/slow", timeout=0.2)
        # The server read the propagated deadline and stopped its own work (generous wait, no timing).
        await asyncio.wait_for(up.cancelled.wait(), timeout=10)
    assert up.events == ["started", "cancelled-by-deadline"]
    assert up.count() == 1  # the deadline is the whole budget: no retry after it passed
    assert int(up.seen[0].headers[DEADLINE_HEADER]) <= 200


async def test_attempt_timeout_moves_a_get_from_a_stuck_instance_to_a_healthy_one() -> None:
    config = msgspec.structs.replace(FAST, attempt_timeout=0.2, default_timeout=30.0)
    async with (
        serve(slow_honouring_deadline) as stuck,
        serve(ok_json) as healthy,
        client_for(
            {"svc-a": [stuck.url, healthy.url]}, config, retry_budget_factory=lambda: frozen_budget(floor=5)
        ) as client,
    ):
        answer = await client.get("svc-a", "/item")
        await asyncio.wait_for(stuck.cancelled.wait(), timeout=10)
        with pytest.raises(DeadlineExceededError):  # a POST without key is not moved: it may have run
            await client.post("svc-a", "/item", json={})
    assert answer.status == 200 and answer.instance.port == healthy.port
    assert int(stuck.seen[0].headers[DEADLINE_HEADER]) <= 200  # the attempt's own budget was sent
    assert (stuck.count("GET"), healthy.count("GET")) == (1, 1)
    assert stuck.count("POST") + healthy.count("POST") == 1


async def test_5xx_burst_retries_stay_within_the_budget() -> None:
    budget = frozen_budget(ratio=0.2, floor=2)
    config = msgspec.structs.replace(FAST, max_attempts=3, circuit_failure_threshold=10_000)
    async with (
        serve(always(503)) as up,
        client_for({"svc-a": [up.url]}, config, retry_budget_factory=lambda: budget) as client,
    ):
        for _ in range(50):
            with pytest.raises(UpstreamUnavailableError):
                await client.get("svc-a", "/stock")
    retries = up.count() - 50
    assert retries == budget.retries
    assert 2 <= retries <= 0.2 * 50 + 2  # at most 20 % of requests plus the floor
    assert budget.refused > 0


async def test_post_without_idempotency_key_is_never_retried_with_one_it_is() -> None:
    config = msgspec.structs.replace(FAST, max_attempts=3, circuit_failure_threshold=10_000)
    async with (
        serve(always(503)) as up,
        client_for(
            {"svc-a": [up.url]}, config, retry_budget_factory=lambda: frozen_budget(floor=100)
        ) as client,
    ):
        with pytest.raises(UpstreamUnavailableError):
            await client.post("svc-a", "/reservations", json={"sku": "A"})
        assert up.count("POST") == 1
        with pytest.raises(UpstreamUnavailableError):
            await client.post("svc-a", "/reservations", json={"sku": "A"}, idempotency_key="k-1")
        assert up.count("POST") == 1 + 3
    assert all(require_key(s.headers) == "k-1" for s in up.seen[1:])
    assert up.seen[1].headers["Idempotency-Key"] == '"k-1"'  # sent as an sf-string


async def test_idempotent_get_recovers_from_a_transient_503() -> None:
    state = {"left": 2}

    async def flaky(request: web.Request) -> web.Response:
        if state["left"] > 0:
            state["left"] -= 1
            return problem(503, "upstream-unavailable", "warming up")
        return await ok_json(request)

    async with (
        serve(flaky) as up,
        client_for({"svc-a": [up.url]}, retry_budget_factory=lambda: frozen_budget(floor=5)) as client,
    ):
        answer = await client.get("svc-a", "/")
    assert answer.status == 200 and up.count() == 3


async def test_retry_after_beyond_the_deadline_stops_retrying() -> None:
    async def busy(request: web.Request) -> web.Response:
        response = problem(503, "upstream-unavailable", "busy")
        response.headers["Retry-After"] = "30"
        return response

    async with (
        serve(busy) as up,
        client_for({"svc-a": [up.url]}, retry_budget_factory=lambda: frozen_budget(floor=5)) as client,
    ):
        with pytest.raises(UpstreamUnavailableError, match="busy"):
            await client.get("svc-a", "/", timeout=2.0)
    assert up.count() == 1


async def test_circuit_opens_after_consecutive_failures_and_closes_after_recovery() -> None:
    clock = FakeClock()
    healthy = {"on": False}

    async def switchable(request: web.Request) -> web.Response:
        return await ok_json(request) if healthy["on"] else problem(500, None, "boom")

    config = msgspec.structs.replace(FAST, max_attempts=1, circuit_failure_threshold=3, circuit_cooldown=30.0)
    async with serve(switchable) as up, client_for({"svc-a": [up.url]}, config, clock=clock) as client:
        for _ in range(3):
            with pytest.raises(ServerError):
                await client.get("svc-a", "/")
        assert client.circuit("svc-a").state is CircuitState.OPEN
        healthy["on"] = True
        with pytest.raises(UpstreamUnavailableError, match="circuit") as info:
            await client.get("svc-a", "/")
        assert info.value.extensions["retry_after"] > 0
        assert up.count() == 3  # rejected without touching the network

        clock.advance(31.0)  # past the cool-down: half-open, one trial call
        assert (await client.get("svc-a", "/")).status == 200
        assert client.circuit("svc-a").state is CircuitState.CLOSED
        assert (await client.get("svc-a", "/")).status == 200
    assert up.count() == 5


async def test_the_breaker_counts_failed_calls_not_attempts() -> None:
    """Attempts that fail and are retried into a success do not count (issue 15); a call that
    fails after all its attempts counts once."""
    served = {"n": 0, "failing": True}

    async def two_of_three_fail(request: web.Request) -> web.Response:
        served["n"] += 1
        if served["failing"] or served["n"] % 3:
            return problem(503, None, "busy")
        return await ok_json(request)

    config = msgspec.structs.replace(
        FAST, max_attempts=3, circuit_failure_threshold=2, retry_budget_min_per_second=100
    )
    async with serve(two_of_three_fail) as up, client_for({"svc-a": [up.url]}, config) as client:
        with pytest.raises(UpstreamUnavailableError):
            await client.get("svc-a", "/")  # three failed attempts: one failed call
        assert up.count() == 3
        assert client.circuit("svc-a").state is CircuitState.CLOSED
        served["failing"] = False
        for _ in range(4):  # two failed attempts, then a success: nothing counts
            assert (await client.get("svc-a", "/")).status == 200
        assert client.circuit("svc-a").state is CircuitState.CLOSED
        served["failing"] = True
        with pytest.raises(UpstreamUnavailableError):
            await client.get("svc-a", "/")  # the first failure was wiped out by the successes
        assert client.circuit("svc-a").state is CircuitState.CLOSED
        with pytest.raises(UpstreamUnavailableError):
            await client.get("svc-a", "/")  # the second failed call in a row
        assert client.circuit("svc-a").state is CircuitState.OPEN


async def test_half_open_trial_failure_reopens_the_circuit() -> None:
    clock = FakeClock()
    config = msgspec.structs.replace(FAST, max_attempts=1, circuit_failure_threshold=2, circuit_cooldown=10.0)
    async with serve(always(502)) as up, client_for({"svc-a": [up.url]}, config, clock=clock) as client:
        for _ in range(2):
            with pytest.raises(ServerError):
                await client.get("svc-a", "/")
        clock.advance(11.0)
        with pytest.raises(ServerError):
            await client.get("svc-a", "/")  # the trial call, which fails
        assert client.circuit("svc-a").state is CircuitState.OPEN
        with pytest.raises(UpstreamUnavailableError, match="circuit"):
            await client.get("svc-a", "/")
    assert up.count() == 3


@pytest.mark.parametrize(
    ("status", "slug", "expected"),
    [
        (404, "not-found", NotFoundError),
        (409, "conflict", ConflictError),
        (422, "unprocessable", UnprocessableError),
        (418, "https://example.org/teapot", ClientError),
    ],
)
async def test_problem_json_answers_become_typed_errors(status: int, slug: str, expected: type) -> None:
    async def answer(request: web.Request) -> web.Response:
        return problem(status, slug, "the detail", sku="SKU-1", errors=[{"field": "qty"}])

    async with serve(answer) as up, client_for({"svc-a": [up.url]}) as client:
        with pytest.raises(expected) as info:
            await client.post("svc-a", "/x", json={})
    error = info.value
    assert type(error) is expected
    assert error.detail == "the detail"
    assert error.status == status
    assert error.extensions == {"sku": "SKU-1", "errors": [{"field": "qty"}]}
    assert error.upstream == "svc-a" and error.upstream_status == status
    assert up.count() == 1


async def test_too_many_requests_keeps_retry_after_and_is_not_retried() -> None:
    async def limited(request: web.Request) -> web.Response:
        response = problem(429, "too-many-requests", "slow down")
        response.headers["Retry-After"] = "7"
        return response

    async with serve(limited) as up, client_for({"svc-a": [up.url]}) as client:
        with pytest.raises(TooManyRequestsError) as info:
            await client.get("svc-a", "/")
    assert info.value.retry_after == 7.0
    assert up.count() == 1


async def test_traceparent_of_the_client_span_arrives_at_the_server() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("test")
    async with serve(ok_json) as up, client_for({"svc-a": [up.url]}, tracer=tracer) as client:
        with tracer.start_as_current_span("handler") as parent:
            await client.get("svc-a", "/traced")
    header = up.seen[0].headers["traceparent"]
    version, trace_id, span_id, flags = header.split("-")
    assert version == "00" and int(flags, 16) & 0x01  # sampled
    assert int(trace_id, 16) == parent.get_span_context().trace_id
    client_span = next(s for s in exporter.get_finished_spans() if s.name == "GET svc-a")
    assert int(span_id, 16) == client_span.context.span_id
    assert client_span.parent is not None and client_span.parent.span_id == parent.get_span_context().span_id


async def test_traceparent_is_forwarded_even_without_a_configured_tracer() -> None:
    provider = TracerProvider()
    async with serve(ok_json) as up, client_for({"svc-a": [up.url]}) as client:
        with provider.get_tracer("test").start_as_current_span("incoming") as parent:
            await client.get("svc-a", "/")
    assert int(up.seen[0].headers["traceparent"].split("-")[1], 16) == parent.get_span_context().trace_id


async def test_headers_provider_adds_the_caller_identity() -> None:
    async def identity(service: str, method: str, path: str) -> dict[str, str]:
        return {"X-Caravan-Caller": f"svc-b->{service} {method} {path}"}

    async with serve(ok_json) as up, client_for({"svc-a": [up.url]}, headers_provider=identity) as client:
        await client.delete("svc-a", "/reservations/9")
    assert up.seen[0].headers["X-Caravan-Caller"] == "svc-b->svc-a DELETE /reservations/9"


async def test_a_client_that_is_not_started_says_so() -> None:
    client = client_for({"svc-a": ["http://127.0.0.1:1"]})
    with pytest.raises(RuntimeError, match="not started"):
        await client.get("svc-a", "/")
