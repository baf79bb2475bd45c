"""Large bodies both ways without holding them whole; graceful drain; own endpoints; bad config."""

import hashlib
import http.client
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from conftest import HERE, free_port, wait_for_port

SIZE = 64 * 1024 * 1024  # 64 MiB each way
PATTERN = bytes(range(256)) * 256


def peak_rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    raise AssertionError("no VmHWM")


def test_a_large_chunked_upload_and_download_stream_through(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, max_body_bytes=str(SIZE * 2))
    gw.request("GET", "/api/svc-a/echo")  # warm up
    before = peak_rss_kib(gw.proc.pid)

    digest = hashlib.sha256()

    def chunks():
        for _ in range(SIZE // len(PATTERN)):
            digest.update(PATTERN)
            yield PATTERN

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=60)
    conn.request("PUT", "/api/svc-a/echo", body=chunks(), encode_chunked=True,
                 headers={"Authorization": f"Bearer {gw.key}"})  # fmt: skip
    response = conn.getresponse()
    echo = json.loads(response.read())
    assert response.status == 200
    assert echo["size"] == SIZE and echo["chunked"] is True
    assert echo["sha256"] == digest.hexdigest()

    conn.request("GET", f"/api/svc-a/stream?size={SIZE}", headers={"Authorization": f"Bearer {gw.key}"})
    response = conn.getresponse()
    assert response.status == 200
    received, down = 0, hashlib.sha256()
    while piece := response.read(1 << 20):
        received += len(piece)
        down.update(piece)
    expected = hashlib.sha256()
    for _ in range(SIZE // len(PATTERN)):
        expected.update(PATTERN)
    assert received == SIZE and down.hexdigest() == expected.hexdigest()
    conn.close()
    # 128 MiB went through; the gateway's peak memory grew by a small fraction of that
    assert peak_rss_kib(gw.proc.pid) - before < 24 * 1024


def test_a_large_upload_with_content_length_streams_through(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, max_body_bytes=str(SIZE))
    body = os.urandom(8 * 1024 * 1024)
    response, echo = gw.json("POST", "/api/svc-a/echo", body=body)
    assert response.status == 200
    assert echo["size"] == len(body) and echo["chunked"] is False
    assert echo["sha256"] == hashlib.sha256(body).hexdigest()


def test_sigterm_lets_in_flight_requests_finish(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    result: dict = {}

    def slow_call() -> None:
        response, body = gw.json("GET", "/api/svc-a/slow?s=1.5")
        result["status"], result["body"] = response.status, body

    caller = threading.Thread(target=slow_call)
    caller.start()
    for _ in range(200):  # until the request is in flight at the service
        if up.stats().get("/slow"):
            break
        time.sleep(0.02)
    assert gw.stop() == 0  # SIGTERM: drains, then exits cleanly
    caller.join()
    assert result["status"] == 200 and result["body"]["slept"] == "1.5"
    with pytest.raises(ConnectionRefusedError):
        gw.request("GET", "/health/live", key=None)


def test_metrics_count_requests_per_route_prefix(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    for _ in range(3):
        gw.request("GET", "/api/svc-a/echo")
    gw.request("GET", "/api/svc-a/echo", key=None)
    text = gw.request("GET", "/metrics", key=None)[1].decode()
    assert 'http_requests_total{method="GET",route="/api/svc-a",status="200"} 3.0' in text
    assert 'http_requests_total{method="GET",route="/api/svc-a",status="401"} 1.0' in text
    assert "http_request_duration_seconds_bucket" in text


def test_the_openapi_documents_of_routed_services_are_merged(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a", "/api/svc-b": "svc-b"}, {"svc-a": [upstreams().url],
                       "svc-b": [f"http://127.0.0.1:{free_port()}"]})  # fmt: skip
    response, doc = gw.json("GET", "/schema/openapi.json", key=None)
    assert response.status == 200
    op = doc["paths"]["/api/svc-a/echo"]["get"]
    assert op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"] == (
        "#/components/schemas/svc-a_Echo"
    )
    assert "svc-a_Echo" in doc["components"]["schemas"]
    assert doc["x-caravan-unavailable"] == ["svc-b"]


def test_a_document_missing_a_service_is_not_kept(start_gateway, upstreams):
    late = free_port()
    gw = start_gateway({"/api/svc-a": "svc-a", "/api/svc-b": "svc-b"}, {"svc-a": [upstreams().url],
                       "svc-b": [f"http://127.0.0.1:{late}"]})  # fmt: skip
    assert gw.json("GET", "/schema/openapi.json", key=None)[1]["x-caravan-unavailable"] == ["svc-b"]
    svc_b = subprocess.Popen([sys.executable, str(HERE / "upstream_app.py"), str(late)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)  # fmt: skip
    try:
        wait_for_port(late, svc_b, "svc-b")
        doc = gw.json("GET", "/schema/openapi.json", key=None)[1]  # asked again, not the cached gap
        assert "x-caravan-unavailable" not in doc and "/api/svc-b/echo" in doc["paths"]
    finally:
        svc_b.kill()
        svc_b.wait()


def run_gateway(env: dict[str, str]) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("CARAVAN_")}
    return subprocess.run([sys.executable, "-m", "caravan_gateway"], env=base | env, capture_output=True,
                          text=True, timeout=30)  # fmt: skip


def test_bad_configuration_is_one_line_and_exit_2(state_dir):
    keys = state_dir / "keys.json"
    cases = {
        "CARAVAN_GATEWAY_ROUTES": {"CARAVAN_GATEWAY_ROUTES": "not json", "CARAVAN_API_KEYS_FILE": str(keys)},
        "route prefix": {"CARAVAN_GATEWAY_ROUTES": '{"api": "svc-a"}', "CARAVAN_API_KEYS_FILE": str(keys)},
        "api_keys_file or jwt_key_file": {"CARAVAN_GATEWAY_ROUTES": "{}"},
        "CARAVAN_DISCOVERY_BACKEND": {
            "CARAVAN_GATEWAY_ROUTES": "{}",
            "CARAVAN_API_KEYS_FILE": str(keys),
            "CARAVAN_DISCOVERY_BACKEND": "carrier-pigeon",
        },
        "no such keys file": {
            "CARAVAN_GATEWAY_ROUTES": "{}",
            "CARAVAN_API_KEYS_FILE": str(state_dir / "nope"),
        },
        "jwt_algorithms": {
            "CARAVAN_GATEWAY_ROUTES": "{}",
            "CARAVAN_API_KEYS_FILE": str(keys),
            "CARAVAN_JWT_ALGORITHMS": '["HS256", "RS256"]',
        },
    }
    from caravan_gateway.auth import add_key

    add_key(keys, "acme")
    for expected, env in cases.items():
        done = run_gateway(env | {"CARAVAN_PORT": str(free_port())})
        assert done.returncode == 2, (expected, done.stderr)
        lines = done.stderr.strip().splitlines()
        assert len(lines) == 1 and expected in lines[0], (expected, done.stderr)


def test_add_key_prints_a_key_once_and_stores_only_its_hash(state_dir):
    keys = state_dir / "new-keys.json"
    command = [sys.executable, "-m", "caravan_gateway", "add-key", "--keys-file", str(keys)]
    done = subprocess.run(
        [*command, "--customer", "acme", "--scope", "operator"], capture_output=True, text=True
    )
    assert done.returncode == 0
    key = done.stdout.strip()
    assert key.startswith("cvk_") and key not in keys.read_text()
    assert oct(keys.stat().st_mode & 0o777) == "0o600"
    bad = subprocess.run([*command, "--customer", "a,b"], capture_output=True, text=True)
    assert bad.returncode == 2 and "customer" in bad.stderr
