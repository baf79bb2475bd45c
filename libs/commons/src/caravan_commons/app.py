"""``create_app(settings, ...) -> Litestar``: the one way a Caravan service builds its app.

It wires, in this order around every HTTP request::

    RequestIdMiddleware → MetricsMiddleware → tracing (Litestar's OpenTelemetry plugin)
        → Litestar's exception handling (ProblemDetailsPlugin with the Caravan mapping) → routes

through commons' :class:`~caravan_commons.plugin.ServicePlugin`, which adds ``GET /health/live``,
``GET /health/ready`` (runs the service's readiness checks; 503 problem+json naming the failed
ones), ``GET /metrics`` (Prometheus), ``GET /info`` (which service, version and commons answer:
:class:`ServiceInfo`) and the OpenAPI document at ``/schema/openapi.json`` whose error answers are
all documented as problem+json.

When the settings name public keys and allowed callers, every route except health, /metrics and
the OpenAPI document requires a valid caller identity allowed by the foundation model (401/403,
see caravan_commons.identity).

The app keeps what it built in ``app.state``: ``settings``, ``http_metrics``, ``metrics_registry``,
``tracing`` (``None`` when ``trace_exporter`` is ``none``) and ``signer`` (signs outgoing calls;
``None`` without an identity key).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from litestar import Litestar

from caravan_commons.plugin import (
    READINESS_TIMEOUT_S,
    Liveness,
    Readiness,
    ReadinessCheck,
    ServiceInfo,
    ServicePlugin,
)
from caravan_commons.problems import problem_details_plugin

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from litestar.types import ControllerRouterHandler, Middleware
    from prometheus_client.registry import Collector

    from caravan_commons.settings import ServiceSettings
    from caravan_commons.tracing import Tracing


def create_app(
    settings: ServiceSettings,
    *,
    kit: ServicePlugin | None = None,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    dependencies: Mapping[str, Any] | None = None,
    plugins: Sequence[Any] = (),
    middleware: Sequence[Middleware] = (),
    readiness_checks: Mapping[str, ReadinessCheck] | None = None,
    collectors: Sequence[Collector] = (),
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
    ``readiness_checks``, ``collectors``, ``openapi_title`` and ``tracing`` configure the
    :class:`ServicePlugin`; or pass ``kit``, one built beforehand (e.g. to sign outgoing calls with
    its ``signer`` while wiring the service), configured with them.
    """
    if kit is None:
        kit = ServicePlugin(
            settings,
            readiness_checks=readiness_checks,
            collectors=collectors,
            openapi_title=openapi_title,
            tracing=tracing,
        )
    elif readiness_checks or collectors or openapi_title or tracing is not True:
        raise TypeError("configure the kit you pass (readiness_checks, collectors, openapi_title, tracing)")
    elif kit.settings is not settings:
        raise ValueError("the kit was built for other settings")
    app = Litestar(
        route_handlers=list(route_handlers),
        dependencies=dict(dependencies or {}),
        plugins=[kit, problem_details_plugin(), *plugins],
        middleware=list(middleware),
        lifespan=list(lifespan),
        on_startup=list(on_startup),
        on_shutdown=list(on_shutdown),
        debug=debug,
        **litestar_options,
    )
    return kit.finish(app)


__all__ = [
    "READINESS_TIMEOUT_S",
    "Liveness",
    "Readiness",
    "ReadinessCheck",
    "ServiceInfo",
    "ServicePlugin",
    "create_app",
]
