"""Idempotency-Key support for POST endpoints (draft-ietf-httpapi-idempotency-key-header).

A client that may retry a POST sends ``Idempotency-Key: "<unique string>"``. The service keeps,
in its own database and **in the same transaction as the effect**, the response it gave; then:

- same key, same request (same *fingerprint*: method, path and canonical body) → the stored
  response is replayed (status, a subset of headers, body), with ``Idempotent-Replayed: true``;
- same key, different request → :class:`UnprocessableError` (422);
- same key while the first request is still being processed → :class:`ConflictError` (409);
- missing key on an endpoint that requires one → :class:`ValidationError` (400).

Keys expire ``ttl`` after the response was stored (default 24 hours); :func:`sweep_expired`
deletes expired rows and :meth:`IdempotencyStore.sweeper` runs it periodically with the app.

Usage in a handler's unit of work::

    key = require_key(request.headers)
    fp = fingerprint("POST", request.url.path, await request.body())
    async with db.transaction() as txn:
        async with store.begin(key, fp, txn) as slot:
            if slot.replay is not None:
                return slot.replay.to_response()
            reservation = await reserve(...)          # the effect, in txn
            slot.complete(201, encode(reservation))   # stored in txn, committed with the effect

In-flight detection: on Postgres a transaction-scoped advisory lock on the key (released by
commit, rollback or a crashed connection — nothing stays locked); on SQLite, whose writers are
serialised anyway, a per-process registry of keys being processed — with commons' service engine
(one writer) a twin inside a write transaction queues behind the first and then gets its stored
answer. Errors raised inside the block
store nothing and roll the effect back, so a retry with the same key runs again.
"""

from __future__ import annotations

import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import msgspec
from piccolo.engine.base import Engine
from piccolo.querystring import QueryString

from caravan_commons.db import is_postgres, rows_as_dicts
from caravan_commons.errors import ConflictError, UnprocessableError, ValidationError

IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"
DEFAULT_TTL = timedelta(hours=24)
MAX_KEY_LENGTH = 255
TABLE = "caravan_idempotency"
#: Response headers kept and replayed (the others describe the original exchange only).
REPLAYED_HEADERS = ("content-type", "location", "etag", "content-language")

_headers_codec = msgspec.json.Decoder(dict[str, str])


def require_key(headers: Mapping[str, str], *, required: bool = True) -> str | None:
    """The Idempotency-Key of a request (an RFC 8941 sf-string; a bare token is accepted too)."""
    raw = headers.get(IDEMPOTENCY_HEADER)
    if raw is None:
        if required:
            raise ValidationError(
                f"this endpoint requires an {IDEMPOTENCY_HEADER} header: a unique string per operation, "
                f'e.g. {IDEMPOTENCY_HEADER}: "8e03978e-40d5-43e8-bc93-6894a57f9324"',
                header=IDEMPOTENCY_HEADER,
            )
        return None
    key = raw.strip()
    if len(key) >= 2 and key[0] == key[-1] == '"':
        key = key[1:-1].replace('\\"', '"').replace("\\\\", "\\")
    if not key or len(key) > MAX_KEY_LENGTH or not key.isprintable():
        raise ValidationError(
            f"{IDEMPOTENCY_HEADER} must be 1 to {MAX_KEY_LENGTH} printable characters",
            header=IDEMPOTENCY_HEADER,
        )
    return key


def header_value(key: str) -> str:
    """``key`` as the sf-string the draft specifies (quoted, with ``\\`` and ``"`` escaped)."""
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def canonical_body(body: bytes) -> bytes:
    """JSON bodies re-encoded with sorted keys and no whitespace; other bodies as they are."""
    if not body.strip():
        return b""
    try:
        value = msgspec.json.decode(body)
    except (msgspec.DecodeError, ValueError):
        return body
    return msgspec.json.encode(value, order="sorted")


def fingerprint(method: str, path: str, body: bytes) -> str:
    """SHA-256 of method, path (with its query, as sent) and canonical body, hex-encoded."""
    digest = hashlib.sha256()
    digest.update(method.upper().encode() + b"\n" + path.encode() + b"\n")
    digest.update(canonical_body(body))
    return digest.hexdigest()


def key_id(key: str, scope: str = "") -> str:
    """The stored primary key: SHA-256 of ``scope`` (e.g. the caller's identity) and ``key``."""
    return hashlib.sha256(scope.encode() + b"\x00" + key.encode()).hexdigest()


#: The keys (their :func:`key_id`) being processed in this process: :func:`once`'s claims.
_IN_FLIGHT: set[str] = set()


def in_flight_error(key: str) -> ConflictError:
    """The 409 for a request whose Idempotency-Key is still being processed."""
    return ConflictError(
        f"a request with this {IDEMPOTENCY_HEADER} is still being processed; retry later",
        idempotency_key=key,
    )


@contextlib.contextmanager
def once(key: str, *, scope: str = "") -> Iterator[str]:
    """Claim ``key`` (within ``scope``: the endpoint and/or the caller) while the block runs: a twin
    request in this process gets :func:`in_flight_error` (409) instead of running the effect again.
    Yields the claim's :func:`key_id`. Across processes the effect's own record settles it (a unique
    row, an advisory lock): this claim only spares the database the race in one process."""
    claim = key_id(key, scope)
    if claim in _IN_FLIGHT:
        raise in_flight_error(key)
    _IN_FLIGHT.add(claim)
    try:
        yield claim
    finally:
        _IN_FLIGHT.discard(claim)


class StoredResponse(msgspec.Struct, frozen=True):
    status: int
    headers: dict[str, str]
    body: bytes

    def to_response(self) -> Any:
        """A Litestar ``Response`` replaying this one."""
        from litestar import Response

        return Response(
            content=self.body, status_code=self.status, headers={**self.headers, REPLAYED_HEADER: "true"}
        )


class Slot:
    """The idempotency record of one request inside its unit of work."""

    def __init__(self, key: str, fingerprint: str, replay: StoredResponse | None) -> None:
        self.key = key
        self.fingerprint = fingerprint
        self.replay = replay
        self.completed: StoredResponse | None = None

    def complete(self, status: int, body: bytes, headers: Mapping[str, str] | None = None) -> None:
        """Record the response; it is written when the block ends, before the transaction commits."""
        if self.replay is not None:
            raise RuntimeError("this request is a replay: return slot.replay instead of completing it")
        kept = {k.lower(): v for k, v in (headers or {}).items() if k.lower() in REPLAYED_HEADERS}
        kept.setdefault("content-type", "application/json")
        self.completed = StoredResponse(status=status, headers=kept, body=bytes(body))


def _advisory_lock_id(kid: str) -> int:
    return int.from_bytes(bytes.fromhex(kid[:16]), "big", signed=True)


class IdempotencyStore:
    """Idempotency records in the service's own database (table ``caravan_idempotency``)."""

    def __init__(
        self, engine: Engine, *, ttl: timedelta = DEFAULT_TTL, clock: Callable[[], float] = time.time
    ):
        if ttl <= timedelta(0):
            raise ValueError("ttl must be positive")
        self.engine = engine
        self.ttl = ttl
        self._clock = clock

    @contextlib.asynccontextmanager
    async def begin(
        self, key: str, fingerprint: str, transaction: Any, *, scope: str = ""
    ) -> AsyncIterator[Slot]:
        """Claim ``key`` inside ``transaction`` (the unit of work of the effect); see the module doc."""
        if self.engine.current_transaction.get() is not transaction or transaction is None:
            raise RuntimeError("IdempotencyStore.begin() must run inside the transaction it is given")
        kid = key_id(key, scope)
        async with contextlib.AsyncExitStack() as claims:
            if is_postgres(self.engine):
                rows = await self._query(
                    "SELECT pg_try_advisory_xact_lock({}) AS locked", _advisory_lock_id(kid)
                )
                if not rows[0]["locked"]:
                    raise in_flight_error(key)
            else:
                claims.enter_context(once(key, scope=f"{TABLE}\n{scope}"))
            slot = Slot(key, fingerprint, await self._stored(kid, key, fingerprint))
            yield slot
            if slot.replay is None:
                if slot.completed is None:
                    raise RuntimeError("the idempotent block ended without slot.complete(status, body)")
                await self._insert(kid, key, scope, slot)

    async def _query(self, sql: str, *args: Any) -> list[dict[str, Any]]:
        return rows_as_dicts(await self.engine.run_querystring(QueryString(sql, *args)))

    async def _stored(self, kid: str, key: str, fingerprint: str) -> StoredResponse | None:
        rows = await self._query(
            f"SELECT fingerprint, status_code, response_headers, response_body, expires_at FROM {TABLE} "
            "WHERE key_id = {}",
            kid,
        )
        if not rows:
            return None
        row = rows[0]
        if row["expires_at"] <= int(self._clock()):
            await self._query(f"DELETE FROM {TABLE} WHERE key_id = {{}}", kid)
            return None
        if row["fingerprint"] != fingerprint:
            raise UnprocessableError(
                f"this {IDEMPOTENCY_HEADER} was already used with a different request; use a new key",
                idempotency_key=key,
            )
        return StoredResponse(
            status=row["status_code"],
            headers=_headers_codec.decode(row["response_headers"]),
            body=bytes(row["response_body"]),
        )

    async def _insert(self, kid: str, key: str, scope: str, slot: Slot) -> None:
        stored = slot.completed
        assert stored is not None
        now = self._clock()
        try:
            await self._query(
                f"INSERT INTO {TABLE} (key_id, scope, idempotency_key, fingerprint, status_code, "
                "response_headers, response_body, created_at, expires_at) "
                "VALUES ({}, {}, {}, {}, {}, {}, {}, {}, {})",
                kid,
                scope,
                key,
                slot.fingerprint,
                stored.status,
                msgspec.json.encode(stored.headers).decode(),
                stored.body,
                datetime.fromtimestamp(now, UTC),
                int(now + self.ttl.total_seconds()),
            )
        except Exception as exc:  # a concurrent twin committed first (unique primary key)
            if "unique" in str(exc).lower() or "duplicate" in str(exc).lower():
                raise in_flight_error(key) from exc
            raise

    async def sweep(self) -> int:
        """Delete expired records; returns how many."""
        return await sweep_expired(self.engine, now=self._clock())

    def sweeper(
        self, _app: object = None, *, interval: float = 3600.0
    ) -> contextlib.AbstractAsyncContextManager[None]:
        """Litestar lifespan hook running :meth:`sweep` every ``interval`` seconds (stopped
        gracefully: a round in progress finishes)."""
        from caravan_commons.background import periodic

        return periodic("idempotency sweep", self.sweep, interval=interval)


async def sweep_expired(engine: Engine, *, now: float | None = None) -> int:
    """``DELETE`` the records whose ``expires_at`` (epoch seconds) has passed."""
    cutoff = int(time.time() if now is None else now)
    rows = await engine.run_querystring(
        QueryString(f"DELETE FROM {TABLE} WHERE expires_at <= {{}} RETURNING key_id", cutoff)
    )
    return len(rows)
