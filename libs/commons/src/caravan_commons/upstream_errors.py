"""Turn an upstream's error answer (problem+json or not) back into a typed :mod:`errors` exception.

The reverse of the single problem+json mapping: ``type`` picks the class (ours by slug, anything
else by status), ``detail`` and every extension member are kept, and the error remembers where it
came from (``upstream``, ``upstream_status``, ``problem_type``, ``problem_instance``). When the
answer's status differs from the class's usual one (e.g. a 418), the instance keeps the real status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from caravan_commons.errors import ApplicationError, TooManyRequestsError, error_class_for

_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})
_MAX_DETAIL = 500


def _retry_after(headers: Mapping[str, str], document: Mapping[str, Any]) -> float | None:
    raw = headers.get("Retry-After")
    if raw is not None and raw.strip().replace(".", "", 1).isdigit():
        return float(raw)
    value = document.get("retry_after")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def error_from_answer(service: str, status: int, headers: Mapping[str, str], body: bytes) -> ApplicationError:
    """The typed error for an answer with ``status >= 400``."""
    document: dict[str, Any] = {}
    content_type = headers.get("Content-Type", "")
    if "json" in content_type and body:
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            decoded = None
        if isinstance(decoded, dict):
            document = decoded
    problem_type = document.get("type") if isinstance(document.get("type"), str) else None
    cls = error_class_for(problem_type, status)
    detail = document.get("detail") or document.get("title")
    if not isinstance(detail, str):
        snippet = body[:_MAX_DETAIL].decode("utf-8", errors="replace").strip() if not document else ""
        detail = f"{service} answered {status}" + (f": {snippet}" if snippet else "")
    extensions = {k: v for k, v in document.items() if k not in _STANDARD_MEMBERS}
    if cls is TooManyRequestsError:
        error: ApplicationError = TooManyRequestsError(detail, retry_after=_retry_after(headers, document))
    else:
        error = cls(detail)
    error.extensions = extensions
    if status != cls.status:
        error.status = status  # type: ignore[misc] - the instance keeps the status it was given
    error.upstream = service  # type: ignore[attr-defined]
    error.upstream_status = status  # type: ignore[attr-defined]
    error.problem_type = problem_type  # type: ignore[attr-defined]
    instance = document.get("instance")
    error.problem_instance = instance if isinstance(instance, str) else None  # type: ignore[attr-defined]
    return error
