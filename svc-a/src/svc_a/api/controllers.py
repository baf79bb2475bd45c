"""Controllers of svc-a: one per resource. Paths are the service's own: the gateway routes
``/api/svc-a/...`` (the prefix declared in service.toml) here with the prefix stripped."""

from __future__ import annotations

from litestar import Controller, Request, get

import caravan_commons
from svc_a.api.products import ProductController
from svc_a.api.reservations import ReservationController
from svc_a.api.schemas import ServiceInfo
from svc_a.api.stock import StockController


class InfoController(Controller):
    path = "/"
    tags = ["info"]

    @get("/info", summary="Which service and which versions answer", sync_to_thread=False)
    def info(self, request: Request) -> ServiceInfo:
        settings = request.app.state.settings
        return ServiceInfo(
            service=settings.service_name,
            version=settings.service_version,
            commons=caravan_commons.__version__,
        )


#: Every controller of the service, in the order the OpenAPI document lists them.
CONTROLLERS = [InfoController, ProductController, StockController, ReservationController]
