"""Helpers of the console's app tests: the trace and order they write, span and log lines in the
runtime's formats, and the CSRF header a browser would send."""

from __future__ import annotations

import json

from litestar.testing import TestClient

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
ORDER = "0f3c2a9e-5b7d-4c1e-9a8b-2d6e4f1a3c5b"


def span(sid: str, parent: str | None, service: str, name: str, start: int, end: int, **attrs: object) -> str:
    line: dict[str, object] = {
        "trace_id": TRACE,
        "span_id": sid,
        "name": name,
        "kind": "SERVER",
        "service": service,
        "start_ns": start,
        "end_ns": end,
        "attributes": attrs,
    }
    if parent:
        line["parent_span_id"] = parent
    return json.dumps(line)


def log(level: str, message: str, trace_id: str | None = None) -> str:
    return json.dumps(
        {
            "time": "2026-12-07T10:00:00.000000+00:00",
            "level": level,
            "message": message,
            "service": "svc-b",
            "trace_id": trace_id,
            "span_id": None,
        }
    )


def csrf(client: TestClient) -> dict[str, str]:
    client.get("/plan")
    return {"x-csrftoken": client.cookies.get("caravan_console_csrf", "")}
