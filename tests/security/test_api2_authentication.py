"""API2:2023 Broken Authentication — every way of presenting credentials, the assertion between
gateway and services (bound to one request, once, briefly), failed attempts limited per address,
and JWT claims that would inject header lines."""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import jwt
import pytest
from attack import Attacker, assert_problem, gateway_signer, instance_url, next_address
from system import System

from caravan_workspace.runtime import gateway as gateway_runtime
from caravan_workspace.runtime.supervisor import free_port


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"X-API-Key": "cvk_" + "A" * 43},
        {"X-API-Key": ""},
        {"Authorization": "Bearer cvk_" + "B" * 43},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic d29ya3NwYWNlOng="},
        {"Authorization": "Bearer eyJhbGciOiJub25lIn0.eyJzdWIiOiJkZW1vIn0."},
        {"X-Caravan-Customer": "demo", "X-Caravan-Scopes": "operator"},
    ],
)
def test_no_or_bad_credentials_are_401(attacker: Attacker, headers: dict) -> None:
    answer = attacker.call("GET", "/api/svc-a/products", customer=None, headers=headers)
    assert_problem(answer, 401, slug="unauthorized")
    assert answer.headers["x-request-id"]


def test_failed_authentication_is_limited_per_client_address(system: System) -> None:
    """Regression (issue 18, defect 7): failed key attempts were never limited (brute force)."""
    with Attacker.fresh(system) as brute:
        statuses = [
            brute.call(
                "GET", "/api/svc-a/products", customer=None, headers={"X-API-Key": f"cvk_guess{i}"}
            ).status_code
            for i in range(31)
        ]
        assert statuses[:30] == [401] * 30
        assert statuses[30] == 429
        limited = brute.call("GET", "/api/svc-a/products", customer="demo")  # its address is held back
        assert assert_problem(limited, 429, slug="too-many-requests")["detail"] == (
            "too many failed authentications from this address"
        )
        assert int(limited.headers["retry-after"]) >= 1
    with Attacker.fresh(system) as neighbour:  # another address is not
        assert neighbour.call("GET", "/api/svc-a/products", customer="demo").status_code == 200


@pytest.mark.parametrize(
    ("method", "path"),
    [("GET", "/products/OTHER"), ("POST", "/products"), ("HEAD", "/products"), ("GET", "/stock/X")],
)
def test_an_assertion_replayed_to_another_request_is_401(system: System, method: str, path: str) -> None:
    """Regression (issue 18, defect 1): the assertion covered caller, audience and expiry only."""
    token = gateway_signer(system).headers_for("svc-a", "GET", "/products", customer="demo")
    replay = httpx.request(method, instance_url(system, "svc-a") + path, headers=token)
    assert replay.status_code == 401
    if method != "HEAD":
        assert replay.json()["detail"] == "caller identity was issued for another request"


def test_an_assertion_is_accepted_once(system: System) -> None:
    url = instance_url(system, "svc-a") + "/products"
    token = gateway_signer(system).headers_for("svc-a", "GET", "/products", customer="demo")
    assert httpx.get(url, headers=token).status_code == 200
    assert assert_problem(httpx.get(url, headers=token), 401)["detail"] == "caller identity was already used"


def test_forged_expired_and_foreign_assertions_are_401(system: System) -> None:
    url = instance_url(system, "svc-a") + "/products"
    token = gateway_signer(system).token_for(
        "svc-a", "GET", "/products", customer="demo", scopes=["operator"]
    )
    parts = token.split(".")
    claims = json.loads(base64.urlsafe_b64decode(parts[5] + "=="))
    claims["c"] = "demo-2"
    forged = ".".join(
        [*parts[:5], base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("="), parts[6]]
    )
    expired = gateway_signer(system)
    expired._clock = lambda: time.time() - 3600  # type: ignore[attr-defined]
    for bad, detail in [
        (forged, "caller identity signature is not valid"),
        (expired.token_for("svc-a", "GET", "/products"), "caller identity has expired"),
        (
            gateway_signer(system).token_for("svc-c", "GET", "/products"),
            "caller identity is meant for another service",
        ),
        ("v1.gateway.svc-a.9999999999.forged", "malformed caller identity"),
    ]:
        assert assert_problem(httpx.get(url, headers={"X-Caravan-Identity": bad}), 401)["detail"] == detail


# ------------------------------------------------------------------ a gateway taking JWTs

SECRET = "security-suite-" + "x" * 32


@pytest.fixture(scope="module")
def jwt_gateway(system: System, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A second gateway process of the same system, taking HS256 JWTs (the runtime's takes keys)."""
    folder = tmp_path_factory.mktemp("jwt-gateway")
    key_file = folder / "jwt.key"
    key_file.write_text(SECRET)
    os.chmod(key_file, 0o600)
    python = system.runtime.venv_dir("gateway") / "bin" / "python"
    port = free_port()
    with system.env():
        env = {**os.environ, **gateway_runtime.program(system.runtime, python).env}
    env |= {"CARAVAN_PORT": str(port), "CARAVAN_JWT_KEY_FILE": str(key_file),
            "CARAVAN_JWT_ALGORITHMS": '["HS256"]', "CARAVAN_INSTANCE_ID": "gateway-jwt",
            "CARAVAN_TRACE_EXPORTER": "none", "CARAVAN_ACCESS_LOG": "false"}  # fmt: skip
    proc = subprocess.Popen([str(python), "-m", "caravan_gateway"], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(url + "/health/live").status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.05)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def bearer(claims: dict) -> dict[str, str]:
    return {
        "Authorization": "Bearer " + jwt.encode({"exp": int(time.time()) + 60, **claims}, SECRET, "HS256")
    }


def test_a_valid_jwt_passes(jwt_gateway: str) -> None:
    with httpx.Client(transport=httpx.HTTPTransport(local_address=next_address())) as http:
        assert (
            http.get(jwt_gateway + "/api/svc-a/products", headers=bearer({"sub": "jwt-demo"})).status_code
            == 200
        )


@pytest.mark.parametrize(
    "claims",
    [
        {"sub": "alice\r\nX-Caravan-Scopes: operator"},
        {"sub": "alice", "scope": "read\r\nX-Caravan-Customer: bob"},
        {"sub": "alice", "scopes": ["operator\nx"]},
        {"sub": "alice bob"},
        {"sub": "x" * 129},
        {"sub": 42},
        {"sub": "alice", "scopes": "operator"},
    ],
)
def test_jwt_claims_that_are_not_plain_words_are_401(jwt_gateway: str, claims: dict) -> None:
    """Regression (issue 18, defect 2): a CR/LF in ``sub`` or ``scopes`` reached the upstream as a
    header line of its own."""
    with httpx.Client(transport=httpx.HTTPTransport(local_address=next_address())) as http:
        answer = http.post(
            jwt_gateway + "/api/svc-a/stock/X/restock", json={"quantity": 1}, headers=bearer(claims)
        )
    assert_problem(answer, 401, slug="unauthorized")


def test_an_alg_none_or_wrongly_signed_jwt_is_401(jwt_gateway: str) -> None:
    unsigned = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, key=None, algorithm="none")
    other = jwt.encode({"sub": "alice", "exp": int(time.time()) + 60}, "not-the-secret-" * 3, "HS256")
    expired = jwt.encode({"sub": "alice", "exp": int(time.time()) - 60}, SECRET, "HS256")
    with httpx.Client(transport=httpx.HTTPTransport(local_address=next_address())) as http:
        for token in (unsigned, other, expired):
            answer = http.get(
                jwt_gateway + "/api/svc-a/products", headers={"Authorization": f"Bearer {token}"}
            )
            assert_problem(answer, 401, slug="unauthorized")


def test_keys_are_private_files(system: System) -> None:
    secret = [p for p in Path(system.runtime.identity_dir).iterdir() if p.suffix in (".key", ".secret")]
    secret += list((system.state_dir / "gateway").iterdir())
    assert len(secret) >= 8
    for path in secret:
        assert path.stat().st_mode & 0o077 == 0, path
    for folder in (system.runtime.identity_dir, system.state_dir / "gateway"):
        assert Path(folder).stat().st_mode & 0o777 == 0o700, folder
