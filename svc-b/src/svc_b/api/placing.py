"""``POST /orders`` behind its Idempotency-Key: the saga runs once per (customer, key).

- The order id is derived from the customer and the key (:func:`order_id_for`) with HMAC-SHA256
  under svc-b's secret (provisioned into a 0600 file, ``CARAVAN_SECRET_KEY_FILE``), so a retry can
  never place a second order — at worst it finds the first one — and nobody without the secret can
  compute another customer's order ids. The order's row is the key's record — no separate
  idempotency table on this path: a new key costs one look-up (one statement) and the order's
  insert; a known key answers the order as it stands.
- While a request with a key is being processed, another with the same key is refused (409):
  in this process by a registry of keys in flight; across instances by the order row itself
  (inserting the same order id twice fails; an unfinished order whose lease a runner holds is
  taken as in flight).
- The saga runs as a task of the instance's :class:`OrderRunner` (outside the request: a client
  that goes away does not stop it half-way); the request waits for it.
- Same key, other body (lines or card) → 422. The card is compared by a keyed digest stored with
  the order (:func:`card_digest_for`): the card token itself is dropped once authorised.
- A final order (``confirmed`` / ``cancelled``) is answered with ``Idempotent-Replayed: true``;
  an order still moving (an upstream was unreachable; recovery finishes it) answers its current
  state, which is what the client wants.
- Errors before the order is stored (e.g. the catalog unreachable for prices: 503) store nothing:
  the same key may simply be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from litestar import Response

from caravan_commons.errors import ConflictError, UnprocessableError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, key_id
from caravan_commons.schemas import encode
from svc_b.api.schemas import OrderOut, PlaceOrderIn
from svc_b.domain.model import Order
from svc_b.service_layer.runner import OrderRunner
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PATH = "/orders"


def order_id_for(customer: str, key: str, secret: bytes) -> str:
    """The order id of (customer, Idempotency-Key): a UUID made of HMAC-SHA256 under ``secret``."""
    digest = hmac.new(secret, f"{customer}\n{key}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def location_of(order: Order) -> str:
    """Relative to the request's URL, so it is right both directly and through the gateway."""
    return f"orders/{order.id}"


def card_digest_for(card_token: str, secret: bytes) -> str:
    """What an order keeps of its card for good: HMAC-SHA256 of the token under ``secret`` (hex)."""
    return hmac.new(secret, f"card\n{card_token}".encode(), hashlib.sha256).hexdigest()


def same_request(order: Order, request: PlaceOrderIn, secret: bytes) -> bool:
    placed = [(line.sku, line.quantity) for line in order.lines]
    asked = [(line.sku, line.quantity) for line in request.lines]
    if order.card_digest is not None:
        same_card = hmac.compare_digest(
            order.card_digest, card_digest_for(request.payment.card_token, secret)
        )
    else:  # placed before orders kept a digest: once authorised it keeps no card token either
        same_card = order.card_token in (None, request.payment.card_token)
    return placed == asked and same_card


@dataclass
class OrderDesk:
    saga: Saga
    runner: OrderRunner
    in_flight: set[str] = field(default_factory=set)
    #: the key order ids are derived with (random when none is provisioned: ids are then stable
    #: only within this process)
    id_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    async def place(self, *, customer: str, key: str, request: PlaceOrderIn) -> Response[Any]:
        claim = key_id(key, customer)
        if claim in self.in_flight:
            raise self._in_flight(key)
        self.in_flight.add(claim)
        try:
            order_id = order_id_for(customer, key, self.id_secret)
            order = await self.saga.order(order_id)
            replayed = order is not None
            if order is None:
                try:
                    order, progress = await self.saga.start(
                        PlaceOrder(
                            order_id,
                            customer,
                            [LineRequest(line.sku, line.quantity) for line in request.lines],
                            card_token=request.payment.card_token,
                            card_digest=card_digest_for(request.payment.card_token, self.id_secret),
                        )
                    )
                except ConflictError:  # another instance inserted it first: it is in flight there
                    raise self._in_flight(key) from None
                order = await asyncio.shield(self.runner.drive(order, progress))
            elif not same_request(order, request, self.id_secret):
                raise UnprocessableError(
                    f"this {IDEMPOTENCY_HEADER} was already used with a different request; use a new key",
                    idempotency_key=key,
                )
            elif not order.is_terminal and await self._held(order):
                raise self._in_flight(key)
            headers = {"location": location_of(order)}
            if replayed and order.is_terminal:
                headers[REPLAYED_HEADER] = "true"
            return Response(
                encode(OrderOut.of(order)), status_code=201, media_type="application/json", headers=headers
            )
        finally:
            self.in_flight.discard(claim)

    @staticmethod
    def _in_flight(key: str) -> ConflictError:
        return ConflictError(
            f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
            idempotency_key=key,
        )

    async def _held(self, order: Order) -> bool:
        """Whether a runner (of this instance or another) holds the unfinished order's lease now:
        its saga is running there."""
        loaded = await self.saga.load(order.id)
        if loaded is None:
            return False
        progress = loaded[1]
        return (
            progress.lease_owner is not None
            and progress.next_attempt_at is not None
            and progress.next_attempt_at > datetime.now(UTC)
        )
