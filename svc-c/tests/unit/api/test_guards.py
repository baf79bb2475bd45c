"""Who may read a payment: operators, or a service verified by the identity middleware."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from caravan_commons.errors import ForbiddenError
from caravan_commons.identity import CALLER_STATE_KEY
from svc_c.api.guards import operators_or_services


@dataclass
class Connection:
    caller: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> dict[str, Any]:
        return {"state": {CALLER_STATE_KEY: self.caller}} if self.caller else {"state": {}}


@pytest.mark.parametrize(
    "connection",
    [
        Connection("svc-b"),  # a service calling directly
        Connection("gateway", {"x-caravan-scopes": "operator"}),
        Connection(None, {"x-caravan-scopes": "operator"}),  # enforcement off (tests, fuzzing)
    ],
)
def test_allowed(connection: Connection) -> None:
    operators_or_services(connection, None)


@pytest.mark.parametrize(
    "connection",
    [
        Connection("gateway", {"x-caravan-customer": "demo"}),
        Connection("gateway"),
        Connection(None, {"x-caravan-customer": "demo"}),
        Connection(None),
    ],
)
def test_refused(connection: Connection) -> None:
    with pytest.raises(ForbiddenError):
        operators_or_services(connection, None)
