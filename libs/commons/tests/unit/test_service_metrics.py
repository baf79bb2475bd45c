"""Service-specific metrics: sampled gauges, event counters and the client's circuit metrics, as
Prometheus reads them from an app's /metrics."""

from __future__ import annotations

import asyncio

from litestar.testing import TestClient
from prometheus_client.parser import text_string_to_metric_families

from caravan_commons.app import create_app
from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.discovery import StaticResolver
from caravan_commons.service_metrics import EventCounter, SampledGauge, sampling
from caravan_commons.settings import ServiceSettings


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = client.get("/metrics").text
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_gauges_and_counters_reach_metrics_and_the_sampler_runs_with_the_app() -> None:
    gauge = SampledGauge("things_waiting", "Things waiting.")
    by_kind = SampledGauge("things_by_kind", "Things by kind.", ("kind",))
    counter = EventCounter("things_done_total", "Things done.", ("reason",))
    counter.inc("ok", amount=0)  # exists from the start
    rounds = []

    async def sample() -> None:
        rounds.append(1)
        gauge.set(len(rounds) * 10)
        by_kind.replace({("a",): 1, ("b",): 2})

    app = create_app(
        ServiceSettings(service_name="metrics-test"),
        lifespan=[sampling("things", sample, interval=0.05)],
        tracing=False,
    )
    for collector in (gauge, by_kind, counter):
        app.state.metrics_registry.register(collector)
    with TestClient(app) as client:
        before = scrape(client)
        assert before[("things_done_total", frozenset({("reason", "ok")}))] == 0
        counter.inc("ok")
        counter.inc("failed", amount=2)
        while len(rounds) < 3:
            asyncio.run(asyncio.sleep(0.02))
        got = scrape(client)
    assert got[("things_waiting", frozenset())] >= 30
    assert got[("things_by_kind", frozenset({("kind", "b")}))] == 2
    assert got[("things_done_total", frozenset({("reason", "ok")}))] == 1
    assert got[("things_done_total", frozenset({("reason", "failed")}))] == 2


def test_circuit_metrics_show_each_upstream_and_count_openings() -> None:
    client = ServiceClient(
        StaticResolver({"svc-x": ["http://127.0.0.1:9"]}),
        ClientConfig(circuit_failure_threshold=2, circuit_cooldown=60),
    )
    closed = client.circuit("svc-y")
    breaker = client.circuit("svc-x")
    breaker.record_failure()
    breaker.record_failure()  # threshold reached: open
    app = create_app(ServiceSettings(service_name="circuit-test"), tracing=False)
    with TestClient(app) as http:
        got = scrape(http)
    assert got[("client_circuit_open", frozenset({("upstream", "svc-x")}))] == 1
    assert got[("client_circuit_opens_total", frozenset({("upstream", "svc-x")}))] == 1
    assert got[("client_circuit_open", frozenset({("upstream", "svc-y")}))] == 0
    assert got[("client_circuit_opens_total", frozenset({("upstream", "svc-y")}))] == 0
    closed.record_success()
    del client, breaker, closed
