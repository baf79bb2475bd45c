"""The one place that wires svc-b: settings in, a Litestar app out.

With the app: the database (pool lifespan, readiness check: reachable and no pending migration),
the unit of work, the HTTP clients of svc-a and svc-c (one pooled commons ``ServiceClient``,
signing every call with the app's identity), the saga, the Idempotency-Key store with its
sweeper, and the saga recovery loop — all started and stopped with the app.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from litestar import Litestar
from litestar.di import Provide
from loguru import logger

from caravan_commons.app import create_app
from caravan_commons.background import periodic
from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.db import Database
from caravan_commons.discovery import Resolver
from caravan_commons.discovery_config import resolver_from_env
from caravan_commons.idempotency import IdempotencyStore
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_b import metrics
from svc_b.api.controllers import InfoController, OrderController
from svc_b.api.placing import OrderDesk
from svc_b.config import Settings
from svc_b.infrastructure.clients import CATALOG, PAYMENTS, HttpCatalog, HttpPayments, payments_client_config
from svc_b.infrastructure.db.piccolo_app import APP_CONFIG
from svc_b.infrastructure.db.unit_of_work import PiccoloUnitOfWork
from svc_b.service_layer.recovery import recover
from svc_b.service_layer.retrying import RetryPolicy
from svc_b.service_layer.saga import Saga

#: How long shutdown waits for a recovery round in progress before cancelling it.
RECOVERY_STOP_GRACE_S = 15.0


@dataclass
class Wiring:
    """What the app's handlers and background tasks share (``app.state.wiring``)."""

    settings: Settings
    database: Database
    resolver: Resolver
    catalog_client: ServiceClient | None = None
    payments_client: ServiceClient | None = None
    saga: Saga | None = None
    store: IdempotencyStore | None = None
    desk: OrderDesk | None = None
    recovery_runs: int = 0
    last_recovery: dict[str, Any] = field(default_factory=dict)

    def connect(self, signer: Any) -> None:
        """Build the clients and the saga (the signer exists once the app does)."""
        settings = self.settings
        config = ClientConfig(default_timeout=settings.call_timeout_s, user_agent="svc-b")
        self.catalog_client = ServiceClient(self.resolver, config, headers_provider=signer)
        self.payments_client = ServiceClient(
            self.resolver, payments_client_config(config), headers_provider=signer
        )
        metrics.export_circuits({CATALOG: self.catalog_client, PAYMENTS: self.payments_client})
        self.saga = Saga(
            uow=lambda: PiccoloUnitOfWork(self.database),
            catalog=HttpCatalog(self.catalog_client),
            payments=HttpPayments(self.payments_client),
            retry=RetryPolicy(deadline=timedelta(seconds=settings.saga_retry_deadline_s)),
        )
        # keys stored by svc-b before 0.3 (the order's row is the key's record now) age out
        self.store = IdempotencyStore(self.database.engine)
        self.desk = OrderDesk(self.saga, in_flight_for=timedelta(seconds=settings.recovery_min_age_s))
        if settings.secret_key_file:
            self.desk.id_secret = Path(settings.secret_key_file).read_bytes().strip()

    @contextlib.asynccontextmanager
    async def clients(self, _app: object = None) -> AsyncIterator[None]:
        assert self.catalog_client is not None and self.payments_client is not None
        async with self.catalog_client.lifespan(), self.payments_client.lifespan():
            yield

    async def recover_once(self) -> None:
        assert self.saga is not None
        settings = self.settings
        report = await recover(
            self.saga,
            now=datetime.now(UTC),
            min_age=timedelta(seconds=settings.recovery_min_age_s),
            resume_within=timedelta(seconds=settings.recovery_resume_within_s),
        )
        self.recovery_runs += 1
        self.last_recovery = {"finished": report.finished, "busy": report.busy, "failed": report.failed}
        if report.finished or report.failed:
            logger.info(
                "saga recovery: {} order(s) moved on, {} failed", len(report.finished), len(report.failed)
            )
        for order_id, error in report.failed.items():
            logger.warning("saga recovery could not move order {}: {}", order_id, error)

    def recovery_loop(self, _app: object = None) -> contextlib.AbstractAsyncContextManager[None]:
        """Resume or compensate unfinished orders at start-up and every ``recovery_interval_s``.
        On shutdown the round in progress may finish (each of its steps is short and bounded by the
        call deadline) for up to ``RECOVERY_STOP_GRACE_S`` (commons' graceful periodic loop)."""
        return periodic(
            "saga recovery",
            self.recover_once,
            interval=self.settings.recovery_interval_s,
            grace=RECOVERY_STOP_GRACE_S,
        )

    @contextlib.asynccontextmanager
    async def idempotency_sweeper(self, _app: object = None) -> AsyncIterator[None]:
        assert self.store is not None
        async with self.store.sweeper(interval=self.settings.idempotency_sweep_interval_s):
            yield


def build_app(
    settings: Settings, *, environ: Mapping[str, str] | None = None, resolver: Resolver | None = None
) -> Litestar:
    """The app with the whole commons stack (health, metrics, tracing, problem+json errors).

    Upstreams are found through discovery configured by ``CARAVAN_DISCOVERY_*`` in ``environ``
    (default: the process environment, read here, once) unless a ``resolver`` is given.
    """
    assert settings.database_url is not None  # the settings default it
    database = Database.for_settings(settings, [COMMONS_APP, APP_CONFIG])
    wiring = Wiring(
        settings, database, resolver or resolver_from_env(os.environ if environ is None else environ)
    )

    def provide_saga() -> Saga:
        assert wiring.saga is not None
        return wiring.saga

    def provide_desk() -> OrderDesk:
        assert wiring.desk is not None
        return wiring.desk

    app = create_app(
        settings,
        route_handlers=[InfoController, OrderController],
        dependencies={
            "saga": Provide(provide_saga, sync_to_thread=False),
            "desk": Provide(provide_desk, sync_to_thread=False),
        },
        readiness_checks={"database": database.readiness_check},
        # in order: the database opens first and closes last
        lifespan=[
            database.lifespan,
            wiring.clients,
            wiring.idempotency_sweeper,
            wiring.recovery_loop,
            metrics.sampler(lambda: wiring.saga, interval=settings.metrics_sample_interval_s),
        ],
        openapi_title="Orders",
    )
    wiring.connect(app.state.signer)
    for collector in metrics.COLLECTORS:
        app.state.metrics_registry.register(collector)
    app.state.wiring = wiring
    return app
