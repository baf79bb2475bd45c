"""The gateway's own endpoints, open to every caller (no credentials): ``/health/live``,
``/health/ready`` (503 while draining or when a route's service has no instance), ``/metrics``
(Prometheus, RED per route prefix) and ``/schema/openapi.json``, one OpenAPI document of every
routed service (each service's ``/schema/openapi.json`` with its paths under the route prefix and
its component names prefixed by the service name; services that cannot be reached are listed
under ``x-caravan-unavailable``).

The document describes what its reader can call: only the operations the foundation model lets the
gateway reach (``gateway_policy``), and of those the ones marked ``x-caravan-scopes`` only for a
reader whose credentials (API key or JWT, sent with the request for the document) hold those
scopes. It declares the gateway's security schemes (``apiKey``: ``X-API-Key``; ``bearer``: an
API key or a JWT as ``Authorization: Bearer``) and requires one of them on every operation.

The admin is given what it reads (routes, resolver, authenticator, signer, the policy and a way to
ask whether the gateway drains), not the gateway.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry

from caravan_commons.errors import ApplicationError
from caravan_commons.identity import rule_matches
from caravan_commons.metrics import render
from caravan_gateway.headers import Headers, get

if TYPE_CHECKING:
    from caravan_commons.discovery import Resolver
    from caravan_commons.identity import Signer
    from caravan_gateway.auth import Authenticator
    from caravan_gateway.routes import RouteTable

_JSON = (b"content-type", b"application/json")
_encoder = msgspec.json.Encoder()
OPENAPI_CACHE_S = 10.0


def _rewrite_refs(node: Any, prefix: str) -> Any:
    if isinstance(node, dict):
        out = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith("#/components/"):
                section, _, name = value[len("#/components/") :].partition("/")
                out[key] = f"#/components/{section}/{prefix}{name}"
            else:
                out[key] = _rewrite_refs(value, prefix)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v, prefix) for v in node]
    return node


SECURITY_SCHEMES = {
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key",
               "description": "An API key (cvk_...), provisioned by the operator"},
    "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT",
               "description": "A JWT (sub: the customer, scope: its scopes) or an API key as a bearer token"},
}  # fmt: skip
#: What the gateway itself may answer to any routed operation, beside what the service documents:
#: 429 (the customer's rate, or too many failed authentications from the address) and 503 (no ready
#: instance, or the circuit to the service open), both as problem documents.
GATEWAY_PROBLEM = "gateway_ProblemDetails"
_PROBLEM_SCHEMA = {
    "type": "object", "required": ["type", "title", "status"],
    "properties": {"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                   "detail": {"type": "string"}, "instance": {"type": "string"}},
    "description": "An RFC 9457 problem document written by the gateway; more members may appear.",
}  # fmt: skip
_PROBLEM_CONTENT = {
    "application/problem+json": {"schema": {"$ref": f"#/components/schemas/{GATEWAY_PROBLEM}"}}
}
GATEWAY_RESPONSES = {
    "429": {"description": "Too many requests (the customer's rate, or failed authentications)",
            "headers": {"Retry-After": {"description": "Seconds to wait", "schema": {"type": "integer"}}},
            "content": _PROBLEM_CONTENT},
    "503": {"description": "Upstream unavailable (no ready instance, or its circuit is open)",
            "content": _PROBLEM_CONTENT},
}  # fmt: skip
_HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
_INTERNAL = ("/health", "/metrics", "/schema")


def _visible(
    rules: list[str] | None, method: str, path: str, operation: dict[str, Any], scopes: frozenset[str]
) -> bool:
    if any(path == p or path.startswith(p + "/") for p in _INTERNAL):
        return False  # never routed by the gateway
    if rules is not None and not any(rule_matches(rule, method, path) for rule in rules):
        return False
    return set(operation.get("x-caravan-scopes") or ()) <= scopes


def merge_openapi(
    documents: dict[str, tuple[str, dict[str, Any]]],
    unavailable: list[str],
    *,
    policy: dict[str, list[str] | None] | None = None,
    scopes: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    """``{service: (route prefix, its OpenAPI document)}`` → one document under the gateway, holding
    the operations the gateway may call (``policy``: service → rules; None: all) that a reader
    with ``scopes`` may use."""
    security: list[dict[str, list[str]]] = [{name: []} for name in SECURITY_SCHEMES]
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Caravan API (through the gateway)", "version": "1"},
        "paths": {},
        "components": {
            "securitySchemes": dict(SECURITY_SCHEMES),
            "schemas": {GATEWAY_PROBLEM: _PROBLEM_SCHEMA},
        },
        "security": security,
    }
    for service, (prefix, doc) in sorted(documents.items()):
        name_prefix = f"{service}_"
        doc = _rewrite_refs(doc, name_prefix)
        rules = None if policy is None else policy.get(service, [])
        for path, item in (doc.get("paths") or {}).items():
            kept = {
                key: value
                for key, value in item.items()
                if key not in _HTTP_METHODS or _visible(rules, key.upper(), path, value, scopes)
            }
            if not any(key in _HTTP_METHODS for key in kept):
                continue
            for key in _HTTP_METHODS:
                if key in kept:
                    responses = {**GATEWAY_RESPONSES, **(kept[key].get("responses") or {})}
                    kept[key] = {**kept[key], "security": security, "responses": responses}
            merged["paths"][prefix + (path if path != "/" else "")] = kept
        for section, entries in (doc.get("components") or {}).items():
            target = merged["components"].setdefault(section, {})
            for name, value in entries.items():
                target[name_prefix + name] = value
    if unavailable:
        merged["x-caravan-unavailable"] = sorted(unavailable)
    return merged


class Admin:
    paths = frozenset({"/health/live", "/health/ready", "/metrics", "/schema/openapi.json"})

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        routes: RouteTable,
        resolver: Resolver,
        authenticator: Authenticator,
        signer: Signer | None,
        policy: dict[str, list[str] | None] | None,
        draining: Callable[[], bool],
    ) -> None:
        self.registry = registry
        self.routes = routes
        self.resolver = resolver
        self.auth = authenticator
        self.signer = signer
        #: the foundation model's gateway flows (``GatewaySettings.gateway_policy``)
        self.policy = policy
        self.draining = draining
        self._openapi: tuple[float, tuple[dict[str, Any], list[str]]] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def serve(
        self, path: str, method: bytes, headers: Headers | None = None
    ) -> tuple[int, Headers, bytes]:
        if method not in (b"GET", b"HEAD"):
            return 405, [_JSON, (b"allow", b"GET, HEAD")], b'{"status":405,"title":"Method not allowed"}'
        if path == "/health/live":
            return 200, [_JSON], b'{"status":"ok","service":"gateway"}'
        if path == "/health/ready":
            return await self._ready()
        if path == "/metrics":
            body, content_type = render(self.registry)
            return 200, [(b"content-type", content_type.encode())], body
        return 200, [_JSON], await self._openapi_document(self._reader_scopes(headers or []))

    def _reader_scopes(self, headers: Headers) -> frozenset[str]:
        """The scopes of the document's reader: none without (valid) credentials."""
        authorization, api_key = get(headers, b"authorization"), get(headers, b"x-api-key")
        if authorization is None and api_key is None:
            return frozenset()
        try:
            return frozenset(self.auth.authenticate(authorization, api_key).scopes)
        except ApplicationError:
            return frozenset()

    async def _ready(self) -> tuple[int, Headers, bytes]:
        if self.draining():
            return 503, [_JSON], b'{"status":"draining"}'
        missing = []
        for service in self.routes.services:
            try:
                if not await self.resolver.resolve(service):
                    missing.append(service)
            except ApplicationError:
                missing.append(service)
        doc = {"status": "ok" if not missing else "degraded", "services_without_instances": missing}
        return 200, [_JSON], _encoder.encode(doc)

    async def _openapi_document(self, scopes: frozenset[str]) -> bytes:
        now = time.monotonic()
        if self._openapi is not None and self._openapi[0] > now:
            return self._render(self._openapi[1], scopes)
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        prefixes: dict[str, str] = {}
        for prefix in self.routes.prefixes:
            prefixes.setdefault(self.routes.match(prefix).service, prefix)  # type: ignore[union-attr]

        async def fetch(service: str) -> dict[str, Any] | None:
            try:
                instances = [i for i in await self.resolver.resolve(service) if i.healthy]
                if not instances:
                    return None
                headers = (
                    self.signer.headers_for(service, "GET", "/schema/openapi.json")
                    if self.signer is not None
                    else {}
                )
                assert self._session is not None
                async with self._session.get(
                    f"{instances[0].base_url}/schema/openapi.json", headers=headers
                ) as r:
                    if r.status != 200:
                        return None
                    return msgspec.json.decode(await r.read())
            except (aiohttp.ClientError, TimeoutError, OSError, msgspec.DecodeError):
                return None

        services = sorted(prefixes)
        results = await asyncio.gather(*(fetch(s) for s in services))
        docs = {s: (prefixes[s], d) for s, d in zip(services, results, strict=True) if isinstance(d, dict)}
        unavailable = [s for s in services if s not in docs]
        # a document missing a service is served but not kept: the next request asks again
        self._openapi = None if unavailable else (now + OPENAPI_CACHE_S, (docs, unavailable))
        return self._render((docs, unavailable), scopes)

    def _render(self, fetched: tuple[dict[str, Any], list[str]], scopes: frozenset[str]) -> bytes:
        docs, unavailable = fetched
        return _encoder.encode(merge_openapi(docs, unavailable, policy=self.policy, scopes=scopes))

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
