"""Request rate, error ratio and p99 latency per service and route over the last hour, from
Prometheus' query API (the Prometheus the runtime runs, on the port it allocated). The series are
commons' RED metrics (``http_requests_total``, ``http_request_errors_total``,
``http_request_duration_seconds``); ``service`` is the target label the runtime gives each
program."""

from __future__ import annotations

import json
import math
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from caravan_workspace.runtime.ports import read_ports

PROMETHEUS_PROGRAM = "prometheus"
WINDOW_S = 3600
STEP_S = 60
BY = "service, route"
QUERIES = {
    "rate": f"sum by ({BY}) (rate(http_requests_total[1m]))",
    "errors": f"sum by ({BY}) (rate(http_request_errors_total[1m]))"
    f" / sum by ({BY}) (rate(http_requests_total[1m]))",
    "p99": f"histogram_quantile(0.99, sum by ({BY}, le) (rate(http_request_duration_seconds_bucket[1m])))",
}


class PrometheusDown(Exception):
    """Prometheus is not running or does not answer (the message says which)."""


@dataclass
class RouteMetrics:
    service: str
    route: str
    series: dict[str, list[float]] = field(default_factory=dict)  # one value a step, NaN = none

    def last(self, name: str) -> float | None:
        values = [v for v in self.series.get(name, []) if not math.isnan(v)]
        return values[-1] if values else None


def prometheus_url(state_dir: Path) -> str | None:
    port = read_ports(state_dir).get(PROMETHEUS_PROGRAM)
    return f"http://127.0.0.1:{port}" if port else None


def query_range(base: str, query: str, start: float, end: float, step: int) -> list[dict[str, object]]:
    params = urllib.parse.urlencode({"query": query, "start": start, "end": end, "step": step})
    try:
        with urllib.request.urlopen(f"{base}/api/v1/query_range?{params}", timeout=3) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        raise PrometheusDown(f"Prometheus at {base} refused the query ({exc.code})") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise PrometheusDown(f"Prometheus at {base} does not answer ({exc})") from exc
    if body.get("status") != "success":
        raise PrometheusDown(f"Prometheus at {base}: {body.get('error', 'query failed')}")
    return list(body.get("data", {}).get("result", []))


class MetricsCache:
    """The points fall on whole minutes, so one minute's answer serves every view within it:
    Prometheus evaluates the hour's histogram once a minute, not once per page view."""

    def __init__(self) -> None:
        self._key: tuple[str, float] | None = None
        self._rows: list[RouteMetrics] = []
        self._lock = threading.Lock()

    def rows(self, state_dir: Path, *, now: float | None = None) -> list[RouteMetrics]:
        base = prometheus_url(state_dir)
        if base is None:
            raise PrometheusDown("Prometheus has no port yet: the monitoring stage (2) has not run")
        end = math.floor((now or time.time()) / STEP_S) * STEP_S
        with self._lock:
            if self._key == (base, end):
                return self._rows
            rows = route_metrics(base, end)
            self._key, self._rows = (base, end), rows
            return rows


def route_metrics(base: str, end: float) -> list[RouteMetrics]:
    """Each service and route's series over the hour up to ``end`` (a whole minute)."""
    start = end - WINDOW_S
    steps = [start + i * STEP_S for i in range(WINDOW_S // STEP_S + 1)]
    with ThreadPoolExecutor(max_workers=len(QUERIES)) as pool:
        results = dict(
            zip(
                QUERIES,
                pool.map(lambda q: query_range(base, q, start, end, STEP_S), QUERIES.values()),
                strict=True,
            )
        )
    rows: dict[tuple[str, str], RouteMetrics] = {}
    for name, result in results.items():
        for entry in result:
            labels = entry.get("metric", {})
            assert isinstance(labels, dict)
            key = (str(labels.get("service", "?")), str(labels.get("route", "?")))
            row = rows.setdefault(key, RouteMetrics(*key))
            points = entry.get("values", [])
            values = {float(t): _number(v) for t, v in points} if isinstance(points, list) else {}
            row.series[name] = [values.get(float(t), math.nan) for t in steps]
    return sorted(rows.values(), key=lambda r: (r.service, r.route))


def _number(text: object) -> float:
    try:
        value = float(str(text))
    except ValueError:
        return math.nan
    return value if math.isfinite(value) else math.nan


def sparkline(values: list[float], width: int = 160, height: int = 28) -> str:
    """SVG polyline points for ``values`` (gaps where there is no value), scaled to the box."""
    known = [v for v in values if not math.isnan(v)]
    if not known or len(values) < 2:
        return ""
    top = max(known) or 1.0
    points = []
    for i, v in enumerate(values):
        if not math.isnan(v):
            x = i / (len(values) - 1) * width
            y = height - (v / top) * (height - 2) - 1
            points.append(f"{x:.1f},{y:.1f}")
    return " ".join(points)
