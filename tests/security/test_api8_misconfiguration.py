"""API8:2023 Security Misconfiguration — HTTP framing (the smuggling set, Host), targets the
gateway must refuse itself, request ids, what answers reveal, internal paths, file modes."""

from __future__ import annotations

import stat

import pytest
from attack import Attacker, assert_problem, state_files
from system import System


def head(attacker: Attacker, first: bytes, *lines: bytes) -> bytes:
    key = b"X-API-Key: " + attacker.system.keys["demo"].encode()
    return first + b"\r\n" + b"".join(line + b"\r\n" for line in (*lines, key)) + b"\r\n"


@pytest.mark.parametrize(
    "extra",
    [
        (b"Content-Length: 5", b"Transfer-Encoding: chunked"),
        (b"Content-Length: 5", b"Content-Length: 6"),
        (b"Content-Length: -1",),
        (b"X-Folded: a", b" b"),
        (b"Transfer-Encoding: gzip, chunked, identity",),
    ],
)
def test_the_smuggling_set_is_400(attacker: Attacker, extra: tuple[bytes, ...]) -> None:
    answer = attacker.raw(head(attacker, b"POST /api/svc-b/orders HTTP/1.1", b"Host: x", *extra) + b"hello")
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"


def test_a_bare_lf_head_is_400(attacker: Attacker) -> None:
    answer = attacker.raw(b"GET /api/svc-a/products HTTP/1.1\nHost: x\nX-Bad: y\r\n\r\n")
    assert answer.status == 400


@pytest.mark.parametrize("hosts", [(), (b"Host: a", b"Host: b")])
def test_no_host_or_two_hosts_are_400(attacker: Attacker, hosts: tuple[bytes, ...]) -> None:
    """Regression (issue 18, defect 9): two Host headers or none answered 200."""
    answer = attacker.raw(head(attacker, b"GET /api/svc-a/products HTTP/1.1", *hosts))
    assert answer.status == 400
    assert answer.json()["detail"] == "a request carries exactly one Host header (RFC 9112 §3.2)"


ENCODED = [b"/api/svc-a%2fproducts", b"/api/svc-a/products%2F..%2F..%2Fstock", b"/api/svc-b/orders%2f",
           b"/api/svc-a%2F..%2Fsvc-c/ledger/balances"]  # fmt: skip


@pytest.mark.parametrize("target", ENCODED)
def test_encoded_separators_are_refused_by_the_gateway_itself(attacker: Attacker, target: bytes) -> None:
    """Regression (issue 18, defect 8): ``/api/svc-a%2fproducts`` was forwarded as ``GET %2fproducts``
    and the upstream's empty 400 came back."""
    answer = attacker.raw(head(attacker, b"GET " + target + b" HTTP/1.1", b"Host: x"))
    assert answer.status == 400
    assert answer.headers["content-type"] == "application/problem+json"
    assert answer.json()["detail"] == "a path may not carry an encoded '/' (%2F)"


@pytest.mark.parametrize("value", ["../../etc/passwd", "a b", "x" * 200, "short", "id\u00e9-12345678"])
def test_a_client_request_id_that_is_not_an_id_is_replaced(attacker: Attacker, value: str) -> None:
    """Regression (issue 18, defect 9): a client-chosen X-Request-Id was accepted as is."""
    answer = attacker.call(
        "GET", "/api/svc-a/products?limit=1", headers={"X-Request-Id": value.encode("utf-8")}
    )
    assert answer.status_code == 200
    assert answer.headers["x-request-id"] != value
    assert len(answer.headers["x-request-id"]) == 32


def test_a_client_request_id_that_is_an_id_is_kept(attacker: Attacker) -> None:
    answer = attacker.call(
        "GET", "/api/svc-a/products?limit=1", headers={"X-Request-Id": "0f3c9a4e-5d1b-4c8e-9a2f-7b6d5e4c3b2a"}
    )
    assert answer.headers["x-request-id"] == "0f3c9a4e-5d1b-4c8e-9a2f-7b6d5e4c3b2a"


@pytest.mark.parametrize(
    "path",
    ["/api/svc-c/metrics", "/api/svc-b/metrics", "/api/svc-a/metrics", "/api/svc-c/health/ready",
     "/api/svc-a/health/live", "/api/svc-a/schema/openapi.json", "/api/svc-b/schema",
     "/api/svc-c/schema/swagger"],
)  # fmt: skip
@pytest.mark.parametrize("customer", ["demo", "workspace", None])
def test_internal_paths_are_not_routed(attacker: Attacker, path: str, customer: str | None) -> None:
    """Regression (issue 18, defect 5): with a customer key ``/api/svc-c/metrics`` (payment volumes
    across customers), ``/api/svc-b/metrics``, ``/api/svc-c/health/ready`` and
    ``/api/svc-a/schema/openapi.json`` answered 200."""
    answer = attacker.call("GET", path, customer=customer)
    assert assert_problem(answer, 404, slug="not-found")["detail"] == f"no route for {path}"


def test_trace_and_connect_are_405(attacker: Attacker) -> None:
    assert attacker.raw(head(attacker, b"TRACE /api/svc-a/products HTTP/1.1", b"Host: x")).status == 405


def test_401_details_name_no_internal_program(attacker: Attacker) -> None:
    """Regression (issue 18, defect 9): 401/403 details named internal services to customers."""
    for answer in (
        attacker.call("GET", "/api/svc-a/products", customer=None),
        attacker.call("POST", "/api/svc-c/payments/authorize", json={}),
        attacker.call("GET", "/api/svc-a/info"),
    ):
        detail = answer.json()["detail"]
        assert answer.status_code in (401, 403)
        for name in ("gateway", "svc-a", "svc-b", "svc-c", "X-Caravan-Identity"):
            assert name not in detail, detail


def test_databases_and_span_files_are_private(system: System) -> None:
    """Regression (issue 18, defect 9): databases and span files were 0644 in 0755 folders."""
    for folder in ("data", "traces"):
        assert stat.S_IMODE((system.state_dir / folder).stat().st_mode) == 0o700, folder
        files = state_files(system, folder)
        assert files, folder
        for path in files:
            assert stat.S_IMODE(path.stat().st_mode) == 0o600, path
