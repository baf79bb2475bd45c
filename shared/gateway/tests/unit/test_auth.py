import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from caravan_commons.errors import UnauthorizedError
from caravan_gateway.auth import AuthConfigError, Authenticator, add_key, hash_key, load_keys


def test_add_key_stores_only_the_hash_with_mode_0600(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "acme", ["operator"])
    assert key.startswith("cvk_") and len(key) > 40
    assert key not in path.read_text()
    assert path.stat().st_mode & 0o777 == 0o600
    entry = load_keys(path).keys[0]
    assert (entry.hash, entry.customer, entry.scopes) == (hash_key(key), "acme", ["operator"])
    assert add_key(path, "acme") != key and len(load_keys(path).keys) == 2


@pytest.mark.parametrize("customer", ["", "a,b", "x\ny", "c" * 129, "a b", "a\r\nX-Caravan-Scopes: operator"])
def test_add_key_refuses_bad_customers(tmp_path, customer):
    with pytest.raises(AuthConfigError):
        add_key(tmp_path / "keys.json", customer)
    assert not (tmp_path / "keys.json").exists()


def test_a_corrupt_keys_file_is_a_clear_error(tmp_path):
    path = tmp_path / "keys.json"
    path.write_text("{not json")
    with pytest.raises(AuthConfigError, match=r"keys\.json"):
        Authenticator(keys_path=path)


def test_api_keys_resolve_to_their_customer_and_scopes(tmp_path):
    path = tmp_path / "keys.json"
    key = add_key(path, "acme", ["operator"])
    auth = Authenticator(keys_path=path)
    principal = auth.authenticate(b"Bearer " + key.encode(), None)
    assert (principal.customer, principal.scopes) == ("acme", ("operator",))
    assert auth.authenticate(None, key.encode()).customer == "acme"
    for bad in (b"Bearer cvk_nope", b"Basic " + key.encode(), b""):
        with pytest.raises(UnauthorizedError):
            auth.authenticate(bad, None)


def make_jwt_auth(now: float = 1_000_000.0):
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = Authenticator(
        jwt_key=pem.decode(),
        jwt_algorithms=["EdDSA"],
        jwt_issuer="iss",
        jwt_audience="aud",
        clock=lambda: now,
    )
    return private, auth


def test_jwt_subject_and_scopes_become_the_principal():
    private, auth = make_jwt_auth(time.time())
    token = jwt.encode({"sub": "globex", "iss": "iss", "aud": "aud", "exp": int(time.time()) + 60,
                        "scopes": ["a", "b"]}, private, algorithm="EdDSA")  # fmt: skip
    principal = auth.authenticate(b"Bearer " + token.encode(), None)
    assert (principal.customer, principal.scopes) == ("globex", ("a", "b"))
    assert (
        auth.authenticate(b"bearer " + token.encode(), None) == principal
    )  # cached, scheme case-insensitive


def test_a_verified_jwt_is_remembered_only_until_it_expires(monkeypatch):
    now = [time.time()]
    private = Ed25519PrivateKey.generate()
    pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    auth = Authenticator(jwt_key=pem.decode(), jwt_algorithms=["EdDSA"], clock=lambda: now[0])
    token = jwt.encode({"sub": "x", "exp": int(now[0]) + 60}, private, algorithm="EdDSA").encode()
    calls = []
    real_decode = jwt.decode
    monkeypatch.setattr(jwt, "decode", lambda *a, **k: calls.append(1) or real_decode(*a, **k))
    auth.authenticate(b"Bearer " + token, None)
    auth.authenticate(b"Bearer " + token, None)
    assert len(calls) == 1  # the second use came from the cache
    now[0] += 120  # past exp: the cache no longer answers, the token is verified again
    auth.authenticate(b"Bearer " + token, None)
    assert len(calls) == 2


@pytest.mark.parametrize(
    "claims",
    [{"sub": "alice\r\nX-Caravan-Scopes: operator"},
     {"sub": "alice", "scope": "read\r\nX-Caravan-Customer: bob"},
     {"sub": "alice", "scopes": ["operator\nx"]}, {"sub": "alice bob"}, {"sub": "x" * 129}, {"sub": 42},
     {"sub": "alice", "scopes": "operator"}, {"sub": "alice", "scopes": [1]}],
)  # fmt: skip
def test_jwt_claims_that_are_not_plain_words_are_refused(claims):
    """Regression (issue 18, defect 2): a CR/LF in ``sub`` or ``scopes`` reached the upstream head."""
    secret = "s" * 32
    auth = Authenticator(jwt_key=secret, jwt_algorithms=["HS256"])
    token = jwt.encode({"exp": int(time.time()) + 60, **claims}, secret, "HS256")
    with pytest.raises(UnauthorizedError):
        auth.authenticate(b"Bearer " + token.encode(), None)
