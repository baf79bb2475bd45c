"""No instance, deadlines, retries, circuit breaking and discovery churn, on real processes.

No timed assertions: outcomes and counts only (loops that wait for a state have generous caps).
"""

import http.client
import json
import os
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from conftest import free_port

PROBLEM = "application/problem+json"


def write_catalogue(path: Path, services: dict[str, list[str]]) -> None:
    """The local runtime's catalogue (commons' ``local`` discovery backend), replaced atomically."""
    document = {
        "version": 1,
        "written_at": time.time(),
        "services": {
            service: [
                {
                    "id": f"{service}-{i}",
                    "host": "127.0.0.1",
                    "port": int(url.rsplit(":", 1)[1]),
                    "ready": True,
                }
                for i, url in enumerate(urls)
            ]
            for service, urls in services.items()
        },
    }
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(document))
    os.replace(tmp, path)


def test_a_service_without_instances_is_a_503_problem(start_gateway, state_dir):
    catalogue = state_dir / "catalogue.json"
    write_catalogue(catalogue, {"svc-a": []})
    gw = start_gateway({"/api/svc-a": "svc-a"}, discovery_backend="local", discovery_catalog=str(catalogue))
    response, problem = gw.json("GET", "/api/svc-a/echo")
    assert response.status == 503
    assert response.getheader("content-type") == PROBLEM
    assert problem["type"].endswith("/upstream-unavailable")
    assert problem["correlation_id"] == response.getheader("x-request-id")


def test_an_instance_that_refuses_connections_is_a_503_problem(start_gateway):
    dead = f"http://127.0.0.1:{free_port()}"
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [dead]})
    response, problem = gw.json("GET", "/api/svc-a/echo")
    assert response.status == 503 and problem["type"].endswith("/upstream-unavailable")
    response, problem = gw.json("POST", "/api/svc-a/echo", body=b"{}")
    assert response.status == 503 and problem["type"].endswith("/upstream-unavailable")


def test_a_slow_upstream_past_the_deadline_is_a_504_problem(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    response, problem = gw.json("GET", "/api/svc-a/slow?s=5", headers={"X-Request-Timeout-Ms": "300"})
    assert response.status == 504
    assert response.getheader("content-type") == PROBLEM
    assert problem["type"].endswith("/deadline-exceeded")
    response, body = gw.json("GET", "/api/svc-a/slow?s=0", headers={"X-Request-Timeout-Ms": "5000"})
    assert response.status == 200
    assert 0 < int(body["deadline"]) <= 5000  # the remaining budget went on to the service


def test_a_streaming_answer_cut_by_the_deadline_ends_the_connection(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    conn.request("GET", "/api/svc-a/drip?n=20&s=0.1",
                 headers={"Authorization": f"Bearer {gw.key}", "X-Request-Timeout-Ms": "500"})  # fmt: skip
    response = conn.getresponse()
    assert response.status == 200  # the head went out before the deadline passed
    with pytest.raises(http.client.IncompleteRead):
        response.read()  # never a silently truncated body on a connection that stays open
    conn.close()


def test_a_malformed_deadline_header_is_a_400_problem(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    response, problem = gw.json("GET", "/api/svc-a/echo", headers={"X-Request-Timeout-Ms": "soon"})
    assert response.status == 400 and problem["type"].endswith("/validation-error")


def test_a_get_is_retried_through_a_503_burst(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    up.get("/_control?fail=2")
    response, body = gw.json("GET", "/api/svc-a/flaky")
    assert response.status == 200 and body == {"ok": True}
    assert up.stats()["/flaky"] == 3


def test_a_post_without_idempotency_key_is_never_retried(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    up.get("/_control?fail=2")
    response, _ = gw.json("POST", "/api/svc-a/flaky", body=b'{"order": 1}')
    assert response.status == 503  # the service's own answer, passed through
    assert up.stats()["/flaky"] == 1


def test_a_post_with_an_idempotency_key_is_retried_with_its_body(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    up.get("/_control?fail=2")
    response, body = gw.json(
        "POST", "/api/svc-a/flaky", body=b'{"order": 1}', headers={"Idempotency-Key": "k-1"}
    )
    assert response.status == 200 and body == {"ok": True}
    assert up.stats()["/flaky"] == 3


def test_retries_stay_within_the_retry_budget(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway(
        {"/api/svc-a": "svc-a"},
        {"svc-a": [up.url]},
        retry_budget_ratio="0",
        retry_budget_min_per_second="1",
        max_attempts="3",
        circuit_failure_threshold="1000",
    )
    up.get("/_control?down=1")
    statuses = [gw.request("GET", "/api/svc-a/fail")[0].status for _ in range(5)]
    assert statuses == [503] * 5
    calls = up.stats()["/fail"]
    # 5 first attempts, plus at most one retry per second of test (the budget's floor)
    assert 5 < calls <= 5 + 2 * 3


def test_the_circuit_opens_after_repeated_failures_and_recovers(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway(
        {"/api/svc-a": "svc-a"},
        {"svc-a": [up.url]},
        circuit_failure_threshold="3",
        circuit_cooldown_s="1",
        max_attempts="1",
    )
    up.get("/_control?down=1")
    for _ in range(3):
        assert gw.request("GET", "/api/svc-a/fail")[0].status == 503
    assert up.stats()["/fail"] == 3
    response, problem = gw.json("GET", "/api/svc-a/fail")
    assert response.status == 503
    assert "circuit" in problem["detail"]
    assert int(response.getheader("retry-after")) >= 1
    assert up.stats()["/fail"] == 3  # the open circuit kept the call away from the service
    up.get("/_control?down=0")
    for _ in range(100):  # after the cool-down a trial call goes through and closes the circuit
        response, _ = gw.request("GET", "/api/svc-a/fail")
        if response.status == 200:
            break
        time.sleep(0.1)
    assert response.status == 200
    assert [gw.request("GET", "/api/svc-a/fail")[0].status for _ in range(5)] == [200] * 5


def test_discovery_churn_never_surfaces_a_5xx_to_idempotent_requests(start_gateway, upstreams, state_dir):
    first, second = upstreams(), upstreams()
    catalogue = state_dir / "catalogue.json"
    write_catalogue(catalogue, {"svc-a": [first.url, second.url]})
    gw = start_gateway(
        {"/api/svc-a": "svc-a"},
        discovery_backend="local",
        discovery_catalog=str(catalogue),
        rate_per_second="100000",
    )
    statuses: Counter[int] = Counter()
    instances: Counter[str] = Counter()
    stop = threading.Event()
    errors: list[BaseException] = []

    def traffic() -> None:
        try:
            while not stop.is_set():
                response, _ = gw.request("GET", "/api/svc-a/echo")
                statuses[response.status] += 1
                instances[response.getheader("x-instance")] += 1
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=traffic) for _ in range(6)]
    for t in threads:
        t.start()

    def wait_for(predicate) -> None:
        for _ in range(300):
            if predicate():
                return
            time.sleep(0.05)

    wait_for(lambda: sum(statuses.values()) > 400)
    third = upstreams()  # an instance joins
    write_catalogue(catalogue, {"svc-a": [first.url, second.url, third.url]})
    wait_for(lambda: instances[str(third.port)] > 50)
    first.kill()  # an instance dies without deregistering
    before = sum(statuses.values())
    wait_for(lambda: sum(statuses.values()) > before + 400)
    write_catalogue(catalogue, {"svc-a": [second.url, third.url]})  # ...and is deregistered later
    second.kill()
    before = sum(statuses.values())
    wait_for(lambda: sum(statuses.values()) > before + 400)
    stop.set()
    for t in threads:
        t.join()
    assert not errors
    assert set(statuses) == {200}, statuses
    assert instances[str(third.port)] > 0
