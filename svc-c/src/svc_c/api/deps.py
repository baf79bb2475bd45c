"""What the controllers need, built once by bootstrap and handed to them by Litestar's DI."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from caravan_commons.idempotency import IdempotencyStore
from svc_c.domain.processor import SimulatedProcessor
from svc_c.service_layer.ports import AbstractUnitOfWork


@dataclass
class Payments:
    """The wiring of the payment endpoints: units of work, the Idempotency-Key store (its sweeper
    clears records older payments left; the payment and movement rows are now the keys' records),
    the processor."""

    new_uow: Callable[..., AbstractUnitOfWork]
    store: IdempotencyStore
    processor: SimulatedProcessor


def payments_provider(payments: Payments) -> Callable[[], Payments]:
    def provide_payments() -> Payments:
        return payments

    return provide_payments
