"""``POST /orders`` behind its Idempotency-Key: the saga runs once per (customer, key).

- The order id is derived from the customer and the key (:func:`order_id_for`) with HMAC-SHA256
  under svc-b's secret (provisioned into a 0600 file, ``CARAVAN_SECRET_KEY_FILE``), so a retry can
  never place a second order — at worst it finds the first one — and nobody without the secret can
  compute another customer's order ids. The order's row is the key's record — no separate
  idempotency table on this path: a new key costs one look-up (one statement) and the order's
  insert; a known key answers the order as it stands.
- While a request with a key is being processed, another with the same key is refused (409):
  in this process by a registry of keys in flight; across instances by the order row itself
  (inserting the same order id twice fails).
- The saga runs as a task of the instance's :class:`OrderRunner` (outside the request: a client
  that goes away does not stop it half-way). The request waits for it a short while (2 s by
  default; ``Prefer: wait=N`` / ``respond-async``, RFC 7240, echoed in ``Preference-Applied``;
  never past the request's own deadline): **201** with the final order when it finished, else
  **202** with the order as it stands, ``Location`` to poll and ``Retry-After: 1``.
- A repeat of a key whose order is still moving waits the same way (if this instance drives it)
  and answers 201 or 202 likewise — an order another instance drives is answered as it stands.
- Same key, other body (lines or card) → 422. The card is compared by a keyed digest stored with
  the order (:func:`card_digest_for`): the card token itself is dropped once authorised.
- A final order (``confirmed`` / ``cancelled``) is answered with ``Idempotent-Replayed: true``.
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
from typing import Any

from litestar import Response

from caravan_commons.deadline import current_deadline
from caravan_commons.errors import ConflictError, UnprocessableError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, key_id
from caravan_commons.schemas import encode
from svc_b.api.schemas import OrderOut, PlaceOrderIn
from svc_b.domain.model import Order
from svc_b.service_layer.runner import OrderRunner
from svc_b.service_layer.saga import LineRequest, PlaceOrder, Saga

PATH = "/orders"
PREFERENCE_APPLIED = "preference-applied"
#: what a request keeps of its deadline to answer in after waiting for the saga
ANSWER_MARGIN_S = 0.25


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


@dataclass(frozen=True, slots=True)
class Wait:
    """How long a request waits for the saga before answering 202, and the ``Preference-Applied``
    value that says so (None when the client stated no preference we applied)."""

    seconds: float
    applied: str | None = None


def preferred_wait(prefer: str | None, *, default: float, maximum: float) -> Wait:
    """The wait a ``Prefer`` header (RFC 7240) asks for: ``wait=N`` (delta-seconds, capped at
    ``maximum``), ``respond-async`` (do not wait; with ``wait`` too, wait at most that). Anything
    else — other preferences, a malformed ``wait`` — is ignored, as RFC 7240 says."""
    wait: int | None = None
    respond_async = False
    for item in (prefer or "").split(","):
        token, _, value = item.split(";", 1)[0].strip().partition("=")
        token, value = token.strip().lower(), value.strip().strip('"')
        if token == "wait" and value.isdigit() and len(value) <= 9:
            wait = int(value)
        elif token == "respond-async" and not value:
            respond_async = True
    if wait is not None:
        capped = min(wait, int(maximum))
        applied = f"wait={capped}"
        return Wait(float(capped), f"respond-async, {applied}" if respond_async else applied)
    if respond_async:
        return Wait(0.0, "respond-async")
    return Wait(default)


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


def order_answer(order: Order, status: int, headers: dict[str, str], wait: Wait) -> Response[Any]:
    if wait.applied is not None:
        headers[PREFERENCE_APPLIED] = wait.applied
        headers["vary"] = "Prefer"
    if status == 202:
        headers["retry-after"] = "1"
    return Response(
        encode(OrderOut.of(order)), status_code=status, media_type="application/json", headers=headers
    )


@dataclass
class OrderDesk:
    saga: Saga
    runner: OrderRunner
    in_flight: set[str] = field(default_factory=set)
    #: the key order ids are derived with (random when none is provisioned: ids are then stable
    #: only within this process)
    id_secret: bytes = field(default_factory=lambda: secrets.token_bytes(32))
    #: how long a request waits for the saga by default, and at most (``Prefer: wait=N``)
    wait: float = 2.0
    max_wait: float = 60.0

    async def place(
        self, *, customer: str, key: str, request: PlaceOrderIn, prefer: str | None = None
    ) -> Response[Any]:
        """201 with the order when its saga finished within the wait (or it was final already),
        else 202 with the order as it stands; both with ``Location``."""
        wait = preferred_wait(prefer, default=self.wait, maximum=self.max_wait)
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
                task: asyncio.Task[Order] | None = self.runner.drive(order, progress)
            elif not same_request(order, request, self.id_secret):
                raise UnprocessableError(
                    f"this {IDEMPOTENCY_HEADER} was already used with a different request; use a new key",
                    idempotency_key=key,
                )
            else:  # a repeat: wait for the order if this instance drives it, else answer it as it is
                task = None if order.is_terminal else self.runner.tasks.get(order.id)
            if not order.is_terminal:
                settled = await settle(task, bounded_by_request(wait.seconds))
                order = settled or await self.saga.order(order_id) or order
            headers = {"location": location_of(order)}
            if replayed and order.is_terminal:
                headers[REPLAYED_HEADER] = "true"
            return order_answer(order, 201 if order.is_terminal else 202, headers, wait)
        finally:
            self.in_flight.discard(claim)

    async def cancel(self, order_id: str, customer: str) -> Order:
        """Cancel a confirmed order (refund, release) as a runner task; the order as it stands
        after the default wait (``cancelled``, or ``cancelling`` while the runner goes on)."""
        order, progress = await self.saga.begin_cancel(order_id, customer)
        task = self.runner.drive(order, progress)
        return await settle(task, bounded_by_request(self.wait)) or await self.saga.order(order_id) or order

    @staticmethod
    def _in_flight(key: str) -> ConflictError:
        return ConflictError(
            f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
            idempotency_key=key,
        )
