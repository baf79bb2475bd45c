"""RED metrics per route template, process metrics, and the /metrics endpoint."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import get
from litestar.params import FromPath
from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from caravan_commons.app import create_app
from caravan_commons.metrics import UNMATCHED_ROUTE, HttpMetrics, create_registry, render
from caravan_commons.settings import ServiceSettings


def samples(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_collector_counts_requests_errors_and_buckets() -> None:
    metrics = HttpMetrics(buckets=(0.1, 1.0))
    metrics.observe("GET", "/a", 200, 0.05)
    metrics.observe("GET", "/a", 200, 0.1)  # on a bound: counts in "le=0.1"
    metrics.observe("GET", "/a", 503, 5.0)
    body, content_type = render(create_registry(metrics))
    assert content_type.startswith("text/plain")
    got = samples(body.decode())
    route = frozenset({("method", "GET"), ("route", "/a")})
    assert got[("http_requests_total", route | {("status", "200")})] == 2
    assert got[("http_requests_total", route | {("status", "503")})] == 1
    assert got[("http_request_errors_total", route | {("status", "503")})] == 1
    assert ("http_request_errors_total", route | {("status", "200")}) not in got
    assert got[("http_request_duration_seconds_bucket", route | {("le", "0.1")})] == 2
    assert got[("http_request_duration_seconds_bucket", route | {("le", "1.0")})] == 2
    assert got[("http_request_duration_seconds_bucket", route | {("le", "+Inf")})] == 3
    assert got[("http_request_duration_seconds_count", route)] == 3
    assert got[("http_request_duration_seconds_sum", route)] == pytest.approx(5.15)


@get("/products/{sku:str}")
async def product(sku: FromPath[str]) -> dict[str, str]:
    if sku == "broken":
        raise RuntimeError("boom")
    return {"sku": sku}


@pytest.fixture
def client(settings: ServiceSettings) -> Any:
    with TestClient(create_app(settings, route_handlers=[product])) as client:
        yield client


def test_app_metrics_use_the_route_template_never_the_raw_path(client: Any) -> None:
    for sku in ("a1", "b2", "c3", "broken"):
        client.get(f"/products/{sku}")
    client.get("/no/such/path")
    text = client.get("/metrics").text
    got = samples(text)
    route = frozenset({("method", "GET"), ("route", "/products/{sku}")})
    assert got[("http_requests_total", route | {("status", "200")})] == 3
    assert got[("http_request_errors_total", route | {("status", "500")})] == 1
    assert got[("http_request_duration_seconds_count", route)] == 4
    unmatched = frozenset({("method", "GET"), ("route", UNMATCHED_ROUTE), ("status", "404")})
    assert got[("http_requests_total", unmatched)] == 1
    for raw in ("a1", "b2", "c3", "/no/such/path"):
        assert raw not in text


def test_process_metrics_are_exposed(client: Any) -> None:
    names = {family.name for family in text_string_to_metric_families(client.get("/metrics").text)}
    assert {
        "process_cpu_seconds",
        "process_resident_memory_bytes",
        "python_info",
        "python_gc_collections",
    } <= names


def test_each_app_has_its_own_registry(settings: ServiceSettings) -> None:
    first = create_app(settings, route_handlers=[product], tracing=False)
    second = create_app(settings, route_handlers=[product], tracing=False)
    with TestClient(first) as one:
        one.get("/products/x")
    with TestClient(second) as two:
        text = two.get("/metrics").text
    assert 'route="/products/{sku}"' not in text
