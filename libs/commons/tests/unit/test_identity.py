"""Service identity: assertions, their checks, the policy of allowed flows, and the middleware."""

import json
import stat

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from litestar import Request, get, post
from litestar.middleware import DefineMiddleware
from litestar.testing import TestClient

from caravan_commons.app import create_app
from caravan_commons.errors import UnauthorizedError
from caravan_commons.identity import (
    IDENTITY_HEADER,
    Assertion,
    IdentityMiddleware,
    Policy,
    Signer,
    Verifier,
    caller_of,
    generate_identities,
    load_public_keys,
)
from caravan_commons.settings import ServiceSettings, SettingsError


class Clock:
    def __init__(self, now=1_000_000.0):
        self.now = now

    def __call__(self):
        return self.now


@pytest.fixture
def keys(tmp_path):
    generate_identities(["gateway", "svc-b", "svc-c"], tmp_path)
    return tmp_path


def test_keys_are_private_files_and_provisioning_is_idempotent(tmp_path):
    assert generate_identities(["svc-a", "svc-b"], tmp_path) == ["svc-a", "svc-b"]
    before = (tmp_path / "svc-a.key").read_bytes()
    assert generate_identities(["svc-a", "svc-b", "gateway"], tmp_path) == ["gateway"]
    assert (tmp_path / "svc-a.key").read_bytes() == before
    for name in ("svc-a", "svc-b", "gateway"):
        assert stat.S_IMODE((tmp_path / f"{name}.key").stat().st_mode) == 0o600
    assert set(json.loads((tmp_path / "public-keys.json").read_text())) == {"svc-a", "svc-b", "gateway"}


def test_a_signed_assertion_names_its_caller_and_request(keys):
    clock = Clock()
    signer = Signer.from_file("gateway", keys / "gateway.key", clock=clock)
    verifier = Verifier("svc-a", load_public_keys(keys / "public-keys.json"), clock=clock)
    token = signer.token_for("svc-a", "get", "/orders/1", customer="acme", scopes=["read"])
    assert verifier.verify(token, method="GET", path="/orders/1") == Assertion(
        "gateway", "GET", "/orders/1", "acme", frozenset({"read"})
    )
    assert signer.token_for("svc-a", "GET", "/x") != signer.token_for("svc-a", "GET", "/x")  # a nonce each


@pytest.mark.parametrize(
    ("method", "path"), [("POST", "/orders/1"), ("GET", "/orders/2"), ("GET", "/orders/1/cancel")]
)
def test_an_assertion_replayed_to_another_request_is_unauthorized(keys, method, path):
    """Regression (issue 18, defect 1): one token served every request to its audience for 45 s."""
    signer = Signer.from_file("gateway", keys / "gateway.key")
    verifier = Verifier.from_file("svc-a", keys / "public-keys.json")
    token = signer.token_for("svc-a", "GET", "/orders/1", customer="acme")
    with pytest.raises(UnauthorizedError, match="another request"):
        verifier.verify(token, method=method, path=path)


def test_an_assertion_is_accepted_once(keys):
    signer = Signer.from_file("svc-b", keys / "svc-b.key")
    verifier = Verifier.from_file("svc-a", keys / "public-keys.json")
    token = signer.token_for("svc-a", "GET", "/products")
    verifier.verify(token, method="GET", path="/products")
    with pytest.raises(UnauthorizedError, match="already used"):
        verifier.verify(token, method="GET", path="/products")


@pytest.mark.parametrize(
    ("customer", "scopes"),
    [("alice\r\nX-Caravan-Scopes: operator", ()), ("alice", ("operator\r\nX-Caravan-Customer: bob",)),
     ("a b", ()), ("x" * 129, ()), ("", ())],
)  # fmt: skip
def test_a_signer_refuses_claims_that_are_not_plain_words(keys, customer, scopes):
    signer = Signer.from_file("gateway", keys / "gateway.key")
    with pytest.raises(ValueError):
        signer.token_for("svc-a", "GET", "/", customer=customer, scopes=scopes)


@pytest.mark.parametrize(
    ("mangle", "message"),
    [
        (lambda t: None, "needs a caller identity"),
        (lambda t: "garbage", "malformed"),
        (lambda t: t.replace("svc-b", "gateway", 1), "signature is not valid"),
        (lambda t: t[:-4] + ("AAAA" if not t.endswith("AAAA") else "BBBB"), "signature is not valid"),
        (lambda t: t.replace(".svc-a.", ".svc-c.", 1), "meant for another service"),
        (lambda t: t.replace("v2.", "v1.", 1), "malformed"),
        (lambda t: ".".join(t.split(".")[:5] + t.split(".")[6:]), "malformed"),
    ],
)
def test_bad_assertions_are_unauthorized(keys, mangle, message):
    clock = Clock()
    signer = Signer.from_file("svc-b", keys / "svc-b.key", clock=clock)
    verifier = Verifier("svc-a", load_public_keys(keys / "public-keys.json"), clock=clock)
    with pytest.raises(UnauthorizedError, match=message):
        verifier.verify(mangle(signer.token_for("svc-a", "GET", "/p")), method="GET", path="/p")


def test_expired_unknown_and_overlong_assertions_are_unauthorized(keys):
    clock = Clock()
    public = load_public_keys(keys / "public-keys.json")
    token = Signer.from_file("svc-b", keys / "svc-b.key", clock=clock).token_for("svc-a", "GET", "/")
    verifier = Verifier("svc-a", public, clock=clock)
    clock.now += 3600
    with pytest.raises(UnauthorizedError, match="expired"):
        verifier.verify(token, method="GET", path="/")
    stranger = Signer("mallory", Ed25519PrivateKey.generate(), clock=clock)
    with pytest.raises(UnauthorizedError, match="unknown caller"):
        verifier.verify(stranger.token_for("svc-a", "GET", "/"), method="GET", path="/")
    greedy = Signer.from_file("svc-b", keys / "svc-b.key", clock=clock, lifetime=86_400)
    with pytest.raises(UnauthorizedError, match="longer than allowed"):
        verifier.verify(greedy.token_for("svc-a", "GET", "/"), method="GET", path="/")


def test_policy_paths():
    policy = Policy.from_json("svc-a", json.dumps({"gateway": None, "monitoring": ["/metrics"]}))
    assert policy.allows("gateway", "/products/x")
    assert policy.allows("monitoring", "/metrics")
    assert not policy.allows("monitoring", "/products")
    assert not policy.allows("monitoring", "/metricsx")
    assert not policy.allows("svc-c", "/products")


@get("/whoami", sync_to_thread=False)
def whoami(request: Request) -> dict:
    return {"caller": caller_of(request.scope)}


@pytest.fixture
def client(keys):
    verifier = Verifier.from_file("svc-a", keys / "public-keys.json")
    policy = Policy("svc-a", {"gateway": None, "svc-b": None})
    app = create_app(
        ServiceSettings(service_name="svc-a"),
        route_handlers=[whoami],
        middleware=[DefineMiddleware(IdentityMiddleware, verifier=verifier, policy=policy)],
        tracing=False,
    )
    with TestClient(app) as test_client:
        yield test_client


def test_the_middleware_lets_allowed_callers_through(client, keys):
    token = Signer.from_file("svc-b", keys / "svc-b.key").token_for("svc-a", "GET", "/whoami")
    response = client.get("/whoami", headers={IDENTITY_HEADER: token})
    assert response.status_code == 200
    assert response.json() == {"caller": "svc-b"}


def test_the_middleware_answers_401_without_identity_and_403_for_a_forbidden_caller(client, keys):
    anonymous = client.get("/whoami")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"].startswith("application/problem+json")
    token = Signer.from_file("svc-c", keys / "svc-c.key").token_for("svc-a", "GET", "/whoami")
    forbidden = client.get("/whoami", headers={IDENTITY_HEADER: token})
    assert forbidden.status_code == 403
    assert forbidden.headers["content-type"].startswith("application/problem+json")
    # the detail names no program (a customer may read it through the gateway)
    assert forbidden.json()["detail"] == "GET /whoami is not open to this caller"


def test_headers_that_disagree_with_the_assertion_are_unauthorized(client, keys):
    """Regression (issue 18, defect 1): X-Caravan-Customer/Scopes were believed from the gateway."""
    signer = Signer.from_file("gateway", keys / "gateway.key")
    for extra in ({"x-caravan-customer": "mallory"}, {"x-caravan-scopes": "operator"}):
        token = signer.token_for("svc-a", "GET", "/whoami", customer="acme")
        assert client.get("/whoami", headers={IDENTITY_HEADER: token, **extra}).status_code == 401
    token = signer.token_for("svc-a", "GET", "/whoami", customer="acme")
    same = {IDENTITY_HEADER: token, "x-caravan-customer": "acme"}
    assert client.get("/whoami", headers=same).status_code == 200


def test_health_stays_open(client):
    assert client.get("/health/live").status_code == 200


def test_create_app_enforces_identity_from_settings_and_signs_outgoing_calls(keys):
    settings = ServiceSettings(
        service_name="svc-a",
        public_keys_file=str(keys / "public-keys.json"),
        allowed_callers=json.dumps({"svc-b": None}),
        identity_key_file=str(keys / "svc-b.key"),
        identity_name="svc-b",
        trace_exporter="none",
    )
    app = create_app(settings, route_handlers=[whoami])
    with TestClient(app) as client:
        assert client.get("/whoami").status_code == 401
        assert client.get("/no/such/path").status_code == 401  # unknown paths are no way around it
        headers = app.state.signer("svc-a", "GET", "/whoami")
        assert client.get("/whoami", headers=headers).json() == {"caller": "svc-b"}
        assert client.get("/health/ready").status_code == 200
        elsewhere = app.state.signer("svc-a", "GET", "/no/such/path")
        assert client.get("/no/such/path", headers=elsewhere).status_code == 404


@pytest.mark.parametrize(
    ("overrides", "variable"),
    [
        ({"allowed_callers": "[1, 2"}, "CARAVAN_ALLOWED_CALLERS"),
        ({"allowed_callers": None}, "CARAVAN_ALLOWED_CALLERS"),
        ({"public_keys_file": "/nonexistent/keys.json"}, "CARAVAN_PUBLIC_KEYS_FILE"),
        ({"identity_key_file": "/nonexistent/svc.key"}, "CARAVAN_IDENTITY_KEY_FILE"),
    ],
)
def test_bad_identity_settings_stop_start_up_naming_the_variable(keys, overrides, variable):
    base = {
        "service_name": "svc-a",
        "public_keys_file": str(keys / "public-keys.json"),
        "allowed_callers": "{}",
        "trace_exporter": "none",
    }
    with pytest.raises(SettingsError, match=variable):
        create_app(ServiceSettings(**(base | overrides)))


def test_rules_narrow_by_path_prefix_and_method() -> None:
    from caravan_commons.identity import Policy, rule_matches

    assert rule_matches("/stock", "POST", "/stock/SKU-1/restock")
    assert not rule_matches("/stock", "GET", "/stocks")
    assert rule_matches("GET,HEAD /reservations", "head", "/reservations/o-1")
    assert not rule_matches("GET,HEAD /reservations", "POST", "/reservations")
    policy = Policy("svc-a", {"gateway": ("/products", "GET /reservations"), "svc-b": None})
    assert policy.allows("gateway", "/products", "POST")
    assert not policy.allows("gateway", "/reservations/o-1/commit", "POST")
    assert policy.allows("svc-b", "/reservations/o-1/commit", "POST")
    assert not policy.allows("svc-c", "/products")


def test_a_method_the_caller_may_not_use_answers_405_where_the_route_lacks_it_anyway(keys):
    settings = ServiceSettings(
        service_name="svc-a",
        public_keys_file=str(keys / "public-keys.json"),
        allowed_callers=json.dumps({"gateway": ["GET,HEAD /whoami"], "svc-b": None}),
        trace_exporter="none",
    )

    @post("/whoami", sync_to_thread=False)
    def change() -> None:
        return None

    @get("/readonly", sync_to_thread=False)
    def readonly() -> str:
        return "ok"

    app = create_app(settings, route_handlers=[whoami, change, readonly])
    signer = Signer.from_file("gateway", keys / "gateway.key")

    def gateway(method: str, path: str) -> dict[str, str]:
        return signer.headers_for("svc-a", method, path)

    with TestClient(app) as client:
        assert client.get("/whoami", headers=gateway("GET", "/whoami")).status_code == 200
        # the route takes POST, the gateway may not use it: forbidden
        assert client.post("/whoami", headers=gateway("POST", "/whoami")).status_code == 403
        # no route takes PUT there: 405 with what the route does take, as without the policy
        wrong = client.put("/whoami", headers=gateway("PUT", "/whoami"))
        assert wrong.status_code == 405
        assert wrong.headers["content-type"].startswith("application/problem+json")
        assert set(wrong.headers["allow"].replace(" ", "").split(",")) >= {"GET", "POST"}
        # regression (issue 18, defect 10): a path the gateway may not use at all answers 405 too
        # for a method no route there takes (it was 403 naming the gateway and the service)
        assert client.put("/readonly", headers=gateway("PUT", "/readonly")).status_code == 405
        assert client.get("/readonly", headers=gateway("GET", "/readonly")).status_code == 403
