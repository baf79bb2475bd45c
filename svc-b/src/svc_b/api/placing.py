"""``POST /orders``'s HTTP side: the ``Prefer`` header (RFC 7240) and the answer. The order is
placed by the service layer's :class:`~svc_b.service_layer.placing.OrderDesk` (idempotency per
customer and Idempotency-Key, the saga, the wait).

The request waits for the saga a short while (2 s by default; ``Prefer: wait=N`` /
``respond-async``, echoed in ``Preference-Applied``; never past the request's own deadline):
**201** with the final order when it finished, else **202** with the order as it stands,
``Location`` to poll and ``Retry-After: 1``. A final order placed by an earlier request with the
same key is answered with ``Idempotent-Replayed: true``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from litestar import Response

from caravan_commons.idempotency import REPLAYED_HEADER
from caravan_commons.schemas import encode
from svc_b.api.schemas import OrderOut, PlaceOrderIn
from svc_b.domain.model import Order
from svc_b.service_layer.placing import OrderDesk
from svc_b.service_layer.saga import LineRequest

PREFERENCE_APPLIED = "preference-applied"


def location_of(order: Order) -> str:
    """Relative to the request's URL, so it is right both directly and through the gateway."""
    return f"orders/{order.id}"


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


def order_answer(order: Order, status: int, headers: dict[str, str], wait: Wait) -> Response[Any]:
    if wait.applied is not None:
        headers[PREFERENCE_APPLIED] = wait.applied
        headers["vary"] = "Prefer"
    if status == 202:
        headers["retry-after"] = "1"
    return Response(
        encode(OrderOut.of(order)), status_code=status, media_type="application/json", headers=headers
    )


async def place_order(
    desk: OrderDesk, *, customer: str, key: str, request: PlaceOrderIn, prefer: str | None = None
) -> Response[Any]:
    """201 with the order when its saga finished within the wait (or it was final already), else
    202 with the order as it stands; both with ``Location``."""
    wait = preferred_wait(prefer, default=desk.wait, maximum=desk.max_wait)
    placed = await desk.place(
        customer=customer,
        key=key,
        lines=[LineRequest(line.sku, line.quantity) for line in request.lines],
        card_token=request.payment.card_token,
        wait=wait.seconds,
    )
    order = placed.order
    headers = {"location": location_of(order)}
    if placed.replayed and order.is_terminal:
        headers[REPLAYED_HEADER] = "true"
    return order_answer(order, 201 if order.is_terminal else 202, headers, wait)
