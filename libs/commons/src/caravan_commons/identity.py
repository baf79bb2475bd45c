"""Service identity and the allowed flows, enforced on every service.

Each program of the system (the gateway, each service, the stage probes) holds an Ed25519 private
key generated at provisioning (a 0600 file, never in git). An outgoing call carries a short-lived
assertion ``v1.<caller>.<audience>.<expiry>.<signature>`` in the ``X-Caravan-Identity`` header;
the receiving service checks the signature against the caller's public key, that the assertion is
meant for it and still fresh, and then that the foundation model allows ``caller → service`` on
that path. No valid identity → 401; a valid caller the model does not allow → 403 (both
problem+json through the one error mapping).

Health probes and /metrics stay open: the supervisor and Prometheus reach them on loopback, and
the foundation model grants monitoring exactly those paths.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import os
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from caravan_commons.errors import ForbiddenError, MethodNotAllowedError, UnauthorizedError

if TYPE_CHECKING:
    from caravan_commons.settings import ServiceSettings

IDENTITY_HEADER = "x-caravan-identity"
CALLER_STATE_KEY = "caravan_caller"
PUBLIC_KEYS_FILE = "public-keys.json"
VERSION = "v1"
DEFAULT_EXEMPT = ("/health/", "/metrics", "/schema")


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


# ---------------------------------------------------------------------- provisioning


def generate_identities(names: Iterable[str], directory: Path) -> list[str]:
    """Create a key pair for each name that has none yet; returns the names created.

    Private keys go to ``<directory>/<name>.key`` (0600); public keys are collected in
    ``public-keys.json``. Existing keys are kept, so provisioning is idempotent.
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


class Signer:
    """Issues this program's assertions, one per audience, reused for most of their lifetime."""

    def __init__(
        self, name: str, key: Ed25519PrivateKey, *, lifetime: int = 60, clock: Callable[[], float] = time.time
    ) -> None:
        if "." in name:
            raise ValueError("identity names may not contain '.'")
        self.name = name
        self._key = key
        self._lifetime = lifetime
        self._clock = clock
        self._cache: dict[str, tuple[float, str]] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_file(cls, name: str, path: Path, **kwargs: Any) -> Signer:
        return cls(name, load_private_key(path), **kwargs)

    def token_for(self, audience: str) -> str:
        now = self._clock()
        with self._lock:
            cached = self._cache.get(audience)
            if cached and cached[0] > now:
                return cached[1]
            expiry = int(now) + self._lifetime
            claim = f"{VERSION}.{self.name}.{audience}.{expiry}"
            token = f"{claim}.{_b64(self._key.sign(claim.encode()))}"
            self._cache[audience] = (now + self._lifetime * 0.75, token)
            return token

    def headers_for(self, audience: str) -> dict[str, str]:
        return {IDENTITY_HEADER: self.token_for(audience)}

    def __call__(self, service: str, method: str, path: str) -> dict[str, str]:
        """A ServiceClient ``headers_provider``: sign every outgoing call for its target."""
        return self.headers_for(service)


class Verifier:
    """Checks assertions addressed to ``service``; verified tokens are remembered until expiry."""

    def __init__(
        self,
        service: str,
        public_keys: Mapping[str, Ed25519PublicKey],
        *,
        max_lifetime: int = 300,
        skew: int = 5,
        clock: Callable[[], float] = time.time,
        cache_size: int = 4096,
    ) -> None:
        self.service = service
        self._keys = dict(public_keys)
        self._max_lifetime = max_lifetime
        self._skew = skew
        self._clock = clock
        self._cache: dict[str, tuple[int, str]] = {}
        self._cache_size = cache_size

    @classmethod
    def from_file(cls, service: str, path: Path, **kwargs: Any) -> Verifier:
        return cls(service, load_public_keys(path), **kwargs)

    def verify(self, token: str | None) -> str:
        """The caller's name, or UnauthorizedError saying what is wrong with the assertion."""
        if not token:
            raise UnauthorizedError("this service needs a caller identity (X-Caravan-Identity)")
        now = self._clock()
        cached = self._cache.get(token)
        if cached is not None and cached[0] + self._skew >= now:
            return cached[1]
        parts = token.split(".")
        if len(parts) != 5 or parts[0] != VERSION:
            raise UnauthorizedError("malformed caller identity")
        _, caller, audience, expiry_text, signature = parts
        if audience != self.service:
            raise UnauthorizedError(f"caller identity is meant for {audience!r}, not {self.service!r}")
        if not expiry_text.isdigit():
            raise UnauthorizedError("malformed caller identity")
        expiry = int(expiry_text)
        if expiry + self._skew < now:
            raise UnauthorizedError("caller identity has expired")
        if expiry > now + self._max_lifetime + self._skew:
            raise UnauthorizedError("caller identity lives longer than allowed")
        key = self._keys.get(caller)
        if key is None:
            raise UnauthorizedError(f"unknown caller {caller!r}")
        try:
            key.verify(_unb64(signature), f"{VERSION}.{caller}.{audience}.{expiry_text}".encode())
        except (InvalidSignature, ValueError, binascii.Error) as exc:
            raise UnauthorizedError("caller identity signature is not valid") from exc
        if len(self._cache) >= self._cache_size:
            self._cache.clear()
        self._cache[token] = (expiry, caller)
        return caller


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


# ---------------------------------------------------------------------- the ASGI middleware


class IdentityMiddleware:
    """ASGI middleware in front of the whole app (unknown paths included): no valid identity → 401,
    a caller without an allowed flow → 403, both as problem+json through the one mapping."""

    def __init__(
        self,
        app: Any,
        *,
        verifier: Verifier,
        policy: Policy,
        exempt: tuple[str, ...] = DEFAULT_EXEMPT,
        router: Any = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.policy = policy
        self.exempt = exempt
        #: The app's Litestar router: a caller refused only for the method learns the method does
        #: not exist there at all (405 with Allow) rather than that it is forbidden.
        self.router = router
        self._header = IDENTITY_HEADER.encode()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"].startswith(self.exempt):
            await self.app(scope, receive, send)
            return
        token = None
        for name, value in scope["headers"]:
            if name == self._header:
                token = value.decode("latin-1")
                break
        try:
            caller = self.verifier.verify(token)
            if not self.policy.allows(caller, scope["path"], scope["method"]):
                self._refuse_unknown_method(caller, scope)
                raise ForbiddenError(
                    f"{caller} may not call {self.policy.service} {scope['method']} {scope['path']}"
                )
        except (UnauthorizedError, ForbiddenError, MethodNotAllowedError) as exc:
            await _send_problem(send, exc)
            return
        scope.setdefault("state", {})[CALLER_STATE_KEY] = caller
        await self.app(scope, receive, send)

    def _refuse_unknown_method(self, caller: str, scope: Any) -> None:
        """Raise 405 when the caller may use the path, only not with this method, and the app has
        no such method there anyway."""
        if self.router is None or not self.policy.allows_path(caller, scope["path"]):
            return
        from litestar.exceptions import MethodNotAllowedException, NotFoundException

        try:
            self.router.handle_routing(scope["path"], scope["method"])
        except MethodNotAllowedException as exc:
            allow = tuple(m.strip() for m in (exc.headers or {}).get("allow", "").split(",") if m.strip())
            raise MethodNotAllowedError(
                f"{self.policy.service} {scope['path']} does not take {scope['method']}", allow=allow
            ) from None
        except NotFoundException:
            return


async def _send_problem(send: Any, exc: UnauthorizedError | ForbiddenError | MethodNotAllowedError) -> None:
    from caravan_commons.problems import problem_document, problem_headers

    body = json.dumps(problem_document(exc)).encode()
    headers = [(b"content-type", b"application/problem+json"), (b"content-length", str(len(body)).encode())]
    headers += [(k.lower().encode(), v.encode()) for k, v in (problem_headers(exc) or {}).items()]
    await send({"type": "http.response.start", "status": exc.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def from_settings(
    settings: ServiceSettings,
) -> tuple[Callable[..., IdentityMiddleware] | None, Signer | None]:
    """A wrapper installing the identity middleware (when the settings name public keys and
    allowed callers) and the signer for outgoing calls (when they name a private key). A file that
    cannot be read, or allowed callers that are not JSON, stop start-up with one line naming the
    setting."""
    from caravan_commons.settings import SettingsError

    middleware = signer = None
    if settings.public_keys_file or settings.allowed_callers:
        if not (settings.public_keys_file and settings.allowed_callers):
            raise SettingsError(
                "CARAVAN_PUBLIC_KEYS_FILE" if not settings.public_keys_file else "CARAVAN_ALLOWED_CALLERS",
                "identity enforcement needs both the public keys file and the allowed callers",
            )
        try:
            verifier = Verifier.from_file(settings.service_name, Path(settings.public_keys_file))
        except (OSError, ValueError) as exc:
            raise SettingsError("CARAVAN_PUBLIC_KEYS_FILE", f"cannot load public keys: {exc}") from exc
        try:
            policy = Policy.from_json(settings.service_name, settings.allowed_callers)
        except ValueError as exc:
            raise SettingsError(
                "CARAVAN_ALLOWED_CALLERS", f"not a JSON object of caller → paths: {exc}"
            ) from exc
        middleware = functools.partial(IdentityMiddleware, verifier=verifier, policy=policy)
    if settings.identity_key_file:
        try:
            signer = Signer.from_file(
                settings.identity_name or settings.service_name, Path(settings.identity_key_file)
            )
        except (OSError, ValueError) as exc:
            raise SettingsError("CARAVAN_IDENTITY_KEY_FILE", f"cannot load the private key: {exc}") from exc
    return middleware, signer


def caller_of(scope: Mapping[str, Any]) -> str | None:
    """The verified caller of the current request (set by IdentityMiddleware)."""
    return scope.get("state", {}).get(CALLER_STATE_KEY)
