"""Prometheus RED metrics per route template, plus process metrics, served at ``/metrics``.

Exposed series (``route`` is Litestar's path template such as ``/products/{sku:str}``, never the
raw path; requests that match no route are labelled ``route="<unmatched>"``):

- ``http_requests_total{method, route, status}`` — counter
- ``http_request_errors_total{method, route, status}`` — counter of 5xx answers
- ``http_request_duration_seconds{method, route}`` — histogram
- ``caravan_db_statements_total``, ``caravan_db_commits_total`` — what this process sent to its
  database (see caravan_commons.db_engines)
- ``process_*``, ``python_gc_*``, ``python_info`` — prometheus_client's standard collectors

This runs on every request, so the middleware does not go through prometheus_client's labelled
children (a lock and several dict look-ups per update): it keeps plain per-series counters in a
dict keyed by ``(method, route, status)`` and a bisect-indexed bucket list, and a custom collector
turns them into metric families only when Prometheus scrapes. All updates happen on the event-loop
thread that runs the ASGI app.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Iterator, Sequence
from time import perf_counter
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, GCCollector, PlatformCollector, ProcessCollector
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.metrics_core import CounterMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from caravan_commons import db_engines

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

UNMATCHED_ROUTE = "<unmatched>"
DEFAULT_BUCKETS: tuple[float, ...] = (
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
)  # fmt: skip


class _Series:
    """Duration histogram state of one (method, route)."""

    __slots__ = ("buckets", "total")

    def __init__(self, size: int) -> None:
        self.buckets = [0] * size  # non-cumulative; the last slot is +Inf
        self.total = 0.0


class HttpMetrics(Collector):
    """The RED state of one app, and its Prometheus collector."""

    def __init__(self, buckets: Sequence[float] = DEFAULT_BUCKETS) -> None:
        self.bounds = tuple(sorted(buckets))
        self.requests: dict[tuple[str, str, int], int] = {}
        self.durations: dict[tuple[str, str], _Series] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        key = (method, route, status)
        requests = self.requests
        requests[key] = requests.get(key, 0) + 1
        series = self.durations.get((method, route))
        if series is None:
            series = self.durations[(method, route)] = _Series(len(self.bounds) + 1)
        series.buckets[bisect_left(self.bounds, seconds)] += 1
        series.total += seconds

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "http_requests", "HTTP requests answered, by route template and status.",
            labels=("method", "route", "status"),
        )  # fmt: skip
        errors = CounterMetricFamily(
            "http_request_errors",
            "HTTP requests answered with a 5xx status.",
            labels=("method", "route", "status"),
        )
        for (method, route, status), count in list(self.requests.items()):
            labels = (method, route, str(status))
            requests.add_metric(labels, count)
            if status >= 500:
                errors.add_metric(labels, count)
        durations = HistogramMetricFamily(
            "http_request_duration_seconds", "Time to answer an HTTP request.", labels=("method", "route")
        )
        for (method, route), series in list(self.durations.items()):
            cumulative, acc = [], 0
            for bound, count in zip((*map(repr, self.bounds), "+Inf"), series.buckets, strict=True):
                acc += count
                cumulative.append((bound, acc))
            durations.add_metric((method, route), cumulative, series.total)
        yield requests
        yield errors
        yield durations


def create_registry(http_metrics: HttpMetrics) -> CollectorRegistry:
    """A registry with the app's RED collector and the standard process/platform/GC collectors."""
    registry = CollectorRegistry(auto_describe=True)
    registry.register(http_metrics)
    registry.register(db_engines.STATS)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    return registry


def render(registry: CollectorRegistry) -> tuple[bytes, str]:
    """The exposition text of ``registry`` and its content type."""
    return generate_latest(registry), CONTENT_TYPE_LATEST


class MetricsMiddleware:
    """ASGI middleware recording one observation per HTTP request into :class:`HttpMetrics`.

    It must wrap Litestar's router (create_app puts it around the whole app) so that
    ``scope["path_template"]``, set during routing, is visible once the request is done.
    """

    __slots__ = ("app", "metrics")

    def __init__(self, app: ASGIApp, metrics: HttpMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = perf_counter()
        status = 500

        async def send_and_note_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note_status)
        finally:
            self.metrics.observe(
                scope["method"],  # type: ignore[typeddict-item]  # http scopes only reach here
                scope.get("path_template") or UNMATCHED_ROUTE,
                status,
                perf_counter() - start,
            )


__all__ = [
    "DEFAULT_BUCKETS",
    "UNMATCHED_ROUTE",
    "HttpMetrics",
    "MetricsMiddleware",
    "create_registry",
    "render",
]
