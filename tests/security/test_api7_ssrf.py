"""API7:2023 Server Side Request Forgery — no endpoint takes a URL; URL-shaped targets, hosts and
fields never make the gateway or a service call anywhere but the routed instances."""

from __future__ import annotations

import uuid

import pytest
from attack import Attacker, assert_problem


@pytest.mark.parametrize(
    "target",
    [b"http://169.254.169.254/latest/meta-data/", b"http://127.0.0.1:22/", b"//127.0.0.1:5432/x",
     b"/api/svc-a/../../etc/passwd", b"/api/svc-a/./products", b"*"],
)  # fmt: skip
def test_url_shaped_targets_reach_no_upstream(attacker: Attacker, target: bytes) -> None:
    key = attacker.system.keys["demo"].encode()
    answer = attacker.raw(b"GET " + target + b" HTTP/1.1\r\nHost: x\r\nX-API-Key: " + key + b"\r\n\r\n")
    assert answer.status in (400, 404), answer
    assert answer.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize("host", ["169.254.169.254", "127.0.0.1:5432", "evil.example"])
def test_the_host_header_does_not_choose_the_upstream(attacker: Attacker, host: str) -> None:
    answer = attacker.call(
        "GET", "/api/svc-a/products?limit=1", headers={"Host": host, "X-Forwarded-Host": host}
    )
    assert answer.status_code == 200
    assert "items" in answer.json()


@pytest.mark.parametrize(
    "card", ["http://169.254.169.254/", "file:///etc/passwd", "tok_approve@127.0.0.1", "tok_" + "a" * 200]
)
def test_url_shaped_fields_are_refused(attacker: Attacker, card: str) -> None:
    body = {"lines": [{"sku": "SKU-1", "quantity": 1}], "payment": {"card_token": card}}
    answer = attacker.call(
        "POST", "/api/svc-b/orders", json=body, headers={"Idempotency-Key": f'"{uuid.uuid4()}"'}
    )
    assert_problem(answer, 400, slug="validation-error")


def test_a_url_as_a_sku_is_refused(attacker: Attacker) -> None:
    assert_problem(attacker.call("GET", "/api/svc-a/products/http:%2F%2F127.0.0.1"), 400, slug="bad-request")
    assert_problem(attacker.call("GET", "/api/svc-a/products/http:127.0.0.1"), 400, slug="validation-error")
