"""Service discovery: the resolver interface, a static/env backend and client-side load balancing.

A :class:`Resolver` turns a service name (``"svc-a"``) into the list of its instances. Backends
for Consul, Nomad and the local runtime's catalogue implement the same interface (they come with
the shared-infrastructure issue, as optional extras); :class:`StaticResolver` covers tests and
the simplest deployments: a mapping passed in, or ``CARAVAN_UPSTREAM_<NAME>`` variables, e.g.
``CARAVAN_UPSTREAM_SVC_A=http://127.0.0.1:8101,http://127.0.0.1:8102`` for service ``svc-a``.

:class:`Balancer` spreads calls over a service's healthy instances round-robin and ejects an
instance passively (from the outcomes the client reports, no probing) after ``eject_after``
consecutive failures, for ``eject_cooldown`` seconds. When every instance is ejected it routes to
all of them again ("panic mode", as Envoy does) rather than refusing everything: the client's
circuit breaker is what stops traffic to a service that is down as a whole.
"""

from __future__ import annotations

import abc
import itertools
import time
from collections.abc import Callable, Iterable, Mapping
from urllib.parse import urlsplit

import msgspec

from caravan_commons.errors import UpstreamUnavailableError

Clock = Callable[[], float]

ENV_PREFIX = "CARAVAN_UPSTREAM_"


class DiscoveryConfigError(ValueError):
    """A static upstream definition is malformed; the message names the offending entry."""


class Instance(msgspec.Struct, frozen=True, kw_only=True):
    """One reachable instance of a service."""

    service: str
    instance_id: str
    host: str
    port: int
    scheme: str = "http"
    healthy: bool = True
    meta: dict[str, str] = msgspec.field(default_factory=dict)

    @property
    def base_url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"


class Resolver(abc.ABC):
    """Port: resolve a service name to its instances (healthy or not; the balancer filters)."""

    @abc.abstractmethod
    async def resolve(self, service: str) -> list[Instance]:
        """All known instances of ``service``; an empty list when there are none."""

    async def aclose(self) -> None:  # noqa: B027 - optional hook, most resolvers hold nothing
        """Release what the resolver holds (HTTP sessions of remote catalogues)."""


def parse_instance(service: str, url: str) -> Instance:
    """``http://host:port`` → :class:`Instance`; a clear :class:`DiscoveryConfigError` otherwise."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise DiscoveryConfigError(f"upstream {service!r}: {url!r} is not an http(s)://host:port URL")
    if parts.path not in ("", "/") or parts.query or parts.fragment:
        raise DiscoveryConfigError(f"upstream {service!r}: {url!r} must not carry a path or query")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError as exc:
        raise DiscoveryConfigError(f"upstream {service!r}: {url!r} has an invalid port") from exc
    return Instance(
        service=service,
        instance_id=f"{parts.hostname}:{port}",
        host=parts.hostname,
        port=port,
        scheme=parts.scheme,
    )


class StaticResolver(Resolver):
    """Instances from a fixed mapping ``{service: [url, ...]}``."""

    def __init__(self, upstreams: Mapping[str, Iterable[str]]) -> None:
        self._instances: dict[str, list[Instance]] = {}
        for service, urls in upstreams.items():
            instances = [parse_instance(service, u) for u in urls if u.strip()]
            if not instances:
                raise DiscoveryConfigError(f"upstream {service!r}: no instance URL given")
            self._instances[service] = instances

    @classmethod
    def from_env(cls, environ: Mapping[str, str], prefix: str = ENV_PREFIX) -> StaticResolver:
        """Read ``<prefix><NAME>=url[,url...]``; ``NAME`` maps to ``name`` with ``_`` → ``-``.

        ``environ`` is passed in (settings are read once at start-up by the caller).
        """
        upstreams: dict[str, list[str]] = {}
        for key, value in environ.items():
            if key.startswith(prefix) and len(key) > len(prefix):
                service = key[len(prefix) :].lower().replace("_", "-")
                try:
                    upstreams[service] = [parse_instance(service, u).base_url for u in value.split(",")]
                except DiscoveryConfigError as exc:
                    raise DiscoveryConfigError(f"{key}: {exc}") from exc
        return cls(upstreams)

    @property
    def services(self) -> list[str]:
        return sorted(self._instances)

    async def resolve(self, service: str) -> list[Instance]:
        return list(self._instances.get(service, ()))


class _InstanceHealth:
    __slots__ = ("consecutive_failures", "ejected_until")

    def __init__(self) -> None:
        self.consecutive_failures = 0
        self.ejected_until = 0.0


class Balancer:
    """Round-robin over healthy instances with passive ejection of failing ones."""

    def __init__(self, *, eject_after: int = 3, eject_cooldown: float = 10.0, clock: Clock = time.monotonic):
        if eject_after < 1 or eject_cooldown < 0:
            raise ValueError("eject_after must be >= 1 and eject_cooldown >= 0")
        self._eject_after = eject_after
        self._eject_cooldown = eject_cooldown
        self._clock = clock
        self._counters: dict[str, itertools.count[int]] = {}
        self._health: dict[tuple[str, str], _InstanceHealth] = {}
        self._known: dict[str, frozenset[str]] = {}

    def _state(self, instance: Instance) -> _InstanceHealth:
        key = (instance.service, instance.instance_id)
        state = self._health.get(key)
        if state is None:
            state = self._health[key] = _InstanceHealth()
        return state

    def is_ejected(self, instance: Instance) -> bool:
        state = self._health.get((instance.service, instance.instance_id))
        return state is not None and state.ejected_until > self._clock()

    def pick(self, service: str, instances: list[Instance], *, avoid: Instance | None = None) -> Instance:
        """The next instance to call; ``avoid`` (the one that just failed) is skipped when possible."""
        self._forget_departed(service, instances)
        candidates = [i for i in instances if i.healthy]
        if not candidates:
            why = "discovery lists none" if not instances else f"all {len(instances)} are marked unhealthy"
            raise UpstreamUnavailableError(f"no healthy instance of {service!r}: {why}", upstream=service)
        live = [i for i in candidates if not self.is_ejected(i)] or candidates  # panic mode
        if avoid is not None and len(live) > 1:
            live = [i for i in live if i.instance_id != avoid.instance_id] or live
        counter = self._counters.setdefault(service, itertools.count())
        return live[next(counter) % len(live)]

    def _forget_departed(self, service: str, instances: list[Instance]) -> None:
        """Drop the health state of instances discovery no longer lists (churn must not leak)."""
        ids = frozenset(i.instance_id for i in instances)
        if self._known.get(service) == ids:
            return
        self._known[service] = ids
        for key in [k for k in self._health if k[0] == service and k[1] not in ids]:
            del self._health[key]

    def tracked(self, service: str) -> set[str]:
        """Ids of the instances of ``service`` the balancer keeps health state for."""
        return {instance_id for svc, instance_id in self._health if svc == service}

    def report_success(self, instance: Instance) -> None:
        state = self._state(instance)
        state.consecutive_failures = 0
        state.ejected_until = 0.0

    def report_failure(self, instance: Instance) -> None:
        state = self._state(instance)
        state.consecutive_failures += 1
        if state.consecutive_failures >= self._eject_after:
            state.ejected_until = self._clock() + self._eject_cooldown
            state.consecutive_failures = 0
