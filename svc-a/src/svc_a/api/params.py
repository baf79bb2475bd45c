"""Path, query and header parameters shared by the controllers, with their documented constraints
(Litestar validates them; a violation is a 400 problem before any handler runs)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from litestar.openapi.spec import Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import HeaderParameter, PathParameter, QueryParameter

from caravan_commons.idempotency import IDEMPOTENCY_HEADER, MAX_KEY_LENGTH
from svc_a.api.schemas import DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, MAX_SKU_FILTER
from svc_a.domain.model import SKU_MAX_LENGTH, SKU_PATTERN
from svc_a.domain.reservation import ORDER_ID_PATTERN

SKU_REGEX = f"^{SKU_PATTERN.pattern}$"
ORDER_ID_REGEX = f"^{ORDER_ID_PATTERN.pattern}$"
#: Visible ASCII (a bare token or an RFC 8941 quoted string), but not the empty quoted string ``""``.
IDEMPOTENCY_KEY_REGEX = r'^(?:[!#-~][!-~]*|"(?:[!#-~]|[!-~]{2,})?)$'

SkuPath = Annotated[
    str, PathParameter(description="A product's sku", pattern=SKU_REGEX, max_length=SKU_MAX_LENGTH)
]
OrderIdPath = Annotated[
    str, PathParameter(description="The order id of the reservation", pattern=ORDER_ID_REGEX, max_length=100)
]
Cursor = Annotated[
    str | None,
    QueryParameter(
        description="Where the page starts: the next_cursor of the previous page (opaque)",
        pattern=SKU_REGEX,
        max_length=SKU_MAX_LENGTH,
        required=False,
    ),
]
Limit = Annotated[int, QueryParameter(description=f"Page size, 1 to {MAX_PAGE_SIZE}", ge=1, le=MAX_PAGE_SIZE)]
ActiveFilter = Annotated[
    bool | None,
    QueryParameter(description="Only products on sale (true) or off sale (false)", required=False),
]
SkuItem = Annotated[str, msgspec.Meta(pattern=SKU_REGEX, max_length=SKU_MAX_LENGTH)]
SkuFilter = Annotated[
    list[SkuItem] | None,
    QueryParameter(
        name="sku",
        # the items' constraints are enforced (msgspec) but Litestar does not document them
        schema_extra={"items": Schema(type=OpenAPIType.STRING, pattern=SKU_REGEX, max_length=SKU_MAX_LENGTH)},
        description=f"Only these skus (repeat the parameter, at most {MAX_SKU_FILTER}); unknown ones are "
        "left out of the page",
        max_items=MAX_SKU_FILTER,
        required=False,
    ),
]
IdempotencyKey = Annotated[
    str | None,
    HeaderParameter(
        name=IDEMPOTENCY_HEADER,
        description="Optional: a unique string per operation; a retry with the same key and body "
        "replays the first answer, with another body it is a 422, while the first is in flight a 409",
        min_length=1,
        max_length=MAX_KEY_LENGTH,
        pattern=IDEMPOTENCY_KEY_REGEX,
        required=False,
    ),
]

__all__ = [
    "DEFAULT_PAGE_SIZE",
    "ActiveFilter",
    "Cursor",
    "IdempotencyKey",
    "Limit",
    "OrderIdPath",
    "SkuFilter",
    "SkuPath",
]
