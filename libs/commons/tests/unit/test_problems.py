"""The one error → problem+json mapping, its inverse, and the OpenAPI documentation of errors."""

from __future__ import annotations

import json
from typing import Any

import msgspec
import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st
from litestar import get, post
from litestar.exceptions import ImproperlyConfiguredException
from litestar.params import JSONBody
from litestar.testing import TestClient

from caravan_commons.app import create_app
from caravan_commons.errors import (
    ALL_ERRORS,
    ApplicationError,
    ServerError,
    TooManyRequestsError,
    error_class_for,
)
from caravan_commons.logging import configure_logging
from caravan_commons.problems import (
    PROBLEM_MEDIA_TYPE,
    error_from_document,
    problem_document,
    problem_responses,
)
from caravan_commons.schemas import WireStruct
from caravan_commons.settings import ServiceSettings

CONCRETE = ALL_ERRORS[1:]  # ApplicationError itself is abstract: it answers as a ServerError
RESERVED = {"type", "title", "status", "detail", "instance", "retry_after", "correlation_id"}

json_scalars = st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    max_leaves=6,
)
extension_names = st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12).filter(
    lambda k: k not in RESERVED
)
details = st.text(min_size=1, max_size=80)


@given(st.sampled_from(CONCRETE), details, st.dictionaries(extension_names, json_values, max_size=3))
def test_document_round_trip_gives_back_the_same_class_detail_and_extensions(
    cls: type[ApplicationError], detail: str, extensions: dict[str, Any]
) -> None:
    error = cls(detail, **extensions)
    wire = msgspec.json.encode(problem_document(error))
    document = msgspec.json.decode(wire)
    assert document["status"] == cls.status
    assert error_class_for(document["type"], document["status"]) is cls
    back = error_from_document(document["status"], document)
    assert type(back) is cls
    assert back.detail == detail
    assert back.extensions == extensions


@given(st.floats(min_value=0, max_value=3600, allow_nan=False))
def test_too_many_requests_keeps_retry_after(retry_after: float) -> None:
    document = msgspec.json.decode(
        msgspec.json.encode(problem_document(TooManyRequestsError(retry_after=retry_after)))
    )
    back = error_from_document(429, document)
    assert isinstance(back, TooManyRequestsError)
    assert back.retry_after == retry_after


def test_the_bare_base_class_answers_as_a_server_error() -> None:
    document = problem_document(ApplicationError("x"))
    assert error_class_for(document["type"], 500) is ServerError


def test_foreign_problem_types_map_by_status() -> None:
    assert error_class_for("https://example.com/out-of-credit", 403).__name__ == "ForbiddenError"
    assert error_class_for("about:blank", 418).__name__ == "ClientError"
    assert error_class_for(None, 502) is ServerError


class Order(WireStruct):
    sku: str
    quantity: int


class Raise(WireStruct):
    name: str
    detail: str
    extensions: dict[str, Any] = {}


ERRORS_BY_NAME = {cls.__name__: cls for cls in CONCRETE}


@post("/raise", status_code=200)
async def raise_error(data: JSONBody[Raise]) -> None:
    raise ERRORS_BY_NAME[data.name](data.detail, **data.extensions)


@post("/orders")
async def place(data: JSONBody[Order]) -> Order:
    return data


@get("/boom")
async def boom() -> None:
    raise RuntimeError("database password is hunter2")


@get("/misconfigured")
async def misconfigured() -> None:
    raise ImproperlyConfiguredException("internal wiring detail")


@get("/decode")
async def decode() -> None:
    msgspec.json.decode(b'{"sku": 1}', type=Order)


@get("/slow-down")
async def slow_down() -> None:
    raise TooManyRequestsError("easy", retry_after=2.2)


@pytest.fixture
def client(settings: ServiceSettings) -> Any:
    app = create_app(settings, route_handlers=[raise_error, place, boom, misconfigured, decode, slow_down])
    with TestClient(app) as client:
        yield client


def test_http_round_trip_for_every_error_class(client: Any) -> None:
    @hsettings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(st.sampled_from(CONCRETE), details, st.dictionaries(extension_names, json_scalars, max_size=2))
    def check(cls: type[ApplicationError], detail: str, extensions: dict[str, Any]) -> None:
        answer = client.post(
            "/raise", json={"name": cls.__name__, "detail": detail, "extensions": extensions}
        )
        assert answer.status_code == cls.status
        assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
        document = answer.json()
        assert document["instance"] == "/raise"
        back = error_from_document(answer.status_code, document)
        assert type(back) is cls
        assert back.detail == detail
        for key, value in extensions.items():
            assert back.extensions[key] == value

    check()


def test_unknown_exception_is_a_500_with_a_correlation_id_and_no_internals(
    settings: ServiceSettings, client: Any
) -> None:
    lines: list[str] = []
    configure_logging(settings, sink=lines.append)
    answer = client.get("/boom", headers={"x-request-id": "req-boom-1"})
    assert answer.status_code == 500
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    document = answer.json()
    assert document["correlation_id"] == "req-boom-1" == answer.headers["x-request-id"]
    assert document["type"].endswith("/internal-error")
    assert (
        "hunter2" not in answer.text and "Traceback" not in answer.text and "RuntimeError" not in answer.text
    )
    logged = [json.loads(line) for line in lines]
    error = next(entry for entry in logged if entry["level"] == "ERROR")
    assert error["request_id"] == "req-boom-1"
    assert "req-boom-1" in error["message"]
    assert "Traceback" in error["exception"] and "hunter2" in error["exception"]


def test_litestar_internal_500_details_are_hidden(client: Any) -> None:
    answer = client.get("/misconfigured")
    assert answer.status_code == 500
    assert "wiring" not in answer.text
    assert answer.json()["correlation_id"] == answer.headers["x-request-id"]


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        (b'{"sku": "a", "quantity": 1, "colour": "red"}', "unknown field `colour`"),
        (b'{"sku": "a"', "truncated"),
        (b"{sku: 1}", "malformed"),
        (b'{"sku": "a"}', "missing required field `quantity`"),
        (b'{"sku": "a", "quantity": "two"}', "Expected `int`"),
        (b"[]", "Expected `object`"),
    ],
)
def test_bad_bodies_are_400_validation_problems(client: Any, body: bytes, fragment: str) -> None:
    answer = client.post("/orders", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.headers["content-type"] == PROBLEM_MEDIA_TYPE
    document = answer.json()
    assert document["type"].endswith("/validation-error")
    assert fragment in answer.text
    assert error_class_for(document["type"], 400).__name__ == "ValidationError"


def test_msgspec_errors_escaping_a_handler_are_400(client: Any) -> None:
    answer = client.get("/decode")
    assert answer.status_code == 400
    assert answer.json()["type"].endswith("/validation-error")


def test_429_sets_retry_after(client: Any) -> None:
    answer = client.get("/slow-down")
    assert answer.status_code == 429
    assert answer.headers["retry-after"] == "3"
    assert answer.json()["retry_after"] == 2.2


def test_unknown_path_and_method(client: Any) -> None:
    missing = client.get("/nowhere")
    assert missing.status_code == 404
    assert missing.json()["type"].endswith("/not-found")
    wrong_method = client.delete("/orders")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert wrong_method.json() | {"instance": None} == {
        "type": "https://caravan.dev/problems/method-not-allowed", "title": "Method not allowed",
        "status": 405, "detail": "Method Not Allowed",
        "instance": None,
    }  # fmt: skip
    assert "POST" in wrong_method.headers["allow"]


def test_openapi_documents_every_error_answer_as_problem_json(client: Any) -> None:
    document = client.get("/schema/openapi.json").json()
    assert "ProblemDetails" in document["components"]["schemas"]
    operations = [op for item in document["paths"].values() for op in item.values() if isinstance(op, dict)]
    assert operations
    for operation in operations:
        responses = operation["responses"]
        assert "500" in responses
        for code, response in responses.items():
            if code.startswith(("4", "5")):
                assert list(response["content"]) == [PROBLEM_MEDIA_TYPE], (code, operation["operationId"])
    place_op = document["paths"]["/orders"]["post"]
    assert "400" in place_op["responses"]


def test_problem_responses_helper() -> None:
    specs = problem_responses(404, 409)
    assert set(specs) == {404, 409}
    assert all(spec.media_type == PROBLEM_MEDIA_TYPE for spec in specs.values())
    assert specs[409].description == "Conflict"


@post("/nested", sync_to_thread=False)
def nested(data: JSONBody[list[Any]]) -> int:
    return len(data)


@pytest.mark.parametrize("body", [b"[" * 100_000, b'{"a":' * 50_000 + b"1" + b"}" * 50_000])
def test_a_deeply_nested_body_is_a_400_problem_not_a_500(body: bytes) -> None:
    """Regression (issue 18, defect 4): it answered 500 and logged a RecursionError per request."""
    app = create_app(ServiceSettings(service_name="svc-t"), route_handlers=[nested], tracing=False)
    with TestClient(app) as client:
        answer = client.post("/nested", content=body, headers={"content-type": "application/json"})
    assert answer.status_code == 400
    assert answer.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE)
    assert answer.json()["detail"] == "the request body is nested too deeply"
