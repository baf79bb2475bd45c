"""JSON-lines logging with loguru, and the request-id middleware that feeds it.

The library itself never adds a sink (``caravan_commons`` is disabled in ``__init__``). A service's
entry point calls :func:`configure_logging` once; from then on every record — from the service,
from commons, and from the standard ``logging`` module (Litestar, granian) — is written as one JSON
object per line::

    {"time": "2026-11-27T05:00:00.123456+00:00", "level": "INFO", "message": "order placed",
     "service": "svc-b", "version": "0.1.0", "request_id": "5f0c...", "trace_id": "4bf9...",
     "span_id": "00f0...", "logger": "svc_b.api", "function": "place", "line": 42, "order_id": "o-1"}

``request_id`` comes from :class:`RequestIdMiddleware` (a context variable), ``trace_id`` and
``span_id`` from the current OpenTelemetry span; other values bound with ``logger.bind(...)`` or
passed as keyword arguments appear as extra top-level members.
"""

from __future__ import annotations

import logging as stdlib_logging
import re
import sys
import time
import traceback
from contextvars import ContextVar
from datetime import UTC, datetime
from random import getrandbits
from types import FrameType
from typing import TYPE_CHECKING, Any

import msgspec
from loguru import logger
from opentelemetry import trace

from caravan_commons.log_sink import BufferedSink

if TYPE_CHECKING:
    from litestar.types import ASGIApp, Message, Receive, Scope, Send
    from loguru import Record

    from caravan_commons.settings import ServiceSettings

REQUEST_ID_HEADER = "x-request-id"
_REQUEST_ID_HEADER_B = REQUEST_ID_HEADER.encode()
#: Incoming request ids are kept only when they look like ids (no spaces, no control characters).
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:@/+=-]{1,128}")

request_id_var: ContextVar[str | None] = ContextVar("caravan_request_id", default=None)

_RESERVED = frozenset(
    {"time", "level", "message", "service", "version", "request_id", "trace_id", "span_id", "logger",
     "function", "line", "exception"}
)  # fmt: skip
_encoder = msgspec.json.Encoder()


def current_request_id() -> str | None:
    """The id of the request being handled in this context, if any."""
    return request_id_var.get()


def new_request_id() -> str:
    """A fresh request id: 32 hex characters (not a secret, just unique enough to correlate)."""
    return f"{getrandbits(128):032x}"


def _patch(record: Record) -> None:
    """Request and trace ids from the context; ids bound explicitly (``logger.bind(trace_id=...)``,
    e.g. by a program that traces without the OpenTelemetry context) are kept otherwise."""
    extra = record["extra"]
    request_id = request_id_var.get()
    if request_id is not None or "request_id" not in extra:
        extra["request_id"] = request_id
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid:
        extra["trace_id"] = format(ctx.trace_id, "032x")
        extra["span_id"] = format(ctx.span_id, "016x")
    else:
        extra.setdefault("trace_id", None)
        extra.setdefault("span_id", None)


def json_line(record: Record, service: str, version: str) -> str:
    """Render one loguru record as a JSON object (no trailing newline)."""
    extra = record["extra"]
    doc: dict[str, Any] = {
        "time": record["time"].astimezone(UTC).isoformat(),
        "level": record["level"].name,
        "message": record["message"],
        "service": service,
        "version": version,
        "request_id": extra.get("request_id"),
        "trace_id": extra.get("trace_id"),
        "span_id": extra.get("span_id"),
        "logger": record["name"],
        "function": record["function"],
        "line": record["line"],
    }
    for key, value in extra.items():
        if key not in _RESERVED and not key.startswith("_"):
            doc[key] = value
    exc = record["exception"]
    if exc is not None and exc.type is not None:
        doc["exception"] = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    try:
        return _encoder.encode(doc).decode()
    except (TypeError, msgspec.EncodeError):
        return _encoder.encode(_stringify(doc)).decode()


def _stringify(doc: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in doc.items():
        try:
            _encoder.encode(value)
            out[key] = value
        except (TypeError, msgspec.EncodeError):
            out[key] = repr(value)
    return out


class _InterceptHandler(stdlib_logging.Handler):
    """Send standard-library log records (Litestar, granian, asyncio) to loguru."""

    def emit(self, record: stdlib_logging.LogRecord) -> None:
        try:
            level: str | int = logger.level(record.levelname).name
        except ValueError:
            level = record.levelno
        frame: FrameType | None = stdlib_logging.currentframe()
        depth = 2
        while frame is not None and frame.f_code.co_filename == stdlib_logging.__file__:
            frame = frame.f_back
            depth += 1
        logger.opt(depth=depth, exception=record.exc_info).log(level, record.getMessage())


def configure_logging(settings: ServiceSettings, *, sink: Any = None) -> int:
    """Set up JSON-lines logging for a service process; only entry points call this.

    Writes to ``settings.log_file`` (appending) or, when unset, to stderr — in batches at most
    ``settings.log_flush_interval_s`` apart (:class:`~caravan_commons.log_sink.BufferedSink`);
    ``sink`` overrides both (any loguru sink, e.g. a list's ``append`` in tests). Returns the
    loguru handler id.
    """
    service, version = settings.service_name, settings.service_version

    def _format(record: Record) -> str:
        record["extra"]["_json"] = json_line(record, service, version)
        return "{extra[_json]}\n"

    logger.remove()
    logger.configure(patcher=_patch)
    logger.enable("caravan_commons")
    target = sink if sink is not None else (settings.log_file or sys.stderr)
    _access.writer = None
    if sink is None:
        target = BufferedSink(target, interval=settings.log_flush_interval_s)
        if logger.level(settings.log_level).no <= logger.level("INFO").no:
            _access.writer = AccessLineWriter(service, version, target)
    handler_id = logger.add(target, level=settings.log_level, format=_format, backtrace=False, diagnose=False)
    # the standard library's loggers stop at the same level: a record loguru would drop is not
    # even made (aiosqlite alone logs two DEBUG records per statement)
    level_no = logger.level(settings.log_level).no
    stdlib_logging.basicConfig(handlers=[_InterceptHandler()], level=level_no, force=True)
    return handler_id


class RequestIdMiddleware:
    """ASGI middleware: take ``X-Request-Id`` from the request (or make one), expose it to log
    records through :data:`request_id_var`, and echo it in the response headers."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = None
        for name, value in scope["headers"]:
            if name == _REQUEST_ID_HEADER_B:
                raw = value
                break
        if raw is not None and _VALID_REQUEST_ID.fullmatch(raw):
            request_id = raw.decode()
            header_value = raw
        else:
            request_id = f"{getrandbits(128):032x}"
            header_value = request_id.encode()
        token = request_id_var.set(request_id)

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                # a new list: the app's header list may be shared (e.g. a cached response)
                message["headers"] = [*message.get("headers", ()), (_REQUEST_ID_HEADER_B, header_value)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


class AccessLineWriter:
    """Access-log lines straight to the service's log sink: the same JSON object loguru's path
    would write (:func:`json_line`, plus ``method``, ``path``, ``status``, ``duration_ms``), built
    with one msgspec encode instead of loguru's record, patcher and formatter — a request's log
    line was most of the commons stack's cost per request (bench/commons_stack.py)."""

    __slots__ = ("service", "sink", "version")

    def __init__(self, service: str, version: str, sink: BufferedSink) -> None:
        self.service, self.version, self.sink = service, version, sink

    def write(self, method: str, path: str, status: int, duration_ms: float) -> None:
        ctx = trace.get_current_span().get_span_context()
        valid = ctx.is_valid
        doc = {
            "time": datetime.now(UTC).isoformat(),
            "level": "INFO",
            "message": f"{method} {path} {status}",
            "service": self.service,
            "version": self.version,
            "request_id": request_id_var.get(),
            "trace_id": format(ctx.trace_id, "032x") if valid else None,
            "span_id": format(ctx.span_id, "016x") if valid else None,
            "logger": __name__,
            "function": "__call__",
            "line": 0,
            "method": method,
            "path": path,
            "status": status,
            "duration_ms": duration_ms,
        }
        self.sink.write(_encoder.encode(doc).decode() + "\n")


class _Access:
    """Where access lines go: the writer :func:`configure_logging` set up, or loguru."""

    __slots__ = ("writer",)

    def __init__(self) -> None:
        self.writer: AccessLineWriter | None = None


_access = _Access()


class AccessLogMiddleware:
    """ASGI middleware: one log line per request (method, path, status, duration), written inside
    the request's server span so the line carries its trace and span ids. Off unless the settings
    ask for it (``access_log``): it costs a log write per request."""

    __slots__ = ("app",)

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_and_note(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_and_note)
        finally:
            elapsed_ms = round((time.perf_counter() - started) * 1000, 2)
            method, path = str(scope.get("method", "-")), scope["path"]  # HTTP scopes have a method
            writer = _access.writer
            if writer is not None:
                writer.write(method, path, status, elapsed_ms)
            else:  # a custom sink (tests) or a level above INFO: loguru decides
                logger.bind(method=method, path=path, status=status, duration_ms=elapsed_ms).info(
                    "{} {} {}", method, path, status
                )


__all__ = [
    "REQUEST_ID_HEADER",
    "AccessLineWriter",
    "AccessLogMiddleware",
    "RequestIdMiddleware",
    "configure_logging",
    "current_request_id",
    "json_line",
    "new_request_id",
    "request_id_var",
]
