"""Controllers of svc-a: one per resource. Paths are the service's own: the gateway routes
``/api/svc-a/...`` (the prefix declared in service.toml) here with the prefix stripped."""

from __future__ import annotations

from svc_a.api.products import ProductController
from svc_a.api.reservations import ReservationController
from svc_a.api.stock import StockController

#: Every controller of the service, in the order the OpenAPI document lists them.
CONTROLLERS = [ProductController, StockController, ReservationController]
