"""Problem documents as data: an error's RFC 9457 document and headers, and the error a document
stands for. No framework here (the standard library and :mod:`caravan_commons.errors` only), so the
identity middleware answers with the same documents as :mod:`caravan_commons.problems`, the Litestar
mapping, which re-exports these names.
"""

from __future__ import annotations

import math
from typing import Any

from caravan_commons.errors import (
    ApplicationError,
    MethodNotAllowedError,
    TooManyRequestsError,
    error_class_for,
)

PROBLEM_MEDIA_TYPE = "application/problem+json"
#: The members RFC 9457 defines; an error's extensions may not overwrite them.
RESERVED_MEMBERS = frozenset({"type", "title", "status", "detail", "instance"})


def extension_members(extensions: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in extensions.items() if k not in RESERVED_MEMBERS}


def problem_document(exc: ApplicationError) -> dict[str, Any]:
    """The problem document of an :class:`ApplicationError` (without ``instance``)."""
    doc: dict[str, Any] = {"type": exc.type, "title": exc.title, "status": exc.status, "detail": exc.detail}
    doc.update(extension_members(exc.extensions))
    if isinstance(exc, TooManyRequestsError) and exc.retry_after is not None:
        doc["retry_after"] = exc.retry_after
    return doc


def problem_headers(exc: ApplicationError) -> dict[str, str] | None:
    """Response headers an error implies (``Retry-After`` for a 429 that knows when to retry,
    ``Allow`` for a 405)."""
    if isinstance(exc, TooManyRequestsError) and exc.retry_after is not None:
        return {"Retry-After": str(max(0, math.ceil(exc.retry_after)))}
    if isinstance(exc, MethodNotAllowedError) and exc.allow:
        return {"Allow": ", ".join(exc.allow)}
    return None


def error_from_document(status: int, document: dict[str, Any]) -> ApplicationError:
    """The typed error a problem document stands for (the inverse of :func:`problem_document`)."""
    cls = error_class_for(document.get("type"), status)
    extensions = {k: v for k, v in document.items() if k not in RESERVED_MEMBERS}
    detail = document.get("detail")
    detail = detail if isinstance(detail, str) else None
    if cls is TooManyRequestsError:
        retry_after = extensions.pop("retry_after", None)
        return TooManyRequestsError(
            detail, retry_after=retry_after if isinstance(retry_after, int | float) else None, **extensions
        )
    return cls(detail, **extensions)
