"""Rate limiting: one token bucket per customer id, and one per client address for failed
authentications."""

from __future__ import annotations

import time
from collections.abc import Callable


class RateLimiter:
    """``rate`` tokens per second refill each caller's bucket of ``burst`` tokens; a request takes one."""

    def __init__(
        self,
        rate: float,
        burst: int,
        *,
        clock: Callable[[], float] = time.monotonic,
        max_callers: int = 100_000,
    ):
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate = rate
        self.burst = float(burst)
        self._clock = clock
        self._buckets: dict[str, list[float]] = {}  # caller -> [tokens, last refill]
        self._max_callers = max_callers

    def acquire(self, caller: str) -> float:
        """0.0 when the request may go; otherwise the seconds until a token is available."""
        now = self._clock()
        bucket = self._buckets.get(caller)
        if bucket is None:
            if len(self._buckets) >= self._max_callers:
                self._evict_full(now)
            bucket = self._buckets[caller] = [self.burst, now]
        tokens = min(self.burst, bucket[0] + (now - bucket[1]) * self.rate)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return (1.0 - tokens) / self.rate

    def wait(self, caller: str) -> float:
        """Like :meth:`acquire` without taking a token: 0.0 when ``caller`` has one left."""
        bucket = self._buckets.get(caller)
        if bucket is None:
            return 0.0
        tokens = min(self.burst, bucket[0] + (self._clock() - bucket[1]) * self.rate)
        return 0.0 if tokens >= 1.0 else (1.0 - tokens) / self.rate

    def _evict_full(self, now: float) -> None:
        """Forget callers whose bucket has refilled completely (they are indistinguishable from new)."""
        for caller, (tokens, last) in list(self._buckets.items()):
            if tokens + (now - last) * self.rate >= self.burst:
                del self._buckets[caller]
