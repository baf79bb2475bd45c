"""Who is calling: API keys (stored hashed) or JWTs (algorithm allow-list, iss/aud/exp checked).

API keys look like ``cvk_<43 url-safe characters>`` (256 random bits) and are presented as
``Authorization: Bearer cvk_...`` or ``X-Api-Key: cvk_...``. The keys file holds only their
SHA-256 hashes, and is re-read within a second when it changes (a fast hash is right for
high-entropy random keys: nothing to brute-force; the lookup is by hash, so no secret is compared
byte by byte)::

    {"keys": [{"hash": "sha256:9f86...", "customer": "acme", "scopes": ["operator"]}]}

:func:`add_key` (``python -m caravan_gateway add-key``) creates a key, writes its hash atomically
to the file with mode 0600 and returns the key, shown once. Any other bearer token is a JWT:
verified with PyJWT against the configured key, only with the allowed algorithms, requiring
``exp`` (and ``iss``/``aud`` when configured); ``sub`` is the customer id and ``scope`` (space
separated) or ``scopes`` (a list) the scopes — both checked against strict patterns (a claim with
a control character, a space in ``sub``, or anything but plain words is refused with 401).
Verified tokens are remembered until they expire.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import jwt
import msgspec

from caravan_commons.errors import UnauthorizedError
from caravan_commons.identity import valid_customer, valid_scopes

KEY_PREFIX = "cvk_"
_BEARER = b"bearer "


class Principal(msgspec.Struct, frozen=True):
    customer: str
    scopes: tuple[str, ...] = ()


class KeyEntry(msgspec.Struct, frozen=True, forbid_unknown_fields=True):
    hash: str
    customer: str
    scopes: list[str] = []


class KeysFile(msgspec.Struct, forbid_unknown_fields=True):
    keys: list[KeyEntry] = []


class AuthConfigError(ValueError):
    """The keys file or JWT key cannot be used; the message names the file."""


def hash_key(key: str) -> str:
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()


def load_keys(path: Path) -> KeysFile:
    try:
        return msgspec.json.decode(path.read_bytes(), type=KeysFile)
    except FileNotFoundError:
        return KeysFile()
    except (OSError, msgspec.DecodeError, msgspec.ValidationError) as exc:
        raise AuthConfigError(f"{path}: not a valid keys file: {exc}") from exc


def add_key(path: Path, customer: str, scopes: Sequence[str] = ()) -> str:
    """Create an API key for ``customer``; store its hash (file mode 0600); return the key."""
    if not valid_customer(customer):
        raise AuthConfigError(
            "customer must be 1-128 letters, digits or ._@:+- (starting with a letter or digit)"
        )
    if not valid_scopes(scopes):
        raise AuthConfigError("scopes must be at most 16 words of letters, digits or ._:-")
    keys = load_keys(path)
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    keys.keys.append(KeyEntry(hash=hash_key(key), customer=customer, scopes=list(scopes)))
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(msgspec.json.format(msgspec.json.encode(keys), indent=2))
    os.chmod(tmp, 0o600)
    os.replace(tmp, path)
    return key


class Authenticator:
    """Turns a request's credentials into a :class:`Principal`, or raises UnauthorizedError (401)."""

    def __init__(
        self,
        *,
        keys: KeysFile | None = None,
        keys_path: Path | None = None,
        jwt_key: str | bytes | None = None,
        jwt_algorithms: Sequence[str] = ("EdDSA", "ES256", "RS256"),
        jwt_issuer: str | None = None,
        jwt_audience: str | None = None,
        clock: Callable[[], float] = time.time,
        cache_size: int = 10_000,
    ) -> None:
        self._keys_path = keys_path
        self._keys_mtime: int | None = None
        self._next_check = 0.0
        self._keys: dict[str, Principal] = {}
        if keys is not None:
            self._use(keys)
        elif keys_path is not None:
            self._reload()
        self._jwt_key = jwt_key
        self._algorithms = list(jwt_algorithms)
        self._issuer = jwt_issuer
        self._audience = jwt_audience
        self._clock = clock
        self._jwt_cache: dict[bytes, tuple[float, Principal]] = {}
        self._cache_size = cache_size
        required = ["exp", "sub"] + (["iss"] if jwt_issuer else []) + (["aud"] if jwt_audience else [])
        self._options = {"require": required}

    def authenticate(self, authorization: bytes | None, api_key: bytes | None) -> Principal:
        if api_key is None and authorization is not None and authorization[:7].lower() == _BEARER:
            token = authorization[7:].strip()
            if not token.startswith(KEY_PREFIX.encode()):
                return self._from_jwt(token)
            api_key = token
        if api_key is None:
            raise UnauthorizedError(
                "authenticate with an API key (Authorization: Bearer cvk_... or X-Api-Key) or a JWT"
            )
        if self._keys_path is not None:
            now = self._clock()
            if now >= self._next_check:
                self._next_check = now + 1.0
                self._reload()
        principal = self._keys.get(hash_key(api_key.decode("latin-1")))
        if principal is None:
            raise UnauthorizedError("the API key is not valid")
        return principal

    def _use(self, keys: KeysFile) -> None:
        self._keys = {entry.hash: Principal(entry.customer, tuple(entry.scopes)) for entry in keys.keys}

    def _reload(self) -> None:
        """Pick up keys added or revoked since (the file is replaced atomically by add_key)."""
        assert self._keys_path is not None
        try:
            mtime = self._keys_path.stat().st_mtime_ns
        except OSError:
            return
        if mtime != self._keys_mtime:
            try:
                self._use(load_keys(self._keys_path))
            except AuthConfigError:
                if self._keys_mtime is None:
                    raise
                return  # keep the last good keys
            self._keys_mtime = mtime

    def _from_jwt(self, token: bytes) -> Principal:
        now = self._clock()
        cached = self._jwt_cache.get(token)
        if cached is not None and cached[0] > now:
            return cached[1]
        if self._jwt_key is None:
            raise UnauthorizedError("bearer tokens are not accepted here; use an API key")
        try:
            claims = jwt.decode(
                token.decode("latin-1"),
                self._jwt_key,
                algorithms=self._algorithms,
                issuer=self._issuer,
                audience=self._audience,
                options=self._options,  # type: ignore[arg-type]
            )
        except jwt.ExpiredSignatureError:
            raise UnauthorizedError("the token has expired") from None
        except jwt.InvalidAlgorithmError:
            raise UnauthorizedError("the token's signing algorithm is not allowed") from None
        except jwt.PyJWTError as exc:
            raise UnauthorizedError(f"the token is not valid: {exc}") from None
        scope = claims.get("scope", "")
        scopes: object = None
        if claims.get("scopes"):
            scopes = claims["scopes"]
        elif isinstance(scope, str):
            # RFC 8693: space-delimited; other whitespace stays inside a word and is refused below
            scopes = scope.split(" ") if scope else []
        subject = claims["sub"]
        # every claim ends up in the signed assertion (and a header) of the upstream request:
        # only plain words pass, so no CR/LF or other control character ever reaches a head
        if not isinstance(subject, str) or not valid_customer(subject):
            raise UnauthorizedError("the token's subject is not a valid customer id")
        if (
            not isinstance(scopes, list | tuple)
            or not all(isinstance(x, str) for x in scopes)
            or not valid_scopes(scopes)
        ):
            raise UnauthorizedError("the token's scopes are not valid")
        principal = Principal(subject, tuple(scopes))
        if len(self._jwt_cache) >= self._cache_size:
            self._jwt_cache.clear()
        self._jwt_cache[token] = (float(claims["exp"]), principal)
        return principal


def authenticator_from_files(
    keys_file: str | None,
    jwt_key_file: str | None,
    *,
    jwt_algorithms: Sequence[str],
    jwt_issuer: str | None,
    jwt_audience: str | None,
) -> Authenticator:
    jwt_key: str | None = None
    if jwt_key_file:
        try:
            jwt_key = Path(jwt_key_file).read_text().strip()
        except OSError as exc:
            raise AuthConfigError(f"{jwt_key_file}: cannot read the JWT key ({exc.strerror})") from exc
    if keys_file and not Path(keys_file).exists():
        raise AuthConfigError(f"{keys_file}: no such keys file (create one with add-key)")
    return Authenticator(
        keys_path=Path(keys_file) if keys_file else None,
        jwt_key=jwt_key,
        jwt_algorithms=jwt_algorithms,
        jwt_issuer=jwt_issuer,
        jwt_audience=jwt_audience,
    )
