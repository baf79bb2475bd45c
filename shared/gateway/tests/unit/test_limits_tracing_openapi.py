import re

import pytest
from hypothesis import given
from hypothesis import strategies as st
from opentelemetry.sdk.trace import TracerProvider

from caravan_gateway.admin import merge_openapi
from caravan_gateway.limits import RateLimiter
from caravan_gateway.tracing import EdgeTracer


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@given(st.floats(0.1, 1000), st.integers(1, 50))
def test_a_caller_gets_its_burst_then_waits_one_token_time(rate, burst):
    clock = Clock()
    limiter = RateLimiter(rate, burst, clock=clock)
    assert all(limiter.acquire("a") == 0.0 for _ in range(burst))
    wait = limiter.acquire("a")
    assert abs(wait - 1.0 / rate) < 1e-6
    assert limiter.acquire("b") == 0.0  # one bucket per caller
    clock.now += wait * 1.000001
    assert limiter.acquire("a") == 0.0


def test_buckets_of_idle_callers_are_forgotten_when_full():
    clock = Clock()
    limiter = RateLimiter(10, 2, clock=clock, max_callers=2)
    limiter.acquire("a")
    limiter.acquire("b")
    clock.now += 10
    limiter.acquire("c")
    assert set(limiter._buckets) == {"c"}


hex_id = st.integers(1, 2**64 - 1)


@given(st.integers(1, 2**128 - 1), hex_id, st.sampled_from(["00", "01"]))
def test_a_callers_trace_continues_with_a_new_span_and_its_sampling_decision(trace_id, span_id, flags):
    tracer = EdgeTracer(TracerProvider(), sample_ratio=0.0)
    span = tracer.start(f"00-{trace_id:032x}-{span_id:016x}-{flags}".encode())
    out = span.traceparent().decode()
    version, out_trace, out_span, out_flags = out.split("-")
    assert (version, int(out_trace, 16), out_flags) == ("00", trace_id, flags)
    assert int(out_span, 16) != 0 and span.parent_span_id == span_id


@given(st.binary(max_size=60))
def test_garbage_traceparents_start_a_new_trace(raw):
    tracer = EdgeTracer(TracerProvider(), sample_ratio=1.0)
    span = tracer.start(raw)
    assert re.fullmatch(rb"00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]", span.traceparent())
    if not re.fullmatch(rb"\s*00-[0-9a-fA-F]{32}-[0-9a-fA-F]{16}-[0-9a-fA-F]{2}\s*", raw):
        assert span.parent_span_id is None and span.sampled


def test_openapi_documents_merge_under_their_prefixes_with_prefixed_components():
    doc = {
        "paths": {"/items": {"get": {"responses": {"200": {"$ref": "#/components/responses/Ok"}}}}, "/": {}},
        "components": {"responses": {"Ok": {"description": "ok"}}, "schemas": {"Item": {"type": "object"}}},
    }
    merged = merge_openapi({"svc-a": ("/api/svc-a", doc)}, ["svc-b"])
    assert set(merged["paths"]) == {"/api/svc-a/items"}  # a path without operations is left out
    ref = merged["paths"]["/api/svc-a/items"]["get"]["responses"]["200"]["$ref"]
    assert ref == "#/components/responses/svc-a_Ok"
    assert set(merged["components"]["schemas"]) == {"svc-a_Item", "gateway_ProblemDetails"}
    assert merged["x-caravan-unavailable"] == ["svc-b"]


def test_every_operation_documents_what_the_gateway_itself_answers():
    """A fuzzer found the 429 of the failed-authentication limit undocumented (ST103)."""
    own = {"200": {"description": "ok"}, "503": {"description": "the service's own"}}
    doc = {"paths": {"/items": {"get": {"responses": own}}}}
    merged = merge_openapi({"svc-a": ("/api/svc-a", doc)}, [])
    responses = merged["paths"]["/api/svc-a/items"]["get"]["responses"]
    assert set(responses) == {"200", "429", "503"}
    assert "Retry-After" in responses["429"]["headers"]
    assert responses["503"] == {"description": "the service's own"}  # the service's own answer is kept
    ref = responses["429"]["content"]["application/problem+json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/gateway_ProblemDetails"


def test_the_public_document_holds_what_its_reader_can_call_and_declares_the_schemes():
    """Regression (issue 18, defect 10): every operation was listed, with no security scheme."""
    ok = {"responses": {"200": {"description": "ok"}}}
    operator = {**ok, "x-caravan-scopes": ["operator"]}
    doc = {"paths": {"/products": {"get": ok, "post": operator}, "/reservations": {"get": ok, "post": ok},
                     "/metrics": {"get": ok}, "/health/ready": {"get": ok}}}  # fmt: skip
    policy = {"svc-a": ["/products", "GET,HEAD /reservations"]}
    customer = merge_openapi({"svc-a": ("/api/svc-a", doc)}, [], policy=policy)
    assert {p: sorted(k for k in i if k != "parameters") for p, i in customer["paths"].items()} == {
        "/api/svc-a/products": ["get"], "/api/svc-a/reservations": ["get"],
    }  # fmt: skip
    as_operator = merge_openapi(
        {"svc-a": ("/api/svc-a", doc)}, [], policy=policy, scopes=frozenset({"operator"})
    )
    assert sorted(as_operator["paths"]["/api/svc-a/products"]) == ["get", "post"]
    assert set(customer["components"]["securitySchemes"]) == {"apiKey", "bearer"}
    assert customer["security"] == [{"apiKey": []}, {"bearer": []}]
    assert customer["paths"]["/api/svc-a/products"]["get"]["security"] == customer["security"]
    closed = {"svc-b": ("/api/svc-b", {"paths": {"/orders": {"get": ok}}})}
    assert "/api/svc-b/orders" not in merge_openapi(closed, [],
                                                    policy={})["paths"]  # fmt: skip


def test_failed_attempts_are_counted_without_taking_a_token_to_look():
    from caravan_gateway.limits import RateLimiter

    now = [0.0]
    limiter = RateLimiter(1.0, 2, clock=lambda: now[0])
    assert limiter.wait("10.0.0.1") == 0.0
    limiter.acquire("10.0.0.1")
    limiter.acquire("10.0.0.1")
    assert limiter.wait("10.0.0.1") == pytest.approx(1.0)
    assert limiter.wait("10.0.0.1") == pytest.approx(1.0)  # looking takes nothing
    now[0] += 1.0
    assert limiter.wait("10.0.0.1") == 0.0
