"""The inter-service HTTP client: discovery, pooling, deadlines, tracing, retries, circuit breaking.

Services call each other only through :class:`ServiceClient`; the transport (aiohttp, chosen by
measurement: about 12x httpx's throughput as a pooled proxy client on this kind of machine) stays
behind this interface (:mod:`caravan_commons.transport`). One client per service process: it holds
one pooled ``ClientSession`` opened and closed with the app (:meth:`ServiceClient.lifespan`).

Every call:

1. gets a deadline — ``timeout=`` (or ``ClientConfig.default_timeout``), never later than the
   deadline of the request being served (:mod:`caravan_commons.deadline`) — and sends what is left
   of it in ``X-Request-Timeout-Ms``;
2. carries the W3C ``traceparent`` of a CLIENT span, and whatever ``headers_provider`` adds (the
   hook for the caller-identity header);
3. goes to an instance chosen round-robin by :class:`~caravan_commons.discovery.Balancer`;
4. fails fast with :class:`UpstreamUnavailableError` while the service's circuit is open;
5. is retried — only when the method is idempotent (GET, HEAD, PUT, DELETE, OPTIONS) or the call
   carries an ``Idempotency-Key`` — on connection failures and 500/502/503/504, with full-jitter
   exponential backoff, at most ``max_attempts`` attempts, within the deadline and the service's
   retry budget. A connection that could not be *established* carried no request, so it is tried
   again on another instance whatever the method (``retry_unsent``);
6. returns a :class:`Response` for 1xx-3xx, and raises the typed error of
   :mod:`caravan_commons.errors` for 4xx/5xx (problem+json ``detail`` and extension members kept).
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import random
import time
import weakref
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from typing import Any

import msgspec
from opentelemetry import propagate, trace

from caravan_commons.client_types import (
    IDEMPOTENCY_HEADER,
    IDEMPOTENT_METHODS,
    ClientConfig,
    HeadersProvider,
    Response,
)
from caravan_commons.deadline import DEADLINE_HEADER, Deadline, current_deadline
from caravan_commons.discovery import Balancer, Instance, Resolver
from caravan_commons.errors import ApplicationError, DeadlineExceededError, UpstreamUnavailableError
from caravan_commons.resilience import CircuitBreaker, CircuitState, RetryBudget, backoff_delay
from caravan_commons.transport import AiohttpTransport, AttemptFailed, Transport
from caravan_commons.upstream_errors import error_from_answer

__all__ = [
    "IDEMPOTENCY_HEADER",
    "IDEMPOTENT_METHODS",
    "ClientConfig",
    "HeadersProvider",
    "Response",
    "ServiceClient",
]

_IDEMPOTENCY_LOWER = IDEMPOTENCY_HEADER.lower()
#: Every ServiceClient of the process, for the circuit metrics (service_metrics.CircuitMetrics).
_LIVE_CLIENTS: weakref.WeakSet[ServiceClient] = weakref.WeakSet()


def live_circuits() -> Iterator[tuple[str, CircuitBreaker]]:
    """(upstream, breaker) of every circuit of every live ServiceClient of the process."""
    for client in list(_LIVE_CLIENTS):
        yield from list(client._breakers.items())


class ServiceClient:
    """Calls other Caravan services by name. Create once, open with the app's lifespan."""

    def __init__(
        self,
        resolver: Resolver,
        config: ClientConfig | None = None,
        *,
        headers_provider: HeadersProvider | None = None,
        tracer: trace.Tracer | None = None,
        clock: Callable[[], float] = time.monotonic,
        rng: random.Random | None = None,
        retry_budget_factory: Callable[[], RetryBudget] | None = None,
        transport: Transport | None = None,
    ) -> None:
        self.resolver = resolver
        self.config = config or ClientConfig()
        self._headers_provider = headers_provider
        self._tracer = tracer or trace.get_tracer("caravan_commons.client")
        self._clock = clock
        self._rng = rng or random.Random()
        cfg = self.config
        self._budget_factory = retry_budget_factory or (
            lambda: RetryBudget(ratio=cfg.retry_budget_ratio, min_per_second=cfg.retry_budget_min_per_second)
        )
        self.balancer = Balancer(eject_after=cfg.eject_after, eject_cooldown=cfg.eject_cooldown, clock=clock)
        self._breakers: dict[str, CircuitBreaker] = {}
        self._budgets: dict[str, RetryBudget] = {}
        _LIVE_CLIENTS.add(self)
        self.transport = transport or AiohttpTransport(
            pool_limit=cfg.pool_limit,
            pool_limit_per_host=cfg.pool_limit_per_host,
            connect_timeout=cfg.connect_timeout,
            user_agent=cfg.user_agent,
        )

    # -- lifecycle -------------------------------------------------------------------------
    async def start(self) -> None:
        await self.transport.start()

    async def close(self) -> None:
        await self.transport.close()
        await self.resolver.aclose()

    async def __aenter__(self) -> ServiceClient:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: object = None) -> AsyncIterator[ServiceClient]:
        """Litestar lifespan hook: ``create_app(..., lifespan=[client.lifespan])``."""
        await self.start()
        try:
            yield self
        finally:
            await self.close()

    # -- per-upstream state ----------------------------------------------------------------
    def circuit(self, service: str) -> CircuitBreaker:
        breaker = self._breakers.get(service)
        if breaker is None:
            breaker = self._breakers[service] = CircuitBreaker(
                failure_threshold=self.config.circuit_failure_threshold,
                cooldown=self.config.circuit_cooldown,
                clock=self._clock,
            )
        return breaker

    def retry_budget(self, service: str) -> RetryBudget:
        budget = self._budgets.get(service)
        if budget is None:
            budget = self._budgets[service] = self._budget_factory()
        return budget

    # -- calls -----------------------------------------------------------------------------
    async def get(self, service: str, path: str, **kwargs: Any) -> Response:
        return await self.request(service, "GET", path, **kwargs)

    async def post(self, service: str, path: str, **kwargs: Any) -> Response:
        return await self.request(service, "POST", path, **kwargs)

    async def put(self, service: str, path: str, **kwargs: Any) -> Response:
        return await self.request(service, "PUT", path, **kwargs)

    async def delete(self, service: str, path: str, **kwargs: Any) -> Response:
        return await self.request(service, "DELETE", path, **kwargs)

    async def request(
        self,
        service: str,
        method: str,
        path: str,
        *,
        json: Any = msgspec.UNSET,
        content: bytes | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> Response:
        """Call ``method path`` on ``service``; typed errors for 4xx/5xx and transport failures."""
        if not self.transport.started:
            raise RuntimeError(
                "ServiceClient is not started: open it with the app's lifespan (client.lifespan)"
            )
        if not path.startswith("/"):
            raise ValueError(f"path must start with '/', got {path!r}")
        method = method.upper()
        deadline = Deadline.after(
            self.config.default_timeout if timeout is None else timeout, self._clock
        ).earliest(current_deadline())
        out_headers: dict[str, str] = dict(headers or {})
        if json is not msgspec.UNSET:
            if content is not None:
                raise ValueError("pass json= or content=, not both")
            content = msgspec.json.encode(json)
            out_headers.setdefault("Content-Type", "application/json")
        if idempotency_key is not None:  # an RFC 8941 sf-string, as the draft specifies
            out_headers[IDEMPOTENCY_HEADER] = (
                '"' + idempotency_key.replace("\\", "\\\\").replace('"', '\\"') + '"'
            )
        if self._headers_provider is not None:
            extra = self._headers_provider(service, method, path)
            out_headers.update(await extra if inspect.isawaitable(extra) else extra)
        retryable = method in IDEMPOTENT_METHODS or any(k.lower() == _IDEMPOTENCY_LOWER for k in out_headers)

        span = self._tracer.start_span(
            f"{method} {service}",
            kind=trace.SpanKind.CLIENT,
            attributes={"http.request.method": method, "peer.service": service, "url.path": path},
        )
        ctx = trace.set_span_in_context(span) if span.get_span_context().is_valid else None
        propagate.inject(out_headers, context=ctx)
        with trace.use_span(span, end_on_exit=True):
            response = await self._call_with_retries(
                service, method, path, params, out_headers, content, deadline, retryable
            )
            span.set_attribute("http.response.status_code", response.status)
            return response

    async def _call_with_retries(
        self,
        service: str,
        method: str,
        path: str,
        params: Mapping[str, str] | None,
        headers: dict[str, str],
        content: bytes | None,
        deadline: Deadline,
        retryable: bool,
    ) -> Response:
        breaker = self.circuit(service)
        budget = self.retry_budget(service)
        budget.record_request()
        previous: Instance | None = None
        attempt = 0
        # The breaker counts failed calls, not attempts: a failed attempt that is retried is held
        # back and counted once if the call fails in the end; a failed half-open trial counts at once.
        held = False
        try:
            while True:
                attempt += 1
                if deadline.expired:
                    raise DeadlineExceededError(
                        f"deadline passed before {service} could be called", upstream=service
                    )
                if not breaker.allow():
                    raise UpstreamUnavailableError(
                        f"circuit to {service} is open after repeated failures",
                        upstream=service,
                        retry_after=round(breaker.retry_after(), 3),
                    )
                try:
                    instances = await self.resolver.resolve(service)
                    instance = self.balancer.pick(service, instances, avoid=previous)
                except BaseException:
                    breaker.release()
                    raise
                try:
                    limit = deadline
                    if self.config.attempt_timeout is not None:
                        limit = Deadline.after(self.config.attempt_timeout, self._clock).earliest(deadline)
                    headers[DEADLINE_HEADER] = limit.header_value()
                    response = await self.transport.send(
                        instance,
                        method,
                        path,
                        params=params,
                        headers=headers,
                        content=content,
                        timeout=limit.remaining(),
                    )
                except AttemptFailed as failed:
                    held = _attempt_failed(breaker)
                    self.balancer.report_failure(instance)
                    if isinstance(failed.error, DeadlineExceededError) and deadline.expired:
                        raise failed.error from failed
                    may_retry = retryable or (not failed.sent and self.config.retry_unsent)
                    await self._before_retry(service, attempt, may_retry, deadline, budget, failed.error)
                    previous = instance
                    continue
                except BaseException:
                    breaker.release()
                    raise
                if response.status in self.config.retry_statuses:
                    held = _attempt_failed(breaker)
                    self.balancer.report_failure(instance)
                    error = error_from_answer(service, response.status, response.headers, response.body)
                    await self._before_retry(
                        service, attempt, retryable, deadline, budget, error, _retry_after(response)
                    )
                    previous = instance
                    continue
                breaker.record_success()
                held = False
                self.balancer.report_success(instance)
                if response.status >= 400:
                    raise error_from_answer(service, response.status, response.headers, response.body)
                return response
        except BaseException:
            if held:
                breaker.record_failure()
            raise

    async def _before_retry(
        self,
        service: str,
        attempt: int,
        may_retry: bool,
        deadline: Deadline,
        budget: RetryBudget,
        error: ApplicationError,
        retry_after: float | None = None,
    ) -> None:
        """Sleep before the next attempt, or raise ``error`` when no retry is allowed.

        An upstream's ``Retry-After`` (seconds) is a floor for the delay: when it would pass the
        deadline, the call gives up at once instead of hammering the upstream.
        """
        if not may_retry or attempt >= self.config.max_attempts:
            raise error
        delay = backoff_delay(
            attempt, base=self.config.backoff_base, cap=self.config.backoff_cap, rng=self._rng
        )
        if retry_after is not None:
            delay = max(delay, retry_after)
        if delay >= deadline.remaining() or not budget.try_acquire():
            raise error
        await asyncio.sleep(delay)


def _retry_after(response: Response) -> float | None:
    """``Retry-After`` in seconds (the delta-seconds form; an HTTP date is ignored)."""
    raw = response.headers.get("Retry-After")
    if raw is None:
        return None
    try:
        return max(0.0, float(raw))
    except ValueError:
        return None


def _attempt_failed(breaker: CircuitBreaker) -> bool:
    """A failed attempt that may be retried: a half-open trial's failure reopens the circuit at once
    (returns False); otherwise it is held back (returns True) until the call's outcome is known."""
    if breaker.state is CircuitState.HALF_OPEN:
        breaker.record_failure()
        return False
    breaker.release()
    return True
