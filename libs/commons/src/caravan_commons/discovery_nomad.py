"""The ``nomad`` discovery backend (extra ``nomad``): Nomad's native service discovery.

Through python-nomad 2.1.0, which has no helper for it, via the generic ``request()`` of its API
classes:

- ``GET /v1/service/<name>`` lists the registrations (Address, Port, AllocID, Tags, ...) **without
  any health filtering**;
- so each allocation's check results are read from ``GET /v1/client/allocation/<alloc>/checks``
  (Nomad's ``api.Allocations().Checks``; a map of check id → ``{Service, Status, Mode, ...}``),
  and an instance counts as healthy only when every check of *its* service in that allocation
  has ``Status == "success"`` ("pending" and "failure" exclude it). An instance whose service
  declares no check is kept (Nomad knows nothing against it); one whose allocation is gone (404)
  is dropped.

TLS: python-nomad defaults to ``verify=False``. :class:`NomadConfig` passes the CA file
(``NOMAD_CACERT``) — or ``True``, the system CAs — explicitly; it never leaves verification off
unless told to (``verify=False``).

Answers are cached per service for ``refresh`` seconds; within that the hot path does no I/O.
A failed refresh keeps serving the last answer (and logs), or raises when there never was one.
"""

from __future__ import annotations

import asyncio
import importlib
import time
from collections.abc import Callable, Mapping
from types import ModuleType
from typing import Any
from urllib.parse import urlsplit

import msgspec
from loguru import logger

from caravan_commons.discovery import DiscoveryConfigError, Instance, Resolver
from caravan_commons.errors import UpstreamUnavailableError

INSTALL_HINT = "install caravan-commons[nomad] (python-nomad==2.1.0)"


class NomadError(Exception):
    """Nomad refused a call or could not be reached; the message is one line."""


class NomadConfig(msgspec.Struct, frozen=True, kw_only=True):
    address: str = "http://127.0.0.1:4646"
    token: str | None = None
    namespace: str | None = None
    region: str | None = None
    ca_file: str | None = None
    client_cert: str | None = None
    client_key: str | None = None
    verify: bool = True
    timeout: float = 5.0
    #: How long a service's answer is reused before asking Nomad again.
    refresh: float = 2.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"nomad address {self.address!r} must be http(s)://host:port")
        if self.timeout <= 0 or self.refresh < 0:
            raise ValueError("nomad timeout must be positive and refresh >= 0")
        if bool(self.client_cert) != bool(self.client_key):
            raise ValueError("nomad client_cert and client_key go together")

    @property
    def tls_verify(self) -> bool | str:
        """requests' ``verify=``: the CA path when given, else ``verify`` (python-nomad defaults to False)."""
        return self.ca_file if (self.ca_file and self.verify) else self.verify

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **explicit: Any) -> NomadConfig:
        """Nomad's own variables as defaults (``NOMAD_ADDR``, ``NOMAD_TOKEN``, ``NOMAD_NAMESPACE``,
        ``NOMAD_REGION``, ``NOMAD_CACERT``, ``NOMAD_CLIENT_CERT``, ``NOMAD_CLIENT_KEY``,
        ``NOMAD_SKIP_VERIFY``); ``explicit`` values (not None) win."""
        names = {
            "NOMAD_ADDR": "address",
            "NOMAD_TOKEN": "token",
            "NOMAD_NAMESPACE": "namespace",
            "NOMAD_REGION": "region",
            "NOMAD_CACERT": "ca_file",
            "NOMAD_CLIENT_CERT": "client_cert",
            "NOMAD_CLIENT_KEY": "client_key",
        }
        values: dict[str, Any] = {field: environ[var] for var, field in names.items() if environ.get(var)}
        if environ.get("NOMAD_SKIP_VERIFY", "").lower() in ("1", "true"):
            values["verify"] = False
        values.update({k: v for k, v in explicit.items() if v is not None})
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise DiscoveryConfigError(f"nomad: {exc}") from exc


def load_nomad_module() -> ModuleType:
    try:
        return importlib.import_module("nomad")
    except ImportError as exc:
        raise DiscoveryConfigError(f"the nomad backend needs python-nomad: {INSTALL_HINT}") from exc


class NomadAdapter:
    """The only code that touches python-nomad. Synchronous: call it from a thread in async code."""

    def __init__(self, config: NomadConfig, *, module: ModuleType | None = None) -> None:
        self.config = config
        self._nomad = module or load_nomad_module()
        cert = (config.client_cert, config.client_key) if config.client_cert else ()
        self.client = self._nomad.Nomad(
            address=config.address.rstrip("/"),
            token=config.token,
            namespace=config.namespace,
            region=config.region,
            verify=config.tls_verify,
            cert=cert,
            timeout=config.timeout,
        )
        base = importlib.import_module("nomad.api.base")

        class _Service(base.Requester):  # type: ignore[name-defined]
            ENDPOINT = "service"

        self._service = _Service(**self.client.requester_settings)

    def _get(self, what: str, requester: Any, *path: str, params: dict[str, str] | None = None) -> Any:
        exceptions = self._nomad.api.exceptions
        try:
            response = requester.request(*path, method="get", params=params, headers={})
            return response.json()
        except exceptions.URLNotFoundNomadException:
            return None
        except exceptions.BaseNomadException as exc:
            detail = getattr(exc, "nomad_resp", exc)
            text = getattr(detail, "text", None) or str(detail)
            status = getattr(detail, "status_code", "")
            raise NomadError(f"nomad {what}: {status} {' '.join(str(text).split())[:300]}".strip()) from exc
        except ValueError as exc:  # not JSON
            raise NomadError(f"nomad {what}: the answer is not JSON") from exc

    def registrations(self, service: str) -> list[dict[str, Any]]:
        """``GET /v1/service/<name>`` — every registration, healthy or not."""
        params = {"namespace": self.config.namespace} if self.config.namespace else None
        found = self._get(f"service {service}", self._service, service, params=params)
        return list(found or [])

    def checks(self, alloc_id: str) -> dict[str, dict[str, Any]] | None:
        """``GET /v1/client/allocation/<id>/checks``; None when the allocation is unknown."""
        found = self._get(
            f"checks of allocation {alloc_id}", self.client.client.allocation, alloc_id, "checks"
        )
        return None if found is None else dict(found)

    def healthy(self, service: str) -> list[Instance]:
        instances: list[Instance] = []
        checks_by_alloc: dict[str, dict[str, dict[str, Any]] | None] = {}
        for reg in self.registrations(service):
            alloc = str(reg.get("AllocID") or "")
            if alloc not in checks_by_alloc:
                checks_by_alloc[alloc] = self.checks(alloc) if alloc else {}
            checks = checks_by_alloc[alloc]
            if checks is None:
                continue  # the allocation is gone
            mine = [c for c in checks.values() if c.get("Service") == service]
            if any(c.get("Status") != "success" for c in mine):
                continue
            tags = [str(t) for t in reg.get("Tags") or []]
            instances.append(
                Instance(
                    service=service,
                    instance_id=str(reg.get("ID") or f"{alloc}:{reg.get('Port')}"),
                    host=str(reg.get("Address") or ""),
                    port=int(reg.get("Port") or 0),
                    scheme="https" if "https" in tags else "http",
                    meta={"alloc_id": alloc, "tags": ",".join(tags)},
                )
            )
        return instances


class NomadResolver(Resolver):
    """Healthy instances from Nomad's native service discovery, cached for ``config.refresh`` seconds."""

    def __init__(self, adapter: NomadAdapter, *, clock: Callable[[], float] = time.monotonic) -> None:
        self.adapter = adapter
        self._clock = clock
        self._cache: dict[str, tuple[float, list[Instance]]] = {}
        self._inflight: dict[str, asyncio.Future[list[Instance]]] = {}

    async def resolve(self, service: str) -> list[Instance]:
        cached = self._cache.get(service)
        if cached is not None and self._clock() < cached[0]:
            return list(cached[1])
        pending = self._inflight.get(service)
        if pending is None:
            pending = self._inflight[service] = asyncio.ensure_future(
                asyncio.to_thread(self.adapter.healthy, service)
            )
        try:
            instances = await asyncio.shield(pending)
        except NomadError as exc:
            if cached is not None:
                logger.warning("nomad discovery of {}: {} (serving the last answer)", service, exc)
                self._cache[service] = (self._clock() + self.adapter.config.refresh, cached[1])
                return list(cached[1])
            raise UpstreamUnavailableError(f"cannot resolve {service!r}: {exc}", upstream=service) from exc
        finally:
            if self._inflight.get(service) is pending and pending.done():
                del self._inflight[service]
        self._cache[service] = (self._clock() + self.adapter.config.refresh, instances)
        return list(instances)
