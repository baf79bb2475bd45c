"""Edge spans: the gateway's SERVER span per request, made without the SDK's per-span machinery.

The gateway is where traces start, and it sits on every request, so its span handling is lean:
the W3C ``traceparent`` is parsed here, a root trace is sampled with ``trace_sample_ratio`` (a
caller's sampling decision is always followed), the upstream gets ``00-<trace>-<gateway span>-
<flags>`` — the gateway's span as parent — and only sampled spans become objects: a finished
:class:`~opentelemetry.sdk.trace.ReadableSpan` handed to the span processors of the provider
that :func:`caravan_commons.tracing.setup_tracing` built (OTLP, memory). With the JSON-lines
file exporter the span is written as the same line commons' ``JsonLinesSpanExporter`` writes, but
encoded on the event loop into a buffer flushed about once a second (:class:`SpanLineWriter`):
the SDK's export thread would otherwise contend for the GIL on every request. Unsampled requests
cost two random numbers.
"""

from __future__ import annotations

import os
import re
import time
from random import getrandbits, random

import msgspec
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

_TRACEPARENT = re.compile(rb"00-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_SCOPE = InstrumentationScope("caravan_gateway")
_OK = Status(StatusCode.UNSET)
_ERROR = Status(StatusCode.ERROR)


class EdgeSpan:
    __slots__ = ("parent_span_id", "remote", "sampled", "span_id", "start_ns", "trace_id")

    def __init__(self, trace_id: int, span_id: int, parent_span_id: int | None, sampled: bool, remote: bool):
        self.trace_id = trace_id
        self.span_id = span_id
        self.parent_span_id = parent_span_id
        self.sampled = sampled
        self.remote = remote
        self.start_ns = time.time_ns() if sampled else 0

    def traceparent(self) -> bytes:
        return b"00-%032x-%016x-%s" % (self.trace_id, self.span_id, b"01" if self.sampled else b"00")


class SpanLineWriter:
    """Appends span lines to a file: buffered, written by :meth:`flush` (or when the buffer fills)."""

    def __init__(self, path: str, *, flush_bytes: int = 256 * 1024) -> None:
        directory = os.path.dirname(path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file = open(path, "ab")  # noqa: SIM115 - closed in close()
        self._buffer = bytearray()
        self._encoder = msgspec.json.Encoder()
        self._flush_bytes = flush_bytes

    def add(self, line: dict[str, object]) -> None:
        self._encoder.encode_into(line, self._buffer, -1)
        self._buffer += b"\n"
        if len(self._buffer) >= self._flush_bytes:
            self.flush()

    def flush(self) -> None:
        if self._buffer and not self._file.closed:
            self._file.write(self._buffer)
            self._file.flush()
            self._buffer.clear()

    def close(self) -> None:
        self.flush()
        self._file.close()


class EdgeTracer:
    def __init__(
        self, provider: TracerProvider, sample_ratio: float, *, writer: SpanLineWriter | None = None
    ) -> None:
        self._processor = provider._active_span_processor  # the provider's configured processors
        self._resource = provider.resource
        self._service = str(provider.resource.attributes.get("service.name", "gateway"))
        self._ratio = sample_ratio
        self.writer = writer

    def start(self, traceparent: bytes | None) -> EdgeSpan:
        if traceparent is not None:
            found = _TRACEPARENT.fullmatch(traceparent.strip().lower())
            if found is not None:
                trace_id, parent_id = int(found[1], 16), int(found[2], 16)
                if trace_id and parent_id:
                    return EdgeSpan(
                        trace_id, getrandbits(64) or 1, parent_id, int(found[3], 16) & 1 == 1, True
                    )
        return EdgeSpan(getrandbits(128) or 1, getrandbits(64) or 1, None, random() < self._ratio, False)

    def end(self, span: EdgeSpan, *, method: str, route: str, path: str, status: int) -> None:
        if not span.sampled:
            return
        if self.writer is not None:
            line: dict[str, object] = {
                "trace_id": format(span.trace_id, "032x"),
                "span_id": format(span.span_id, "016x"),
                "name": f"{method} {route}",
                "kind": "SERVER",
                "service": self._service,
                "start_ns": span.start_ns,
                "end_ns": time.time_ns(),
                "status": "ERROR" if status >= 500 else "UNSET",
                "attributes": {
                    "http.request.method": method,
                    "http.route": route,
                    "url.path": path,
                    "http.response.status_code": status,
                },
            }
            if span.parent_span_id is not None:
                line["parent_span_id"] = format(span.parent_span_id, "016x")
            self.writer.add(line)
            return
        flags = TraceFlags(TraceFlags.SAMPLED)
        parent = (
            SpanContext(span.trace_id, span.parent_span_id, is_remote=True, trace_flags=flags)
            if span.parent_span_id is not None
            else None
        )
        readable = ReadableSpan(
            f"{method} {route}",
            context=SpanContext(span.trace_id, span.span_id, is_remote=False, trace_flags=flags),
            parent=parent,
            resource=self._resource,
            attributes={
                "http.request.method": method,
                "http.route": route,
                "url.path": path,
                "http.response.status_code": status,
            },
            kind=SpanKind.SERVER,
            status=_ERROR if status >= 500 else _OK,
            start_time=span.start_ns,
            end_time=time.time_ns(),
            instrumentation_scope=_SCOPE,
        )
        self._processor.on_end(readable)
