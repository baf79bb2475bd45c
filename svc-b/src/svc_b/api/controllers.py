"""Controllers of svc-b: one per resource. Paths are the service's own: the gateway routes
``/api/svc-b/...`` (the prefix declared in service.toml) here with the prefix stripped."""

from __future__ import annotations

from litestar import Controller, Request, get

import caravan_commons
from svc_b.api.schemas import ServiceInfo


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
