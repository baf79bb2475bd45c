"""Traces as `invoke trace` reads them (the runtime's span files): the recent requests and orders,
and one trace laid out as a waterfall with each span's details."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from caravan_workspace.traces import TRACE_ID, SpanRecord, Trace, find_trace, read_spans

_ORDER_PATH = re.compile(r"/(?:orders|reservations)/([0-9A-Za-z-]{8,})")


@dataclass(frozen=True)
class TraceSummary:
    trace_id: str
    started: str  # UTC, to the millisecond
    name: str  # the root span's name, e.g. "POST /api/svc-b/orders"
    services: list[str]
    spans: int
    duration_ms: float
    error: bool
    order_id: str


@dataclass(frozen=True)
class WaterfallRow:
    span: SpanRecord
    depth: int
    left: float  # percent of the trace's duration
    width: float


class SpanCache:
    """The span files' contents, read again only when a file grew or changed."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._key: tuple[tuple[str, int, int], ...] = ()
        self._spans: list[SpanRecord] = []
        self._lock = threading.Lock()

    def spans(self) -> list[SpanRecord]:
        try:
            key = tuple(
                (p.name, st.st_size, st.st_mtime_ns)
                for p in sorted(self.folder.glob("*.jsonl"))
                for st in (p.stat(),)
            )
        except OSError:
            key = ()
        with self._lock:
            if key != self._key:
                self._spans = list(read_spans(self.folder))
                self._key = key
            return self._spans


def recent(spans: list[SpanRecord], limit: int = 50, *, orders_only: bool = False) -> list[TraceSummary]:
    by_trace: dict[str, list[SpanRecord]] = {}
    for span in spans:
        by_trace.setdefault(span.trace_id, []).append(span)
    summaries = []
    for trace_id, members in by_trace.items():
        ids = {s.span_id for s in members}
        roots = [s for s in members if s.parent_span_id not in ids]
        root = min(roots or members, key=lambda s: s.start_ns)
        order = next((found for s in members if (found := _order_in(s))), "")
        if orders_only and not order:
            continue
        start = min(s.start_ns for s in members)
        summaries.append(
            TraceSummary(
                trace_id=trace_id,
                started=datetime.fromtimestamp(start / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3],
                name=root.name,
                services=sorted({s.service for s in members}),
                spans=len(members),
                duration_ms=(max(s.end_ns for s in members) - start) / 1e6,
                error=any(s.status == "ERROR" for s in members),
                order_id=order,
            )
        )
    summaries.sort(key=lambda t: t.started, reverse=True)
    return summaries[:limit]


def _order_in(span: SpanRecord) -> str:
    """The order a span is about: the ``{order_id}`` segment of its route (a server span), or an
    ``/orders/<id>`` or ``/reservations/<id>`` path (a client span calling one)."""
    path, route = span.attributes.get("url.path"), span.attributes.get("http.route")
    if not isinstance(path, str):
        return ""
    if isinstance(route, str) and "{order_id" in route:
        for template, value in zip(route.split("/"), path.split("/"), strict=False):
            if template.startswith("{order_id"):
                return value
    match = _ORDER_PATH.search(path)
    return match.group(1) if match else ""


def is_trace_id(text: str) -> bool:
    return bool(TRACE_ID.match(text))


def lookup(spans: list[SpanRecord], needle: str) -> Trace | None:
    """A trace by id, or the trace of an order (or any value one of its spans carries)."""
    return find_trace(spans, needle)


def waterfall(trace: Trace) -> tuple[list[WaterfallRow], float]:
    """Each span with its depth and its bar's place on the timeline; and the total in ms."""
    start = min(s.start_ns for s in trace.spans)
    total = max(max(s.end_ns for s in trace.spans) - start, 1)
    rows = [
        WaterfallRow(
            span=span,
            depth=depth,
            left=(span.start_ns - start) / total * 100,
            width=max((span.end_ns - span.start_ns) / total * 100, 0.3),
        )
        for depth, span in trace.walk()
    ]
    return rows, total / 1e6
