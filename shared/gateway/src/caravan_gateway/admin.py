"""The gateway's own endpoints, open to every caller (no credentials): ``/health/live``,
``/health/ready`` (503 while draining or when a route's service has no instance), ``/metrics``
(Prometheus, RED per route prefix) and ``/schema/openapi.json``, one OpenAPI document of every
routed service (each service's ``/schema/openapi.json`` with its paths under the route prefix and
its component names prefixed by the service name; services that cannot be reached are listed
under ``x-caravan-unavailable``).
"""

from __future__ import annotations

import asyncio
import time
from typing import TYPE_CHECKING, Any

import aiohttp
import msgspec
from prometheus_client import CollectorRegistry

from caravan_commons.errors import ApplicationError
from caravan_commons.metrics import render
from caravan_gateway.headers import Headers

if TYPE_CHECKING:
    from caravan_gateway.gateway import Gateway

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


def merge_openapi(documents: dict[str, tuple[str, dict[str, Any]]], unavailable: list[str]) -> dict[str, Any]:
    """``{service: (route prefix, its OpenAPI document)}`` → one document under the gateway."""
    merged: dict[str, Any] = {
        "openapi": "3.1.0",
        "info": {"title": "Caravan API (through the gateway)", "version": "1"},
        "paths": {},
        "components": {},
    }
    for service, (prefix, doc) in sorted(documents.items()):
        name_prefix = f"{service}_"
        doc = _rewrite_refs(doc, name_prefix)
        for path, item in (doc.get("paths") or {}).items():
            merged["paths"][prefix + (path if path != "/" else "")] = item
        for section, entries in (doc.get("components") or {}).items():
            target = merged["components"].setdefault(section, {})
            for name, value in entries.items():
                target[name_prefix + name] = value
    if unavailable:
        merged["x-caravan-unavailable"] = sorted(unavailable)
    return merged


class Admin:
    paths = frozenset({"/health/live", "/health/ready", "/metrics", "/schema/openapi.json"})

    def __init__(self, gateway: Gateway, registry: CollectorRegistry) -> None:
        self.gateway = gateway
        self.registry = registry
        self._openapi: tuple[float, bytes] | None = None
        self._session: aiohttp.ClientSession | None = None

    async def serve(self, path: str, method: bytes) -> tuple[int, Headers, bytes]:
        if method not in (b"GET", b"HEAD"):
            return 405, [_JSON, (b"allow", b"GET, HEAD")], b'{"status":405,"title":"Method not allowed"}'
        if path == "/health/live":
            return 200, [_JSON], b'{"status":"ok","service":"gateway"}'
        if path == "/health/ready":
            return await self._ready()
        if path == "/metrics":
            body, content_type = render(self.registry)
            return 200, [(b"content-type", content_type.encode())], body
        return 200, [_JSON], await self._openapi_document()

    async def _ready(self) -> tuple[int, Headers, bytes]:
        gw = self.gateway
        if gw.draining:
            return 503, [_JSON], b'{"status":"draining"}'
        missing = []
        for service in gw.routes.services:
            try:
                if not await gw.resolver.resolve(service):
                    missing.append(service)
            except ApplicationError:
                missing.append(service)
        doc = {"status": "ok" if not missing else "degraded", "services_without_instances": missing}
        return 200, [_JSON], _encoder.encode(doc)

    async def _openapi_document(self) -> bytes:
        now = time.monotonic()
        if self._openapi is not None and self._openapi[0] > now:
            return self._openapi[1]
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=3))
        gw = self.gateway
        prefixes: dict[str, str] = {}
        for prefix in gw.routes.prefixes:
            prefixes.setdefault(gw.routes.match(prefix).service, prefix)  # type: ignore[union-attr]

        async def fetch(service: str) -> dict[str, Any] | None:
            try:
                instances = [i for i in await gw.resolver.resolve(service) if i.healthy]
                if not instances:
                    return None
                headers = gw.signer.headers_for(service) if gw.signer is not None else {}
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
        body = _encoder.encode(merge_openapi(docs, unavailable))
        # a document missing a service is served but not kept: the next request asks again
        self._openapi = None if unavailable else (now + OPENAPI_CACHE_S, body)
        return body

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()
