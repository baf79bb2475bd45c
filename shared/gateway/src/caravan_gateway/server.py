"""Build the gateway from its settings and serve it on uvloop until SIGTERM, then drain.

Start-up reads everything once (routes, keys, identity key, discovery); a bad value raises a
:class:`~caravan_commons.settings.SettingsError` or a config error naming the file. Shutdown:
stop accepting, report not-ready, close idle keep-alive connections, let in-flight requests finish
(at most ``shutdown_timeout_s``), then close what is left and flush traces.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Mapping
from pathlib import Path

from loguru import logger

from caravan_commons.discovery_config import resolver_from_env
from caravan_commons.identity import Signer
from caravan_commons.metrics import HttpMetrics, create_registry
from caravan_commons.tracing import JsonLinesSpanExporter, Tracing, setup_tracing
from caravan_gateway.admin import Admin
from caravan_gateway.auth import authenticator_from_files
from caravan_gateway.connection import ClientConnection
from caravan_gateway.gateway import Gateway
from caravan_gateway.limits import RateLimiter
from caravan_gateway.routes import RouteTable
from caravan_gateway.settings import GatewaySettings
from caravan_gateway.tracing import EdgeTracer, SpanLineWriter

IDLE_SWEEP_S = 5.0
SPAN_FLUSH_S = 1.0


def edge_tracer(settings: GatewaySettings, tracing: Tracing | None) -> EdgeTracer | None:
    if tracing is None:
        return None
    writer = None
    if isinstance(tracing.exporter, JsonLinesSpanExporter):
        assert settings.trace_file is not None
        writer = SpanLineWriter(settings.trace_file)
    return EdgeTracer(tracing.provider, settings.trace_sample_ratio, writer=writer)


def build_gateway(
    settings: GatewaySettings, environ: Mapping[str, str] | None = None
) -> tuple[Gateway, Tracing | None]:
    routes = RouteTable(settings.gateway_routes)
    resolver = resolver_from_env(os.environ if environ is None else environ)
    auth = authenticator_from_files(
        settings.api_keys_file,
        settings.jwt_key_file,
        jwt_algorithms=settings.jwt_algorithms,
        jwt_issuer=settings.jwt_issuer,
        jwt_audience=settings.jwt_audience,
    )
    signer = (
        Signer.from_file("gateway", Path(settings.identity_key_file)) if settings.identity_key_file else None
    )
    tracing = setup_tracing(settings)
    metrics = HttpMetrics()
    gateway = Gateway(
        settings,
        routes=routes,
        resolver=resolver,
        authenticator=auth,
        limiter=RateLimiter(settings.rate_per_second, settings.rate_burst),
        auth_failures=RateLimiter(settings.auth_failures_per_second, settings.auth_failures_burst),
        metrics=metrics,
        signer=signer,
        tracer=edge_tracer(settings, tracing),
    )
    gateway.admin = Admin(
        create_registry(metrics),
        routes=routes,
        resolver=resolver,
        authenticator=auth,
        signer=signer,
        policy=settings.gateway_policy,
        draining=lambda: gateway.draining,
    )
    return gateway, tracing


async def serve(settings: GatewaySettings, environ: Mapping[str, str] | None = None) -> None:
    gateway, tracing = build_gateway(settings, environ)
    loop = asyncio.get_running_loop()
    server = await loop.create_server(
        lambda: ClientConnection(gateway), settings.host, settings.port, backlog=2048, reuse_address=True
    )
    stop = asyncio.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)

    writer = gateway.tracer.writer if gateway.tracer is not None else None

    async def housekeeping() -> None:
        next_sweep = loop.time() + IDLE_SWEEP_S
        while True:
            await asyncio.sleep(SPAN_FLUSH_S)
            if writer is not None:
                writer.flush()
            if loop.time() >= next_sweep:
                next_sweep = loop.time() + IDLE_SWEEP_S
                for conn in list(gateway.connections):
                    conn.close_if_idle(settings.keepalive_timeout_s)

    sweeper = loop.create_task(housekeeping())
    logger.info(
        "gateway serving {} routes on http://{}:{}",
        len(settings.gateway_routes),
        settings.host,
        settings.port,
    )
    await stop.wait()
    logger.info("draining: {} requests in flight", gateway.in_flight)
    gateway.draining = True
    server.close()
    for conn in list(gateway.connections):
        conn.close_if_idle()
    try:
        await asyncio.wait_for(gateway.idle.wait(), settings.shutdown_timeout_s)
    except TimeoutError:
        logger.error(
            "{} requests still running after {}s: closing anyway",
            gateway.in_flight,
            settings.shutdown_timeout_s,
        )
    sweeper.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await sweeper
    for conn in list(gateway.connections):
        conn.abort(graceful=True)
    gateway.pool.close()
    if gateway.admin is not None:
        await gateway.admin.aclose()
    await gateway.resolver.aclose()
    if writer is not None:
        writer.close()
    if tracing is not None:
        tracing.shutdown()
    logger.info("stopped")
