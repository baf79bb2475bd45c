"""Who may read a payment: operators, or a service verified by the identity middleware."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import pytest

from caravan_commons.errors import ForbiddenError
from caravan_commons.identity import ASSERTION_STATE_KEY, CALLER_STATE_KEY, Assertion
from svc_c.api.guards import operators_or_services


@dataclass
class Connection:
    caller: str | None = None
    headers: dict[str, str] = field(default_factory=dict)

    @property
    def scope(self) -> dict[str, Any]:
        """As the identity middleware leaves it: the verified assertion (the customer and scopes
        signed into it; here, those of the headers)."""
        if not self.caller:
            return {"state": {}}
        customer = self.headers.get("x-caravan-customer")
        scopes = frozenset(self.headers.get("x-caravan-scopes", "").split())
        assertion = Assertion(self.caller, "GET", "/payments/p-1", customer, scopes)
        return {"state": {CALLER_STATE_KEY: self.caller, ASSERTION_STATE_KEY: assertion}}


@pytest.mark.parametrize(
    "connection",
    [
        Connection("svc-b"),  # a service calling directly
        Connection("gateway", {"x-caravan-scopes": "operator"}),
        Connection(None, {"x-caravan-scopes": "operator"}),  # enforcement off (tests, fuzzing)
    ],
)
def test_allowed(connection: Connection) -> None:
    asyncio.run(operators_or_services(connection, None))


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
        asyncio.run(operators_or_services(connection, None))
