"""Header handling of the proxy path, as pure functions over ``[(name, value)]`` byte pairs.

Names arrive lower-cased (the connection lower-cases them while parsing). Per RFC 9110 §7.6.1 a
proxy drops the hop-by-hop fields — ``Connection``, every field the ``Connection`` header names,
``Keep-Alive``, ``Proxy-Connection``, ``TE``, ``Transfer-Encoding``, ``Upgrade`` — in both
directions, and sets its own framing. Towards a service the gateway also drops what only it may
assert (``X-Caravan-Identity``, ``X-Caravan-Customer``, ``X-Caravan-Scopes``), the caller's
credentials (``Authorization``, ``X-Api-Key``), ``Host``, ``Expect`` (answered by the gateway)
and the trace and deadline headers it re-issues; and it appends ``X-Forwarded-For`` and sets
``X-Forwarded-Proto`` / ``X-Forwarded-Host``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

Headers = list[tuple[bytes, bytes]]

HOP_BY_HOP = frozenset(
    {b"connection", b"keep-alive", b"proxy-connection", b"te", b"transfer-encoding", b"upgrade", b"trailer"}
)
#: Headers a client may never set on the way in: the gateway alone asserts them.
GATEWAY_ASSERTED = frozenset({b"x-caravan-identity", b"x-caravan-customer", b"x-caravan-scopes"})
#: Request headers the gateway consumes or re-issues itself.
_CONSUMED = frozenset(
    {b"host", b"authorization", b"x-api-key", b"expect", b"content-length", b"traceparent", b"tracestate",
     b"x-request-timeout-ms", b"x-forwarded-for", b"x-forwarded-proto", b"x-forwarded-host", b"x-request-id"}
)  # fmt: skip
#: Answer headers the gateway sets itself (framing, and the request id it echoes once).
_SET_ON_ANSWERS = frozenset({b"content-length", b"x-request-id"})
#: A client's X-Request-Id is kept only when it looks like an id (a UUID, hex, a ULID...): letters,
#: digits, '-' and '_', 8-64 of them; anything else is replaced by one of the gateway's own.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9_-]{8,64}")
_TOKEN_SPLIT = re.compile(rb"\s*,\s*")


def connection_tokens(headers: Iterable[tuple[bytes, bytes]]) -> frozenset[bytes]:
    """The field names listed in every ``Connection`` header (lower-cased)."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name == b"connection":
            tokens.update(t.lower() for t in _TOKEN_SPLIT.split(value.strip()) if t)
    return frozenset(tokens)


def get(headers: Sequence[tuple[bytes, bytes]], name: bytes) -> bytes | None:
    """The first value of ``name`` (lower-case), or None."""
    for key, value in headers:
        if key == name:
            return value
    return None


def valid_request_id(value: bytes | None) -> bool:
    return value is not None and _VALID_REQUEST_ID.fullmatch(value) is not None


def request_id(headers: Sequence[tuple[bytes, bytes]]) -> bytes | None:
    """The caller's X-Request-Id when it looks like an id; None when there is none to keep."""
    value = get(headers, b"x-request-id")
    return value if valid_request_id(value) else None


def upstream_request_headers(
    headers: Sequence[tuple[bytes, bytes]],
    *,
    client_ip: bytes,
    proto: bytes = b"http",
    request_id: bytes,
    extra: Iterable[tuple[bytes, bytes]] = (),
) -> Headers:
    """The end-to-end request headers to send to a service, plus the gateway's own."""
    dropped = connection_tokens(headers) if any(n == b"connection" for n, _ in headers) else frozenset()
    out: Headers = []
    forwarded_for: bytes | None = None
    host = b""
    for name, value in headers:
        if name in _CONSUMED or name in HOP_BY_HOP or name in GATEWAY_ASSERTED or name in dropped:
            if name == b"x-forwarded-for":
                forwarded_for = value if forwarded_for is None else forwarded_for + b", " + value
            elif name == b"host":
                host = value
            continue
        out.append((name, value))
    out.append(
        (b"x-forwarded-for", client_ip if forwarded_for is None else forwarded_for + b", " + client_ip)
    )
    out.append((b"x-forwarded-proto", proto))
    if host:
        out.append((b"x-forwarded-host", host))
    out.append((b"x-request-id", request_id))
    out.extend(extra)
    return out


def downstream_response_headers(headers: Sequence[tuple[bytes, bytes]]) -> Headers:
    """The end-to-end answer headers to pass back (framing and X-Request-Id are set by the gateway)."""
    dropped = connection_tokens(headers) if any(n == b"connection" for n, _ in headers) else frozenset()
    return [
        (name, value)
        for name, value in headers
        if name not in HOP_BY_HOP and name not in _SET_ON_ANSWERS and name not in dropped
    ]


def serialize(first_line: bytes, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
    """A complete HTTP/1.1 message head."""
    parts = [first_line, b"\r\n"]
    for name, value in headers:
        parts += (name, b": ", value, b"\r\n")
    parts.append(b"\r\n")
    return b"".join(parts)
