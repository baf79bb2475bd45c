"""HTTP/1.1 details of the raw proxy path, spoken over plain sockets."""

import contextlib
import json
import socket
import time

import pytest


@pytest.fixture
def gw(start_gateway, upstreams):
    return start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})


def read_response(
    sock: socket.socket, buffer: bytearray, head_only: bool = False
) -> tuple[bytes, dict, bytes]:
    while b"\r\n\r\n" not in buffer:
        data = sock.recv(65536)
        if not data:
            raise AssertionError(f"connection closed mid-head: {bytes(buffer)!r}")
        buffer += data
    head, _, rest = bytes(buffer).partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    headers = {k.strip().lower(): v.strip() for k, v in (line.split(b":", 1) for line in lines[1:])}
    length = 0 if head_only else int(headers.get(b"content-length", b"0"))
    while len(rest) < length:
        rest += sock.recv(65536)
    buffer[:] = rest[length:]
    return lines[0], headers, rest[:length]


def connect(gw) -> socket.socket:
    return socket.create_connection(("127.0.0.1", gw.port), timeout=10)


def test_pipelined_requests_are_answered_in_order_on_one_connection(gw):
    auth = f"Authorization: Bearer {gw.key}\r\n".encode()
    with connect(gw) as sock:
        sock.sendall(
            b"GET /api/svc-a/echo/1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: first-001\r\n" + auth + b"\r\n"
            b"POST /api/svc-a/echo/2 HTTP/1.1\r\nHost: t\r\nX-Request-Id: second-02\r\nContent-Length: 3\r\n"
            + auth + b"\r\nabc"
            b"GET /api/svc-a/echo/3 HTTP/1.1\r\nHost: t\r\nX-Request-Id: third-003\r\n" + auth + b"\r\n"
        )  # fmt: skip
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(3)]
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert [a[1][b"x-request-id"] for a in answers] == [b"first-001", b"second-02", b"third-003"]
    assert [json.loads(a[2])["path"] for a in answers] == ["/echo/1", "/echo/2", "/echo/3"]
    assert json.loads(answers[1][2])["size"] == 3


def test_head_answers_carry_headers_only_and_keep_the_connection(gw):
    auth = f"Authorization: Bearer {gw.key}\r\n".encode()
    with connect(gw) as sock:
        buffer = bytearray()
        sock.sendall(b"HEAD /api/svc-a/echo HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n")
        status, headers, body = read_response(sock, buffer, head_only=True)
        assert status == b"HTTP/1.1 200 OK" and int(headers[b"content-length"]) > 0 and body == b""
        sock.sendall(b"GET /api/svc-a/echo HTTP/1.1\r\nHost: t\r\n" + auth + b"\r\n")
        status, _, body = read_response(sock, buffer)
        assert status == b"HTTP/1.1 200 OK" and json.loads(body)["method"] == "GET"


def test_expect_100_continue_is_answered_by_the_gateway(gw):
    auth = f"Authorization: Bearer {gw.key}\r\n".encode()
    with connect(gw) as sock:
        head = b"PUT /api/svc-a/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nExpect: 100-continue\r\n"
        sock.sendall(head + auth + b"\r\n")
        buffer = bytearray()
        status, _, _ = read_response(sock, buffer)
        assert status == b"HTTP/1.1 100 Continue"
        sock.sendall(b"hello")
        status, _, body = read_response(sock, buffer)
    assert status == b"HTTP/1.1 200 OK"
    echo = json.loads(body)
    assert echo["size"] == 5 and "expect" not in {k.lower() for k, _ in echo["headers"]}


def test_expect_100_continue_over_the_limit_gets_413_without_continue(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, max_body_bytes="10")
    with connect(gw) as sock:
        head = b"PUT /api/svc-a/echo HTTP/1.1\r\nHost: t\r\nContent-Length: 11\r\nExpect: 100-continue\r\n"
        sock.sendall(head + f"Authorization: Bearer {gw.key}\r\n\r\n".encode())
        status, headers, _ = read_response(sock, bytearray())
    assert status.startswith(b"HTTP/1.1 413 ") and headers[b"connection"] == b"close"


def test_a_malformed_request_is_a_400_problem_and_the_connection_closes(gw):
    with connect(gw) as sock:
        sock.sendall(b"GET /api/svc-a/echo HTTP/1.1\r\nBad Header Line\r\n\r\n")
        status, headers, body = read_response(sock, bytearray())
        assert status == b"HTTP/1.1 400 Bad Request"
        assert headers[b"content-type"] == b"application/problem+json"
        assert json.loads(body)["status"] == 400
        assert sock.recv(100) == b""


def test_http_1_0_callers_get_the_answer_and_a_closed_connection(gw):
    with connect(gw) as sock:
        sock.sendall(
            b"GET /api/svc-a/stream?size=5000 HTTP/1.0\r\n" + f"X-Api-Key: {gw.key}\r\n\r\n".encode()
        )
        data = b""
        while chunk := sock.recv(65536):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding" not in head.lower()
    assert len(body) == 5000


def _raw(port: int, data: bytes, wait: float = 30.0) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=wait) as s:
        with contextlib.suppress(OSError):  # the gateway may stop reading early (414)
            s.sendall(data)
        received = b""
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            received += chunk
    return received


def test_a_request_target_over_the_limit_is_414_and_not_echoed(start_gateway, upstreams):
    """Regression (issue 18, defect 6): a 4 MB target was accepted and echoed in ``instance``."""
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    answer = _raw(gw.port, b"GET /api/svc-a/" + b"A" * (4 * 1024 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert answer.startswith(b"HTTP/1.1 414 ")
    assert len(answer) < 1024


@pytest.mark.parametrize("hosts", [b"", b"Host: a\r\nHost: b\r\n"])
def test_no_host_or_two_hosts_are_400(start_gateway, upstreams, hosts):
    """Regression (issue 18, defect 9): two Host headers or none answered 200."""
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    answer = _raw(
        gw.port,
        b"GET /api/svc-a/echo HTTP/1.1\r\n"
        + hosts
        + b"Authorization: Bearer "
        + gw.key.encode()
        + b"\r\nConnection: close\r\n\r\n",
    )
    assert answer.startswith(b"HTTP/1.1 400 "), answer[:200]


def test_an_encoded_slash_is_refused_by_the_gateway_itself(start_gateway, upstreams):
    """Regression (issue 18, defect 8): ``/api/svc-a%2fecho`` was forwarded as ``GET %2fecho``."""
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    response, body = gw.json("GET", "/api/svc-a%2fecho")
    assert response.status == 400 and response.getheader("content-type") == "application/problem+json"
    assert body["detail"] == "a path may not carry an encoded '/' (%2F)"


def test_a_head_that_never_completes_is_408(start_gateway, upstreams):
    """Regression (issue 18, defect 9): a partial head was held until the keep-alive sweep (75 s)."""
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, head_timeout_s="1")
    answer = _raw(gw.port, b"GET /api/svc-a/echo HTTP/1.1\r\nHost: x\r\nX-Slow: ", wait=20)
    assert answer.startswith(b"HTTP/1.1 408 ")


def test_connections_over_the_cap_are_503(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, max_connections="2")
    held = [socket.create_connection(("127.0.0.1", gw.port)) for _ in range(2)]
    try:
        assert _raw(gw.port, b"GET /health/live HTTP/1.1\r\nHost: x\r\n\r\n").startswith(b"HTTP/1.1 503 ")
    finally:
        for s in held:
            s.close()


def test_internal_paths_of_a_service_are_not_routed(start_gateway, upstreams):
    """Regression (issue 18, defect 5): a customer read a service's /metrics through the gateway."""
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    for path in ("/api/svc-a/metrics", "/api/svc-a/health/ready", "/api/svc-a/schema/openapi.json"):
        response, body = gw.json("GET", path)
        assert response.status == 404 and body["detail"] == f"no route for {path}"
