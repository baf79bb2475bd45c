"""``POST /orders`` behind its Idempotency-Key: the saga runs once per (customer, key).

- The order id is derived from the customer and the key with HMAC-SHA256 under svc-b's secret
  (provisioned into a 0600 file, ``CARAVAN_SECRET_KEY_FILE``), so a retry can never place a
  second order — at worst it finds the first one — and nobody without the secret can compute
  another customer's order ids.
- While a request with a key is being processed, another with the same key is refused (409):
  in this process by a registry of keys in flight; across instances by the order row itself
  (inserting the same order id twice fails; a young order whose last saga step is a call without
  an answer yet is taken as in flight) and by the idempotency store's lock on Postgres.
- When the order was final (``confirmed`` / ``cancelled``) as it was answered, the answer is
  stored in commons' ``caravan_idempotency`` table (same key and payload → that stored answer,
  ``Idempotent-Replayed: true``; same key, other payload → 422). An order still moving (an
  upstream was unreachable; recovery finishes it) is not stored: a repeat answers its current
  state, which is what the client wants to learn.
- Errors store nothing: the same key may simply be retried (e.g. after a 503).

The idempotency store needs the transaction it writes in; the saga commits its own steps (each
upstream call sits between two transactions, so no transaction spans a network call). So the
stored answer is written in a transaction of its own after the saga — safe, because the effect
(the order) is found again by its derived id if the process dies in between.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from litestar import Response

from caravan_commons.db import Database
from caravan_commons.errors import ConflictError, UnprocessableError
from caravan_commons.idempotency import (
    IDEMPOTENCY_HEADER,
    IdempotencyStore,
    StoredResponse,
    fingerprint,
    key_id,
)
from caravan_commons.schemas import encode
from svc_b.api.schemas import OrderOut, PlaceOrderIn
from svc_b.domain.model import Order
from svc_b.infrastructure.db.unit_of_work import write_transaction
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PATH = "/orders"


def order_id_for(customer: str, key: str, secret: bytes) -> str:
    """The order id of (customer, Idempotency-Key): a UUID made of HMAC-SHA256 under ``secret``."""
    digest = hmac.new(secret, f"{customer}\n{key}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def location_of(order: Order) -> str:
    """Relative to the request's URL, so it is right both directly and through the gateway."""
    return f"orders/{order.id}"


def same_request(order: Order, request: PlaceOrderIn) -> bool:
    placed = [(line.sku, line.quantity) for line in order.lines]
    asked = [(line.sku, line.quantity) for line in request.lines]
    # once authorised the order keeps no card token: the lines must match then
    return placed == asked and order.card_token in (None, request.payment.card_token)


class _NoStoredAnswer(Exception):
    """Leaves the store's block without completing it (nothing is written)."""


@dataclass
class OrderDesk:
    saga: Saga
    store: IdempotencyStore
    database: Database
    #: how long after placing an unfinished order may still belong to a running request
    in_flight_for: timedelta = timedelta(seconds=30)
    in_flight: set[str] = field(default_factory=set)
    #: the key order ids are derived with (random when none is provisioned: ids are then stable
    #: only within this process)
    id_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))

    async def place(self, *, customer: str, key: str, body: bytes, request: PlaceOrderIn) -> Response[Any]:
        fp = fingerprint("POST", PATH, body)
        claim = key_id(key, customer)
        if claim in self.in_flight:
            raise self._in_flight(key)
        self.in_flight.add(claim)
        try:
            stored = await self._stored_answer(key, fp, customer)
            if stored is not None:
                return stored.to_response()
            order_id = order_id_for(customer, key, self.id_secret)
            order = await self.saga.order(order_id)
            if order is None:
                order = await self.saga.place(
                    PlaceOrder(
                        order_id,
                        customer,
                        [LineRequest(line.sku, line.quantity) for line in request.lines],
                        card_token=request.payment.card_token,
                    )
                )
            elif not same_request(order, request):
                raise UnprocessableError(
                    f"this {IDEMPOTENCY_HEADER} was already used with a different request; use a new key",
                    idempotency_key=key,
                )
            elif not order.is_terminal and self._young(order) and await self.saga.calling_upstream(order.id):
                raise self._in_flight(key)
            content = encode(OrderOut.of(order))
            headers = {"location": location_of(order)}
            if order.is_terminal:
                twin = await self._store(key, fp, customer, content, headers)
                if twin is not None:
                    return twin.to_response()
            return Response(content, status_code=201, media_type="application/json", headers=headers)
        finally:
            self.in_flight.discard(claim)

    @staticmethod
    def _in_flight(key: str) -> ConflictError:
        return ConflictError(
            f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
            idempotency_key=key,
        )

    def _young(self, order: Order) -> bool:
        """Placed so recently that the request placing it may still be running (after this age
        the recovery loop owns an unfinished order)."""
        return order.placed_at is None or datetime.now(UTC) - order.placed_at < self.in_flight_for

    async def _stored_answer(self, key: str, fp: str, customer: str) -> StoredResponse | None:
        """The stored answer for this key (422 when it was used with another payload)."""
        try:
            async with (
                self.database.transaction() as txn,
                self.store.begin(key, fp, txn, scope=customer) as slot,
            ):
                if slot.replay is not None:
                    return slot.replay
                raise _NoStoredAnswer
        except _NoStoredAnswer:
            return None

    async def _store(
        self, key: str, fp: str, customer: str, content: bytes, headers: dict[str, str]
    ) -> StoredResponse | None:
        """Store the answer; returns the answer another instance stored first, if any."""
        async with (
            write_transaction(self.database) as txn,
            self.store.begin(key, fp, txn, scope=customer) as slot,
        ):
            if slot.replay is not None:
                return slot.replay
            slot.complete(201, content, headers)
        return None
