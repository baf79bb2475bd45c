"""A work-around for Litestar 2's automatic OPTIONS answer (litestar-org/litestar#4169, fixed in
Litestar 3): on a path with several handlers (GET and POST /products), ``Allow`` lists only the
methods of the first one registered, because the OPTIONS handler keeps a reference to the route
as it was then. :func:`repair_options_allow` points every such handler at its final route, so
``Allow`` lists every method the OpenAPI document declares (schemathesis checks that)."""

from __future__ import annotations

from litestar import Litestar
from litestar.routes import HTTPRoute


def repair_options_allow(app: Litestar) -> int:
    """Rebind stale automatic OPTIONS handlers to their route; how many were repaired."""
    repaired = 0
    for route in app.routes:
        if not isinstance(route, HTTPRoute):
            continue
        for handler in route.route_handlers:
            if "OPTIONS" not in handler.http_methods:
                continue
            for cell in getattr(handler.fn, "__closure__", None) or ():
                stale = cell.cell_contents
                if isinstance(stale, HTTPRoute) and stale is not route and stale.path == route.path:
                    cell.cell_contents = route
                    repaired += 1
    return repaired
