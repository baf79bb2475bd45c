"""``ServicePlugin``: the commons stack of a Caravan service as one Litestar plugin.

Built from the settings *before* the app exists — the metrics registry, tracing and the caller
identity (the signer of outgoing calls, the identity middleware) are ready at once, so a service
wires its collaborators (clients signing with :attr:`ServicePlugin.signer`) in one phase — and
registered with Litestar by :func:`caravan_commons.app.create_app`, where it adds:

- ``GET /health/live``, ``GET /health/ready`` (runs the readiness checks; 503 problem+json naming
  the failed ones), ``GET /metrics`` (Prometheus) and ``GET /info`` (:class:`ServiceInfo`);
- the middleware in front of the service's own: tracing (Litestar's OpenTelemetry plugin), the
  access log, the caller's deadline (``X-Request-Timeout-Ms``);
- the OpenAPI document at ``/schema/openapi.json``.

What needs the built app — the request id and metrics around everything (404s of unknown paths
included), the identity middleware, problem+json documented on every operation, ``app.state`` —
is :meth:`ServicePlugin.finish`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from litestar import Controller, Litestar, Response, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from litestar.plugins import InitPluginProtocol
from loguru import logger

import caravan_commons
from caravan_commons import identity
from caravan_commons.deadline import DeadlineMiddleware
from caravan_commons.errors import UpstreamUnavailableError
from caravan_commons.logging import AccessLogMiddleware, RequestIdMiddleware
from caravan_commons.metrics import HttpMetrics, MetricsMiddleware, create_registry, render
from caravan_commons.problems import document_problems, problem_responses
from caravan_commons.schemas import WireStruct
from caravan_commons.service_metrics import CircuitMetrics
from caravan_commons.tracing import Tracing, setup_tracing

if TYPE_CHECKING:
    from litestar.config.app import AppConfig
    from prometheus_client.registry import Collector

    from caravan_commons.settings import ServiceSettings

ReadinessCheck = Callable[[], Awaitable[None]]

#: How long one readiness check may take before it counts as failed, in seconds.
READINESS_TIMEOUT_S = 2.0


class Liveness(WireStruct):
    service: str
    version: str
    status: str = "ok"


class Readiness(WireStruct):
    checks: dict[str, str]
    status: str = "ok"


class ServiceInfo(WireStruct):
    service: str
    version: str
    commons: str


def _info_controller(settings: ServiceSettings) -> type[Controller]:
    body = ServiceInfo(
        service=settings.service_name, version=settings.service_version, commons=caravan_commons.__version__
    )

    class InfoController(Controller):
        path = "/"
        tags = ["info"]

        @get("/info", summary="Which service and which versions answer", sync_to_thread=False)
        def info(self) -> ServiceInfo:
            return body

    return InfoController


def _health_handlers(settings: ServiceSettings, checks: Mapping[str, ReadinessCheck]) -> list[Any]:
    live_body = Liveness(service=settings.service_name, version=settings.service_version)

    @get("/health/live", tags=["health"], summary="The process is up", sync_to_thread=False)
    def live() -> Liveness:
        return live_body

    async def _run(name: str, check: ReadinessCheck) -> str | None:
        try:
            await asyncio.wait_for(check(), READINESS_TIMEOUT_S)
        except Exception as exc:  # any failure means "not ready"; the reason goes to the log only
            logger.opt(exception=exc).warning("readiness check {!r} failed", name)
            return type(exc).__name__
        return None

    @get(
        "/health/ready",
        tags=["health"],
        summary="The service can serve traffic (its readiness checks pass)",
        responses=problem_responses(503),
    )
    async def ready() -> Readiness:
        names = list(checks)
        failures = await asyncio.gather(*(_run(name, checks[name]) for name in names))
        failed = {name: reason for name, reason in zip(names, failures, strict=True) if reason is not None}
        if failed:
            raise UpstreamUnavailableError(
                "not ready: " + ", ".join(f"{name} ({reason})" for name, reason in failed.items()),
                failed_checks=sorted(failed),
            )
        return Readiness(checks=dict.fromkeys(names, "ok"))

    return [live, ready]


def _metrics_handler(registry: Any) -> Any:
    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def metrics() -> Response[bytes]:
        body, content_type = render(registry)
        return Response(body, media_type=content_type)

    return metrics


class ServicePlugin(InitPluginProtocol):
    """The commons stack for one app (one instance per app).

    ``readiness_checks`` maps a name to an async callable that raises when the dependency is not
    usable (e.g. ``{"database": db.readiness_check}``); ``collectors`` are the service's own
    Prometheus collectors (served by ``/metrics`` with the HTTP and circuit metrics).
    ``tracing=True`` sets tracing up from the settings; pass a :class:`Tracing` to share one, or
    ``False`` to switch it off.
    """

    def __init__(
        self,
        settings: ServiceSettings,
        *,
        readiness_checks: Mapping[str, ReadinessCheck] | None = None,
        collectors: Sequence[Collector] = (),
        openapi_title: str | None = None,
        tracing: Tracing | bool | None = True,
    ) -> None:
        self.settings = settings
        self.readiness_checks = dict(readiness_checks or {})
        self.openapi_title = openapi_title
        self.http_metrics = HttpMetrics()
        self.metrics_registry = create_registry(self.http_metrics)
        for collector in (CircuitMetrics(), *collectors):
            self.metrics_registry.register(collector)
        if tracing is True:
            self.tracing: Tracing | None = setup_tracing(settings)
        elif tracing is False or tracing is None:
            self.tracing = None
        else:
            self.tracing = tracing
        self.identity_middleware, self.signer = identity.from_settings(settings)

    def on_app_init(self, app_config: AppConfig) -> AppConfig:
        settings = self.settings
        app_config.route_handlers = [
            *_health_handlers(settings, self.readiness_checks),
            _metrics_handler(self.metrics_registry),
            _info_controller(settings),
            *app_config.route_handlers,
        ]
        # The caller's deadline (X-Request-Timeout-Ms) becomes the request's: outgoing calls through
        # the commons client inherit what is left of it, and the handler is cancelled (504) past it.
        stack: list[Any] = [DefineMiddleware(DeadlineMiddleware)]
        if settings.access_log:  # inside the server span (the tracing middleware goes first)
            stack.insert(0, DefineMiddleware(AccessLogMiddleware))
        if self.tracing is not None:
            # Litestar turns this into its OpenTelemetryPlugin, which wraps the whole app (outside routing).
            stack.insert(0, self.tracing.config.middleware)
            app_config.on_shutdown = [*app_config.on_shutdown, self.tracing.shutdown]
        app_config.middleware = [*stack, *app_config.middleware]
        app_config.openapi_config = OpenAPIConfig(
            title=self.openapi_title or settings.service_name,
            version=settings.service_version,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        )
        app_config.logging_config = None
        return app_config

    def finish(self, app: Litestar) -> Litestar:
        """What needs the built app; returns it."""
        app.state.settings = self.settings
        app.state.http_metrics = self.http_metrics
        app.state.metrics_registry = self.metrics_registry
        app.state.tracing = self.tracing
        app.state.signer = self.signer
        # Outside Litestar's own stack, so that every answer (404s of unknown paths included) gets a
        # request id and a metrics observation, and the route template is known when it is recorded.
        handler = (
            app.asgi_handler
            if self.identity_middleware is None
            else self.identity_middleware(app.asgi_handler, router=app.asgi_router)
        )
        app.asgi_handler = RequestIdMiddleware(MetricsMiddleware(handler, self.http_metrics))
        document_problems(app)
        _repair_options_allow(app)
        return app


def _repair_options_allow(app: Litestar) -> int:
    """Work around Litestar 2's automatic OPTIONS answer (litestar-org/litestar#4169, fixed in
    Litestar 3): on a path with several handlers (GET and POST /orders) its ``Allow`` lists only
    the methods of the first one registered, because the OPTIONS handler keeps the route as it was
    then. Point every such handler at its final route, so ``Allow`` lists every method the OpenAPI
    document declares (schemathesis checks that). Returns how many were repaired."""
    from litestar.routes import HTTPRoute

    repaired = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "OPTIONS" not in handler.http_methods:
                continue
            for cell in getattr(handler.fn, "__closure__", None) or ():
                stale = cell.cell_contents
                if isinstance(stale, HTTPRoute) and stale is not route and stale.path == route.path:
                    cell.cell_contents = route
                    repaired += 1
    return repaired


__all__ = ["READINESS_TIMEOUT_S", "Liveness", "Readiness", "ReadinessCheck", "ServiceInfo", "ServicePlugin"]
