"""What the controllers need, built once by bootstrap and handed to them by Litestar's DI."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field

from caravan_commons.errors import ConflictError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, IdempotencyStore
from caravan_commons.schemas import decoder_for
from svc_c.api.schemas import PaymentOut
from svc_c.domain.model import Payment
from svc_c.domain.processor import SimulatedProcessor
from svc_c.service_layer.ports import AbstractUnitOfWork

_payment_decoder = decoder_for(PaymentOut)

Effect = Callable[[AbstractUnitOfWork], Awaitable[Payment]]


@dataclass
class Payments:
    """The wiring of the payment endpoints: units of work, the Idempotency-Key store (its sweeper
    clears records older payments left; the payment and movement rows are now the keys' records),
    the processor."""

    new_uow: Callable[..., AbstractUnitOfWork]
    store: IdempotencyStore
    processor: SimulatedProcessor
    _authorizing: set[str] = field(default_factory=set, init=False)

    @contextlib.contextmanager
    def authorizing(self, key: str) -> Iterator[None]:
        """Claim an authorisation key while the processor is asked (409 for a twin in this process;
        across instances the database's unique key settles it)."""
        if key in self._authorizing:
            raise ConflictError(
                f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
                idempotency_key=key,
            )
        self._authorizing.add(key)
        try:
            yield
        finally:
            self._authorizing.discard(key)


def payments_provider(payments: Payments) -> Callable[[], Payments]:
    def provide_payments() -> Payments:
        return payments

    return provide_payments
