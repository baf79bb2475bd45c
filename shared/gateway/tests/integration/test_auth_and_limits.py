"""Authentication (API keys, JWT), body limits and rate limits on a real gateway process."""

import http.client
import json
import time

import jwt
import pytest
from conftest import AUDIENCE, ISSUER

PROBLEM = "application/problem+json"


def token(private, **overrides) -> str:
    claims = {"sub": "globex", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300, "scope": "read"}
    claims.update(overrides)
    return jwt.encode({k: v for k, v in claims.items() if v is not None}, private, algorithm="EdDSA")


@pytest.fixture
def gw(start_gateway, upstreams):
    return start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, max_body_bytes="1000000")


def assert_401(response, problem):
    assert response.status == 401
    assert response.getheader("content-type") == PROBLEM
    assert problem["type"].endswith("/unauthorized")


def test_an_api_key_in_either_header_is_accepted(gw):
    assert gw.request("GET", "/api/svc-a/echo")[0].status == 200
    assert gw.request("GET", "/api/svc-a/echo", key=None, headers={"X-Api-Key": gw.key})[0].status == 200


def test_missing_or_bad_api_keys_are_401(gw):
    assert_401(*gw.json("GET", "/api/svc-a/echo", key=None))
    assert_401(*gw.json("GET", "/api/svc-a/echo", key="cvk_" + "A" * 43))
    assert_401(*gw.json("GET", "/api/svc-a/echo", key=None, headers={"X-Api-Key": gw.key[:-1] + "x"}))
    assert_401(*gw.json("GET", "/api/svc-a/echo", key=None, headers={"Authorization": f"Basic {gw.key}"}))


def test_a_valid_jwt_is_accepted_and_its_subject_forwarded(gw, jwt_keys):
    response, echo = gw.json("GET", "/api/svc-a/echo", key=token(jwt_keys[0]))
    assert response.status == 200
    seen = {k.lower(): v for k, v in echo["headers"]}
    assert seen["x-caravan-customer"] == "globex" and seen["x-caravan-scopes"] == "read"


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong-audience", "wrong-issuer", "no-exp", "hs256", "alg-none", "tampered", "other-key"],
)
def test_bad_jwts_are_401(gw, jwt_keys, case):
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    private = jwt_keys[0]
    bad = {
        "expired": lambda: token(private, exp=int(time.time()) - 60),
        "wrong-audience": lambda: token(private, aud="someone-else"),
        "wrong-issuer": lambda: token(private, iss="https://evil.test"),
        "no-exp": lambda: token(private, exp=None),
        "hs256": lambda: jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60},
            "a-shared-secret-of-enough-length-123",
            algorithm="HS256",
        ),
        "alg-none": lambda: jwt.encode(
            {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 60}, None, algorithm="none"
        ),
        "tampered": lambda: token(private)[:-4] + "AAAA",
        "other-key": lambda: token(Ed25519PrivateKey.generate()),
    }[case]()
    response, problem = gw.json("GET", "/api/svc-a/echo", key=bad)
    assert_401(response, problem)
    if case == "expired":
        assert "expired" in problem["detail"]
    if case in ("hs256", "alg-none"):
        assert "algorithm" in problem["detail"]


def test_health_endpoints_are_open(gw):
    for path in ("/health/live", "/health/ready", "/metrics"):
        assert gw.request("GET", path, key=None)[0].status == 200, path


def test_a_declared_length_over_the_limit_is_413_before_anything_is_sent(gw, upstreams):
    response, problem = gw.json("POST", "/api/svc-a/echo", body=b"x" * 1_000_001)
    assert response.status == 413
    assert response.getheader("content-type") == PROBLEM
    assert problem["type"].endswith("/payload-too-large")


def test_a_streamed_body_over_the_limit_is_413_and_is_not_forwarded_whole(start_gateway, upstreams):
    up = upstreams()
    gw = start_gateway({"/api/svc-a": "svc-a"}, {"svc-a": [up.url]}, max_body_bytes="1000000")

    def chunks():
        for _ in range(40):
            yield b"y" * 65536  # 2.6 MB in all, no Content-Length

    conn = http.client.HTTPConnection("127.0.0.1", gw.port, timeout=30)
    try:
        conn.request("POST", "/api/svc-a/echo", body=chunks(), encode_chunked=True,
                     headers={"Authorization": f"Bearer {gw.key}"})  # fmt: skip
        response = conn.getresponse()
        status, body = response.status, response.read()
    except (BrokenPipeError, ConnectionResetError):
        pytest.fail("the gateway must answer 413 before closing")
    assert status == 413
    assert json.loads(body)["type"].endswith("/payload-too-large")
    assert up.stats().get("/echo:complete", 0) == 0  # the upstream never got the whole body


def test_callers_over_their_rate_get_429_with_retry_after(start_gateway, upstreams, state_dir):
    from caravan_gateway.auth import add_key

    gw = start_gateway(
        {"/api/svc-a": "svc-a"}, {"svc-a": [upstreams().url]}, rate_per_second="0.5", rate_burst="3"
    )
    statuses = [gw.request("GET", "/api/svc-a/echo")[0].status for _ in range(3)]
    assert statuses == [200, 200, 200]
    response, problem = gw.json("GET", "/api/svc-a/echo")
    assert response.status == 429
    assert response.getheader("content-type") == PROBLEM
    assert int(response.getheader("retry-after")) >= 1
    assert problem["type"].endswith("/too-many-requests")
    other = add_key(state_dir / "api-keys.json", "initech")  # picked up without a restart
    for _ in range(100):
        response, _ = gw.request("GET", "/api/svc-a/echo", key=other)
        if response.status != 401:
            break
        time.sleep(0.1)
    assert response.status == 200  # a bucket per caller: acme being limited does not limit initech
