"""The ``consul`` discovery backend (extra ``consul``): registration, healthy instances, intentions.

Everything goes through :class:`ConsulAdapter`, a thin layer over the ``consul`` module API that
both clients share — python-consul2 0.1.5 (named by the design; unmaintained) and py-consul 1.8.0
(its maintained successor). Both install the module ``consul``: pin exactly one per environment.
The adapter irons out what differs between them:

- **Address and token.** Both clients let ``CONSUL_HTTP_TOKEN`` override an explicit token, and
  python-consul2 lets ``CONSUL_HTTP_ADDR`` override an explicit address. The adapter sets the
  address, scheme, TLS verification and token it was given on the client after constructing it,
  so :class:`ConsulConfig` decides (it reads those variables itself in :meth:`ConsulConfig.from_env`,
  an explicit value winning).
- **Blocking-query timeout.** Consul holds a blocking query for ``wait`` plus up to ``wait/16`` of
  jitter. py-consul adds that to its per-request timeout itself; python-consul2 has one timeout
  for every request, which the adapter sets above ``wait * 17/16``.
- **Check payload.** python-consul2 sends ``"check": {...}``, py-consul ``"checks": [...]``; Consul
  accepts both (field names case-insensitively) and rejects unknown fields with 400.
- **Intentions.** Name-based intentions (``/v1/connect/intentions/exact``, Consul 1.9+) exist only
  in py-consul (``connect.intentions.upsert/read/delete``); under python-consul2, which has only
  the deprecated ID-based calls, :meth:`ConsulAdapter.upsert_intention` raises
  :class:`ConsulFeatureError` saying so.

:class:`ConsulResolver` keeps a blocking-query cache of each service's passing instances: one
daemon thread per watched service runs ``GET /v1/health/service/<name>?passing&index=&wait=``,
resets the index when it goes backwards, never blocks on an index below 1, backs off (capped
exponential, jittered) on errors while serving the last known instances, and hands the hot path
a ready list without any I/O.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import inspect
import random
import re
import threading
from collections.abc import AsyncIterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Literal
from urllib.parse import urlsplit

import msgspec
from loguru import logger

from caravan_commons.discovery import DiscoveryConfigError, Instance, Resolver
from caravan_commons.errors import UpstreamUnavailableError

PY_CONSUL = "py-consul"
PYTHON_CONSUL2 = "python-consul2"
INSTALL_HINT = (
    "install caravan-commons[consul] with exactly one client: py-consul==1.8.0 or python-consul2==0.1.5"
)

_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_DURATION = re.compile(r"^(\d+(\.\d+)?(ns|us|µs|ms|s|m|h))+$")


class ConsulError(Exception):
    """Consul refused a call or could not be reached; the message is one line."""


class ConsulFeatureError(ConsulError):
    """The installed client cannot do what was asked (e.g. name-based intentions)."""


def go_duration(seconds: float) -> str:
    """Seconds as a Go duration string Consul accepts (``"1.5s"``, ``"30s"``)."""
    if seconds <= 0:
        raise ValueError(f"a duration must be positive, got {seconds!r}")
    return f"{seconds:g}s" if seconds >= 1 else f"{round(seconds * 1000)}ms"


class ConsulConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Where the Consul agent is and how to talk to it. Times in seconds."""

    #: ``http(s)://host:port`` of the local agent.
    address: str = "http://127.0.0.1:8500"
    token: str | None = None
    datacenter: str | None = None
    #: CA bundle for https (``CONSUL_CACERT``); ``verify=False`` only for throwaway dev agents.
    ca_file: str | None = None
    verify: bool = True
    #: Blocking-query wait (Consul's own default is 5 minutes; its maximum 10).
    wait: float = 30.0
    #: HTTP timeout of calls that do not block, and the margin added to blocking ones.
    request_timeout: float = 5.0

    def __post_init__(self) -> None:
        parts = urlsplit(self.address)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"consul address {self.address!r} must be http(s)://host:port")
        try:
            parts.port  # noqa: B018 - validates the port
        except ValueError as exc:
            raise ValueError(f"consul address {self.address!r} has an invalid port") from exc
        if not 0 < self.wait <= 600:
            raise ValueError(f"consul wait must be in (0, 600] seconds, got {self.wait!r}")
        if self.request_timeout <= 0:
            raise ValueError("consul request_timeout must be positive")

    @property
    def scheme(self) -> str:
        return urlsplit(self.address).scheme

    @property
    def host(self) -> str:
        return urlsplit(self.address).hostname or "127.0.0.1"

    @property
    def port(self) -> int:
        return urlsplit(self.address).port or (443 if self.scheme == "https" else 8500)

    @property
    def tls_verify(self) -> bool | str:
        """What requests' ``verify=`` gets: the CA path when given, else ``verify``."""
        return self.ca_file if (self.ca_file and self.verify) else self.verify

    @property
    def blocking_timeout(self) -> float:
        """HTTP timeout for a blocking query: above ``wait * 17/16`` (wait plus Consul's jitter)."""
        return self.wait * 17 / 16 + self.request_timeout

    @classmethod
    def from_env(cls, environ: Mapping[str, str], **explicit: Any) -> ConsulConfig:
        """Consul's own variables as defaults; ``explicit`` values (not None) win.

        ``CONSUL_HTTP_ADDR`` (``host:port`` or ``scheme://host:port``), ``CONSUL_HTTP_SSL``,
        ``CONSUL_HTTP_TOKEN``, ``CONSUL_CACERT``, ``CONSUL_HTTP_SSL_VERIFY``.
        """
        values: dict[str, Any] = {}
        addr = environ.get("CONSUL_HTTP_ADDR", "").strip()
        if addr:
            if "://" not in addr:
                scheme = "https" if environ.get("CONSUL_HTTP_SSL", "").lower() == "true" else "http"
                addr = f"{scheme}://{addr}"
            values["address"] = addr
        if environ.get("CONSUL_HTTP_TOKEN"):
            values["token"] = environ["CONSUL_HTTP_TOKEN"]
        if environ.get("CONSUL_CACERT"):
            values["ca_file"] = environ["CONSUL_CACERT"]
        if environ.get("CONSUL_HTTP_SSL_VERIFY"):
            values["verify"] = environ["CONSUL_HTTP_SSL_VERIFY"].lower() != "false"
        values.update({k: v for k, v in explicit.items() if v is not None})
        try:
            return cls(**values)
        except (TypeError, ValueError) as exc:
            raise DiscoveryConfigError(f"consul: {exc}") from exc


class ServiceRegistration(msgspec.Struct, frozen=True, kw_only=True):
    """An instance to register with the local agent, with its HTTP readiness check."""

    name: str
    service_id: str
    address: str
    port: int
    tags: list[str] = msgspec.field(default_factory=list)
    meta: dict[str, str] = msgspec.field(default_factory=dict)
    check_path: str = "/health/ready"
    check_scheme: Literal["http", "https"] = "http"
    check_interval: str = "5s"
    check_timeout: str = "2s"
    #: Consul removes an instance whose check stayed critical this long (its minimum is 1m).
    deregister_after: str = "1m"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ValueError(f"service name {self.name!r} must match {_NAME.pattern}")
        if not self.service_id or "/" in self.service_id:
            raise ValueError(f"service id {self.service_id!r} must be non-empty and without '/'")
        if not self.address:
            raise ValueError("address is required")
        if not 0 < self.port < 65536:
            raise ValueError(f"port {self.port!r} must be in 1..65535")
        if not self.check_path.startswith("/"):
            raise ValueError(f"check_path {self.check_path!r} must start with '/'")
        for name in ("check_interval", "check_timeout", "deregister_after"):
            if not _DURATION.match(getattr(self, name)):
                raise ValueError(f"{name} {getattr(self, name)!r} is not a duration such as '5s' or '1m'")

    @property
    def check_url(self) -> str:
        host = f"[{self.address}]" if ":" in self.address else self.address
        return f"{self.check_scheme}://{host}:{self.port}{self.check_path}"


def load_consul_module() -> ModuleType:
    try:
        return importlib.import_module("consul")
    except ImportError as exc:
        raise DiscoveryConfigError(f"the consul backend needs a Consul client: {INSTALL_HINT}") from exc


def client_flavour(module: ModuleType) -> str:
    """Which client provides the ``consul`` module: py-consul or python-consul2."""
    params = inspect.signature(module.Consul.__init__).parameters
    return PY_CONSUL if "connections_timeout" in params else PYTHON_CONSUL2


class ConsulAdapter:
    """The only code that touches the ``consul`` module. Synchronous (the clients use requests):
    call it from a thread in async code, as :class:`ConsulResolver` does."""

    def __init__(self, config: ConsulConfig, *, module: ModuleType | None = None) -> None:
        self.config = config
        self._consul = module or load_consul_module()
        self.flavour = client_flavour(self._consul)
        cfg = config
        try:
            if self.flavour == PY_CONSUL:
                client = self._consul.Consul(
                    host=cfg.host,
                    port=cfg.port,
                    token=cfg.token,
                    scheme=cfg.scheme,
                    dc=cfg.datacenter,
                    verify=cfg.tls_verify,
                    connections_timeout=cfg.request_timeout,
                )
                client.http = client.http_connect(cfg.host, cfg.port, cfg.scheme, cfg.tls_verify)
            else:
                client = self._consul.Consul(
                    host=cfg.host,
                    port=cfg.port,
                    token=cfg.token,
                    scheme=cfg.scheme,
                    dc=cfg.datacenter,
                    verify=cfg.tls_verify,
                    timeout=cfg.blocking_timeout,
                )
                # python-consul2 takes CONSUL_HTTP_ADDR over the address it is given: set ours again.
                client.http = client.http_connect(
                    cfg.host, cfg.port, cfg.scheme, cfg.tls_verify, None, cfg.blocking_timeout
                )
        except self._consul.ConsulException as exc:
            raise ConsulError(f"consul client: {exc}") from exc
        # Both clients take CONSUL_HTTP_TOKEN over an explicit token: the configured one wins.
        client.token = cfg.token
        client.scheme = cfg.scheme
        self.client = client

    # -- helpers ------------------------------------------------------------------------------
    def _call(self, what: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (self._consul.ConsulException, OSError) as exc:  # requests' errors are OSErrors
            raise ConsulError(f"consul {what}: {_one_line(exc)}") from exc

    def http_timeout(self, *, blocking: bool) -> float | None:
        """The HTTP timeout the client will use (for tests and diagnostics)."""
        http = self.client.http
        if self.flavour == PY_CONSUL:
            params = [("index", "1"), ("wait", go_duration(self.config.wait))] if blocking else []
            return http.timeout(params)
        return http.timeout

    @property
    def supports_named_intentions(self) -> bool:
        return hasattr(self.client.connect.intentions, "upsert")

    # -- registration -------------------------------------------------------------------------
    def register(self, registration: ServiceRegistration) -> None:
        """``PUT /v1/agent/service/register`` with an HTTP check and DeregisterCriticalServiceAfter."""
        r = registration
        check = self._consul.Check.http(
            r.check_url, r.check_interval, timeout=r.check_timeout, deregister=r.deregister_after
        )
        ok = self._call(
            f"register {r.service_id}",
            self.client.agent.service.register,
            r.name,
            service_id=r.service_id,
            address=r.address,
            port=r.port,
            tags=list(r.tags) or None,
            meta=dict(r.meta) or None,
            check=check,
        )
        if ok is False:
            raise ConsulError(f"consul register {r.service_id}: the agent did not accept it")

    def deregister(self, service_id: str) -> bool:
        """Remove an instance from the agent; False when the agent did not know it (idempotent)."""
        return bool(self._call(f"deregister {service_id}", self.client.agent.service.deregister, service_id))

    # -- resolution ---------------------------------------------------------------------------
    def healthy(
        self, service: str, *, index: int | None = None, wait: float | None = None
    ) -> tuple[int, list[Instance]]:
        """Passing instances of ``service`` and the X-Consul-Index (blocking when ``index`` >= 1)."""
        kwargs: dict[str, Any] = {"passing": True}
        if index is not None and index >= 1:
            kwargs["index"] = index
            kwargs["wait"] = go_duration(wait or self.config.wait)
        try:
            raw_index, entries = self._call(
                f"health of {service}", self.client.health.service, service, **kwargs
            )
            new_index = int(raw_index)
        except (KeyError, TypeError, ValueError) as exc:
            raise ConsulError(f"consul health of {service}: no usable X-Consul-Index ({exc!r})") from exc
        return new_index, [_instance(service, e) for e in entries or ()]

    # -- intentions ---------------------------------------------------------------------------
    def _intentions(self) -> Any:
        intentions = self.client.connect.intentions
        if not hasattr(intentions, "upsert"):
            raise ConsulFeatureError(
                f"name-based intentions need py-consul (installed: {self.flavour}, which has only the "
                "deprecated ID-based intention calls); install py-consul==1.8.0"
            )
        return intentions

    def upsert_intention(self, source: str, destination: str, action: Literal["allow", "deny"]) -> None:
        """``PUT /v1/connect/intentions/exact?source=&destination=`` (name-based, Consul 1.9+)."""
        if action not in ("allow", "deny"):
            raise ValueError(f"intention action must be 'allow' or 'deny', got {action!r}")
        intentions = self._intentions()
        self._call(
            f"intention {source} -> {destination}", intentions.upsert, source, destination, action=action
        )

    def intention(self, source: str, destination: str) -> str | None:
        """The action of the exact intention, or None when there is none."""
        intentions = self._intentions()
        try:
            found = intentions.read(source, destination)
        except self._consul.NotFound:
            return None
        except (self._consul.ConsulException, OSError) as exc:
            raise ConsulError(f"consul intention {source} -> {destination}: {_one_line(exc)}") from exc
        return None if not found else str(found.get("Action"))

    def delete_intention(self, source: str, destination: str) -> None:
        intentions = self._intentions()
        self._call(f"delete intention {source} -> {destination}", intentions.delete, source, destination)


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _instance(service: str, entry: Mapping[str, Any]) -> Instance:
    svc = entry.get("Service") or {}
    node = entry.get("Node") or {}
    meta = {str(k): str(v) for k, v in (svc.get("Meta") or {}).items()}
    return Instance(
        service=service,
        instance_id=str(svc.get("ID") or f"{svc.get('Address')}:{svc.get('Port')}"),
        host=svc.get("Address") or node.get("Address") or "",
        port=int(svc.get("Port") or 0),
        scheme="https" if meta.get("scheme") == "https" else "http",
        meta=meta,
    )


# ------------------------------------------------------------------------------ the cache


@dataclass
class WatchStats:
    """What a watch did (for tests, metrics and debugging)."""

    requests: int = 0
    errors: int = 0
    index_resets: int = 0
    sent_indexes: list[int | None] = field(default_factory=list)
    backoffs: list[float] = field(default_factory=list)


class _Watch:
    def __init__(self, resolver: ConsulResolver, service: str) -> None:
        self.service = service
        self.resolver = resolver
        self.index = 0
        self.instances: tuple[Instance, ...] | None = None
        self.error: str | None = None
        self.first: Future[None] = Future()
        self.stats = WatchStats()
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name=f"consul-watch-{service}", daemon=True)

    def _run(self) -> None:
        adapter, r = self.resolver.adapter, self.resolver
        failures = 0
        while not self.stop.is_set():
            sent = self.index if self.index >= 1 else None
            self.stats.requests += 1
            if len(self.stats.sent_indexes) < 1000:
                self.stats.sent_indexes.append(sent)
            try:
                new_index, instances = adapter.healthy(self.service, index=sent, wait=r.wait)
            except ConsulError as exc:
                failures += 1
                self.stats.errors += 1
                self.error = str(exc)
                if not self.first.done():
                    self.first.set_result(None)
                delay = min(r.backoff_cap, r.backoff_base * 2 ** (failures - 1)) * (0.5 + r.rng.random() / 2)
                self.stats.backoffs.append(delay)
                logger.warning("consul watch {}: {} (retrying in {:.2f}s)", self.service, exc, delay)
                self.stop.wait(delay)
                continue
            failures = 0
            self.error = None
            self.instances = tuple(instances)
            if not self.first.done():
                self.first.set_result(None)
            if new_index < self.index:
                # went backwards (snapshot restore, leader change): start over with a plain query
                self.index = 0
                self.stats.index_resets += 1
            elif new_index < 1:
                self.index = 1  # never block on an index below 1: it would return at once, forever
            else:
                self.index = new_index
            if r.min_interval:
                self.stop.wait(r.min_interval)


class ConsulResolver(Resolver):
    """Passing instances from Consul, served from a blocking-query cache kept by one thread per service."""

    def __init__(
        self,
        adapter: ConsulAdapter,
        *,
        wait: float | None = None,
        backoff_base: float = 0.2,
        backoff_cap: float = 15.0,
        min_interval: float = 0.05,
        max_watches: int = 256,
        rng: random.Random | None = None,
    ) -> None:
        self.adapter = adapter
        self.wait = wait or adapter.config.wait
        if self.wait * 17 / 16 >= (adapter.http_timeout(blocking=True) or float("inf")):
            raise DiscoveryConfigError("consul: the HTTP timeout must exceed the blocking wait * 17/16")
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.min_interval = min_interval
        self.max_watches = max_watches
        self.rng = rng or random.Random()
        self._watches: dict[str, _Watch] = {}
        self._lock = threading.Lock()

    def watch(self, service: str) -> _Watch:
        with self._lock:
            watch = self._watches.get(service)
            if watch is None:
                if len(self._watches) >= self.max_watches:
                    # one thread per watched name: resolve declared services only, never caller input
                    raise UpstreamUnavailableError(
                        f"consul: already watching {self.max_watches} services; not watching {service!r}",
                        upstream=service,
                    )
                watch = self._watches[service] = _Watch(self, service)
                watch.thread.start()
            return watch

    async def resolve(self, service: str) -> list[Instance]:
        watch = self._watches.get(service) or self.watch(service)
        if watch.instances is None:
            timeout = self.adapter.config.request_timeout * 2
            try:
                await asyncio.wait_for(asyncio.wrap_future(watch.first), timeout)
            except TimeoutError:
                raise UpstreamUnavailableError(
                    f"consul: no answer about {service!r} within {timeout:g}s", upstream=service
                ) from None
            if watch.instances is None:
                raise UpstreamUnavailableError(f"cannot resolve {service!r}: {watch.error}", upstream=service)
        return list(watch.instances)

    def stats(self, service: str) -> WatchStats | None:
        watch = self._watches.get(service)
        return watch.stats if watch else None

    async def aclose(self) -> None:
        """Stop the watches (daemon threads: one blocked in a query ends when its wait is over)."""
        with self._lock:
            watches, self._watches = list(self._watches.values()), {}
        for watch in watches:
            watch.stop.set()


@contextlib.asynccontextmanager
async def registered(adapter: ConsulAdapter, registration: ServiceRegistration) -> AsyncIterator[None]:
    """Register the instance for the lifetime of the block (an app's lifespan), then deregister.

    Deregistering on the way out removes the instance at once; DeregisterCriticalServiceAfter is
    the safety net for a process that dies without getting there.
    """
    await asyncio.to_thread(adapter.register, registration)
    try:
        yield
    finally:
        try:
            await asyncio.to_thread(adapter.deregister, registration.service_id)
        except ConsulError as exc:
            logger.warning("consul: could not deregister {}: {}", registration.service_id, exc)
