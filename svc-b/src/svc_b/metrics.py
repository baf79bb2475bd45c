"""svc-b's own metrics (beside commons' RED metrics).

- ``orders_not_terminal`` and ``orders_not_terminal_oldest_age_seconds`` — orders neither
  confirmed nor cancelled, and the age of the oldest of them (0 when none), sampled in the
  background. The sweeper resumes an order within seconds of its runner's death, so an oldest age
  far beyond the saga's retry deadline means orders are stuck (alert ``OrdersNotTerminal``).
- ``saga_compensations_total{reason}`` — orders the saga compensated, by cancel reason (alert
  ``SagaCompensationsUpstreamUnavailable`` on ``upstream_unavailable``).
- ``saga_call_retries_total{step}`` — calls the saga repeated after a transient or unknown
  outcome (the retry policy of :mod:`svc_b.service_layer.retrying`), by step.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from caravan_commons.client import ServiceClient
from caravan_commons.service_metrics import EventCounter, SampledGauge, sampling
from svc_b.domain.model import CancelReason

if TYPE_CHECKING:  # the saga counts its compensations here
    from svc_b.service_layer.saga import Saga

#: At most this many unfinished orders are counted (the oldest first).
COUNT_LIMIT = 1_000

NOT_TERMINAL = SampledGauge("orders_not_terminal", "Orders neither confirmed nor cancelled.")
OLDEST_NOT_TERMINAL = SampledGauge(
    "orders_not_terminal_oldest_age_seconds",
    "Age of the oldest order neither confirmed nor cancelled (0: none).",
)
COMPENSATIONS = EventCounter(
    "saga_compensations_total",
    "Orders the saga compensated (cancelled after a failure), by reason.",
    ("reason",),
)
SAGA_RETRIES = EventCounter(
    "saga_call_retries_total",
    "Calls to svc-a or svc-c the saga repeated after a transient or unknown outcome, by step.",
    ("step",),
)


def sampler(
    saga: Callable[[], Saga | None], *, interval: float
) -> Callable[[object], contextlib.AbstractAsyncContextManager[None]]:
    async def sample() -> None:
        current = saga()
        if current is None:
            return
        async with current.uow() as uow:
            unfinished = await uow.orders.unfinished(COUNT_LIMIT)
        now = datetime.now(UTC)
        NOT_TERMINAL.set(len(unfinished))
        OLDEST_NOT_TERMINAL.set(
            max(((now - created).total_seconds() for _, created in unfinished), default=0.0)
        )

    return sampling("order metrics", sample, interval=interval)


def export_circuits(clients: Mapping[str, ServiceClient]) -> None:
    """Create each upstream's circuit breaker now, so its metrics (commons' CircuitMetrics) exist
    from the start rather than from the first call."""
    for upstream, client in clients.items():
        client.circuit(upstream)


for _reason in CancelReason:  # every reason's count exists from the start (at 0)
    COMPENSATIONS.inc(_reason.value, amount=0)

COLLECTORS = (NOT_TERMINAL, OLDEST_NOT_TERMINAL, COMPENSATIONS, SAGA_RETRIES)
