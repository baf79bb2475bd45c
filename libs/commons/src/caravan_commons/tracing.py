"""OpenTelemetry tracing: SDK set-up, Litestar's OpenTelemetry plugin, W3C propagation, exporters.

:func:`setup_tracing` is called once at start-up (create_app does it): it builds a
``TracerProvider`` with ``Resource(service.name, service.version)``, a parent-based ratio sampler
and the exporter the settings choose:

- ``otlp``: OTLP over http/protobuf to ``settings.otlp_endpoint`` (needs the ``otlp`` extra);
- ``file``: :class:`JsonLinesSpanExporter`, one span per line in ``settings.trace_file``;
- ``memory``: the SDK's in-memory exporter, exported synchronously (for tests);
- ``none``: no tracing middleware at all.

Incoming requests are traced through Litestar's ``OpenTelemetryConfig`` / ``OpenTelemetryPlugin``
with the middleware class :class:`ServerSpanMiddleware` (the plugin's documented
``middleware_class`` hook). The stock class (``opentelemetry-instrumentation-asgi``) costs about
80 µs per request on the reference machine — five times a whole hello-world request — so commons
ships a lean one: it extracts the W3C ``traceparent``/``tracestate``/``baggage`` headers, opens one
SERVER span named ``"<METHOD> <route template>"`` with the stable HTTP semantic-convention
attributes, and ends it with the status. ``stock_middleware=True`` selects the stock class.
New traces are sampled at ``trace_sample_ratio`` (default 0.1): a request whose trace is not
recorded never reaches the SDK — the middleware makes the SDK's parent-based ratio decision itself
and sets a non-recording span carrying the ids (logs and outgoing calls keep the trace id).

Outgoing calls carry the current context through :func:`inject_headers`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import MutableMapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import IO, TYPE_CHECKING, Any

import msgspec
from litestar.middleware.base import AbstractMiddleware
from litestar.plugins.opentelemetry import OpenTelemetryConfig, OpenTelemetryInstrumentationMiddleware
from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (
    BatchSpanProcessor,
    SimpleSpanProcessor,
    SpanExporter,
    SpanExportResult,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased
from opentelemetry.trace import SpanContext, SpanKind, Status, StatusCode, TraceFlags

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send

    from caravan_commons.settings import ServiceSettings

TRACER_NAME = "caravan_commons"
_PROPAGATION_HEADERS = frozenset({b"traceparent", b"tracestate", b"baggage"})
_STATUS_NAMES = {StatusCode.UNSET: "UNSET", StatusCode.OK: "OK", StatusCode.ERROR: "ERROR"}
_KIND_NAMES = {kind: kind.name for kind in SpanKind}
_TRACE_ID_LIMIT = (1 << 64) - 1  # TraceIdRatioBased decides on the trace id's low 64 bits
_IDS = RandomIdGenerator()


#: The trace id the server-span middleware already drew for a new, sampled trace (see
#: :class:`ServerSpanMiddleware`): the provider's id generator hands it to the SDK, so the SDK's
#: ratio sampler decides on the very id the middleware decided on.
_drawn_trace_id: ContextVar[int | None] = ContextVar("caravan_drawn_trace_id", default=None)


class _DrawnIdGenerator(RandomIdGenerator):
    def generate_trace_id(self) -> int:
        drawn = _drawn_trace_id.get()
        return drawn if drawn is not None else super().generate_trace_id()


def _root_bound(provider: Any) -> int | None:
    """The ratio sampler's bound for new traces (``trace_id & 2**64-1 < bound`` samples), when the
    provider samples the way :func:`setup_tracing` sets it up; else None."""
    sampler = getattr(provider, "sampler", None)
    root = getattr(sampler, "_root", None) if isinstance(sampler, ParentBased) else None
    return root.bound if isinstance(root, TraceIdRatioBased) else None


class JsonLinesSpanExporter(SpanExporter):
    """Writes finished spans to a file, one JSON object per line (appending; thread-safe)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = os.fspath(path)
        directory = os.path.dirname(self.path)
        if directory:
            os.makedirs(directory, exist_ok=True)
        self._file: IO[bytes] | None = open(self.path, "ab")  # noqa: SIM115 - closed in shutdown()
        self._lock = threading.Lock()
        self._encoder = msgspec.json.Encoder()

    @staticmethod
    def to_line(span: ReadableSpan) -> dict[str, Any]:
        """The JSON object written for ``span`` (runs on the export thread: kept cheap)."""
        ctx = span.get_span_context()
        assert ctx is not None  # a finished SDK span always has its context
        status = span.status
        line: dict[str, Any] = {
            "trace_id": format(ctx.trace_id, "032x"),
            "span_id": format(ctx.span_id, "016x"),
            "name": span.name,
            "kind": _KIND_NAMES.get(span.kind, str(span.kind)),
            "service": span.resource.attributes.get("service.name", ""),
            "start_ns": span.start_time or 0,
            "end_ns": span.end_time or 0,
            "status": _STATUS_NAMES.get(status.status_code, "UNSET"),
        }
        parent = span.parent
        if parent is not None:
            line["parent_span_id"] = format(parent.span_id, "016x")
        if status.description:
            line["status_message"] = status.description
        attributes = span.attributes
        if attributes:
            line["attributes"] = dict(attributes)  # tuples encode as JSON arrays
        if span.events:
            line["events"] = [
                {"name": e.name, "time_ns": e.timestamp, "attributes": dict(e.attributes or {})}
                for e in span.events
            ]
        return line

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        buffer = bytearray()
        for span in spans:
            self._encoder.encode_into(self.to_line(span), buffer, -1)
            buffer += b"\n"
        with self._lock:
            if self._file is None:
                return SpanExportResult.FAILURE
            self._file.write(buffer)
            self._file.flush()
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
                self._file = None

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def _otlp_exporter(endpoint: str) -> SpanExporter:
    try:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    except ImportError as exc:  # pragma: no cover - depends on the installed extras
        raise RuntimeError(
            "trace_exporter 'otlp' needs the otlp extra: install caravan-commons[otlp]"
        ) from exc
    return OTLPSpanExporter(endpoint=endpoint)


@dataclass(slots=True)
class Tracing:
    """What :func:`setup_tracing` built: the provider, its exporter and the Litestar config."""

    provider: TracerProvider
    exporter: SpanExporter
    config: OpenTelemetryConfig

    @property
    def memory(self) -> InMemorySpanExporter:
        """The in-memory exporter (only with ``trace_exporter='memory'``)."""
        if not isinstance(self.exporter, InMemorySpanExporter):
            raise TypeError(f"tracing exports to {type(self.exporter).__name__}, not memory")
        return self.exporter

    def shutdown(self) -> None:
        """Flush pending spans and close the exporter (the app's shutdown hook calls this)."""
        self.provider.shutdown()


def setup_tracing(
    settings: ServiceSettings,
    *,
    set_global: bool = True,
    stock_middleware: bool = False,
    exclude: Sequence[str] = ("^/metrics$", "^/health/"),
) -> Tracing | None:
    """Build the tracer provider and Litestar OpenTelemetry config; ``None`` when tracing is off.

    ``set_global`` installs the provider as OpenTelemetry's global one (so spans made by other code,
    e.g. the inter-service client, use it); OpenTelemetry allows that once per process.
    """
    if settings.trace_exporter == "none":
        return None
    resource = Resource.create(
        {"service.name": settings.service_name, "service.version": settings.service_version}
    )
    provider = TracerProvider(
        resource=resource,
        sampler=ParentBased(TraceIdRatioBased(settings.trace_sample_ratio)),
        id_generator=_DrawnIdGenerator(),
    )
    exporter: SpanExporter
    if settings.trace_exporter == "memory":
        exporter = InMemorySpanExporter()
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    elif settings.trace_exporter == "otlp":
        assert settings.otlp_endpoint is not None  # checked by ServiceSettings
        exporter = _otlp_exporter(settings.otlp_endpoint)
        provider.add_span_processor(BatchSpanProcessor(exporter))
    else:
        assert settings.trace_file is not None  # defaulted by ServiceSettings
        exporter = JsonLinesSpanExporter(settings.trace_file)
        provider.add_span_processor(BatchSpanProcessor(exporter, max_queue_size=8192))
    if set_global:
        trace.set_tracer_provider(provider)
    config = OpenTelemetryConfig(
        tracer_provider=provider,
        exclude=list(exclude) or None,
        exclude_spans=["receive", "send"],
        middleware_class=OpenTelemetryInstrumentationMiddleware if stock_middleware else ServerSpanMiddleware,
    )
    return Tracing(provider=provider, exporter=exporter, config=config)


class ServerSpanMiddleware(OpenTelemetryInstrumentationMiddleware):
    """A lean server-span middleware for Litestar's OpenTelemetry plugin (see the module doc)."""

    def __init__(self, app: ASGIApp, config: OpenTelemetryConfig) -> None:
        AbstractMiddleware.__init__(
            self,
            app=app,
            scopes=config.scopes,
            exclude=config.exclude,
            exclude_opt_key=config.exclude_opt_key,
        )
        provider = config.tracer_provider or trace.get_tracer_provider()
        self.tracer = config.tracer or provider.get_tracer(TRACER_NAME)
        self.server_request_hook = config.server_request_hook_handler
        #: with commons' sampler, requests that are not sampled skip the SDK (see __call__)
        self.root_bound = _root_bound(provider) if config.tracer is None else None

    def _unsampled(self, parent: otel_context.Context | None) -> trace.Span | None:
        """The span of a request whose trace is not recorded, without the SDK: a non-recording
        span (valid ids, so logs and outgoing calls carry the trace) — the SDK's sampling decision
        made the SDK's way (parent-based; new traces by the ratio on the trace id's low 64 bits)
        for a fraction of its cost. None when the trace is recorded (or the sampler is not
        commons'): then the SDK makes the span, for a new trace on the id drawn here."""
        bound = self.root_bound
        if bound is None:
            return None
        ctx = trace.get_current_span(parent).get_span_context() if parent is not None else None
        if ctx is not None and ctx.is_valid:
            if ctx.trace_flags.sampled:
                return None
            trace_id, flags, state = ctx.trace_id, ctx.trace_flags, ctx.trace_state
        else:
            trace_id = _IDS.generate_trace_id()
            if trace_id & _TRACE_ID_LIMIT < bound:
                _drawn_trace_id.set(trace_id)  # the SDK samples this very id
                return None
            flags, state = TraceFlags(TraceFlags.DEFAULT), None
        span_id = _IDS.generate_span_id()
        return trace.NonRecordingSpan(SpanContext(trace_id, span_id, False, flags, state))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        carrier: dict[str, str] | None = None
        for name, value in scope["headers"]:
            if name in _PROPAGATION_HEADERS:
                if carrier is None:
                    carrier = {}
                carrier[name.decode("latin-1")] = value.decode("latin-1")
        parent = propagate.extract(carrier) if carrier is not None else None
        method = scope["method"]  # type: ignore[typeddict-item]  # http scopes only reach here
        unsampled = self._unsampled(parent)
        if unsampled is not None:
            token = otel_context.attach(trace.set_span_in_context(unsampled, parent))
            try:
                await self.app(scope, receive, send)
            finally:
                otel_context.detach(token)
            return
        span = self.tracer.start_span(
            method,
            context=parent,
            kind=SpanKind.SERVER,
            attributes={
                "http.request.method": method,
                "url.path": scope["path"],
                "url.scheme": scope["scheme"],
            },
        )
        _drawn_trace_id.set(None)
        if self.server_request_hook is not None:
            self.server_request_hook(span, scope)  # type: ignore[arg-type]
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        recording = span.is_recording()

        async def send_and_record(message: Message) -> None:
            if recording and message["type"] == "http.response.start":
                status = message["status"]
                route = scope.get("path_template")
                if route:
                    span.update_name(f"{method} {route}")
                    span.set_attributes({"http.route": route, "http.response.status_code": status})
                else:
                    span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            await send(message)

        try:
            await self.app(scope, receive, send_and_record)
        except BaseException as exc:
            if recording:
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        finally:
            otel_context.detach(token)
            span.end()


def inject_headers(headers: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Add the current trace context (W3C ``traceparent``/``tracestate``, ``baggage``) to ``headers``."""
    propagate.inject(headers)
    return headers


def current_trace_ids() -> tuple[str, str] | None:
    """``(trace_id, span_id)`` of the current span as hex strings, or ``None`` outside a span."""
    ctx = trace.get_current_span().get_span_context()
    if not ctx.is_valid:
        return None
    return format(ctx.trace_id, "032x"), format(ctx.span_id, "016x")


def get_tracer(name: str = TRACER_NAME) -> trace.Tracer:
    """A tracer from the global provider (for client or internal spans)."""
    return trace.get_tracer(name)


__all__ = [
    "JsonLinesSpanExporter",
    "ServerSpanMiddleware",
    "Tracing",
    "current_trace_ids",
    "get_tracer",
    "inject_headers",
    "setup_tracing",
]
