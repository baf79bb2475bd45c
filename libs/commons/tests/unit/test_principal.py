"""Whom a request acts for: the gateway's assertions count only when the gateway really sent them."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Litestar, Request, get
from litestar.testing import TestClient

from caravan_commons.errors import ForbiddenError, UnauthorizedError
from caravan_commons.identity import ASSERTION_STATE_KEY, CALLER_STATE_KEY, Assertion
from caravan_commons.principal import (
    Principal,
    customer_of,
    principal_from,
    principal_of,
    requires_customer,
    requires_scope,
)
from caravan_commons.problems import problem_details_plugin


def scope_with(
    caller: str | None, customer: str | None = None, scopes: frozenset[str] = frozenset()
) -> dict[str, Any]:
    if not caller:
        return {"state": {}}
    assertion = Assertion(caller, "GET", "/x", customer, scopes)
    return {"state": {CALLER_STATE_KEY: caller, ASSERTION_STATE_KEY: assertion}}


def test_the_gateway_asserts_customer_and_scopes_in_its_signed_assertion() -> None:
    scope = scope_with("gateway", "acme", frozenset({"operator", "audit"}))
    assert principal_from(scope, {}) == Principal("gateway", "acme", frozenset({"operator", "audit"}))


def test_with_enforcement_the_headers_count_for_nothing() -> None:
    """Regression (issue 18, defect 1): the headers used to be believed whenever the gateway called."""
    headers = {"x-caravan-customer": "mallory", "x-caravan-scopes": "operator"}
    assert principal_from(scope_with("gateway", "acme"), headers) == Principal("gateway", "acme", frozenset())


def test_another_service_acts_for_nobody_whatever_it_sends() -> None:
    headers = {"x-caravan-customer": "acme", "x-caravan-scopes": "operator"}
    principal = principal_from(scope_with("svc-b", "acme", frozenset({"operator"})), headers)
    assert principal == Principal("svc-b", None, frozenset())
    assert not principal.has_scope("operator")


def test_without_enforcement_the_headers_are_taken_as_sent() -> None:
    principal = principal_from(scope_with(None), {"x-caravan-customer": "acme"})
    assert principal == Principal(None, "acme", frozenset())


def test_an_unprintable_or_oversized_customer_is_refused() -> None:
    for bad in ("a\x00b", "x" * 129, "alice\r\nX-Caravan-Scopes: operator", "a b"):
        with pytest.raises(UnauthorizedError):
            principal_from(scope_with(None), {"x-caravan-customer": bad})


@get("/admin", guards=[requires_scope("operator")], sync_to_thread=False)
def admin() -> str:
    return "ok"


@get("/mine", guards=[requires_customer], sync_to_thread=False)
def mine(request: Request[Any, Any, Any]) -> dict[str, Any]:
    principal = principal_of(request)
    return {"customer": customer_of(request), "scopes": sorted(principal.scopes)}


@pytest.fixture
def client() -> Any:
    app = Litestar([admin, mine], plugins=[problem_details_plugin()])
    with TestClient(app) as test_client:
        yield test_client


def test_guards_answer_problem_json(client: Any) -> None:
    denied = client.get("/admin", headers={"x-caravan-scopes": "reader"})
    assert denied.status_code == ForbiddenError.status
    assert denied.headers["content-type"].startswith("application/problem+json")
    assert "operator" in denied.json()["detail"]
    assert client.get("/admin", headers={"x-caravan-scopes": "reader operator"}).status_code == 200

    anonymous = client.get("/mine")
    assert anonymous.status_code == UnauthorizedError.status
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    assert client.get("/mine", headers={"x-caravan-customer": "acme"}).json() == {
        "customer": "acme",
        "scopes": [],
    }


def test_guards_are_coroutines_so_litestar_runs_them_on_the_loop() -> None:
    """Litestar runs a plain-function guard on a worker thread: a thread hand-over per request."""
    import inspect

    assert inspect.iscoroutinefunction(requires_scope("operator"))
    assert inspect.iscoroutinefunction(requires_customer)
