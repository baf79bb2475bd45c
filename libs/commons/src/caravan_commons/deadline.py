"""Request deadlines: carried across hops in one header, enforced on both sides.

Wire format: ``X-Request-Timeout-Ms: <n>`` — the number of milliseconds the caller is still
willing to wait, as a non-negative integer, measured when the request is sent. A relative budget
(as gRPC's ``grpc-timeout``) rather than an absolute time, so hosts with skewed clocks still
agree; the receiver turns it into a local monotonic deadline on arrival (network time is the only
slack). ``0`` means "already expired".

Server side: :class:`DeadlineMiddleware` (ASGI; Litestar ``middleware=[...]``) or
:func:`deadline_from_headers` + :func:`use_deadline` for other servers read the header and make
it the *current* deadline of the request's task; the inter-service client then never waits past
it and forwards what is left. The middleware also stops the handler when the deadline passes
(the work is cancelled, the caller is answered 504 ``deadline-exceeded`` if nothing was sent).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable, Iterator, Mapping
from contextvars import ContextVar
from typing import Any

from caravan_commons.errors import DeadlineExceededError, ValidationError

DEADLINE_HEADER = "X-Request-Timeout-Ms"
_HEADER_BYTES = DEADLINE_HEADER.lower().encode()

Clock = Callable[[], float]


class Deadline:
    """An absolute point on the local monotonic clock."""

    __slots__ = ("_clock", "expires_at")

    def __init__(self, expires_at: float, clock: Clock = time.monotonic) -> None:
        self.expires_at = expires_at
        self._clock = clock

    @classmethod
    def after(cls, seconds: float, clock: Clock = time.monotonic) -> Deadline:
        return cls(clock() + max(0.0, seconds), clock)

    def remaining(self) -> float:
        """Seconds left, never negative."""
        return max(0.0, self.expires_at - self._clock())

    @property
    def expired(self) -> bool:
        return self.remaining() <= 0.0

    def header_value(self) -> str:
        return str(int(self.remaining() * 1000))

    def earliest(self, other: Deadline | None) -> Deadline:
        if other is None or self.remaining() <= other.remaining():
            return self
        return other

    def __repr__(self) -> str:
        return f"Deadline(remaining={self.remaining():.3f}s)"


_current: ContextVar[Deadline | None] = ContextVar("caravan_deadline", default=None)


def current_deadline() -> Deadline | None:
    """The deadline of the request being served by this task, if any."""
    return _current.get()


@contextlib.contextmanager
def use_deadline(deadline: Deadline | None) -> Iterator[Deadline | None]:
    """Make ``deadline`` the current one inside the block (outgoing calls inherit it)."""
    token = _current.set(deadline)
    try:
        yield deadline
    finally:
        _current.reset(token)


def parse_timeout_ms(value: str) -> float:
    """Header value → seconds; :class:`ValidationError` naming the header when malformed."""
    text = value.strip()
    if not text.isdigit() or len(text) > 12:
        raise ValidationError(
            f"{DEADLINE_HEADER} must be a non-negative integer number of milliseconds, got {value[:40]!r}"
        )
    return int(text) / 1000.0


def deadline_from_headers(
    headers: Mapping[str, str],
    *,
    default_timeout: float | None = None,
    max_timeout: float | None = None,
    clock: Clock = time.monotonic,
) -> Deadline | None:
    """The request's deadline from its headers (case-insensitive mapping, e.g. aiohttp's).

    Without the header, ``default_timeout`` (seconds) applies, or no deadline at all when it is
    ``None``. ``max_timeout`` caps what a caller may ask for.
    """
    raw = headers.get(DEADLINE_HEADER)
    seconds = parse_timeout_ms(raw) if raw is not None else default_timeout
    if seconds is None:
        return None
    if max_timeout is not None:
        seconds = min(seconds, max_timeout)
    return Deadline.after(seconds, clock)


class DeadlineMiddleware:
    """ASGI middleware: read the deadline header, make it current, enforce it on the handler.

    Errors are raised as :mod:`caravan_commons.errors` (a malformed header → 400 validation
    problem, an expired deadline → 504 deadline-exceeded problem) for the app's single
    problem+json mapping to render. Use with Litestar as
    ``DefineMiddleware(DeadlineMiddleware, default_timeout=..., max_timeout=...)``.
    """

    def __init__(self, app: Any, *, default_timeout: float | None = None, max_timeout: float | None = None):
        self.app = app
        self.default_timeout = default_timeout
        self.max_timeout = max_timeout

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        raw = next((v for k, v in scope.get("headers", ()) if k == _HEADER_BYTES), None)
        headers = {DEADLINE_HEADER: raw.decode("latin-1")} if raw is not None else {}
        deadline = deadline_from_headers(
            headers, default_timeout=self.default_timeout, max_timeout=self.max_timeout
        )
        if deadline is None:
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        with use_deadline(deadline):
            timeout = asyncio.timeout(deadline.remaining())
            try:
                async with timeout:
                    await self.app(scope, receive, tracking_send)
            except TimeoutError:
                if not timeout.expired():
                    raise
                if not started:
                    raise DeadlineExceededError(
                        f"the request's deadline ({DEADLINE_HEADER}) passed before the answer was ready"
                    ) from None
