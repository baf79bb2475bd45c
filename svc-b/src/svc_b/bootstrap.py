"""The one place that wires svc-b: settings in, a Litestar app out.

With the app: the database (pool lifespan, readiness check: reachable and no pending migration),
the unit of work, the HTTP clients of svc-a and svc-c (one pooled commons ``ServiceClient``,
signing every call with the app's identity), the saga, the Idempotency-Key store with its
sweeper, and the order runner with its sweeper — all started and stopped with the app.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import partial
from pathlib import Path

from litestar import Litestar
from litestar.di import Provide

from caravan_commons.app import create_app
from caravan_commons.background import periodic
from caravan_commons.client import ClientConfig, ServiceClient
from caravan_commons.db import Database
from caravan_commons.discovery import Resolver
from caravan_commons.discovery_config import resolver_from_env
from caravan_commons.idempotency import IdempotencyStore
from caravan_commons.identity import Signer
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from caravan_commons.plugin import ServicePlugin
from svc_b import metrics
from svc_b.api.controllers import OrderController
from svc_b.config import Settings
from svc_b.infrastructure.clients import CATALOG, PAYMENTS, HttpCatalog, HttpPayments, payments_client_config
from svc_b.infrastructure.db.piccolo_app import APP_CONFIG
from svc_b.infrastructure.db.unit_of_work import PiccoloUnitOfWork
from svc_b.service_layer.placing import OrderDesk
from svc_b.service_layer.retrying import RetryPolicy
from svc_b.service_layer.runner import OrderRunner
from svc_b.service_layer.saga import Saga

#: How long shutdown lets the orders this instance drives run on before cancelling them (their
#: leases then run out and another instance, or this one restarted, resumes them).
RUNNER_STOP_GRACE_S = 5.0


@dataclass(frozen=True)
class Wiring:
    """What the app's handlers and background tasks share (``app.state.wiring``), built at once
    by :meth:`build`."""

    settings: Settings
    database: Database
    catalog_client: ServiceClient
    payments_client: ServiceClient
    saga: Saga
    runner: OrderRunner
    #: keys stored by svc-b before 0.3 (the order's row is the key's record now) age out
    store: IdempotencyStore
    desk: OrderDesk

    @classmethod
    def build(
        cls, settings: Settings, database: Database, resolver: Resolver, signer: Signer | None
    ) -> Wiring:
        """The clients of svc-a and svc-c (signing every call with ``signer``), the saga, its
        runner and the order desk."""
        config = ClientConfig(
            default_timeout=settings.call_timeout_s,
            circuit_cooldown=settings.circuit_cooldown_s,
            user_agent="svc-b",
        )
        catalog_client = ServiceClient(resolver, config, headers_provider=signer)
        payments_client = ServiceClient(resolver, payments_client_config(config), headers_provider=signer)
        metrics.export_circuits({CATALOG: catalog_client, PAYMENTS: payments_client})
        saga = Saga(
            uow=partial(PiccoloUnitOfWork, database),
            catalog=HttpCatalog(catalog_client),
            payments=HttpPayments(payments_client),
            retry=RetryPolicy(deadline=timedelta(seconds=settings.saga_retry_deadline_s)),
            lease=timedelta(seconds=settings.order_lease_s),
        )
        runner = OrderRunner(saga, resume_within=timedelta(seconds=settings.recovery_resume_within_s))
        desk = OrderDesk(saga, runner, wait=settings.place_wait_s, max_wait=settings.place_wait_max_s)
        if settings.secret_key_file:
            desk.id_secret = Path(settings.secret_key_file).read_bytes().strip()
        return cls(
            settings,
            database,
            catalog_client,
            payments_client,
            saga,
            runner,
            IdempotencyStore(database.engine),
            desk,
        )

    @contextlib.asynccontextmanager
    async def clients(self, _app: object = None) -> AsyncIterator[None]:
        async with self.catalog_client.lifespan(), self.payments_client.lifespan():
            yield

    @contextlib.asynccontextmanager
    async def order_sweeper(self, _app: object = None) -> AsyncIterator[None]:
        """Every ``sweep_interval_s``: renew this instance's leases, claim due orders (a crashed
        instance's, or ones whose wait is over) and drive them. On shutdown the orders in flight get
        ``RUNNER_STOP_GRACE_S`` to finish."""
        async with periodic("order sweeper", self.runner.sweep_once, interval=self.settings.sweep_interval_s):
            try:
                yield
            finally:
                await self.runner.stop(RUNNER_STOP_GRACE_S)

    @contextlib.asynccontextmanager
    async def idempotency_sweeper(self, _app: object = None) -> AsyncIterator[None]:
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
    kit = ServicePlugin(
        settings,
        readiness_checks={"database": database.readiness_check},
        collectors=metrics.COLLECTORS,
        openapi_title="Orders",
    )
    resolver = resolver or resolver_from_env(os.environ if environ is None else environ)
    wiring = Wiring.build(settings, database, resolver, kit.signer)
    app = create_app(
        settings,
        kit=kit,
        route_handlers=[OrderController],
        dependencies={
            "saga": Provide(lambda: wiring.saga, sync_to_thread=False),
            "desk": Provide(lambda: wiring.desk, sync_to_thread=False),
        },
        # in order: the database opens first and closes last
        lifespan=[
            database.lifespan,
            wiring.clients,
            wiring.idempotency_sweeper,
            wiring.order_sweeper,
            metrics.sampler(lambda: wiring.saga, interval=settings.metrics_sample_interval_s),
        ],
    )
    app.state.wiring = wiring
    return app
