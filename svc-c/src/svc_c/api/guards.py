"""Who may read payments: operators (the gateway asserts the ``operator`` scope) and services
calling directly (svc-b, whose verified identity is not the gateway's). A plain customer of the
gateway may not: a payment carries no customer, so there is nothing to match them against."""

from __future__ import annotations

from typing import Any

from caravan_commons.errors import ForbiddenError
from caravan_commons.principal import GATEWAY, OPERATOR, principal_of


async def operators_or_services(connection: Any, _handler: Any) -> None:
    principal = principal_of(connection)
    if principal.has_scope(OPERATOR):
        return
    if principal.caller is not None and principal.caller != GATEWAY:
        return  # a service verified by the identity middleware (security groups let only svc-b here)
    raise ForbiddenError("payments are read by operators (the 'operator' scope) or by services directly")


operators_or_services.caravan_scope = OPERATOR  # type: ignore[attr-defined]  # the public document marks it
