"""Gateway answers as RFC 9457 problem documents, through the commons mapping (problem_document)."""

from __future__ import annotations

import math

import msgspec

from caravan_commons.errors import ApplicationError, PayloadTooLargeError, UpstreamUnavailableError
from caravan_commons.problems import PROBLEM_MEDIA_TYPE, problem_document, problem_headers
from caravan_gateway.headers import Headers

_encoder = msgspec.json.Encoder()
_CONTENT_TYPE = (b"content-type", PROBLEM_MEDIA_TYPE.encode())


def render_problem(exc: ApplicationError, instance: str, request_id: bytes) -> tuple[int, Headers, bytes]:
    """Status, headers and body of the problem+json answer for ``exc``."""
    doc = problem_document(exc)
    doc["instance"] = instance
    if exc.status >= 500:
        doc["correlation_id"] = request_id.decode()
    headers: Headers = [_CONTENT_TYPE]
    for name, value in (problem_headers(exc) or {}).items():
        headers.append((name.lower().encode(), value.encode()))
    retry_after = exc.extensions.get("retry_after")
    if isinstance(exc, UpstreamUnavailableError) and isinstance(retry_after, int | float):
        headers.append((b"retry-after", str(max(1, math.ceil(retry_after))).encode()))
    return exc.status, headers, _encoder.encode(doc)


def body_too_large(limit: int) -> PayloadTooLargeError:
    """The 413 of a request body over ``limit`` bytes (declared, or found while streaming)."""
    return PayloadTooLargeError(f"the request body may be at most {limit} bytes")
