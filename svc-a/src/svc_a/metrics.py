"""svc-a's own metrics (beside commons' RED metrics), sampled in the background.

- ``reservations_held_past_ttl`` — held reservations already past their expiry. The sweeper
  releases them every few seconds, so a value that stays above zero means it is not doing so
  (alert ``ReservationsPastTTL``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable

from caravan_commons.service_metrics import SampledGauge, sampling
from svc_a.service_layer.handlers import utc_now
from svc_a.service_layer.ports import AbstractUnitOfWork

#: At most this many expired reservations are counted (enough to alert on).
COUNT_LIMIT = 10_000

RESERVATIONS_PAST_TTL = SampledGauge(
    "reservations_held_past_ttl", "Held stock reservations already past their expiry."
)


def sampler(
    *, uow_factory: Callable[[], AbstractUnitOfWork], interval: float
) -> Callable[[object], contextlib.AbstractAsyncContextManager[None]]:
    async def sample() -> None:
        async with uow_factory() as uow:
            expired = await uow.reservations.expired(utc_now(), limit=COUNT_LIMIT)
        RESERVATIONS_PAST_TTL.set(len(expired))

    return sampling("reservation metrics", sample, interval=interval)


COLLECTORS = (RESERVATIONS_PAST_TTL,)
