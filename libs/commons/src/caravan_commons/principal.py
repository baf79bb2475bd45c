"""Who a request is for: the calling program, and the end customer and scopes the gateway asserts.

The gateway authenticates a client (API key or JWT) and signs the result — the customer id and
its scopes (e.g. ``operator``) — into the identity assertion of that one request
(:mod:`caravan_commons.identity`); it also sends them as ``X-Caravan-Customer`` and
``X-Caravan-Scopes`` for readers of logs. So:

- with identity enforcement on (every service under a runtime), the principal comes from the
  verified assertion only, and only when its caller is the gateway; headers that disagree with the
  assertion are refused (401) by the middleware. A service calling another service acts for no
  customer and holds no scope;
- with enforcement off (a service started alone, its in-process tests, a fuzzing run), there is no
  verified caller and the headers are taken as sent — the service listens on loopback only.

Use :func:`principal_of` in a handler, the guards :func:`requires_scope` and
:func:`requires_customer` on routes, and document their answers with ``problem_responses(401, 403)``.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from caravan_commons.errors import ForbiddenError, UnauthorizedError
from caravan_commons.identity import assertion_of, valid_customer

CUSTOMER_HEADER = "x-caravan-customer"
SCOPES_HEADER = "x-caravan-scopes"
GATEWAY = "gateway"
OPERATOR = "operator"
MAX_CUSTOMER_LENGTH = 128


@dataclass(frozen=True, slots=True)
class Principal:
    """The verified calling program (None with enforcement off), and whom it acts for."""

    caller: str | None
    customer: str | None
    scopes: frozenset[str]

    def has_scope(self, scope: str) -> bool:
        return scope in self.scopes


def principal_from(
    scope: Mapping[str, Any], headers: Mapping[str, str], *, gateway: str = GATEWAY
) -> Principal:
    """The principal of an ASGI ``scope`` whose request carries ``headers`` (lower-case names)."""
    assertion = assertion_of(scope)
    if assertion is not None:
        if assertion.caller != gateway:
            return Principal(assertion.caller, None, frozenset())
        return Principal(assertion.caller, assertion.customer, assertion.scopes)
    customer = headers.get(CUSTOMER_HEADER) or None
    if customer is not None and (len(customer) > MAX_CUSTOMER_LENGTH or not valid_customer(customer)):
        raise UnauthorizedError("the asserted customer id is not valid")
    scopes = frozenset(headers.get(SCOPES_HEADER, "").split())
    return Principal(None, customer, scopes)


def principal_of(connection: Any) -> Principal:
    """The principal of a Litestar request or connection."""
    return principal_from(connection.scope, connection.headers)


def requires_scope(scope: str) -> Callable[[Any, Any], Awaitable[None]]:
    """A Litestar guard: the request must carry ``scope`` (asserted by the gateway) → else 403.

    Guards are coroutines: Litestar runs a plain function guard on a worker thread (a thread
    hand-over per request)."""

    async def guard(connection: Any, _handler: Any) -> None:
        if not principal_of(connection).has_scope(scope):
            raise ForbiddenError(f"this operation needs the {scope!r} scope")

    guard.__name__ = f"requires_{scope}_scope"
    guard.caravan_scope = scope  # type: ignore[attr-defined]  # read by problems.document_problems
    return guard


async def requires_customer(connection: Any, _handler: Any) -> None:
    """A Litestar guard: the request must act for a customer (asserted by the gateway) → else 401."""
    if principal_of(connection).customer is None:
        raise UnauthorizedError("this operation needs a customer (call it through the gateway)")


def customer_of(connection: Any) -> str:
    """The customer a request acts for; 401 when there is none."""
    customer = principal_of(connection).customer
    if customer is None:
        raise UnauthorizedError("this operation needs a customer (call it through the gateway)")
    return customer
