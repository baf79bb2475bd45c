"""Service-specific metrics beside the RED metrics: gauges sampled in the background, event
counters, and the state of the inter-service client's circuit breakers.

- :class:`SampledGauge` — a gauge whose values a background loop recomputes every few seconds
  (e.g. "age of the oldest unfinished order"), so a scrape never waits on the database.
  :func:`sampling` is the Litestar lifespan hook that runs the loop (commons' graceful
  :func:`caravan_commons.background.periodic`).
- :class:`EventCounter` — a counter by one or more labels, bumped with one call where the event
  happens (e.g. "a saga compensated an order, by reason").
- :class:`CircuitMetrics` — ``client_circuit_open{upstream}`` (1 while the breaker is open) and
  ``client_circuit_opens_total{upstream}`` (how often it opened) for every
  :class:`caravan_commons.client.ServiceClient` of the process; ``create_app`` registers it.

Register a gauge or counter on the app's registry (``app.state.metrics_registry.register(...)``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence

from prometheus_client.metrics_core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from caravan_commons.background import periodic
from caravan_commons.resilience import CircuitState

Labels = tuple[str, ...]


class SampledGauge(Collector):
    """A gauge family whose values are replaced as a whole by each sample."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name
        self.documentation = documentation
        self.labels = tuple(labels)
        self.values: dict[Labels, float] = {}

    def set(self, value: float, *label_values: str) -> None:
        self.values[tuple(label_values)] = float(value)

    def replace(self, values: Mapping[Labels, float]) -> None:
        self.values = {tuple(k): float(v) for k, v in values.items()}

    def collect(self) -> Iterator[Metric]:
        family = GaugeMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, value in list(self.values.items()):
            family.add_metric(labels, value)
        yield family


class EventCounter(Collector):
    """A counter family bumped with :meth:`inc` where the event happens."""

    def __init__(self, name: str, documentation: str, labels: Sequence[str] = ()) -> None:
        self.name = name.removesuffix("_total")
        self.documentation = documentation
        self.labels = tuple(labels)
        self.counts: dict[Labels, float] = {}

    def inc(self, *label_values: str, amount: float = 1.0) -> None:
        key = tuple(label_values)
        self.counts[key] = self.counts.get(key, 0.0) + amount

    def collect(self) -> Iterator[Metric]:
        family = CounterMetricFamily(self.name, self.documentation, labels=self.labels)
        for labels, count in list(self.counts.items()):
            family.add_metric(labels, count)
        yield family


def sampling(
    name: str, sample: Callable[[], Awaitable[object]], *, interval: float
) -> Callable[[object], contextlib.AbstractAsyncContextManager[None]]:
    """A Litestar lifespan hook running ``sample`` now and every ``interval`` seconds."""

    def hook(_app: object = None) -> contextlib.AbstractAsyncContextManager[None]:
        return periodic(name, sample, interval=interval)

    return hook


class CircuitMetrics(Collector):
    """The circuit breakers of every live ServiceClient of this process."""

    def collect(self) -> Iterator[Metric]:
        from caravan_commons.client import live_circuits  # the client imports aiohttp: only when scraped

        state = GaugeMetricFamily(
            "client_circuit_open", "1 while the circuit to an upstream is open.", labels=("upstream",)
        )
        opens = CounterMetricFamily(
            "client_circuit_opens", "Times the circuit to an upstream opened.", labels=("upstream",)
        )
        merged: dict[str, tuple[bool, int]] = {}
        for upstream, breaker in live_circuits():
            was_open, count = merged.get(upstream, (False, 0))
            merged[upstream] = (was_open or breaker.state is CircuitState.OPEN, count + breaker.opened)
        for upstream, (is_open, count) in sorted(merged.items()):
            state.add_metric((upstream,), 1.0 if is_open else 0.0)
            opens.add_metric((upstream,), count)
        yield state
        yield opens


__all__ = ["CircuitMetrics", "EventCounter", "SampledGauge", "sampling"]
