"""The gateway's request path: route, authenticate, limit, then forward with retries and breaking.

Everything is decided from the request head; the body streams through afterwards. Failures are
:mod:`caravan_commons.errors` exceptions rendered as problem+json by :mod:`problems`: unknown route
404, no or bad credentials 401, over the caller's rate 429 (Retry-After), body too large 413, no
instance, circuit open or upstream failure 503, deadline passed 504. Retries (idempotent methods
or requests with an Idempotency-Key whose body is small enough to keep) use the commons retry
budget and backoff. Instances are chosen by the commons balancer, which ejects an instance after
consecutive failed attempts; each service has a commons circuit breaker fed with the outcome of
whole requests (after retries), so one dying instance does not open the service's circuit while
its siblings answer, but a service failing as a whole is cut off fast.
"""

from __future__ import annotations

import asyncio
from random import getrandbits
from time import perf_counter
from typing import TYPE_CHECKING
from urllib.parse import quote, unquote

from loguru import logger

from caravan_commons.deadline import parse_timeout_ms
from caravan_commons.discovery import Balancer, Instance, Resolver
from caravan_commons.errors import (
    ApplicationError,
    ClientError,
    DeadlineExceededError,
    MethodNotAllowedError,
    NotFoundError,
    ServerError,
    TooManyRequestsError,
    UnauthorizedError,
    UpstreamUnavailableError,
)
from caravan_commons.metrics import UNMATCHED_ROUTE, HttpMetrics
from caravan_commons.resilience import CircuitBreaker, RetryBudget, backoff_delay
from caravan_gateway import headers as hdr
from caravan_gateway.connection import ClientConnection
from caravan_gateway.exchange import Exchange, ResponseAborted, RetryableAnswer, UpstreamLost
from caravan_gateway.problems import body_too_large, render_problem
from caravan_gateway.upstream import ConnectFailed, UpstreamPool

if TYPE_CHECKING:
    from caravan_commons.identity import Signer
    from caravan_gateway.admin import Admin
    from caravan_gateway.auth import Authenticator, Principal
    from caravan_gateway.limits import RateLimiter
    from caravan_gateway.routes import Match, RouteTable
    from caravan_gateway.settings import GatewaySettings
    from caravan_gateway.tracing import EdgeSpan, EdgeTracer

IDEMPOTENT = frozenset({b"GET", b"HEAD", b"PUT", b"DELETE", b"OPTIONS"})
RETRY_STATUSES = frozenset({502, 503, 504})
_METHODS = {m: m.decode() for m in (b"GET", b"HEAD", b"POST", b"PUT", b"PATCH", b"DELETE", b"OPTIONS")}
#: The methods the gateway forwards (a 405 names them in its Allow header); TRACE is refused at
#: the edge, as hardening guides advise.
FORWARDED_METHODS = tuple(_METHODS.values())
#: Service paths the gateway never routes: health, metrics and schema belong to the runtime and the
#: monitoring tier (the gateway publishes the one public document, ``/schema/openapi.json``).
INTERNAL_PATHS = ("/health", "/metrics", "/schema")
#: An encoded '/' would change a path's segments once decoded (routing sees one path, the service
#: another): refused. Other encoded characters are a service's to judge against its document.
_ENCODED_SEPARATORS = (b"%2f", b"%2F")
#: How much of a path an answer or a log line may quote.
QUOTE_LIMIT = 256


def quoted(path: str) -> str:
    """``path`` as an answer or a log line may carry it: bounded."""
    return path if len(path) <= QUOTE_LIMIT else path[:QUOTE_LIMIT] + "…"


def internal(upstream_path: str) -> bool:
    return any(upstream_path == p or upstream_path.startswith(p + "/") for p in INTERNAL_PATHS)


def _check_head(exchange: Exchange, raw_path: bytes) -> None:
    """A request head the gateway refuses whatever its route (400)."""
    hosts = sum(1 for name, _ in exchange.headers if name == b"host")
    if hosts > 1 or (hosts == 0 and exchange.version != "1.0"):
        raise ClientError("a request carries exactly one Host header (RFC 9112 §3.2)")
    if any(sep in raw_path for sep in _ENCODED_SEPARATORS):
        raise ClientError("a path may not carry an encoded '/' (%2F)")


def _upstream_path(raw_path: bytes, match: Match) -> bytes:
    """The path the service sees: the caller's bytes past the route prefix, as sent (or the
    route's own path, re-quoted, when the caller's form of the prefix differed)."""
    if raw_path.startswith(match.prefix.encode()):
        return raw_path[len(match.prefix) :] or b"/"
    return quote(match.upstream_path).encode()


class _AttemptFailed(Exception):
    def __init__(self, error: ApplicationError, *, sent: bool) -> None:
        self.error = error
        self.sent = sent


class Gateway:
    def __init__(
        self,
        settings: GatewaySettings,
        *,
        routes: RouteTable,
        resolver: Resolver,
        authenticator: Authenticator,
        limiter: RateLimiter,
        metrics: HttpMetrics,
        auth_failures: RateLimiter | None = None,
        signer: Signer | None = None,
        tracer: EdgeTracer | None = None,
    ) -> None:
        self.settings = settings
        self.routes = routes
        self.resolver = resolver
        self.auth = authenticator
        self.limiter = limiter
        #: failed authentications per client address (brute force): over it, 429 before checking
        self.auth_failures = auth_failures
        self.metrics = metrics
        self.signer = signer
        self.tracer = tracer
        self.admin: Admin | None = None
        self.max_body = settings.max_body_bytes
        self.balancer = Balancer(eject_after=settings.eject_after, eject_cooldown=settings.eject_cooldown_s)
        self.breakers: dict[str, CircuitBreaker] = {}
        self.budgets: dict[str, RetryBudget] = {}
        self.pool = UpstreamPool()
        self.connections: set[ClientConnection] = set()
        self.in_flight = 0
        self.draining = False
        self.idle = asyncio.Event()
        self.idle.set()

    # ------------------------------------------------------------------ per-service state
    def circuit(self, service: str) -> CircuitBreaker:
        breaker = self.breakers.get(service)
        if breaker is None:
            breaker = self.breakers[service] = CircuitBreaker(
                failure_threshold=self.settings.circuit_failure_threshold,
                cooldown=self.settings.circuit_cooldown_s,
            )
        return breaker

    def budget(self, service: str) -> RetryBudget:
        budget = self.budgets.get(service)
        if budget is None:
            budget = self.budgets[service] = RetryBudget(
                ratio=self.settings.retry_budget_ratio,
                min_per_second=self.settings.retry_budget_min_per_second,
            )
        return budget

    # ------------------------------------------------------------------ the request path
    def start(self, exchange: Exchange) -> None:
        self.in_flight += 1
        self.idle.clear()
        asyncio.get_running_loop().create_task(self.handle(exchange))

    async def handle(self, exchange: Exchange) -> None:
        """Answer one request: check its head, serve the admin's own paths, or route, admit and
        forward it; whatever fails is answered as a problem; then observe and go on."""
        exchange.request_id = hdr.request_id(exchange.headers) or b"%032x" % getrandbits(128)
        raw_path, _, query = exchange.url.partition(b"?")
        path = quoted(unquote(raw_path.decode("latin-1")))
        route = UNMATCHED_ROUTE
        span: EdgeSpan | None = None
        try:
            _check_head(exchange, raw_path)
            if self.admin is not None and path in self.admin.paths:
                route = path
                status, headers, body = await self.admin.serve(path, exchange.method, exchange.headers)
                exchange.conn.respond(exchange, status, headers, body)
                return
            match = self._route(exchange, path)
            route = match.prefix
            principal = self._admit(exchange)
            timeout = self._timeout(exchange)
            if self.tracer is not None:
                span = self.tracer.start(hdr.get(exchange.headers, b"traceparent"))
            upstream_path = _upstream_path(raw_path, match)
            base = self._upstream_headers(exchange, principal, span)
            signing = (unquote(upstream_path.decode("latin-1")), principal)
            target = upstream_path + (b"?" + query if query else b"")
            await self._forward_within(timeout, exchange, match.service, target, base, signing)
        except ApplicationError as exc:
            self._answer_problem(exchange, exc, path)
        except ResponseAborted:
            pass
        except Exception as exc:  # a bug: logged with its stack, the caller gets a correlation id
            logger.opt(exception=exc).error(
                "unhandled {} (request {})", type(exc).__name__, exchange.request_id
            )
            self._answer_problem(exchange, ServerError("an unexpected error occurred"), path)
        finally:
            self._done(exchange, route, path, span)

    def _route(self, exchange: Exchange, path: str) -> Match:
        """The route of a method the gateway forwards (405 otherwise) to a path it routes (404)."""
        if exchange.method not in _METHODS:  # TRACE, CONNECT, ...: never forwarded
            raise MethodNotAllowedError(
                f"the gateway does not forward {exchange.method.decode('latin-1')} requests",
                allow=FORWARDED_METHODS,
            )
        match = self.routes.match(path)
        if match is None or internal(match.upstream_path):
            raise NotFoundError(f"no route for {path}")
        return match

    def _admit(self, exchange: Exchange) -> Principal:
        """The caller's principal, once its credentials (401), its rate (429) and its declared
        body size (413) pass."""
        principal = self._authenticate(exchange)
        wait = self.limiter.acquire(principal.customer)
        if wait:
            raise TooManyRequestsError(f"{principal.customer} is over its request rate", retry_after=wait)
        if exchange.content_length is not None and (
            exchange.content_length < 0 or exchange.content_length > self.max_body
        ):
            exchange.too_large = True
            raise body_too_large(self.max_body)
        return principal

    def _timeout(self, exchange: Exchange) -> float:
        """The request's deadline in seconds: the caller's X-Request-Timeout-Ms, capped, or the default."""
        raw = hdr.get(exchange.headers, b"x-request-timeout-ms")
        if raw is None:
            return self.settings.default_timeout_s
        return min(parse_timeout_ms(raw.decode("latin-1")), self.settings.max_timeout_s)

    def _upstream_headers(
        self, exchange: Exchange, principal: Principal, span: EdgeSpan | None
    ) -> hdr.Headers:
        """The request's headers as the service gets them (without the per-attempt ones): the
        principal, the trace context (the edge span's, or the caller's passed on), the body's
        framing. A caller expecting 100-continue is told to go on here."""
        extra: hdr.Headers = [(b"x-caravan-customer", principal.customer.encode())]
        if principal.scopes:
            extra.append((b"x-caravan-scopes", " ".join(principal.scopes).encode()))
        passed_on: tuple[bytes, ...] = (b"traceparent", b"tracestate")
        if span is not None:
            extra.append((b"traceparent", span.traceparent()))
            passed_on = (b"tracestate",)
        for name in passed_on:
            value = hdr.get(exchange.headers, name)
            if value is not None:
                extra.append((name, value))
        if exchange.body_chunked:
            extra.append((b"transfer-encoding", b"chunked"))
        elif exchange.content_length:  # a body of that length (a bad length was refused)
            extra.append((b"content-length", b"%d" % exchange.content_length))
        if hdr.get(exchange.headers, b"expect") == b"100-continue" and not exchange.body_done:
            exchange.conn.transport.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        return hdr.upstream_request_headers(
            exchange.headers, client_ip=exchange.conn.client_ip, request_id=exchange.request_id, extra=extra
        )

    async def _forward_within(
        self,
        timeout: float,
        exchange: Exchange,
        service: str,
        target: bytes,
        base: hdr.Headers,
        signing: tuple[str, Principal],
    ) -> None:
        """:meth:`forward`, cut at the request's deadline (504)."""
        try:
            async with asyncio.timeout(timeout) as scope:
                await self.forward(exchange, service, target, base, scope, signing)
        except TimeoutError:
            raise DeadlineExceededError(
                f"{service} did not answer within the deadline ({timeout:g}s)", upstream=service
            ) from None

    def _done(self, exchange: Exchange, route: str, path: str, span: EdgeSpan | None) -> None:
        """After the answer: drop the attempt, observe, end the span, log, and let the connection
        go on."""
        exchange.detach_upstream()
        self._observe(exchange, route)
        if span is not None and span.sampled:
            assert self.tracer is not None
            self.tracer.end(span, method=_METHODS.get(exchange.method, "OTHER"), route=route, path=path,
                            status=exchange.status)  # fmt: skip
        if self.settings.access_log:
            self._access_log(exchange, path, span)
        exchange.conn.exchange_done(exchange)
        self.in_flight -= 1
        if self.in_flight == 0:
            self.idle.set()

    def _authenticate(self, exchange: Exchange) -> Principal:
        """The caller's principal (401), after the failed attempts of its address are counted: an
        address over its allowance of failures gets 429 before its credentials are looked at."""
        limiter, address = self.auth_failures, exchange.conn.client_ip.decode("latin-1")
        if limiter is not None:
            wait = limiter.wait(address)
            if wait:
                raise TooManyRequestsError(
                    "too many failed authentications from this address", retry_after=wait
                )
        try:
            return self.auth.authenticate(
                hdr.get(exchange.headers, b"authorization"), hdr.get(exchange.headers, b"x-api-key")
            )
        except UnauthorizedError:
            if limiter is not None:
                limiter.acquire(address)
            raise

    @staticmethod
    def _access_log(exchange: Exchange, path: str, span: EdgeSpan | None) -> None:
        """One line per request, carrying the request's trace id (the gateway's own tracer)."""
        method = _METHODS.get(exchange.method, "OTHER")
        status = exchange.status or 499
        logger.bind(
            method=method, path=path, status=status,
            duration_ms=round((perf_counter() - exchange.started) * 1000, 2),
            request_id=exchange.request_id.decode("latin-1"),
            trace_id=None if span is None else format(span.trace_id, "032x"),
            span_id=None if span is None else format(span.span_id, "016x"),
        ).info("{} {} {}", method, path, status)  # fmt: skip

    def _observe(self, exchange: Exchange, route: str) -> None:
        self.metrics.observe(
            _METHODS.get(exchange.method, "OTHER"),
            route,
            exchange.status or 499,
            perf_counter() - exchange.started,
        )

    def _answer_problem(self, exchange: Exchange, exc: ApplicationError, path: str) -> None:
        if exchange.committed or exchange.conn.closed:
            if not exchange.committed:
                exchange.status = exc.status
            return
        if exc.status >= 500:
            logger.warning("{} {}: {} ({})", exc.status, path, exc.detail, exchange.request_id.decode())
        status, headers, body = render_problem(exc, path, exchange.request_id)
        exchange.conn.respond(exchange, status, headers, body)

    # ------------------------------------------------------------------ forwarding
    async def forward(
        self,
        exchange: Exchange,
        service: str,
        target: bytes,
        base: hdr.Headers,
        scope: asyncio.Timeout,
        signing: tuple[str, Principal] | None = None,
    ) -> None:
        breaker = self.circuit(service)
        budget = self.budget(service)
        keyed = hdr.get(exchange.headers, b"idempotency-key") is not None
        retryable = (exchange.method in IDEMPOTENT or keyed) and (
            not exchange.has_body
            or (
                exchange.content_length is not None
                and exchange.content_length <= self.settings.retry_body_bytes
            )
        )
        body: bytes | None = None
        if retryable and exchange.has_body:
            body = await exchange.read_whole_body()
        budget.record_request()
        exchange.retry_statuses = RETRY_STATUSES if retryable else frozenset()
        first_line = exchange.method + b" " + target + b" HTTP/1.1"
        if not breaker.allow():
            raise UpstreamUnavailableError(
                f"circuit to {service} is open after repeated failures",
                upstream=service,
                retry_after=round(breaker.retry_after(), 3),
            )
        previous: Instance | None = None
        instance: Instance | None = None
        attempt = 0
        loop = asyncio.get_running_loop()
        while True:
            attempt += 1
            try:
                instance = self.balancer.pick(service, await self.resolver.resolve(service), avoid=previous)
                await self._attempt(exchange, instance, first_line, base, body, scope, loop, signing)
            except _AttemptFailed as failed:
                assert instance is not None
                self.balancer.report_failure(instance)
                delay = backoff_delay(attempt, base=0.01, cap=0.25)
                when = scope.when()
                if (
                    not (retryable or not failed.sent)
                    or attempt >= self.settings.max_attempts
                    or (when is not None and loop.time() + delay >= when)
                    or not budget.try_acquire()
                ):
                    breaker.record_failure()  # the request failed as a whole
                    raise failed.error from None
                await asyncio.sleep(delay)
                previous = instance
                continue
            except BaseException:
                if scope.expired():  # the deadline passed while this instance was working on it
                    breaker.record_failure()
                    if instance is not None:
                        self.balancer.report_failure(instance)
                else:
                    breaker.release()
                raise
            if exchange.status in RETRY_STATUSES:
                breaker.record_failure()
                self.balancer.report_failure(instance)
            else:
                breaker.record_success()
                self.balancer.report_success(instance)
            return

    async def _attempt(
        self,
        exchange: Exchange,
        instance: Instance,
        first_line: bytes,
        base: hdr.Headers,
        body: bytes | None,
        scope: asyncio.Timeout,
        loop: asyncio.AbstractEventLoop,
        signing: tuple[str, Principal] | None = None,
    ) -> None:
        when = scope.when()
        remaining = (when - loop.time()) if when is not None else self.settings.default_timeout_s
        try:
            up = await self.pool.acquire(
                instance.host, instance.port, min(self.settings.connect_timeout_s, max(remaining, 0.001))
            )
        except ConnectFailed as exc:
            raise _AttemptFailed(
                UpstreamUnavailableError(
                    f"cannot connect to {instance.service} ({exc})", upstream=instance.service
                ),
                sent=False,
            ) from None
        headers = list(base)
        headers.append((b"host", f"{instance.host}:{instance.port}".encode()))
        headers.append((b"x-request-timeout-ms", b"%d" % max(0, int(remaining * 1000))))
        if self.signer is not None and signing is not None:
            # one assertion per attempt, bound to this request and the customer it acts for
            path, principal = signing
            token = self.signer.token_for(
                instance.service, exchange.method.decode(), path,
                customer=principal.customer, scopes=principal.scopes,
            )  # fmt: skip
            headers.append((b"x-caravan-identity", token.encode()))
        if exchange.too_large:
            up.pool.release(up)
            raise body_too_large(self.max_body)
        future = loop.create_future()
        exchange.future = future
        exchange.upstream = up
        up.listener = exchange
        assert up.transport is not None
        up.transport.write(hdr.serialize(first_line, headers))
        if body is not None:
            up.transport.write(
                b"%x\r\n%b\r\n0\r\n\r\n" % (len(body), body) if exchange.body_chunked else body
            )
        elif exchange.has_body:
            exchange.stream_body_to(up)
        try:
            await future
        except RetryableAnswer as answer:
            exchange.detach_upstream()
            raise _AttemptFailed(
                UpstreamUnavailableError(
                    f"{instance.service} answered {answer.status}", upstream=instance.service
                ),
                sent=True,
            ) from None
        except UpstreamLost as lost:
            exchange.detach_upstream()
            if exchange.too_large:
                raise body_too_large(self.max_body) from None
            raise _AttemptFailed(
                UpstreamUnavailableError(
                    f"{instance.service} closed the connection: {lost}", upstream=instance.service
                ),
                sent=True,
            ) from None
