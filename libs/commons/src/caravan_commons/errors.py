"""One error hierarchy for every Caravan service.

Domain and service-layer code raise these; exactly one place (``caravan_commons.problems``) maps
them to RFC 9457 ``application/problem+json`` responses, and the inter-service client maps
problem+json answers back into the same classes. This module imports nothing but the standard
library, so a service's domain may use it.
"""

from __future__ import annotations

from typing import Any, ClassVar

PROBLEM_TYPE_BASE = "https://caravan.dev/problems/"


class ApplicationError(Exception):
    """Base of every error a Caravan service raises on purpose.

    ``status`` is the HTTP status the single mapping uses, ``slug`` names the problem type
    (``type`` is ``PROBLEM_TYPE_BASE + slug``), ``title`` is the short human summary that does
    not change between occurrences, ``detail`` explains this occurrence and ``extensions`` are
    extra members of the problem document (e.g. ``{"errors": [...]}``).
    """

    status: ClassVar[int] = 500
    slug: ClassVar[str] = "internal-error"
    title: ClassVar[str] = "Internal server error"

    def __init__(self, detail: str | None = None, **extensions: Any) -> None:
        self.detail = detail or self.title
        self.extensions = extensions
        super().__init__(self.detail)

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_BASE + self.slug

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.detail!r})"


class ClientError(ApplicationError):
    """The caller asked for something it may not or cannot have (4xx)."""

    status = 400
    slug = "bad-request"
    title = "Bad request"


class ValidationError(ClientError):
    """The request is well-formed transport-wise but its content is invalid."""

    status = 400
    slug = "validation-error"
    title = "Invalid request"


class UnauthorizedError(ClientError):
    """No valid identity was presented."""

    status = 401
    slug = "unauthorized"
    title = "Unauthorized"


class ForbiddenError(ClientError):
    """The caller is known but not allowed to do this."""

    status = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFoundError(ClientError):
    status = 404
    slug = "not-found"
    title = "Not found"


class ConflictError(ClientError):
    """The request conflicts with the current state of the resource."""

    status = 409
    slug = "conflict"
    title = "Conflict"


class PayloadTooLargeError(ClientError):
    status = 413
    slug = "payload-too-large"
    title = "Payload too large"


class UnprocessableError(ClientError):
    """Understood, but cannot be processed (e.g. an Idempotency-Key reused with another payload)."""

    status = 422
    slug = "unprocessable"
    title = "Unprocessable request"


class MethodNotAllowedError(ClientError):
    """The resource does not take this method; ``allow`` lists the ones it takes (Allow header)."""

    status = 405
    slug = "method-not-allowed"
    title = "Method not allowed"

    def __init__(self, detail: str | None = None, *, allow: tuple[str, ...] = (), **extensions: Any) -> None:
        self.allow = tuple(allow)
        super().__init__(detail, **extensions)


class TooManyRequestsError(ClientError):
    status = 429
    slug = "too-many-requests"
    title = "Too many requests"

    def __init__(
        self, detail: str | None = None, *, retry_after: float | None = None, **extensions: Any
    ) -> None:
        self.retry_after = retry_after
        super().__init__(detail, **extensions)


class ServerError(ApplicationError):
    """Something on our side failed (5xx)."""

    status = 500
    slug = "internal-error"
    title = "Internal server error"


class UpstreamUnavailableError(ServerError):
    """A dependency could not be reached (no healthy instance, refused, circuit open)."""

    status = 503
    slug = "upstream-unavailable"
    title = "Upstream unavailable"


class DeadlineExceededError(ServerError):
    """The request's deadline passed before an answer arrived."""

    status = 504
    slug = "deadline-exceeded"
    title = "Deadline exceeded"


ALL_ERRORS: tuple[type[ApplicationError], ...] = (
    ApplicationError,
    ClientError,
    ValidationError,
    UnauthorizedError,
    ForbiddenError,
    NotFoundError,
    MethodNotAllowedError,
    ConflictError,
    PayloadTooLargeError,
    UnprocessableError,
    TooManyRequestsError,
    ServerError,
    UpstreamUnavailableError,
    DeadlineExceededError,
)

# The first class in ALL_ERRORS listing a slug or status wins, except that the abstract base
# ApplicationError never does: a 500 / "internal-error" problem maps back to ServerError.
_BY_SLUG: dict[str, type[ApplicationError]] = {}
_BY_STATUS: dict[int, type[ApplicationError]] = {}
for _cls in ALL_ERRORS[1:]:
    _BY_SLUG.setdefault(_cls.slug, _cls)
    _BY_STATUS.setdefault(_cls.status, _cls)


def class_for_status(status: int) -> type[ApplicationError] | None:
    """The Caravan error class for an HTTP status, if Caravan has one for exactly that status."""
    return _BY_STATUS.get(status)


def error_class_for(problem_type: str | None, status: int) -> type[ApplicationError]:
    """The error class for a problem document: by its ``type`` when it is ours, else by status."""
    if problem_type and problem_type.startswith(PROBLEM_TYPE_BASE):
        cls = _BY_SLUG.get(problem_type.removeprefix(PROBLEM_TYPE_BASE))
        if cls is not None:
            return cls
    if status in _BY_STATUS:
        return _BY_STATUS[status]
    return ClientError if 400 <= status < 500 else ServerError
