"""Controllers of svc-b: one per resource. Paths are the service's own: the gateway routes
``/api/svc-b/...`` (the prefix declared in service.toml) here with the prefix stripped.

Every orders route acts for the customer the gateway asserts (``X-Caravan-Customer``; 401
without one) and shows a customer only their own orders: another customer's order is a 404.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any

from litestar import Controller, Request, Response, get, post
from litestar.datastructures import ResponseHeader
from litestar.di import NamedDependency
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, JSONBody, PathParameter, QueryParameter

from caravan_commons.errors import NotFoundError
from caravan_commons.idempotency import IDEMPOTENCY_HEADER, REPLAYED_HEADER, require_key
from caravan_commons.principal import customer_of, requires_customer
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import strict_decode
from svc_b.api.placing import place_order
from svc_b.api.schemas import MAX_PAGE, ORDER_ID_PATTERN, OrderOut, OrderPage, PlaceOrderIn
from svc_b.domain.model import Order
from svc_b.service_layer.placing import OrderDesk
from svc_b.service_layer.saga import Saga

#: An Idempotency-Key: a token, optionally quoted as the draft's sf-string (``"..."``).
KEY_PATTERN = r'^"?[A-Za-z0-9_.:-]{1,200}"?$'
#: ``<placed at, epoch microseconds>.<order id>`` of the previous page's last order.
CURSOR_PATTERN = r"^[0-9]{1,16}\." + ORDER_ID_PATTERN.removeprefix("^")


OrderIdPath = Annotated[str, PathParameter(description="the order's id (as answered when it was placed)")]


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)


def encode_cursor(order: Order) -> str:
    return f"{((order.placed_at or EPOCH) - EPOCH) // MICROSECOND}.{order.id}"


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    micros, order_id = cursor.split(".", 1)  # the pattern guarantees the shape
    return EPOCH + int(micros) * MICROSECOND, order_id


class OrderController(Controller):
    path = "/orders"
    tags = ["orders"]

    @post(
        "/",
        status_code=201,
        summary="Place an order (runs the order saga; Idempotency-Key required)",
        description=(
            "Prices the lines at the catalog and stores the order; svc-b's runner then reserves the "
            "stock, authorises the card, commits the stock, captures the payment, retrying what fails "
            "transiently. The request waits for it a short while (2 s; `Prefer: wait=N` or "
            "`respond-async`, RFC 7240, echoed in `Preference-Applied`): 201 with the final order — "
            "`confirmed`, or `cancelled` with `cancel_reason` (`out_of_stock`, `payment_declined`, "
            "`upstream_unavailable`, ...) —, else 202 with the order as it stands (`pending`, "
            "`stock_reserved`, ...): poll its `Location`. 503 when the catalog cannot be reached to "
            "price the order (nothing was placed: retry with the same key). The same key with the same "
            "body answers the same order (a final answer is replayed with `Idempotent-Replayed: true`); "
            "with another body 422; while the first request is running 409."
        ),
        responses={
            202: ResponseSpec(
                data_container=OrderOut,
                description="Accepted: the order as it stands, still moving; poll its Location",
            ),
            **problem_responses(400, 401, 404, 409, 422, 503, 504),
        },
        guards=[requires_customer],
        response_headers=[
            ResponseHeader(
                name="Location", description="the order, relative to this URL", documentation_only=True
            ),
            ResponseHeader(
                name=REPLAYED_HEADER, description="`true` on a replayed answer", documentation_only=True
            ),
            ResponseHeader(
                name="Preference-Applied",
                description="the `Prefer` preferences applied (`wait=N`, `respond-async`)",
                documentation_only=True,
            ),
        ],
    )
    async def place(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[PlaceOrderIn],
        idempotency_key: Annotated[
            str,
            HeaderParameter(
                name=IDEMPOTENCY_HEADER,
                pattern=KEY_PATTERN,
                description="a unique string per order, e.g. a UUID; retries reuse it",
            ),
        ],
        desk: NamedDependency[OrderDesk],
        prefer: Annotated[
            str | None,
            HeaderParameter(
                name="Prefer",
                required=False,
                max_length=200,
                description="RFC 7240: `wait=N` (seconds to wait for the final order), `respond-async`",
            ),
        ] = None,
    ) -> Response[OrderOut]:
        key = require_key({IDEMPOTENCY_HEADER: idempotency_key})
        assert key is not None
        strict = strict_decode(await request.body(), PlaceOrderIn)
        return await place_order(desk, customer=customer_of(request), key=key, request=strict, prefer=prefer)

    @get(
        "/",
        summary="The caller's orders, newest first (cursor-paginated)",
        responses=problem_responses(401),
        guards=[requires_customer],
    )
    async def list_orders(
        self,
        request: Request[Any, Any, Any],
        saga: NamedDependency[Saga],
        limit: Annotated[int, QueryParameter(ge=1, le=MAX_PAGE, description="page size")] = 20,
        cursor: Annotated[
            str | None,
            QueryParameter(pattern=CURSOR_PATTERN, description="`next_cursor` of the previous page"),
        ] = None,
    ) -> OrderPage:
        after = decode_cursor(cursor) if cursor else None
        orders = await saga.orders_of(customer_of(request), limit=limit + 1, after=after)
        page, more = orders[:limit], len(orders) > limit
        return OrderPage(
            items=[OrderOut.of(order) for order in page],
            next_cursor=encode_cursor(page[-1]) if more and page else None,
        )

    @get(
        "/{order_id:str}",
        summary="One of the caller's orders (another customer's is 404)",
        responses=problem_responses(401, 404),
        guards=[requires_customer],
    )
    async def get_order(
        self, request: Request[Any, Any, Any], order_id: OrderIdPath, saga: NamedDependency[Saga]
    ) -> OrderOut:
        return OrderOut.of(await _own_order(saga, order_id, customer_of(request)))

    @post(
        "/{order_id:str}/cancel",
        status_code=200,
        summary="Cancel a confirmed order: refund the payment, release the stock",
        description=(
            "Answers the order: `cancelled` (reason `customer_cancelled`), or `cancelling` while svc-b's "
            "runner is still refunding and releasing (it finishes it; poll the order). Cancelling a "
            "cancelled order answers it as it is; an order still being placed cannot be cancelled (409)."
        ),
        responses=problem_responses(401, 404, 409),
        guards=[requires_customer],
    )
    async def cancel(
        self,
        request: Request[Any, Any, Any],
        order_id: OrderIdPath,
        saga: NamedDependency[Saga],
        desk: NamedDependency[OrderDesk],
    ) -> OrderOut:
        customer = customer_of(request)
        order = await _own_order(saga, order_id, customer)
        if order.status.value in ("cancelled", "cancelling"):
            return OrderOut.of(order)
        return OrderOut.of(await desk.cancel(order_id, customer))


async def _own_order(saga: Saga, order_id: str, customer: str) -> Order:
    order = await saga.order(order_id)
    if order is None or order.customer_id != customer:
        raise NotFoundError(f"no order {order_id}")
    return order
