"""svc-c's own metrics (beside commons' RED metrics), sampled in the background.

- ``ledger_balanced`` — 1 when the double-entry ledger sums to zero in every currency, else 0
  (alert ``LedgerNotBalanced``).
- ``ledger_imbalance_minor{currency}`` — the ledger's sum per currency, in minor units (0 when
  balanced).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from caravan_commons.service_metrics import SampledGauge, sampling
from svc_c.service_layer.ports import AbstractUnitOfWork

LEDGER_BALANCED = SampledGauge("ledger_balanced", "1 when the ledger sums to zero in every currency.")
LEDGER_IMBALANCE = SampledGauge(
    "ledger_imbalance_minor", "The ledger's sum per currency in minor units (0 when balanced).", ("currency",)
)


def sampler(
    *, uow_factory: Callable[[], AbstractUnitOfWork], interval: float
) -> Callable[[object], contextlib.AbstractAsyncContextManager[None]]:
    async def sample() -> None:
        async with uow_factory() as uow:
            totals = await uow.ledger.totals_by_currency()
        LEDGER_IMBALANCE.replace({(currency,): total for currency, total in totals.items()})
        LEDGER_BALANCED.set(1 if all(total == 0 for total in totals.values()) else 0)

    return sampling("ledger metrics", sample, interval=interval)


COLLECTORS = (LEDGER_BALANCED, LEDGER_IMBALANCE)
