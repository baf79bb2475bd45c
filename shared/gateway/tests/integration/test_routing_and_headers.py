"""Routing and header handling through a real gateway process to a real upstream."""

from pathlib import Path

from caravan_commons.identity import Verifier

PROBLEM = "application/problem+json"


def headers_of(echo: dict) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in echo["headers"]:
        out.setdefault(name.lower(), []).append(value)
    return out


def test_a_request_reaches_its_service_with_the_prefix_stripped_and_the_query_kept(start_gateway, upstreams):
    a, b = upstreams(), upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a", "/api/svc-b": "svc-b"}, {"svc-a": [a.url], "svc-b": [b.url]})
    response, echo = gw.json("GET", "/api/svc-a/echo/items/7?color=red&size=2")
    assert response.status == 200
    assert response.getheader("x-instance") == str(a.port)
    assert echo["method"] == "GET"
    assert echo["path"] == "/echo/items/7"
    assert echo["query"] == "color=red&size=2"
    response, echo = gw.json(
        "POST", "/api/svc-b/echo", body=b'{"n": 1}', headers={"Content-Type": "application/json"}
    )
    assert response.status == 200
    assert response.getheader("x-instance") == str(b.port)
    assert (echo["method"], echo["size"]) == ("POST", 8)


def test_an_unknown_route_is_a_404_problem(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    for path in ("/api/svc-z/x", "/api/svc-ab", "/", "/api/svc-a/../svc-b", "/api/svc-a/%2e%2e/x"):
        response, problem = gw.json("GET", path)
        assert response.status == 404, path
        assert response.getheader("content-type") == PROBLEM
        assert problem["status"] == 404 and problem["type"].endswith("/not-found")


def test_trace_is_refused_at_the_edge_and_never_forwarded(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]})
    response, body = gw.json("TRACE", "/api/svc-a/echo")
    assert response.status == 405
    assert response.getheader("content-type") == "application/problem+json"
    assert body["type"].endswith("/method-not-allowed") and "TRACE" in body["detail"]
    assert "TRACE" not in response.getheader("allow") and "POST" in response.getheader("allow")
    assert up.stats() == {}  # nothing reached the service


def test_hop_by_hop_headers_are_dropped_and_forwarding_headers_set(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    response, echo = gw.json(
        "GET",
        "/api/svc-a/echo",
        headers={
            "Connection": "keep-alive, X-Secret-Hop",
            "X-Secret-Hop": "must not pass",
            "Keep-Alive": "timeout=5",
            "TE": "trailers",
            "Upgrade-Insecure-Requests": "1",
            "X-End-To-End": "kept",
            "X-Forwarded-For": "203.0.113.9",
            "Host": "api.example.test",
        },
    )
    assert response.status == 200
    seen = headers_of(echo)
    for dropped in ("x-secret-hop", "keep-alive", "te", "authorization"):
        assert dropped not in seen, dropped
    assert seen["x-end-to-end"] == ["kept"]
    assert seen["upgrade-insecure-requests"] == ["1"]
    assert seen["x-forwarded-for"] == ["203.0.113.9, 127.0.0.1"]
    assert seen["x-forwarded-proto"] == ["http"]
    assert seen["x-forwarded-host"] == ["api.example.test"]
    assert 0 < int(seen["x-request-timeout-ms"][0]) <= 30_000


def test_a_request_id_is_added_when_absent_and_kept_when_given(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    response, echo = gw.json("GET", "/api/svc-a/echo")
    made = headers_of(echo)["x-request-id"]
    assert len(made) == 1 and len(made[0]) == 32
    assert response.getheader("x-request-id") == made[0]
    response, echo = gw.json("GET", "/api/svc-a/echo", headers={"X-Request-Id": "given-42"})
    assert headers_of(echo)["x-request-id"] == ["given-42"]
    assert response.getheader("x-request-id") == "given-42"


def test_the_trace_continues_with_the_gateway_span_as_parent(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    _, echo = gw.json("GET", "/api/svc-a/echo", headers={"traceparent": incoming, "tracestate": "k=v"})
    seen = headers_of(echo)
    version, trace_id, parent, flags = seen["traceparent"][0].split("-")
    assert (version, trace_id, flags) == ("00", "4bf92f3577b34da6a3ce929d0e0e4736", "01")
    assert parent != "00f067aa0ba902b7"
    assert seen["tracestate"] == ["k=v"]
    gw.stop()  # flushes the span file
    spans = (gw.state / "gateway.traces.jsonl").read_text().splitlines()
    import json

    mine = [json.loads(s) for s in spans if parent in s]
    assert len(mine) == 1
    assert mine[0]["trace_id"] == trace_id and mine[0]["parent_span_id"] == "00f067aa0ba902b7"
    assert mine[0]["kind"] == "SERVER" and mine[0]["name"] == "GET /api/svc-a"


def test_client_identity_and_customer_headers_are_replaced_by_the_gateways(
    start_gateway, upstreams, state_dir: Path
):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    _, echo = gw.json(
        "GET",
        "/api/svc-a/echo",
        headers={"X-Caravan-Identity": "v1.svc-b.svc-a.9999999999.forged", "X-Caravan-Customer": "mallory",
                 "X-Caravan-Scopes": "admin"},
    )  # fmt: skip
    seen = headers_of(echo)
    assert seen["x-caravan-customer"] == ["acme"]
    assert seen["x-caravan-scopes"] == ["operator"]
    assert len(seen["x-caravan-identity"]) == 1
    verifier = Verifier.from_file("svc-a", state_dir / "identities" / "public-keys.json")
    assertion = verifier.verify(seen["x-caravan-identity"][0], method="GET", path="/echo")
    # the customer and scopes are signed into the assertion of this one request (issue 18)
    assert (assertion.caller, assertion.customer, assertion.scopes) == (
        "gateway",
        "acme",
        frozenset({"operator"}),
    )


def test_upstream_hop_by_hop_answer_headers_do_not_reach_the_caller(start_gateway, upstreams):
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]})
    response, data = gw.request("GET", "/api/svc-a/stream?size=1000")
    assert response.status == 200 and len(data) == 1000
    assert response.getheader("transfer-encoding") == "chunked"  # re-framed by the gateway
    assert response.getheader("keep-alive") is None
