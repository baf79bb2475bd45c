"""The commons stack in a real server process (granian on 127.0.0.1, a free port).

Covers: problem+json, request ids, JSON-lines logs with trace ids, traceparent continuation into
the span file, /metrics, graceful SIGTERM (an in-flight request completes), bad settings at start.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

SERVICE = Path(__file__).with_name("core_service.py")
TRACE_ID = "0af7651916cd43dd8448eb211c80319c"
PARENT_SPAN = "b7ad6b7169203331"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Running:
    process: subprocess.Popen[str]
    base: str
    log_file: Path
    trace_file: Path

    def request(self, path: str, method: str = "GET", body: bytes | None = None, **headers: str) -> Any:
        req = urllib.request.Request(self.base + path, data=body, method=method, headers=headers)
        if body is not None:
            req.add_header("content-type", "application/json")
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:
                return answer.status, dict(answer.headers), answer.read()
        except urllib.error.HTTPError as error:
            return error.code, dict(error.headers), error.read()

    def logs(self) -> list[dict[str, Any]]:
        if not self.log_file.exists():
            return []
        return [json.loads(line) for line in self.log_file.read_text().splitlines() if line.strip()]

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=30)


def start(tmp_path: Path, probe: str = "/health/live", **env: str) -> Running:
    port = free_port()
    log_file, trace_file = tmp_path / "svc.log", tmp_path / "svc.traces.jsonl"
    environ = {
        **os.environ,
        "CARAVAN_SERVICE_NAME": "core-it",
        "CARAVAN_SERVICE_VERSION": "9.9.9",
        "CARAVAN_PORT": str(port),
        "CARAVAN_LOG_FILE": str(log_file),
        "CARAVAN_TRACE_FILE": str(trace_file),
        "CARAVAN_TRACE_SAMPLE_RATIO": "1.0",  # the tests read every request's span
        **env,
    }
    process = subprocess.Popen(
        [sys.executable, str(SERVICE)], env=environ, cwd=tmp_path, text=True,
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )  # fmt: skip
    running = Running(process, f"http://127.0.0.1:{port}", log_file, trace_file)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"service exited early: {process.stderr.read() if process.stderr else ''}")
        try:
            if running.request(probe)[0] == 200:
                return running
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise AssertionError("service did not come up")


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Running]:
    running = start(tmp_path)
    yield running
    if running.process.poll() is None:
        running.process.kill()
        running.process.wait()


def test_requests_errors_logs_traces_and_metrics(service: Running) -> None:
    status, headers, body = service.request("/items", "POST", b'{"sku": "a-1", "quantity": 2}')
    assert status == 201 and json.loads(body) == {"sku": "a-1", "quantity": 2}
    status, headers, body = service.request("/items", "POST", b'{"sku": "a-1", "quantity": 2}')
    assert status == 409 and headers["content-type"] == "application/problem+json"
    assert json.loads(body)["type"] == "https://caravan.dev/problems/conflict"
    status, headers, body = service.request("/items", "POST", b'{"sku": "a-2", "quantity": 2, "extra": 1}')
    assert status == 400 and json.loads(body)["type"].endswith("/validation-error")
    status, headers, _ = service.request("/items/missing")
    assert status == 404 and headers["content-type"] == "application/problem+json"

    status, headers, _ = service.request(
        "/log", **{"X-Request-Id": "it-req-1", "traceparent": f"00-{TRACE_ID}-{PARENT_SPAN}-01"}
    )
    assert status == 200 and headers["x-request-id"] == "it-req-1"

    status, _, metrics = service.request("/metrics")
    text = metrics.decode()
    assert 'http_requests_total{method="POST",route="/items",status="409"} 1.0' in text
    assert 'http_requests_total{method="GET",route="/items/{sku}",status="404"} 1.0' in text
    assert "process_cpu_seconds_total" in text

    assert service.stop() == 0  # SIGTERM: clean exit, spans flushed
    entry = next(e for e in service.logs() if e["message"] == "hello from a handler")
    assert entry["request_id"] == "it-req-1"
    assert entry["trace_id"] == TRACE_ID
    assert entry["service"] == "core-it" and entry["version"] == "9.9.9" and entry["order_id"] == "o-1"
    spans = [json.loads(line) for line in service.trace_file.read_text().splitlines()]
    (server_span,) = [s for s in spans if s["trace_id"] == TRACE_ID]
    assert server_span["parent_span_id"] == PARENT_SPAN
    assert server_span["span_id"] == entry["span_id"]
    assert server_span["name"] == "GET /log" and server_span["kind"] == "SERVER"
    assert server_span["service"] == "core-it"
    assert {s["name"] for s in spans} >= {"POST /items", "GET /items/{sku}"}


def test_sigterm_drains_an_in_flight_request(service: Running) -> None:
    result: dict[str, Any] = {}

    def call() -> None:
        result["answer"] = service.request("/slow?seconds=1.5")

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 10
    while not any(e["message"] == "slow request started" for e in service.logs()):
        assert time.monotonic() < deadline, "slow request never started"
        time.sleep(0.02)
    service.process.send_signal(signal.SIGTERM)
    caller.join(timeout=20)
    status, _, body = result["answer"]
    assert (status, body) == (200, b"done")
    assert service.process.wait(timeout=20) == 0
    messages = [e["message"] for e in service.logs()]
    assert messages.index("received SIGTERM: draining in-flight requests") < messages.index(
        "slow request finished"
    )
    with pytest.raises(OSError):
        service.request("/health/live")


def test_sigterm_writes_every_buffered_access_log_line(tmp_path: Path) -> None:
    """Access-log lines are written in batches (here: nothing is written by the clock for a
    minute); SIGTERM writes what is buffered — no line is lost."""
    running = start(tmp_path, CARAVAN_ACCESS_LOG="true", CARAVAN_LOG_FLUSH_INTERVAL_S="60")
    try:
        for i in range(40):
            assert running.request(f"/items/missing-{i}")[0] == 404
        held = [e for e in running.logs() if e.get("path", "").startswith("/items/missing-")]
        assert held == []  # buffered: not written yet
        assert running.stop() == 0
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
    paths = [e["path"] for e in running.logs() if e.get("path", "").startswith("/items/missing-")]
    assert sorted(paths) == sorted(f"/items/missing-{i}" for i in range(40))


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"CARAVAN_PORT": "http"}, "CARAVAN_PORT"),
        ({"CARAVAN_TRACE_EXPORTER": "otlp"}, "CARAVAN_TRACE_EXPORTER"),
    ],
)
def test_bad_settings_stop_start_up_with_one_line(tmp_path: Path, env: dict[str, str], variable: str) -> None:
    result = subprocess.run(
        [sys.executable, str(SERVICE)],
        env={**os.environ, "CARAVAN_SERVICE_NAME": "core-it", **env},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and f"configuration error: {variable}:" in lines[0]


@pytest.mark.parametrize("what", ["connection", "thread"])
def test_a_stopped_service_exits_at_once_whatever_a_request_left_behind(tmp_path: Path, what: str) -> None:
    """A connection a cancelled transaction left open (kept only by a reference cycle) or a thread
    that never ends must not hold the process after it logged "stopped" (svc-b once lived on
    until the supervisor killed it at the end of its drain)."""
    running = start(
        tmp_path, CORE_SERVICE_SQLITE=str(tmp_path / "left.sqlite3"), CARAVAN_SHUTDOWN_TIMEOUT_S="30"
    )
    try:
        assert running.request(f"/leave-behind/{what}", "POST")[0] == 201
        running.process.send_signal(signal.SIGTERM)
        code = running.process.wait(timeout=20)  # well within the 30 s drain
    finally:
        if running.process.poll() is None:
            running.process.kill()
            running.process.wait()
    assert code == 0
    messages = [record["message"] for record in running.logs()]
    assert "stopped" in messages
    warnings = [m for m in messages if m.startswith("threads still running")]
    if what == "thread":
        assert warnings == ["threads still running after the app stopped: stuck-worker; exiting without them"]
    else:  # collected: aiosqlite stops a collected connection's thread, nothing is left to name
        assert warnings == []
