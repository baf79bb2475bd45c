"""``create_app(settings, ...) -> Litestar``: the one way a Caravan service builds its app.

It wires, in this order around every HTTP request::

    RequestIdMiddleware → MetricsMiddleware → tracing (Litestar's OpenTelemetry plugin)
        → Litestar's exception handling (ProblemDetailsPlugin with the Caravan mapping) → routes

and adds ``GET /health/live``, ``GET /health/ready`` (runs the service's readiness checks; 503
problem+json naming the failed ones), ``GET /metrics`` (Prometheus), ``GET /info`` (which service,
version and commons answer: :class:`ServiceInfo`) and the OpenAPI document at
``/schema/openapi.json`` whose error answers are all documented as problem+json.

When the settings name public keys and allowed callers, every route except health, /metrics and
the OpenAPI document requires a valid caller identity allowed by the foundation model (401/403,
see caravan_commons.identity).

The app keeps what it built in ``app.state``: ``settings``, ``http_metrics``, ``metrics_registry``,
``tracing`` (``None`` when ``trace_exporter`` is ``none``) and ``signer`` (signs outgoing calls;
``None`` without an identity key).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from litestar import Controller, Litestar, Response, get
from litestar.middleware import DefineMiddleware
from litestar.openapi import OpenAPIConfig
from litestar.openapi.plugins import JsonRenderPlugin
from loguru import logger

import caravan_commons
from caravan_commons import identity
from caravan_commons.deadline import DeadlineMiddleware
from caravan_commons.errors import UpstreamUnavailableError
from caravan_commons.logging import AccessLogMiddleware, RequestIdMiddleware
from caravan_commons.metrics import HttpMetrics, MetricsMiddleware, create_registry, render
from caravan_commons.problems import document_problems, problem_details_plugin, problem_responses
from caravan_commons.schemas import WireStruct
from caravan_commons.service_metrics import CircuitMetrics
from caravan_commons.tracing import Tracing, setup_tracing

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from litestar.types import ControllerRouterHandler, Middleware

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


def create_app(
    settings: ServiceSettings,
    *,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    dependencies: Mapping[str, Any] | None = None,
    plugins: Sequence[Any] = (),
    middleware: Sequence[Middleware] = (),
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    lifespan: Sequence[Callable[[Litestar], AbstractAsyncContextManager[Any]]] = (),
    on_startup: Sequence[Callable[..., Any]] = (),
    on_shutdown: Sequence[Callable[..., Any]] = (),
    openapi_title: str | None = None,
    tracing: Tracing | bool | None = True,
    debug: bool = False,
    **litestar_options: Any,
) -> Litestar:
    """Build a service's Litestar app with the whole commons stack.

    ``route_handlers``, ``dependencies``, ``plugins``, ``middleware`` (per-route middleware),
    ``lifespan``, ``on_startup``/``on_shutdown`` and any other ``litestar_options`` go to Litestar.
    ``readiness_checks`` maps a name to an async callable that raises when the dependency is not
    usable (e.g. ``{"database": db_ready}``). ``tracing=True`` sets tracing up from the settings;
    pass a :class:`Tracing` to share one, or ``False`` to switch it off.
    """
    http_metrics = HttpMetrics()
    registry = create_registry(http_metrics)
    registry.register(CircuitMetrics())
    if tracing is True:
        tracing_state = setup_tracing(settings)
    elif tracing is False or tracing is None:
        tracing_state = None
    else:
        tracing_state = tracing

    identity_middleware, signer = identity.from_settings(settings)
    # The caller's deadline (X-Request-Timeout-Ms) becomes the request's: outgoing calls through
    # the commons client inherit what is left of it, and the handler is cancelled (504) past it.
    all_middleware = [DefineMiddleware(DeadlineMiddleware), *middleware]
    if settings.access_log:  # inside the server span (the tracing middleware goes first)
        all_middleware.insert(0, DefineMiddleware(AccessLogMiddleware))
    shutdown = list(on_shutdown)
    if tracing_state is not None:
        # Litestar turns this into its OpenTelemetryPlugin, which wraps the whole app (outside routing).
        all_middleware.insert(0, tracing_state.config.middleware)
        shutdown.append(tracing_state.shutdown)

    app = Litestar(
        route_handlers=[
            *_health_handlers(settings, readiness_checks or {}),
            _metrics_handler(registry),
            _info_controller(settings),
            *route_handlers,
        ],
        dependencies=dict(dependencies or {}),
        plugins=[problem_details_plugin(), *plugins],
        middleware=all_middleware,
        lifespan=list(lifespan),
        on_startup=list(on_startup),
        on_shutdown=shutdown,
        openapi_config=OpenAPIConfig(
            title=openapi_title or settings.service_name,
            version=settings.service_version,
            path="/schema",
            render_plugins=[JsonRenderPlugin()],
        ),
        logging_config=None,
        debug=debug,
        **litestar_options,
    )
    app.state.settings = settings
    app.state.http_metrics = http_metrics
    app.state.metrics_registry = registry
    app.state.tracing = tracing_state
    app.state.signer = signer
    # Outside Litestar's own stack, so that every answer (404s of unknown paths included) gets a
    # request id and a metrics observation, and the route template is known when it is recorded.
    handler = (
        app.asgi_handler
        if identity_middleware is None
        else identity_middleware(app.asgi_handler, router=app.asgi_router)
    )
    app.asgi_handler = RequestIdMiddleware(MetricsMiddleware(handler, http_metrics))
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


__all__ = ["READINESS_TIMEOUT_S", "Liveness", "Readiness", "ReadinessCheck", "ServiceInfo", "create_app"]
