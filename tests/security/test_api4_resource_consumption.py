"""API4:2023 Unrestricted Resource Consumption — bodies, nesting, request targets, heads, rates."""

from __future__ import annotations

import socket
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest
from attack import Attacker, assert_problem, parse_answer
from system import System

from caravan_workspace.runtime.supervisor import Supervisor


@pytest.mark.parametrize(
    ("customer", "path"), [("demo", "/api/svc-b/orders"), ("workspace", "/api/svc-a/products")]
)
def test_deeply_nested_json_is_a_400_problem(attacker: Attacker, customer: str, path: str) -> None:
    """Regression (issue 18, defect 4): 100k nested '[' answered 500 with a logged traceback."""
    answer = attacker.call(
        "POST", path, customer=customer, content=b"[" * 100_000,
        headers={"content-type": "application/json", "Idempotency-Key": f'"{uuid.uuid4()}"'},
    )  # fmt: skip
    assert (
        assert_problem(answer, 400, slug="validation-error")["detail"]
        == "the request body is nested too deeply"
    )


def test_a_huge_request_target_is_414_and_never_echoed_or_logged(attacker: Attacker, system: System) -> None:
    """Regression (issue 18, defect 6): a 4 MB path was accepted, echoed in ``instance`` and
    written as an 8 MB access-log line."""
    log = Supervisor(system.state_dir).log_path("gateway")
    size_before = log.stat().st_size if log.exists() else 0
    answer = attacker.raw(b"GET /api/svc-a/products/" + b"A" * (4 * 1024 * 1024) + b" HTTP/1.1\r\n\r\n")
    assert answer.status == 414
    assert answer.headers["content-type"] == "application/problem+json"
    assert len(answer.body) < 300
    long_but_allowed = attacker.call("GET", "/nowhere/" + "B" * 8000)
    document = assert_problem(long_but_allowed, 404)
    assert len(document["instance"]) <= 257 and len(long_but_allowed.content) < 1200
    time.sleep(1.5)  # the access log is written as the request ends
    if log.exists():
        with log.open("rb") as fh:
            fh.seek(size_before)
            assert max((len(line) for line in fh), default=0) < 4096


def test_a_body_over_the_limit_is_413(attacker: Attacker) -> None:
    head = (
        b"POST /api/svc-b/orders HTTP/1.1\r\nHost: x\r\nX-API-Key: " + attacker.system.keys["demo"].encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 20000000\r\n\r\n"
    )  # fmt: skip
    assert_problem(attacker.raw(head), 413, slug="payload-too-large")


def test_a_request_head_that_never_completes_is_408(system: System) -> None:
    """Regression (issue 18, defect 9): a partial request head was held for 75 s."""
    from urllib.parse import urlsplit

    from attack import next_address

    parts = urlsplit(system.gateway_url)
    with socket.create_connection(
        (parts.hostname, parts.port), timeout=20, source_address=(next_address(), 0)
    ) as s:
        s.sendall(b"GET /api/svc-a/products HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        received = b""
        while chunk := s.recv(4096):
            received += chunk
        waited = time.monotonic() - started
    answer = parse_answer(received)
    assert answer is not None and answer.status == 408, received[:200]
    assert waited < 20


def test_a_customer_over_its_rate_gets_429_with_retry_after(system: System) -> None:
    """Regression (issue 18, defect 7): the default allowed 1000 requests/s per customer."""
    with Attacker.fresh(system) as client, ThreadPoolExecutor(32) as pool:
        answers = list(
            pool.map(lambda _: client.call("GET", "/api/svc-b/info", customer="demo-2"), range(400))
        )
        statuses = [a.status_code for a in answers]
        assert set(statuses) == {200, 429}, sorted(set(statuses))
        assert 100 <= statuses.count(200) < 400  # the burst (100) and what refilled meanwhile
        limited = next(a for a in answers if a.status_code == 429)
        assert (
            assert_problem(limited, 429, slug="too-many-requests")["detail"]
            == "demo-2 is over its request rate"
        )
        assert int(limited.headers["retry-after"]) >= 1
    time.sleep(3)  # demo-2's bucket refills for the other suites


@pytest.mark.parametrize("query", ["limit=100000", "limit=-1", "limit=0", "cursor=" + "x" * 5000])
def test_page_sizes_and_cursors_are_bounded(attacker: Attacker, query: str) -> None:
    assert_problem(attacker.call("GET", f"/api/svc-a/products?{query}"), 400)
