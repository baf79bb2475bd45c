"""Traces of the local runtime, read from the JSON-lines files every program exports to
(``<state>/traces/<program>.jsonl``, commons' file exporter; the gateway writes the same format).

No tracing backend is polled: a trace is assembled from the files, by trace id or by any value
one of its spans carries (an order id appears in a URL path of the calls it caused).
"""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import msgspec

TRACE_ID = re.compile(r"^[0-9a-f]{32}$")


def sampled_traceparent() -> str:
    """A W3C ``traceparent`` starting a new trace with the *sampled* flag: programs sample new
    traces at ``CARAVAN_TRACE_SAMPLE_RATIO`` but always continue a sampled caller's, so a probe
    that reads its own trace afterwards (a stage gate, a test) sends this with its request."""
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-01"


class SpanRecord(msgspec.Struct, frozen=True):
    trace_id: str
    span_id: str
    name: str
    kind: str
    service: str
    start_ns: int
    end_ns: int
    status: str = "UNSET"
    parent_span_id: str | None = None
    attributes: dict[str, object] = {}
    status_message: str | None = None
    events: list[dict[str, object]] = []

    @property
    def duration_ms(self) -> float:
        return (self.end_ns - self.start_ns) / 1e6


@dataclass
class Trace:
    trace_id: str
    spans: list[SpanRecord]
    children: dict[str | None, list[SpanRecord]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.spans.sort(key=lambda s: s.start_ns)
        ids = {s.span_id for s in self.spans}
        for span in self.spans:
            parent = span.parent_span_id if span.parent_span_id in ids else None
            self.children.setdefault(parent, []).append(span)

    @property
    def roots(self) -> list[SpanRecord]:
        return self.children.get(None, [])

    def walk(self) -> Iterator[tuple[int, SpanRecord]]:
        """Every span, depth first from the roots, with its depth."""
        stack = [(0, s) for s in reversed(self.roots)]
        while stack:
            depth, span = stack.pop()
            yield depth, span
            stack.extend((depth + 1, c) for c in reversed(self.children.get(span.span_id, [])))

    def services(self) -> set[str]:
        return {s.service for s in self.spans}

    def parent_of(self, span: SpanRecord) -> SpanRecord | None:
        return next((s for s in self.spans if s.span_id == span.parent_span_id), None)


_decoder = msgspec.json.Decoder(SpanRecord)


def read_spans(folder: Path) -> Iterator[SpanRecord]:
    """Every span in the trace files of ``folder`` (a torn last line is skipped)."""
    for path in sorted(folder.glob("*.jsonl")):
        with path.open("rb") as fh:
            for line in fh:
                try:
                    yield _decoder.decode(line)
                except msgspec.DecodeError:
                    continue


def _mentions(span: SpanRecord, needle: str) -> bool:
    return any(isinstance(v, str) and needle in v for v in span.attributes.values()) or needle in span.name


def find_trace(spans: Iterable[SpanRecord], needle: str) -> Trace | None:
    """The trace whose id is ``needle``, or else the latest trace a span of which mentions it.

    An order's trace is the one of the request that placed it: among the traces that mention the
    order, the one that began first."""
    spans = list(spans)
    if TRACE_ID.match(needle):
        mine = [s for s in spans if s.trace_id == needle]
        return Trace(needle, mine) if mine else None
    firsts: dict[str, int] = {}
    for span in spans:
        if _mentions(span, needle):
            firsts[span.trace_id] = min(firsts.get(span.trace_id, span.start_ns), span.start_ns)
    if not firsts:
        return None
    trace_id = min(firsts, key=lambda t: firsts[t])
    return Trace(trace_id, [s for s in spans if s.trace_id == trace_id])


def waterfall(trace: Trace, width: int = 100) -> list[str]:
    """The trace as text: one line per span, indented by depth, with a bar placed on the timeline."""
    if not trace.spans:
        return []
    start = min(s.start_ns for s in trace.spans)
    end = max(s.end_ns for s in trace.spans)
    total = max(end - start, 1)
    label_width = min(56, max(len(f"{'  ' * d}{s.service} {s.name}") for d, s in trace.walk()) + 1)
    bar_width = max(width - label_width - 12, 10)
    lines = [f"trace {trace.trace_id} — {len(trace.spans)} spans, {total / 1e6:.1f} ms"]
    for depth, span in trace.walk():
        label = f"{'  ' * depth}{span.service} {span.name}"
        if len(label) > label_width - 1:
            label = label[: label_width - 2] + "…"
        left = int((span.start_ns - start) / total * bar_width)
        length = max(1, round((span.end_ns - span.start_ns) / total * bar_width))
        bar = " " * left + ("!" if span.status == "ERROR" else "█") * min(length, bar_width - left)
        lines.append(f"{label:<{label_width}}{bar:<{bar_width}} {span.duration_ms:8.1f} ms")
    return lines
