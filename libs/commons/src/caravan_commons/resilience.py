"""Retry and failure-isolation policies of the inter-service client (no I/O in here).

- :func:`backoff_delay` — exponential backoff with *full jitter*: attempt ``n`` (1 = first retry)
  sleeps a uniform random time in ``[0, min(cap, base * 2**(n-1))]``.
- :class:`RetryBudget` — retries may add at most ``ratio`` (20 %) to the requests sent, plus a
  small floor of ``min_per_second`` retries in any one-second window so a quiet service can still
  retry. A token bucket: each first attempt deposits ``ratio`` tokens (capped at ``max_tokens``),
  each retry withdraws one; when the bucket is empty the floor is used, then retries stop.
- :class:`CircuitBreaker` — opens after ``failure_threshold`` consecutive failures, rejects calls
  while open, lets one trial call through after ``cooldown`` seconds (half-open) and closes on its
  success (re-opens on its failure).
"""

from __future__ import annotations

import enum
import random
import time
from collections.abc import Callable

Clock = Callable[[], float]


def backoff_delay(retry: int, *, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Full-jitter delay before retry number ``retry`` (1-based)."""
    if retry < 1:
        raise ValueError("retry numbers start at 1")
    ceiling = min(cap, base * (2 ** (retry - 1)))
    return (rng or random).uniform(0.0, ceiling)


class RetryBudget:
    """Token bucket limiting retries to ``ratio`` of requests plus ``min_per_second``."""

    def __init__(
        self,
        *,
        ratio: float = 0.2,
        min_per_second: int = 3,
        max_tokens: float = 100.0,
        clock: Clock = time.monotonic,
    ) -> None:
        if not 0.0 <= ratio <= 1.0 or min_per_second < 0 or max_tokens < 0:
            raise ValueError("ratio must be in [0, 1]; min_per_second and max_tokens non-negative")
        self.ratio = ratio
        self.min_per_second = min_per_second
        self.max_tokens = max_tokens
        self._clock = clock
        self._tokens = 0.0
        self._window = -1
        self._floor_used = 0
        self.requests = 0
        self.retries = 0
        self.refused = 0

    def record_request(self) -> None:
        """A first attempt was sent."""
        self.requests += 1
        self._tokens = min(self.max_tokens, self._tokens + self.ratio)

    def try_acquire(self) -> bool:
        """May one retry be sent now? Consumes budget when it answers yes."""
        if self._tokens >= 1.0:
            self._tokens -= 1.0
            self.retries += 1
            return True
        window = int(self._clock())
        if window != self._window:
            self._window, self._floor_used = window, 0
        if self._floor_used < self.min_per_second:
            self._floor_used += 1
            self.retries += 1
            return True
        self.refused += 1
        return False


class CircuitState(enum.Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Consecutive-failure circuit breaker for one upstream."""

    def __init__(self, *, failure_threshold: int = 5, cooldown: float = 5.0, clock: Clock = time.monotonic):
        if failure_threshold < 1 or cooldown < 0:
            raise ValueError("failure_threshold must be >= 1 and cooldown >= 0")
        self.failure_threshold = failure_threshold
        self.cooldown = cooldown
        self._clock = clock
        self._failures = 0
        self._opened_at = 0.0
        self._state = CircuitState.CLOSED
        self._trial_in_flight = False
        self.opened = 0  # times the circuit opened (a metric: client_circuit_opens_total)

    @property
    def state(self) -> CircuitState:
        if self._state is CircuitState.OPEN and self._clock() - self._opened_at >= self.cooldown:
            self._state = CircuitState.HALF_OPEN
            self._trial_in_flight = False
        return self._state

    def retry_after(self) -> float:
        """Seconds until a trial call will be let through (0 when not open)."""
        if self.state is not CircuitState.OPEN:
            return 0.0
        return max(0.0, self.cooldown - (self._clock() - self._opened_at))

    def allow(self) -> bool:
        """May a call go out now? In half-open state only one trial call at a time."""
        state = self.state
        if state is CircuitState.CLOSED:
            return True
        if state is CircuitState.HALF_OPEN and not self._trial_in_flight:
            self._trial_in_flight = True
            return True
        return False

    def record_success(self) -> None:
        self._failures = 0
        self._state = CircuitState.CLOSED
        self._trial_in_flight = False

    def record_failure(self) -> None:
        self._failures += 1
        if self._state is CircuitState.HALF_OPEN or self._failures >= self.failure_threshold:
            self._state = CircuitState.OPEN
            self.opened += 1
            self._opened_at = self._clock()
            self._failures = 0
            self._trial_in_flight = False

    def release(self) -> None:
        """A call that was allowed ended without telling anything about the upstream's health."""
        self._trial_in_flight = False
