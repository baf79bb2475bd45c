"""The one mapping from errors to RFC 9457 ``application/problem+json`` answers.

Everything a request can fail with ends up here, through Litestar's ``ProblemDetailsPlugin``:

- :class:`~caravan_commons.errors.ApplicationError` subclasses → their own status, ``type``
  (``https://caravan.dev/problems/<slug>``), ``title``, ``detail`` and extension members; a 429
  with ``retry_after`` sets ``Retry-After``;
- Litestar's ``HTTPException`` family (request validation — including unknown fields and malformed
  JSON —, 404 for unknown paths, 405, 413 ...) → the matching Caravan problem type, or
  ``about:blank`` with the status phrase as title for statuses Caravan has no class for;
- msgspec decode/validation errors escaping a handler → 400 ``validation-error``;
- anything else → 500 ``internal-error`` whose body carries only a ``correlation_id`` (the request
  id); the exception and its stack are logged under that id, never sent.

The OpenAPI side: :func:`problem_responses` declares a route's error answers (``responses=``), and
:func:`document_problems` (create_app calls it) rewrites every documented error answer of the
app's OpenAPI document to ``application/problem+json`` with the shared ``ProblemDetails`` schema,
adding ``500`` everywhere and ``400`` wherever the operation takes input.
"""

from __future__ import annotations

import dataclasses
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

import msgspec
from litestar.exceptions import HTTPException, ValidationException
from litestar.openapi.datastructures import ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, OpenAPIResponse, Operation, Reference, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.plugins.problem_details import (
    ProblemDetailsConfig,
    ProblemDetailsException,
    ProblemDetailsPlugin,
)
from loguru import logger

from caravan_commons.errors import (
    ApplicationError,
    ServerError,
    ValidationError,
    class_for_status,
)
from caravan_commons.identity_keys import DEFAULT_EXEMPT as IDENTITY_EXEMPT
from caravan_commons.logging import current_request_id, new_request_id
from caravan_commons.problem_documents import (
    PROBLEM_MEDIA_TYPE,
    RESERVED_MEMBERS,
    error_from_document,
    extension_members,
    problem_document,
    problem_headers,
)

if TYPE_CHECKING:
    from litestar import Litestar

ABOUT_BLANK = "about:blank"
INTERNAL_DETAIL = "An unexpected error occurred. Quote the correlation_id when reporting it."


class FieldProblem(msgspec.Struct, omit_defaults=True):
    """One invalid input, as listed in a validation problem's ``errors`` member."""

    message: str
    key: str | None = None
    source: str | None = None


class ProblemDetails(msgspec.Struct, kw_only=True, omit_defaults=True):
    """An RFC 9457 problem document (extension members beyond these are allowed)."""

    type: str = ABOUT_BLANK
    title: str
    status: int
    detail: str | None = None
    instance: str | None = None
    correlation_id: str | None = None
    errors: list[FieldProblem] | None = None


class CaravanProblem(ProblemDetailsException):
    """A problem about to be sent; fills ``instance`` with the request path."""

    def to_response(self, request: Any) -> Any:
        if self.instance is None:
            self.instance = request.url.path
        return super().to_response(request)


def _from_application_error(exc: ApplicationError) -> ProblemDetailsException:
    extra = {k: v for k, v in problem_document(exc).items() if k not in RESERVED_MEMBERS}
    if exc.status >= 500:
        correlation_id = current_request_id() or new_request_id()
        extra["correlation_id"] = correlation_id
        logger.warning("{} answered {}: {}", type(exc).__name__, exc.status, exc.detail)
    return CaravanProblem(
        detail=exc.detail,
        status_code=exc.status,
        headers=problem_headers(exc),
        extra=extra or None,
        type_=exc.type,
        title=exc.title,
    )


def _from_unexpected(exc: BaseException) -> ProblemDetailsException:
    correlation_id = current_request_id() or new_request_id()
    logger.opt(exception=exc).error("unhandled {} (correlation_id={})", type(exc).__name__, correlation_id)
    return CaravanProblem(
        detail=INTERNAL_DETAIL,
        status_code=500,
        extra={"correlation_id": correlation_id},
        type_=ServerError().type,
        title=ServerError.title,
    )


def _from_http_exception(exc: HTTPException) -> ProblemDetailsException:
    status = exc.status_code
    if status == 500 or (status > 500 and class_for_status(status) is None):
        return _from_unexpected(exc)  # e.g. Litestar's ImproperlyConfigured: internals, not for clients
    headers = dict(exc.headers) if exc.headers else None
    if isinstance(exc, ValidationException) or status == 400:
        extra = exc.extra
        errors = (
            [e for e in extra if isinstance(e, dict)] if isinstance(extra, list) else None
        )  # Litestar: [{"message", "key", "source"}]
        return CaravanProblem(
            detail=exc.detail,
            status_code=400,
            headers=headers,
            extra={"errors": errors} if errors else None,
            type_=ValidationError().type,
            title=ValidationError.title,
        )
    cls = class_for_status(status)
    extra_members = extension_members(exc.extra) if isinstance(exc.extra, dict) else None
    if cls is not None:
        return CaravanProblem(
            detail=exc.detail,
            status_code=status,
            headers=headers,
            extra=extra_members,
            type_=cls().type,
            title=cls.title,
        )
    try:
        title = HTTPStatus(status).phrase
    except ValueError:
        title = "Error"
    return CaravanProblem(
        detail=exc.detail,
        status_code=status,
        headers=headers,
        extra=extra_members,
        type_=ABOUT_BLANK,
        title=title,
    )


def _from_msgspec_error(exc: msgspec.DecodeError) -> ProblemDetailsException:
    return CaravanProblem(
        detail=str(exc), status_code=400, type_=ValidationError().type, title=ValidationError.title
    )


def _from_recursion_error(exc: RecursionError) -> ProblemDetailsException:
    """A JSON body nested deeper than the decoder goes (msgspec stops at the interpreter's
    recursion limit, after about a thousand levels, so this costs little): 400, nothing logged.
    Any other RecursionError is a bug and stays a 500."""
    if "deserializing" not in str(exc):
        return _from_unexpected(exc)
    return CaravanProblem(
        detail="the request body is nested too deeply",
        status_code=400,
        type_=ValidationError().type,
        title=ValidationError.title,
    )


def problem_details_plugin() -> ProblemDetailsPlugin:
    """Litestar's ProblemDetailsPlugin configured with the Caravan mapping (create_app adds it)."""
    return ProblemDetailsPlugin(
        ProblemDetailsConfig(
            exception_to_problem_detail_map={
                ApplicationError: _from_application_error,
                HTTPException: _from_http_exception,
                msgspec.DecodeError: _from_msgspec_error,
                RecursionError: _from_recursion_error,
                Exception: _from_unexpected,
            }
        )
    )


# --------------------------------------------------------------------------- OpenAPI


def _phrase(status: int) -> str:
    cls = class_for_status(status)
    if cls is not None:
        return cls.title
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return "Error"


def problem_responses(*statuses: int) -> dict[int, ResponseSpec]:
    """Route ``responses=`` documenting ``statuses`` as problem+json answers, e.g.
    ``@post("/orders", responses=problem_responses(409, 422))``."""
    return {
        status: ResponseSpec(
            data_container=ProblemDetails,
            description=_phrase(status),
            media_type=PROBLEM_MEDIA_TYPE,
            generate_examples=False,
        )
        for status in statuses
    }


PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    title="ProblemDetails",
    description="An RFC 9457 problem document; more extension members may appear.",
    required=["type", "title", "status"],
    properties={
        "type": Schema(type=OpenAPIType.STRING, description="URI identifying the problem type"),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER, minimum=100, maximum=599),
        "detail": Schema(type=OpenAPIType.STRING),
        "instance": Schema(type=OpenAPIType.STRING),
        "correlation_id": Schema(type=OpenAPIType.STRING),
        "errors": Schema(
            type=OpenAPIType.ARRAY,
            items=Schema(
                type=OpenAPIType.OBJECT,
                required=["message"],
                properties={
                    "message": Schema(type=OpenAPIType.STRING),
                    "key": Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL]),
                    "source": Schema(type=[OpenAPIType.STRING, OpenAPIType.NULL]),
                },
            ),
        ),
    },
)


def _struct_classes() -> dict[str, list[type[msgspec.Struct]]]:
    found: dict[str, list[type[msgspec.Struct]]] = {}
    pending: list[type[msgspec.Struct]] = [msgspec.Struct]
    while pending:
        cls = pending.pop()
        for sub in cls.__subclasses__():
            found.setdefault(sub.__name__, []).append(sub)
            pending.append(sub)
    return found


def _close_strict_structs(schemas: dict[str, Any]) -> None:
    """Declare ``additionalProperties: false`` for structs that forbid unknown fields, so that the
    document says what the server enforces (Litestar leaves it open)."""
    classes = _struct_classes()
    for key, schema in schemas.items():
        if not isinstance(schema, Schema) or schema.type != OpenAPIType.OBJECT:
            continue
        candidates = classes.get(schema.title or key) or classes.get(key.rsplit("_", 1)[-1], [])
        if candidates and all(c.__struct_config__.forbid_unknown_fields for c in candidates):
            schema.additional_properties = False


@dataclasses.dataclass
class ScopedOperation(Operation):
    """An operation that names the scopes it needs (``x-caravan-scopes``): the gateway's public
    document shows it only to readers holding them."""

    x_caravan_scopes: list[str] | None = dataclasses.field(
        default=None, metadata={"alias": "x-caravan-scopes"}
    )


def _required_scopes(app: Litestar) -> dict[tuple[str, str], list[str]]:
    """(path, method) → the scopes its guards require (see principal.requires_scope)."""
    needed: dict[tuple[str, str], list[str]] = {}
    for route in app.routes:
        for handler in getattr(route, "route_handlers", ()):
            guards = [getattr(g, "func", g) for g in handler.resolve_guards()]  # sync guards are wrapped
            scopes = sorted({g.caravan_scope for g in guards if hasattr(g, "caravan_scope")})
            for method in getattr(handler, "http_methods", ()):
                if scopes:
                    needed[(route.path_format, method.lower())] = scopes
    return needed


def document_problems(app: Litestar) -> None:
    """Make every error answer in ``app``'s OpenAPI document a documented problem+json response.

    Operations whose guards need a scope (``principal.requires_scope``) carry ``x-caravan-scopes``.
    Adds ``500`` to every operation, ``401`` and ``403`` (the identity middleware's answers) to every
    operation outside health, metrics and the schema, ``400`` to every operation with parameters or
    a body, and
    points every 4xx/5xx response at ``#/components/schemas/ProblemDetails``. Object schemas of
    structs declared with ``forbid_unknown_fields`` get ``additionalProperties: false``.
    """
    if app.openapi_config is None:
        return
    openapi = app.openapi_schema
    components = openapi.components
    if components.schemas is None:
        components.schemas = {}
    components.schemas["ProblemDetails"] = PROBLEM_SCHEMA
    content = {
        PROBLEM_MEDIA_TYPE: OpenAPIMediaType(schema=Reference(ref="#/components/schemas/ProblemDetails"))
    }
    _close_strict_structs(components.schemas)
    scoped = _required_scopes(app)
    for path, path_item in (openapi.paths or {}).items():
        # every route but health, /metrics and the schema may be refused by the identity
        # middleware wherever a runtime enforces the security groups
        guarded = {"401", "403"} if not path.startswith(IDENTITY_EXEMPT) else set()
        for method in ("get", "put", "post", "delete", "options", "head", "patch", "trace"):
            operation = getattr(path_item, method, None)
            if operation is None:
                continue
            responses = operation.responses if operation.responses is not None else {}
            takes_input = bool(operation.parameters or path_item.parameters or operation.request_body)
            wanted = {"500"} | guarded | ({"400"} if takes_input else set())
            for code in wanted:
                if code not in responses:
                    responses[code] = OpenAPIResponse(description=_phrase(int(code)))
            for code, response in responses.items():
                if code[:1] in ("4", "5") and isinstance(response, OpenAPIResponse):
                    response.content = dict(content)
            operation.responses = responses
            if (path, method) in scoped:
                fields = {f.name: getattr(operation, f.name) for f in dataclasses.fields(Operation)}
                setattr(path_item, method, ScopedOperation(**fields, x_caravan_scopes=scoped[(path, method)]))


__all__ = [
    "ABOUT_BLANK",
    "INTERNAL_DETAIL",
    "PROBLEM_MEDIA_TYPE",
    "CaravanProblem",
    "FieldProblem",
    "ProblemDetails",
    "document_problems",
    "error_from_document",
    "problem_details_plugin",
    "problem_document",
    "problem_headers",
    "problem_responses",
]
