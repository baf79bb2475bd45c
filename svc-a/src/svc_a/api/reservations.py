"""``/reservations``: stock held for an order. The security groups let only svc-b create, commit or
release them (the gateway may read them). A reservation belongs to svc-b's order, not to a
customer: through the gateway only the operator may read one (a customer gets 403 whether it
exists or not, and sees its order through svc-b instead).

``POST /reservations`` answers 201 when it created the reservation and 200 when the order already
had one with the same lines (whatever its status); an ``Idempotency-Key`` is optional and, when
sent, is kept on the reservation it creates (the row is the key's record, claimed by the same
``INSERT``): the same key and request replay that first answer, the same key with another request
is a 422.
"""

from __future__ import annotations

from typing import Any

from litestar import Controller, Request, Response, get, post
from litestar.connection import ASGIConnection
from litestar.handlers import BaseRouteHandler
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import JSONBody

from caravan_commons.errors import ForbiddenError
from caravan_commons.idempotency import REPLAYED_HEADER, fingerprint, key_id, require_key
from caravan_commons.principal import OPERATOR, principal_of
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import strict_decode
from svc_a.api.deps import CatalogDep, UnitOfWork
from svc_a.api.params import IdempotencyKey, OrderIdPath
from svc_a.api.schemas import ReservationCreate, ReservationOut
from svc_a.domain.reservation import Reservation
from svc_a.service_layer import handlers
from svc_a.service_layer.ports import KeyClaim


def _answer(reservation: Reservation, created: bool) -> Response[ReservationOut]:
    return Response(content=ReservationOut.of(reservation), status_code=201 if created else 200)


async def not_for_customers(
    connection: ASGIConnection[Any, Any, Any, Any], _handler: BaseRouteHandler
) -> None:
    """A Litestar guard: a request acting for a customer needs the operator scope (403 before any
    lookup, so a customer learns nothing about which reservations exist)."""
    principal = principal_of(connection)
    if principal.customer is not None and not principal.has_scope(OPERATOR):
        raise ForbiddenError("reservations are open to operators only; read your order instead")


not_for_customers.caravan_scope = OPERATOR  # type: ignore[attr-defined]  # the public document marks it


class ReservationController(Controller):
    path = "/reservations"
    tags = ["reservations"]

    @post(
        "/",
        summary="Hold stock for an order: every line or nothing (svc-b only)",
        description="201: created. 200: the order already has a reservation with these lines (it is "
        "returned as it is, whatever its status). 409 `out-of-stock`, `product-inactive`, or "
        "`reservation-conflict` (the order has a reservation with other lines). 404 `unknown-sku`.",
        status_code=201,
        responses={
            200: ResponseSpec(data_container=ReservationOut, description="The order's existing reservation"),
            **problem_responses(404, 409, 422),
        },
    )
    async def reserve(
        self,
        request: Request,
        catalog: CatalogDep,
        data: JSONBody[ReservationCreate],
        idempotency_key: IdempotencyKey = None,
    ) -> Response[ReservationOut]:
        data = strict_decode(await request.body(), ReservationCreate)
        claim = None
        if idempotency_key is not None:
            key = require_key(request.headers, required=False)
            assert key is not None
            claim = KeyClaim(
                key_id(key, principal_of(request).caller or ""),
                fingerprint(request.method, request.url.path, await request.body()),
            )
        done = await handlers.reserve_keyed(
            data.order_id, data.domain_lines(), catalog.uow_factory(), ttl=catalog.reservation_ttl, key=claim
        )
        answer = _answer(done.reservation, done.created)
        if done.replayed:
            answer.headers[REPLAYED_HEADER] = "true"
        return answer

    @get(
        "/{order_id:str}",
        summary="An order's reservation (operators and svc-b)",
        guards=[not_for_customers],
        responses=problem_responses(403, 404),
    )
    async def get_reservation(self, uow: UnitOfWork, order_id: OrderIdPath) -> ReservationOut:
        return ReservationOut.of(await handlers.get_reservation(order_id, uow))

    @post(
        "/{order_id:str}/commit",
        summary="The order is paid: the held units are sold (idempotent; svc-b only)",
        description="409 when the reservation was released or expired.",
        status_code=200,
        responses=problem_responses(404, 409),
    )
    async def commit(self, uow: UnitOfWork, order_id: OrderIdPath) -> ReservationOut:
        return ReservationOut.of(await handlers.commit_reservation(order_id, uow))

    @post(
        "/{order_id:str}/release",
        summary="Give the units back: held ones are unheld, sold ones return to the shelf "
        "(idempotent; svc-b only)",
        status_code=200,
        responses=problem_responses(404, 409),
    )
    async def release(self, uow: UnitOfWork, order_id: OrderIdPath) -> ReservationOut:
        return ReservationOut.of(await handlers.release_reservation(order_id, uow))
