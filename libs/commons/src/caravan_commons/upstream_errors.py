"""Turn an upstream's error answer (problem+json or not) back into a typed :mod:`errors` exception.

The reverse of the single problem+json mapping (:func:`caravan_commons.problems.error_from_document`
does the document → error step): ``type`` picks the class (ours by slug, anything else by
status), ``detail`` and every extension member are kept, and the error remembers where it came
from (``upstream``, ``upstream_status``, ``problem_type``, ``problem_instance``). When the
answer's status differs from the class's usual one (e.g. a 418), the instance keeps the real status.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import msgspec

from caravan_commons.errors import ApplicationError, error_class_for
from caravan_commons.problems import error_from_document

_STANDARD_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})
_MAX_DETAIL = 500


def _retry_after(headers: Mapping[str, str], document: Mapping[str, Any]) -> float | None:
    raw = headers.get("retry-after")
    if raw is not None and raw.strip().replace(".", "", 1).isdigit():
        return float(raw)
    value = document.get("retry_after")
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def error_from_answer(service: str, status: int, headers: Mapping[str, str], body: bytes) -> ApplicationError:
    """The typed error for an answer with ``status >= 400``."""
    headers = {k.lower(): v for k, v in headers.items()}
    document: dict[str, Any] = {}
    if "json" in headers.get("content-type", "") and body:
        try:
            decoded = msgspec.json.decode(body)
        except msgspec.DecodeError:
            decoded = None
        if isinstance(decoded, dict):
            document = decoded
    if not isinstance(document.get("type"), str):
        document.pop("type", None)
    if not isinstance(document.get("detail"), str):
        title = document.get("title")
        snippet = body[:_MAX_DETAIL].decode("utf-8", errors="replace").strip() if not document else ""
        document["detail"] = (
            title
            if isinstance(title, str)
            else f"{service} answered {status}" + (f": {snippet}" if snippet else "")
        )
    if "retry_after" not in document:  # a 503 or an in-flight 409 may say when to come back, too
        retry_after = _retry_after(headers, document)
        if status == 429 or retry_after is not None:
            document["retry_after"] = retry_after
    try:
        error = error_from_document(status, document)
    except TypeError:  # an extension member named like a constructor argument
        error = error_class_for(document.get("type"), status)(document["detail"])
        error.extensions = {k: v for k, v in document.items() if k not in _STANDARD_MEMBERS}
    if status != type(error).status:
        # the instance keeps the status it was given
        error.status = status  # type: ignore[misc]
    problem_type = document.get("type")
    error.upstream = service  # type: ignore[attr-defined]
    error.upstream_status = status  # type: ignore[attr-defined]
    error.problem_type = problem_type if isinstance(problem_type, str) else None  # type: ignore[attr-defined]
    instance = document.get("instance")
    error.problem_instance = instance if isinstance(instance, str) else None  # type: ignore[attr-defined]
    return error
