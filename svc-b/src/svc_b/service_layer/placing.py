"""Placing an order behind its Idempotency-Key: the saga runs once per (customer, key).

- The order id is derived from the customer and the key (:func:`order_id_for`) with HMAC-SHA256
  under svc-b's secret (provisioned into a 0600 file, ``CARAVAN_SECRET_KEY_FILE``), so a retry can
  never place a second order — at worst it finds the first one — and nobody without the secret can
  compute another customer's order ids. The order's row is the key's record — no separate
  idempotency table on this path: a new key costs one look-up (one statement) and the order's
  insert; a known key answers the order as it stands.
- While a request with a key is being processed, another with the same key is refused (409):
  in this process by commons' in-flight claim (``idempotency.once``); across instances by the
  order row itself (inserting the same order id twice fails).
- The saga runs as a task of the instance's :class:`OrderRunner` (outside the request: a client
  that goes away does not stop it half-way). The caller waits for it a while (never past the
  request's own deadline): :class:`Placed` says whether the order was final by then.
- A repeat of a key whose order is still moving waits the same way (if this instance drives it);
  an order another instance drives is answered as it stands.
- Same key, other request (lines or card) → 422. The card is compared by a keyed digest stored
  with the order (:func:`card_digest_for`): the card token itself is dropped once authorised.
- Errors before the order is stored (e.g. the catalog unreachable for prices: 503) store nothing:
  the same key may simply be retried.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field

from caravan_commons.deadline import current_deadline
from caravan_commons.errors import ConflictError, UnprocessableError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, in_flight_error, once
from svc_b.domain.model import Order
from svc_b.service_layer.runner import OrderRunner
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

#: what a request keeps of its deadline to answer in after waiting for the saga
ANSWER_MARGIN_S = 0.25


def order_id_for(customer: str, key: str, secret: bytes) -> str:
    """The order id of (customer, Idempotency-Key): a UUID made of HMAC-SHA256 under ``secret``."""
    digest = hmac.new(secret, f"{customer}\n{key}".encode(), hashlib.sha256).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def key_scope(customer: str) -> str:
    """Whose Idempotency-Keys a key is claimed among (commons' ``once``): the customer's orders."""
    return f"order\n{customer}"


def card_digest_for(card_token: str, secret: bytes) -> str:
    """What an order keeps of its card for good: HMAC-SHA256 of the token under ``secret`` (hex)."""
    return hmac.new(secret, f"card\n{card_token}".encode(), hashlib.sha256).hexdigest()


def same_request(order: Order, lines: Sequence[LineRequest], card_token: str, secret: bytes) -> bool:
    placed = [(line.sku, line.quantity) for line in order.lines]
    asked = [(line.sku, line.quantity) for line in lines]
    if order.card_digest is not None:
        same_card = hmac.compare_digest(order.card_digest, card_digest_for(card_token, secret))
    else:  # placed before orders kept a digest: once authorised it keeps no card token either
        same_card = order.card_token in (None, card_token)
    return placed == asked and same_card


def bounded_by_request(wait: float) -> float:
    """Never wait past the request's own deadline (keep a little to answer in)."""
    deadline = current_deadline()
    if deadline is None:
        return wait
    return max(0.0, min(wait, deadline.remaining() - ANSWER_MARGIN_S))


async def settle(task: asyncio.Task[Order] | None, wait: float) -> Order | None:
    """The order ``task`` left it, if it ended within ``wait`` seconds without failing (the task
    goes on either way: the runner owns it)."""
    if task is None or wait <= 0:
        return None
    done, _ = await asyncio.wait({task}, timeout=wait)
    if task not in done or task.cancelled() or task.exception() is not None:
        return None
    return task.result()


@dataclass(frozen=True, slots=True)
class Placed:
    """The order as it stands after the wait; ``replayed``: the key had placed it before."""

    order: Order
    replayed: bool


@dataclass
class OrderDesk:
    saga: Saga
    runner: OrderRunner
    #: the key order ids are derived with (random when none is provisioned: ids are then stable
    #: only within this process)
    id_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    #: how long a request waits for the saga by default, and at most (``Prefer: wait=N``)
    wait: float = 2.0
    max_wait: float = 60.0

    async def place(
        self, *, customer: str, key: str, lines: Sequence[LineRequest], card_token: str, wait: float
    ) -> Placed:
        """Place the order of (``customer``, ``key``) unless it exists, and wait up to ``wait``
        seconds (bounded by the request's deadline) for it to be final."""
        with once(key, scope=key_scope(customer)):
            order_id = order_id_for(customer, key, self.id_secret)
            order = await self.saga.order(order_id)
            replayed = order is not None
            if order is None:
                try:
                    order, progress = await self.saga.start(
                        PlaceOrder(
                            order_id,
                            customer,
                            list(lines),
                            card_token=card_token,
                            card_digest=card_digest_for(card_token, self.id_secret),
                        )
                    )
                except ConflictError:  # another instance inserted it first: it is in flight there
                    raise in_flight_error(key) from None
                task: asyncio.Task[Order] | None = self.runner.drive(order, progress)
            elif not same_request(order, lines, card_token, self.id_secret):
                raise UnprocessableError(
                    f"this {IDEMPOTENCY_HEADER} was already used with a different request; use a new key",
                    idempotency_key=key,
                )
            else:  # a repeat: wait for the order if this instance drives it, else answer it as it is
                task = None if order.is_terminal else self.runner.tasks.get(order.id)
            if not order.is_terminal:
                settled = await settle(task, bounded_by_request(wait))
                order = settled or await self.saga.order(order_id) or order
            return Placed(order, replayed)

    async def cancel(self, order_id: str, customer: str) -> Order:
        """Cancel a confirmed order (refund, release) as a runner task; the order as it stands
        after the default wait (``cancelled``, or ``cancelling`` while the runner goes on)."""
        order, progress = await self.saga.begin_cancel(order_id, customer)
        task = self.runner.drive(order, progress)
        return await settle(task, bounded_by_request(self.wait)) or await self.saga.order(order_id) or order
