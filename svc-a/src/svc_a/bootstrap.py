"""The one place that wires svc-a: settings in, a Litestar app out."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from litestar import Litestar
from litestar.di import Provide

from caravan_commons.app import create_app
from caravan_commons.db import Database
from caravan_commons.idempotency import IdempotencyStore
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_a import metrics
from svc_a.api.controllers import CONTROLLERS
from svc_a.api.deps import Catalog, provide_catalog, provide_uow
from svc_a.background import reservation_sweeper
from svc_a.config import Settings
from svc_a.infrastructure.db import piccolo_app
from svc_a.infrastructure.unit_of_work import PiccoloUnitOfWork


def build_database(settings: Settings) -> Database:
    assert settings.database_url is not None  # commons' settings default it
    return Database.for_settings(settings, [COMMONS_APP, piccolo_app.APP_CONFIG])


def build_app(settings: Settings) -> Litestar:
    """The app with the whole commons stack (health, metrics, tracing, problem+json errors), the
    database (pool with the app's lifespan, readiness = reachable and migrated), and the background
    loops: the reservation sweeper and the Idempotency-Key sweeper."""
    db = build_database(settings)

    uow_factory = partial(PiccoloUnitOfWork, db)

    catalog = Catalog(
        uow_factory=uow_factory,
        idempotency=IdempotencyStore(db.engine),
        reservation_ttl=timedelta(seconds=settings.reservation_ttl_s),
    )
    app = create_app(
        settings,
        route_handlers=CONTROLLERS,
        dependencies={
            "catalog": Provide(provide_catalog, sync_to_thread=False),
            "uow": Provide(provide_uow, sync_to_thread=False),
        },
        readiness_checks={"database": db.readiness_check},
        lifespan=[
            db.lifespan,
            partial(
                reservation_sweeper,
                uow_factory=uow_factory,
                interval=settings.reservation_sweep_interval_s,
            ),
            partial(catalog.idempotency.sweeper, interval=settings.idempotency_sweep_interval_s),
            metrics.sampler(uow_factory=uow_factory, interval=settings.metrics_sample_interval_s),
        ],
        openapi_title="Catalog",
        collectors=metrics.COLLECTORS,
    )
    app.state.catalog = catalog
    app.state.database = db
    return app
