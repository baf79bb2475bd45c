"""The gateway in front of a real commons service that enforces the allowed flows."""

import http.client
import json
import os
import subprocess
import sys
import time

import pytest
from conftest import HERE, free_port, wait_for_port


@pytest.fixture
def service(state_dir):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    env.update({
        "CARAVAN_SERVICE_NAME": "svc-a",
        "CARAVAN_PORT": str(port),
        "CARAVAN_PUBLIC_KEYS_FILE": str(state_dir / "identities" / "public-keys.json"),
        "CARAVAN_ALLOWED_CALLERS": json.dumps({"gateway": None}),
        "CARAVAN_LOG_FILE": str(state_dir / "svc-a.log"),
        "CARAVAN_TRACE_FILE": str(state_dir / "svc-a.traces.jsonl"),
        "CARAVAN_DATABASE_URL": f"sqlite:///{state_dir / 'svc-a.sqlite3'}",
        "CARAVAN_ACCESS_LOG": "true",
    })  # fmt: skip
    proc = subprocess.Popen([sys.executable, str(HERE / "commons_service.py")], env=env,
                            stderr=subprocess.PIPE, text=True)  # fmt: skip
    wait_for_port(port, proc, "svc-a")
    yield f"http://127.0.0.1:{port}"
    proc.terminate()
    proc.wait(timeout=20)


def test_the_service_accepts_the_gateways_signed_calls_and_refuses_anonymous_ones(start_gateway, service):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [service]})
    response, body = gw.json("GET", "/api/svc-a/whoami", headers={"X-Caravan-Identity": "v1.svc-b.svc-a.1.x"})
    assert response.status == 200
    assert body == {"caller": "gateway", "customer": "acme"}
    host, port = service.removeprefix("http://").split(":")
    direct = http.client.HTTPConnection(host, int(port), timeout=10)
    direct.request("GET", "/whoami")
    assert direct.getresponse().status == 401  # without the gateway's identity


def test_the_services_openapi_document_appears_under_its_prefix(start_gateway, service):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [service]})
    response, doc = gw.json("GET", "/schema/openapi.json", key=None)
    assert response.status == 200
    assert "/api/svc-a/whoami" in doc["paths"]
    assert "/api/svc-a/health/live" not in doc["paths"]  # never routed (issue 18)
    assert "x-caravan-unavailable" not in doc


def test_both_hops_log_the_request_with_one_trace_id(start_gateway, service, state_dir):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [service]}, access_log="true")
    response, _ = gw.json("GET", "/api/svc-a/whoami")
    assert response.status == 200
    gw.stop()  # flushes its log

    def lines(name):
        return [
            json.loads(line) for line in (state_dir / name).read_text().splitlines() if line.startswith("{")
        ]

    (edge,) = [r for r in lines("gateway.log") if r.get("path") == "/api/svc-a/whoami"]
    assert (edge["method"], edge["status"]) == ("GET", 200)
    assert len(edge["trace_id"]) == 32 and edge["request_id"]
    deadline = time.monotonic() + 20  # the running service writes its log lines in batches
    while not (hops := [r for r in lines("svc-a.log") if r.get("path") == "/whoami"]):
        assert time.monotonic() < deadline, "svc-a never logged the request"
        time.sleep(0.2)
    (hop,) = hops
    assert hop["trace_id"] == edge["trace_id"]
    assert hop["request_id"] == edge["request_id"]  # the gateway forwards its request id
