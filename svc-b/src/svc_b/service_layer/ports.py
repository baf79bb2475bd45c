"""Ports the order saga calls: the catalog (svc-a) and payments (svc-c). Abstract; the HTTP
clients in ``infrastructure`` implement them, unit tests use fakes.

Every call must be idempotent for the given order / key: the saga and its recovery may repeat any
call whose outcome was not recorded. Failures are the commons errors (``UpstreamUnavailableError``,
``DeadlineExceededError``: outcome unknown) or the definite refusals below.
"""

from __future__ import annotations

import abc
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from caravan_commons.errors import ConflictError, NotFoundError, UpstreamUnavailableError
from caravan_commons.money import Money


class OutOfStock(ConflictError):
    slug = "out-of-stock"
    title = "Out of stock"


class PaymentDeclined(ConflictError):
    slug = "payment-declined"
    title = "Payment declined"


class ReservationLost(ConflictError):
    """The catalog no longer holds the order's reservation (it expired or was released)."""

    slug = "reservation-lost"
    title = "Reservation lost"


class NothingAuthorized(UpstreamUnavailableError):
    """The payment service failed (processor error or timeout) and says it authorised nothing:
    unavailable for the forward path, but there is nothing to void."""

    slug = "payment-not-authorized"
    title = "Payment not authorised"


class UnknownProduct(NotFoundError):
    slug = "unknown-product"
    title = "Unknown product"


@dataclass(frozen=True, slots=True)
class StockRequest:
    sku: str
    quantity: int


class CatalogPort(abc.ABC):
    @abc.abstractmethod
    async def prices(self, skus: Sequence[str]) -> Mapping[str, Money]:
        """Current unit price of each SKU; :class:`UnknownProduct` when one does not exist."""

    @abc.abstractmethod
    async def reserve(self, order_id: str, lines: Sequence[StockRequest]) -> None:
        """Reserve stock for the order (idempotent per order id); :class:`OutOfStock`."""

    @abc.abstractmethod
    async def commit(self, order_id: str) -> None:
        """Turn the order's reservation into a sale (idempotent); :class:`ReservationLost`."""

    @abc.abstractmethod
    async def release(self, order_id: str) -> None:
        """Give back the order's reserved or committed stock (idempotent; no-op if none)."""


class PaymentsPort(abc.ABC):
    @abc.abstractmethod
    async def authorize(
        self, idempotency_key: str, order_id: str, customer_id: str, amount: Money, card_token: str
    ) -> str:
        """Authorise ``amount`` on the card ``card_token``; returns the authorisation id;
        :class:`PaymentDeclined`. The same key always yields the same outcome (so a repeat
        learns a lost answer)."""

    @abc.abstractmethod
    async def capture(self, idempotency_key: str, authorization_id: str, amount: Money) -> None: ...

    @abc.abstractmethod
    async def void(self, idempotency_key: str, authorization_id: str) -> None: ...

    @abc.abstractmethod
    async def refund(self, idempotency_key: str, authorization_id: str, amount: Money) -> None: ...


def step_key(order_id: str, step: str) -> str:
    """The Idempotency-Key of one saga step's call of one order (``reserve``, ``commit``,
    ``release`` at the catalog; ``authorize``, ``capture``, ``void``, ``refund`` at payments):
    derived, so a retry reuses it. The one place the scheme is written."""
    return f"order-{order_id}-{step}"
