"""Typed service settings, read from environment variables once at start-up and passed in.

Nothing here reads the environment at import time. A service declares its settings as a subclass
of :class:`ServiceSettings` (adding fields, or giving ``service_name`` a default) and its entry
point calls :func:`load_settings_or_exit` exactly once::

    class CatalogSettings(ServiceSettings, frozen=True, kw_only=True):
        service_name: str = "svc-a"
        reservation_ttl_s: Annotated[float, Meta(gt=0)] = 900.0

    settings = load_settings_or_exit(CatalogSettings)  # CARAVAN_PORT, CARAVAN_RESERVATION_TTL_S, ...

Each field ``foo_bar`` is read from ``<prefix>FOO_BAR`` (prefix ``CARAVAN_`` by default). Scalars
are parsed from their text (``8080``, ``true``, ``0.25``); lists, dicts and structs from JSON. An
empty value for an optional field means ``None``. A missing required variable or a value that does
not parse or violates a constraint raises :class:`SettingsError`, whose message is one line naming
the variable.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from typing import Annotated, Any, Literal, NoReturn, TypeVar

import msgspec
from msgspec import Meta

LogLevel = Literal["TRACE", "DEBUG", "INFO", "SUCCESS", "WARNING", "ERROR", "CRITICAL"]
TraceExporter = Literal["auto", "file", "otlp", "memory", "none"]

_LOG_LEVELS: frozenset[str] = frozenset(LogLevel.__args__)  # type: ignore[attr-defined]


class SettingsError(Exception):
    """A configuration problem; ``str(err)`` is one line naming the variable at fault."""

    def __init__(self, variable: str, message: str) -> None:
        self.variable = variable
        super().__init__(f"{variable}: {message}")


#: Fraction of new traces recorded unless ``trace_sample_ratio`` says otherwise.
DEFAULT_TRACE_SAMPLE_RATIO = 0.1


class ServiceSettings(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """Settings every Caravan service has. Subclass with ``frozen=True, kw_only=True`` to extend."""

    service_name: Annotated[str, Meta(pattern=r"^[a-z][a-z0-9_-]{0,62}$")]
    service_version: str = "0.0.0"
    #: Listen address; loopback unless a deployment says otherwise.
    host: str = "127.0.0.1"
    port: Annotated[int, Meta(ge=0, le=65535)] = 8000
    log_level: str = "INFO"
    #: JSON-lines log file; ``None`` logs JSON lines to stderr.
    log_file: str | None = None
    #: Log lines are written in batches at most this many seconds apart (WARNING and worse at once;
    #: everything on shutdown); ``0`` writes every line as it comes. See caravan_commons.log_sink.
    log_flush_interval_s: Annotated[float, Meta(ge=0, le=60)] = 1.0
    #: ``auto`` = ``otlp`` when ``otlp_endpoint`` is set, else ``file``.
    trace_exporter: TraceExporter = "auto"
    #: JSON-lines span file for the ``file`` exporter; default ``<service_name>.traces.jsonl``.
    trace_file: str | None = None
    #: Fraction of new traces recorded (parent-based: a sampled caller's trace is always continued,
    #: so a caller sending ``traceparent: …-01`` always gets its trace). The default was chosen by
    #: measurement (bench/commons_stack.py, docs/commons.md): recording every request costs a
    #: hello-world route half its throughput, one in ten keeps it above 0.6 of bare Litestar.
    trace_sample_ratio: Annotated[float, Meta(ge=0.0, le=1.0)] = DEFAULT_TRACE_SAMPLE_RATIO
    #: OTLP http/protobuf endpoint, e.g. ``http://127.0.0.1:4318/v1/traces``.
    otlp_endpoint: str | None = None
    #: Piccolo database URL; default a per-service SQLite file ``sqlite:///<service_name>.sqlite3``.
    database_url: str | None = None
    #: Most connections of the Postgres pool (per process).
    database_pool_size: Annotated[int, Meta(ge=1, le=200)] = 10
    #: SQLite durability: ``NORMAL`` (WAL; survives a process crash, a power loss may lose the last
    #: commits) or ``FULL`` (an fsync per commit). See caravan_commons.db_engines.
    sqlite_synchronous: Literal["NORMAL", "FULL"] = "NORMAL"
    #: Long-lived SQLite reader connections (reads never wait for the one writer).
    sqlite_readers: Annotated[int, Meta(ge=1, le=16)] = 2
    #: Longest time in-flight requests may take to drain after SIGTERM, in seconds.
    shutdown_timeout_s: Annotated[float, Meta(gt=0)] = 30.0
    #: One log line per request (method, path, status, duration, trace id); off by default.
    access_log: bool = False
    #: How often a service's sampled gauges (caravan_commons.service_metrics) are recomputed.
    metrics_sample_interval_s: Annotated[float, Meta(gt=0, le=3600)] = 5.0
    #: This instance's name among several of one service (e.g. ``svc-a-2``), for logs and traces.
    instance_id: str | None = None
    #: Service identity (see caravan_commons.identity): this program's private key (0600 file) and
    #: the name it signs as (default ``service_name``) ...
    identity_key_file: str | None = None
    identity_name: str | None = None
    #: ... and, to enforce the allowed flows on incoming calls, every program's public keys and the
    #: callers this service accepts as JSON ``{"caller": null | ["/path", ...]}``.
    public_keys_file: str | None = None
    allowed_callers: str | None = None

    def __post_init__(self) -> None:
        level = self.log_level.upper()
        if level not in _LOG_LEVELS:
            raise ValueError(
                f"log_level must be one of {', '.join(sorted(_LOG_LEVELS))}, got {self.log_level!r}"
            )
        msgspec.structs.force_setattr(self, "log_level", level)
        if self.trace_exporter == "auto":
            msgspec.structs.force_setattr(self, "trace_exporter", "otlp" if self.otlp_endpoint else "file")
        if self.trace_exporter == "otlp" and not self.otlp_endpoint:
            raise ValueError("trace_exporter is 'otlp' but otlp_endpoint is not set")
        if self.trace_file is None:
            msgspec.structs.force_setattr(self, "trace_file", f"{self.service_name}.traces.jsonl")
        if self.database_url is None:
            msgspec.structs.force_setattr(self, "database_url", f"sqlite:///{self.service_name}.sqlite3")


S = TypeVar("S", bound=ServiceSettings)

_TEXT_KINDS = (msgspec.inspect.StrType, msgspec.inspect.LiteralType, msgspec.inspect.NoneType)
_SCALAR_KINDS = (
    *_TEXT_KINDS,
    msgspec.inspect.IntType,
    msgspec.inspect.FloatType,
    msgspec.inspect.BoolType,
    msgspec.inspect.DecimalType,
    msgspec.inspect.DateTimeType,
    msgspec.inspect.DateType,
    msgspec.inspect.TimeType,
    msgspec.inspect.TimeDeltaType,
    msgspec.inspect.UUIDType,
    msgspec.inspect.EnumType,
    msgspec.inspect.AnyType,
)


def _is_scalar(type_: Any) -> bool:
    info = msgspec.inspect.type_info(type_)
    if isinstance(info, msgspec.inspect.UnionType):
        return all(isinstance(t, _SCALAR_KINDS) for t in info.types)
    return isinstance(info, _SCALAR_KINDS)


def _accepts_none(type_: Any) -> bool:
    info = msgspec.inspect.type_info(type_)
    if isinstance(info, msgspec.inspect.UnionType):
        return any(isinstance(t, msgspec.inspect.NoneType) for t in info.types)
    return isinstance(info, msgspec.inspect.NoneType)


def parse_value(raw: str, type_: Any) -> Any:
    """Parse one environment value into ``type_`` (scalars from text, containers from JSON)."""
    if raw.strip() == "" and _accepts_none(type_):
        return None
    if _is_scalar(type_):
        return msgspec.convert(raw, type_, strict=False)
    return msgspec.json.decode(raw, type=type_, strict=False)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def load_settings(cls: type[S], environ: Mapping[str, str] | None = None, prefix: str = "CARAVAN_") -> S:
    """Build ``cls`` from ``environ`` (default ``os.environ``); raise :class:`SettingsError` on bad input."""
    env = os.environ if environ is None else environ
    values: dict[str, Any] = {}
    for field in msgspec.structs.fields(cls):
        variable = prefix + field.name.upper()
        raw = env.get(variable)
        if raw is None:
            if field.required:
                raise SettingsError(variable, f"required but not set ({field.name})")
            continue
        try:
            values[field.name] = parse_value(raw, field.type)
        except (msgspec.ValidationError, msgspec.DecodeError) as exc:
            shown = raw if len(raw) <= 60 else raw[:57] + "..."
            raise SettingsError(variable, f"invalid value {shown!r}: {_one_line(str(exc))}") from None
    try:
        return cls(**values)
    except (ValueError, TypeError) as exc:
        message = _one_line(str(exc))
        field_name = next((f.name for f in msgspec.structs.fields(cls) if message.startswith(f.name)), None)
        variable = prefix + field_name.upper() if field_name else f"{prefix}*"
        raise SettingsError(variable, message) from None


def exit_on_settings_error(error: SettingsError, program: str | None = None) -> NoReturn:
    """Print ``error`` as one line on stderr and exit with status 2 (for entry points)."""
    name = program or os.path.basename(sys.argv[0]) or "caravan"
    print(f"{name}: configuration error: {error}", file=sys.stderr)
    raise SystemExit(2)


def load_settings_or_exit(
    cls: type[S],
    environ: Mapping[str, str] | None = None,
    prefix: str = "CARAVAN_",
    program: str | None = None,
) -> S:
    """:func:`load_settings` for entry points: a bad configuration prints one line and exits 2."""
    try:
        return load_settings(cls, environ, prefix)
    except SettingsError as error:
        exit_on_settings_error(error, program)


__all__ = [
    "LogLevel",
    "ServiceSettings",
    "SettingsError",
    "TraceExporter",
    "exit_on_settings_error",
    "load_settings",
    "load_settings_or_exit",
    "parse_value",
]
