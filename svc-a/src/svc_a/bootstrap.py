"""The one place that wires svc-a: settings in, a Litestar app out."""

from __future__ import annotations

from litestar import Litestar

from caravan_commons.app import create_app
from svc_a.api.controllers import InfoController
from svc_a.config import Settings


def build_app(settings: Settings) -> Litestar:
    """The app with the whole commons stack (health, metrics, tracing, problem+json errors)."""
    return create_app(
        settings,
        route_handlers=[InfoController],
        openapi_title="Catalog",
    )
