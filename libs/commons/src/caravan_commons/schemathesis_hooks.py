"""schemathesis hooks for fuzzing Caravan services (name this module in a run's
``schemathesis.toml``: ``hooks = "caravan_commons.schemathesis_hooks"``; loaded by schemathesis only).

schemathesis draws header values independently of bodies and favours tiny ones, so most
schema-valid requests would reuse one Idempotency-Key (``"0"``) with another body — a correct 422
each time, which keeps the fuzzer from ever getting past the key check. Like a real client, each
schema-valid request here gets a fresh key; invalid keys (negative cases) are sent as drawn. Key
reuse itself (replay, 422, 409) belongs in a service's own API tests.
"""

from __future__ import annotations

import uuid
from typing import Any

import schemathesis

HEADER = "Idempotency-Key"


@schemathesis.hook
def before_call(context: Any, case: Any, kwargs: Any) -> None:
    meta = getattr(case, "meta", None)
    negative = meta is not None and meta.generation.mode.is_negative
    if not negative and case.headers and HEADER in case.headers:
        case.headers[HEADER] = f"fuzz-{uuid.uuid4()}"
