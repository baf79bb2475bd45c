"""The one place that wires svc-b: settings in, a Litestar app out."""

from __future__ import annotations

from litestar import Litestar

from caravan_commons.app import create_app
from svc_b.api.controllers import InfoController
from svc_b.config import Settings


def build_app(settings: Settings) -> Litestar:
    """The app with the whole commons stack (health, metrics, tracing, problem+json errors)."""
    return create_app(
        settings,
        route_handlers=[InfoController],
        openapi_title="Orders",
    )
