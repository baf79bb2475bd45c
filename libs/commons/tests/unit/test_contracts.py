"""Consumer contracts against a real app's OpenAPI document: compatible calls pass, and each kind
of incompatible change on either side is reported."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import msgspec
import pytest
from litestar import Litestar, post
from litestar.params import Parameter

from caravan_commons.contracts import (
    Expectation,
    check,
    check_all,
    openapi_of,
    published_openapi_problems,
    write_openapi,
)
from caravan_commons.problems import problem_responses
from caravan_commons.schemas import WireStruct


class LineIn(WireStruct):
    sku: Annotated[str, msgspec.Meta(min_length=1, max_length=20)]
    quantity: Annotated[int, msgspec.Meta(ge=1, le=100)]


class HoldIn(WireStruct):
    order_id: str
    lines: list[LineIn]


class HoldOut(WireStruct):
    order_id: str
    status: str
    lines: list[LineIn]


@post("/holds/{order_id:str}", status_code=201, responses=problem_responses(409))
async def hold(
    order_id: str, data: HoldIn, key: Annotated[str, Parameter(header="Idempotency-Key")]
) -> HoldOut:
    return HoldOut(order_id, "held", data.lines)


@pytest.fixture(scope="module")
def document() -> dict[str, Any]:
    return openapi_of(Litestar([hold]))


# what the consumer decodes and sends
class Held(msgspec.Struct):
    order_id: str
    status: str


class HeldWithPrice(msgspec.Struct):
    order_id: str
    price: int  # the provider never sends it


EXAMPLE = {"order_id": "o-1", "lines": [{"sku": "SKU-1", "quantity": 2}]}
GOOD = Expectation("POST", "/holds/{id}", success=(201,), response=Held, request=EXAMPLE,
                   headers=("Idempotency-Key",), statuses=(409,))  # fmt: skip


def test_a_compatible_call_passes(document: dict[str, Any]) -> None:
    assert check(document, GOOD) == []


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"path": "/holdings/{id}"}, "publishes no such path"),
        ({"method": "PUT"}, "but not PUT"),
        ({"success": (200,)}, "status 200 is not documented"),
        ({"headers": ()}, "requires header Idempotency-Key"),
        ({"request": {"order_id": "o-1", "lines": [{"sku": "SKU-1", "quantity": 0}]}}, "request body"),
        ({"request": {"order_id": "o-1", "lines": [], "note": "x"}}, "request body"),
        ({"request": None}, "requires a body"),
        ({"response": HeldWithPrice}, "the provider does not send it"),
    ],
)
def test_each_incompatibility_is_reported(
    document: dict[str, Any], change: dict[str, Any], message: str
) -> None:
    from dataclasses import replace

    problems = check_all(document, [replace(GOOD, **change)])
    assert problems and any(message in p for p in problems), problems


def test_the_published_document_must_match_what_is_served(tmp_path: Path) -> None:
    app = Litestar([hold])
    published = tmp_path / "openapi.json"
    assert "missing" in published_openapi_problems(app, published)[0]
    write_openapi(app, published)
    assert published_openapi_problems(app, published) == []
    published.write_text(published.read_text().replace("/holds/{order_id}", "/holds/{id}"))
    assert "/holds/{order_id}" in published_openapi_problems(app, published)[0]


class HeldStrictStatus(msgspec.Struct):
    order_id: str
    status: int  # the provider sends a string


class HeldLines(msgspec.Struct):
    lines: list[Held]  # the provider's lines have no order_id


def test_types_and_nested_fields_are_compared(document: dict[str, Any]) -> None:
    from dataclasses import replace

    (wrong_type,) = check(document, replace(GOOD, response=HeldStrictStatus))
    assert ".status" in wrong_type and "string" in wrong_type
    nested = check(document, replace(GOOD, response=HeldLines))
    assert any(".lines[].order_id: the provider does not send it" in p for p in nested), nested
