"""What the controllers need, built once by bootstrap and handed to them by Litestar's DI."""

from __future__ import annotations

import contextlib
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, TypeVar

import msgspec
from litestar import Request

from caravan_commons.errors import ConflictError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, IdempotencyStore
from caravan_commons.schemas import decoder_for
from svc_c.api.schemas import PaymentOut
from svc_c.domain.model import Payment
from svc_c.domain.processor import SimulatedProcessor
from svc_c.infrastructure.unit_of_work import PiccoloUnitOfWork
from svc_c.service_layer.ports import AbstractUnitOfWork

_payment_decoder = decoder_for(PaymentOut)
T = TypeVar("T")

Effect = Callable[[AbstractUnitOfWork], Awaitable[Payment]]


@dataclass
class Payments:
    """The wiring of the payment endpoints: units of work, the Idempotency-Key store (its sweeper
    clears records older payments left; the payment and movement rows are now the keys' records),
    the processor."""

    new_uow: Callable[..., PiccoloUnitOfWork]
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


def _integral_numbers(value: Any) -> Any:
    """JSON's view of numbers: ``1250.0`` is the integer 1250 (as JSON Schema counts it)."""
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**63:
        return int(value)
    if isinstance(value, dict):
        return {k: _integral_numbers(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_integral_numbers(v) for v in value]
    return value


async def strict_body(request: Request, type_: type[T]) -> T:
    """The request body decoded *strictly* into ``type_``. Litestar has already validated it, but
    leniently (a numeric string such as ``"10"`` passes as an integer); the wire contract is JSON
    types as JSON Schema defines them, so a msgspec error here is a 400 like any other bad body."""
    return msgspec.convert(_integral_numbers(msgspec.json.decode(await request.body())), type_, strict=True)


def payments_provider(payments: Payments) -> Callable[[], Payments]:
    def provide_payments() -> Payments:
        return payments

    return provide_payments
