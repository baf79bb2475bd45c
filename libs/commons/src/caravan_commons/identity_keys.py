"""Service identity, the keys and the allowed flows: provisioning, signing, verifying, policies.

Each program of the system (the gateway, each service, the stage probes) holds an Ed25519 private
key generated at provisioning (a 0600 file, never in git). An outgoing call carries a short-lived
assertion in the ``X-Caravan-Identity`` header, one per request::

    v2.<caller>.<audience>.<expiry>.<nonce>.<claims>.<signature>

``claims`` is base64url JSON ``{"m": method, "p": path, "c": customer or null, "s": [scopes]}``;
the Ed25519 signature covers everything before it. A :class:`Verifier` checks the signature
against the caller's public key, that the assertion is meant for its service, still fresh (30 s by
default) and issued for this very request (method and path), and that its nonce was not seen
before; a :class:`Policy` says which caller may call which paths (the foundation model's flows).

This module needs the standard library, ``cryptography`` and :mod:`caravan_commons.errors` only;
the ASGI middleware enforcing it on a service is :mod:`caravan_commons.identity`, which also
re-exports every name defined here.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from caravan_commons.errors import UnauthorizedError

IDENTITY_HEADER = "x-caravan-identity"
PUBLIC_KEYS_FILE = "public-keys.json"
VERSION = "v2"
#: Paths a service answers without an identity: health probes, /metrics and its schema.
DEFAULT_EXEMPT = ("/health/", "/metrics", "/schema")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------- provisioning


def generate_identities(names: Iterable[str], directory: Path) -> list[str]:
    """Create a key pair for each name that has none yet; returns the names created.

    Private keys go to ``<directory>/<name>.key`` (0600); public keys are collected in
    ``public-keys.json``. Each name also gets ``<name>.secret`` (0600): 32 random bytes, hex, a
    secret of that program alone (e.g. the key svc-b derives order ids with). Existing keys and
    secrets are kept, so provisioning is idempotent.
    """
    directory.mkdir(parents=True, exist_ok=True)
    os.chmod(directory, 0o700)
    created = []
    public: dict[str, str] = {}
    for name in sorted(set(names)):
        key_path = directory / f"{name}.key"
        if key_path.exists():
            private = load_private_key(key_path)
        else:
            private = Ed25519PrivateKey.generate()
            pem = private.private_bytes(
                serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
            )
            fd = os.open(key_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "wb") as fh:
                fh.write(pem)
            created.append(name)
        secret_path = directory / f"{name}.secret"
        if not secret_path.exists():
            fd = os.open(secret_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as fh:
                fh.write(secrets.token_hex(32))
        raw = private.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
        public[name] = _b64(raw)
    public_path = directory / PUBLIC_KEYS_FILE
    known = json.loads(public_path.read_text()) if public_path.exists() else None
    if known is None or known | public != known:
        tmp = public_path.with_suffix(".tmp")
        tmp.write_text(json.dumps((known or {}) | public, indent=2, sort_keys=True))
        os.replace(tmp, public_path)
    return created


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ValueError(f"{path.name} is not an Ed25519 private key")
    return key


def load_public_keys(path: Path) -> dict[str, Ed25519PublicKey]:
    raw = json.loads(path.read_text())
    return {name: Ed25519PublicKey.from_public_bytes(_unb64(value)) for name, value in raw.items()}


# ---------------------------------------------------------------------- signing and checking

#: A customer id the gateway may assert: no spaces, no control characters, at most 128 characters.
CUSTOMER_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@:+-]{0,127}")
#: One scope: a word of letters, digits and ``._:-``.
SCOPE_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
MAX_SCOPES = 16
NAME_PATTERN = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")


def valid_customer(value: str) -> bool:
    return CUSTOMER_PATTERN.fullmatch(value) is not None


def valid_scopes(values: Iterable[str]) -> bool:
    values = list(values)
    return len(values) <= MAX_SCOPES and all(SCOPE_PATTERN.fullmatch(v) is not None for v in values)


@dataclass(frozen=True, slots=True)
class Assertion:
    """What a verified token says: who calls, for which request, on whose behalf."""

    caller: str
    method: str
    path: str
    customer: str | None = None
    scopes: frozenset[str] = frozenset()


class Signer:
    """Issues this program's assertions: one per request, bound to its method and path (and the
    customer and scopes it acts for), with a random nonce and a short expiry."""

    def __init__(
        self, name: str, key: Ed25519PrivateKey, *, lifetime: int = 30, clock: Callable[[], float] = time.time
    ) -> None:
        if NAME_PATTERN.fullmatch(name) is None:
            raise ValueError("identity names are lower-case words (letters, digits, '-', '_')")
        self.name = name
        self._key = key
        self._lifetime = lifetime
        self._clock = clock

    @classmethod
    def from_file(cls, name: str, path: Path, **kwargs: Any) -> Signer:
        return cls(name, load_private_key(path), **kwargs)

    def token_for(
        self,
        audience: str,
        method: str,
        path: str,
        *,
        customer: str | None = None,
        scopes: Iterable[str] = (),
    ) -> str:
        """A fresh assertion for one request ``method path`` to ``audience``. A customer or scope
        that is not a plain word is refused (ValueError): nothing unchecked reaches a header."""
        scopes = sorted(set(scopes))
        if customer is not None and not valid_customer(customer):
            raise ValueError("a customer id is 1-128 letters, digits or ._@:+-")
        if not valid_scopes(scopes):
            raise ValueError("scopes are at most 16 words of letters, digits or ._:-")
        if NAME_PATTERN.fullmatch(audience) is None:
            raise ValueError(f"{audience!r} is not a service name")
        claims = {"m": method.upper(), "p": path, "c": customer, "s": scopes}
        body = _b64(json.dumps(claims, separators=(",", ":")).encode())
        expiry = int(self._clock()) + self._lifetime
        signed = f"{VERSION}.{self.name}.{audience}.{expiry}.{_b64(os.urandom(16))}.{body}"
        return f"{signed}.{_b64(self._key.sign(signed.encode()))}"

    def headers_for(self, audience: str, method: str, path: str, **claims: Any) -> dict[str, str]:
        """The identity header of one request (``claims``: ``customer=``, ``scopes=``)."""
        return {IDENTITY_HEADER: self.token_for(audience, method, path, **claims)}

    def __call__(self, service: str, method: str, path: str) -> dict[str, str]:
        """A ServiceClient ``headers_provider``: sign every outgoing call for its target."""
        return self.headers_for(service, method, path.partition("?")[0])


class Verifier:
    """Checks assertions addressed to ``service`` against the request they arrived with; each
    nonce is accepted once while its token is fresh (a replay gets 401)."""

    def __init__(
        self,
        service: str,
        public_keys: Mapping[str, Ed25519PublicKey],
        *,
        max_lifetime: int = 60,
        skew: int = 5,
        clock: Callable[[], float] = time.time,
        cache_size: int = 200_000,
    ) -> None:
        self.service = service
        self._keys = dict(public_keys)
        self._max_lifetime = max_lifetime
        self._skew = skew
        self._clock = clock
        self._seen: dict[str, int] = {}  # nonce -> expiry
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, service: str, path: Path, **kwargs: Any) -> Verifier:
        return cls(service, load_public_keys(path), **kwargs)

    def verify(self, token: str | None, *, method: str, path: str) -> Assertion:
        """What the assertion says, or UnauthorizedError saying what is wrong with it. The details
        never echo the token or name other programs: a customer may read them."""
        if not token:
            raise UnauthorizedError("this service needs a caller identity (X-Caravan-Identity)")
        now = self._clock()
        parts = token.split(".")
        if len(parts) != 7 or parts[0] != VERSION:
            raise UnauthorizedError("malformed caller identity")
        _, caller, audience, expiry_text, nonce, body, signature = parts
        if audience != self.service:
            raise UnauthorizedError("caller identity is meant for another service")
        if not expiry_text.isdigit() or len(expiry_text) > 12:
            raise UnauthorizedError("malformed caller identity")
        expiry = int(expiry_text)
        if expiry + self._skew < now:
            raise UnauthorizedError("caller identity has expired")
        if expiry > now + self._max_lifetime + self._skew:
            raise UnauthorizedError("caller identity lives longer than allowed")
        key = self._keys.get(caller)
        if key is None:
            raise UnauthorizedError("unknown caller")
        try:
            key.verify(_unb64(signature), token[: -len(signature) - 1].encode())
            claims = json.loads(_unb64(body))
        except (InvalidSignature, ValueError, binascii.Error) as exc:
            raise UnauthorizedError("caller identity signature is not valid") from exc
        assertion = _assertion(caller, claims)
        if assertion.method != method.upper() or assertion.path != path:
            raise UnauthorizedError("caller identity was issued for another request")
        with self._lock:
            if nonce in self._seen:
                raise UnauthorizedError("caller identity was already used")
            if len(self._seen) >= self._cache_size:
                self._seen = {n: e for n, e in self._seen.items() if e + self._skew >= now}
            self._seen[nonce] = expiry
        return assertion


def _assertion(caller: str, claims: Any) -> Assertion:
    if not isinstance(claims, dict):
        raise UnauthorizedError("malformed caller identity")
    method, path, customer, scopes = claims.get("m"), claims.get("p"), claims.get("c"), claims.get("s")
    if (
        not isinstance(method, str)
        or not isinstance(path, str)
        or not (customer is None or (isinstance(customer, str) and valid_customer(customer)))
        or not isinstance(scopes, list)
        or not all(isinstance(s, str) for s in scopes)
        or not valid_scopes(scopes)
    ):
        raise UnauthorizedError("malformed caller identity")
    return Assertion(caller, method, path, customer, frozenset(scopes))


def rule_matches(rule: str, method: str, path: str) -> bool:
    """Whether an allowed-path rule admits ``method path``. A rule is a path prefix (``/products``:
    any method) or methods and a prefix (``GET,HEAD /reservations``); a prefix matches itself and
    everything below it, never a sibling that merely starts with the same letters."""
    methods, _, prefix = rule.rpartition(" ")
    if methods and method.upper() not in methods.upper().split(","):
        return False
    return path == prefix or path.startswith(prefix.rstrip("/") + "/")


@dataclass(frozen=True)
class Policy:
    """Who may call this service: caller → allowed rules (see :func:`rule_matches`; None: all)."""

    service: str
    callers: Mapping[str, tuple[str, ...] | None]

    @classmethod
    def from_json(cls, service: str, text: str) -> Policy:
        raw = json.loads(text)
        if not isinstance(raw, dict):
            raise ValueError("allowed callers must be a JSON object of caller → paths or null")
        return cls(service, {k: None if v is None else tuple(v) for k, v in raw.items()})

    def allows(self, caller: str, path: str, method: str = "GET") -> bool:
        if caller not in self.callers:
            return False
        rules = self.callers[caller]
        return rules is None or any(rule_matches(rule, method, path) for rule in rules)

    def allows_path(self, caller: str, path: str) -> bool:
        """Whether ``caller`` may call ``path`` with at least one method."""
        if caller not in self.callers:
            return False
        rules = self.callers[caller]
        return rules is None or any(rule_matches(rule.rpartition(" ")[2], "GET", path) for rule in rules)
