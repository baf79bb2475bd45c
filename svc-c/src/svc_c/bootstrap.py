"""The one place that wires svc-c: settings in, a Litestar app out."""

from __future__ import annotations

from datetime import timedelta
from functools import partial

from litestar import Litestar
from litestar.di import Provide

from caravan_commons.app import create_app
from caravan_commons.db import Database
from caravan_commons.idempotency import IdempotencyStore
from caravan_commons.piccolo_app import APP_CONFIG as COMMONS_APP
from svc_c import metrics
from svc_c.api.controllers import LedgerController, PaymentController
from svc_c.api.deps import Payments, payments_provider
from svc_c.api.openapi import link_payment_operations
from svc_c.config import Settings
from svc_c.domain.processor import SimulatedProcessor
from svc_c.infrastructure.db import piccolo_app
from svc_c.infrastructure.unit_of_work import PiccoloUnitOfWork


def build_app(settings: Settings) -> Litestar:
    """The app with the whole commons stack (health, metrics, tracing, problem+json errors), the
    payment and ledger endpoints, the database pool and the Idempotency-Key sweeper."""
    assert settings.database_url is not None  # the commons settings default it to a SQLite file
    db = Database.for_settings(settings, [COMMONS_APP, piccolo_app.APP_CONFIG])
    store = IdempotencyStore(db.engine, ttl=timedelta(seconds=settings.idempotency_ttl_s))
    payments = Payments(
        new_uow=partial(PiccoloUnitOfWork, db),
        store=store,
        processor=SimulatedProcessor(slow_delay=settings.processor_slow_delay_s),
    )
    app = create_app(
        settings,
        route_handlers=[PaymentController, LedgerController],
        dependencies={"payments": Provide(payments_provider(payments), sync_to_thread=False)},
        readiness_checks={"database": db.readiness_check},
        lifespan=[
            db.lifespan,
            partial(store.sweeper, interval=settings.idempotency_sweep_interval_s),
            metrics.sampler(
                uow_factory=partial(PiccoloUnitOfWork, db), interval=settings.metrics_sample_interval_s
            ),
        ],
        openapi_title="Payments",
        collectors=metrics.COLLECTORS,
    )
    link_payment_operations(app)
    app.state.db = db
    app.state.payments = payments
    return app
