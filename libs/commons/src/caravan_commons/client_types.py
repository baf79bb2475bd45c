"""The types of the inter-service client's interface: its configuration, answers and hooks.

Kept apart from the transport (:mod:`caravan_commons.client`) so callers and tests can name them
without caring which HTTP library is underneath.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar, overload

import msgspec

from caravan_commons.discovery import Instance
from caravan_commons.errors import UpstreamUnavailableError

T = TypeVar("T")

IDEMPOTENT_METHODS = frozenset({"GET", "HEAD", "PUT", "DELETE", "OPTIONS"})
IDEMPOTENCY_HEADER = "Idempotency-Key"

HeadersProvider = Callable[[str, str, str], Mapping[str, str] | Awaitable[Mapping[str, str]]]
"""``(service, method, path) -> headers`` added to every call (e.g. a signed caller identity)."""


class ClientConfig(msgspec.Struct, frozen=True, kw_only=True):
    """Tuning of :class:`ServiceClient`; times in seconds. Defaults suit calls inside one site."""

    default_timeout: float = 5.0
    #: Cap of one attempt (None: an attempt may use the whole deadline).
    attempt_timeout: float | None = None
    connect_timeout: float = 1.0
    max_attempts: int = 3
    backoff_base: float = 0.05
    backoff_cap: float = 1.0
    retry_statuses: frozenset[int] = frozenset({500, 502, 503, 504})
    retry_unsent: bool = True
    retry_budget_ratio: float = 0.2
    retry_budget_min_per_second: int = 3
    circuit_failure_threshold: int = 5
    circuit_cooldown: float = 5.0
    eject_after: int = 3
    eject_cooldown: float = 10.0
    pool_limit: int = 200
    pool_limit_per_host: int = 0
    user_agent: str = "caravan-commons"

    def __post_init__(self) -> None:
        positive = ("default_timeout", "connect_timeout", "backoff_base", "backoff_cap")
        for name in positive:
            if getattr(self, name) <= 0:
                raise ValueError(f"ClientConfig.{name} must be > 0, got {getattr(self, name)!r}")
        if self.attempt_timeout is not None and self.attempt_timeout <= 0:
            raise ValueError(
                f"ClientConfig.attempt_timeout must be > 0 or None, got {self.attempt_timeout!r}"
            )
        for name in ("max_attempts", "circuit_failure_threshold", "eject_after"):
            if getattr(self, name) < 1:
                raise ValueError(f"ClientConfig.{name} must be >= 1, got {getattr(self, name)!r}")
        if not 0.0 <= self.retry_budget_ratio <= 1.0:
            raise ValueError(
                f"ClientConfig.retry_budget_ratio must be in [0, 1], got {self.retry_budget_ratio!r}"
            )


class Response:
    """A successful (status < 400) answer, body fully read."""

    __slots__ = ("body", "headers", "instance", "service", "status")

    def __init__(
        self, service: str, instance: Instance, status: int, headers: Mapping[str, str], body: bytes
    ):
        self.service = service
        self.instance = instance
        self.status = status
        self.headers = headers
        self.body = body

    @overload
    def json(self) -> Any: ...
    @overload
    def json(self, type: type[T]) -> T: ...
    def json(self, type: Any = Any) -> Any:
        """Decode the JSON body (into ``type``, a msgspec Struct or any msgspec-supported type)."""
        try:
            return msgspec.json.decode(self.body, type=type)
        except msgspec.DecodeError as exc:
            raise UpstreamUnavailableError(
                f"{self.service} answered a body that does not decode: {exc}", upstream=self.service
            ) from exc

    @property
    def text(self) -> str:
        return self.body.decode("utf-8", errors="replace")

    def __repr__(self) -> str:
        return f"Response({self.service} {self.status}, {len(self.body)} bytes)"
