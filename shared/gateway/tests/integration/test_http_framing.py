"""HTTP/1.1 details of the raw proxy path, spoken over plain sockets."""

import json
import socket

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
            b"GET /api/svc-a/echo/1 HTTP/1.1\r\nHost: t\r\nX-Request-Id: first\r\n" + auth + b"\r\n"
            b"POST /api/svc-a/echo/2 HTTP/1.1\r\nHost: t\r\nX-Request-Id: second\r\nContent-Length: 3\r\n"
            + auth + b"\r\nabc"
            b"GET /api/svc-a/echo/3 HTTP/1.1\r\nHost: t\r\nX-Request-Id: third\r\n" + auth + b"\r\n"
        )  # fmt: skip
        buffer = bytearray()
        answers = [read_response(sock, buffer) for _ in range(3)]
    assert [a[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
    assert [a[1][b"x-request-id"] for a in answers] == [b"first", b"second", b"third"]
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
